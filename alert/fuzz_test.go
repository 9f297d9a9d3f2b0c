package alert

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/rules"
)

// FuzzEvaluate runs the shipped rules, and a rule of the fuzzer's, over a
// record of the fuzzer's, as an event and as a self record: nothing
// panics, and each record is handled in bounded time (the cost limit).
func FuzzEvaluate(f *testing.F) {
	cfg, err := Parse(rules.Example)
	if err != nil {
		f.Fatal(err)
	}
	shipped, err := Compile(cfg)
	if err != nil {
		f.Fatal(err)
	}
	fixtures, _ := filepath.Glob(filepath.Join("..", "rules", "testdata", "*.log"))
	for i, name := range fixtures {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		line, _, _ := bytes.Cut(b, []byte("\n"))
		f.Add(cfg.Rules[i%len(cfg.Rules)].When, line)
	}
	f.Add("self != null && self.type == 'gap' && self.lost > 0", []byte(`{"destination":"d","lost":3,"type":"x"}`))
	f.Add("event != null && event.a.exists(x, x.matches('a+'))", []byte(`{"auditID":"1","a":["aaa",1,null,{"b":[]}]}`))
	f.Add("event != null && size(event.requestURI) > 3 && event.?user.?groups.orValue([]).all(g, g.startsWith('sys'))", []byte(`{"auditID":"x","requestURI":"/a","user":{"groups":["system:x"]}}`))
	f.Add("event.x", []byte(`{"auditID":"1"}`))
	f.Add("1/0 == 1", []byte(`not json`))
	f.Fuzz(func(t *testing.T, when string, line []byte) {
		rs := []*Rules{shipped}
		extra := &Config{Outputs: cfg.Outputs, Builtins: cfg.Builtins,
			Rules: []Rule{{Name: "fuzz", When: when, Severity: Info, Outputs: []string{cfg.Outputs[0].Name}, Count: 2, Within: time.Minute,
				GroupBy: []string{"event.auditID", "self.type"}, Throttle: time.Second}}}
		if r, err := Compile(extra); err == nil {
			rs = append(rs, r)
		}
		lines := [][]byte{line}
		if json.Valid(line) && bytes.HasPrefix(bytes.TrimSpace(line), []byte("{")) {
			lines = append(lines, []byte(`{"ucp-audit/self":`+string(line)+`}`), []byte(`{"ucp-audit/gap":`+string(line)+`}`))
		}
		for _, r := range rs {
			e := NewEngine(r, Options{OnEvalError: func(string, error, uint64) {}})
			for i, l := range lines {
				start := time.Now()
				for _, a := range e.Observe(l, time.Unix(int64(i), 0)) {
					if a.Rule == "" || a.Output == "" || strings.ContainsAny(a.Summary(), "\n\r") {
						t.Fatalf("alert %+v", a)
					}
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Fatalf("Observe took %v on %.200q with %q", d, l, when)
				}
			}
			e.Tick(time.Unix(3600, 0))
		}
	})
}
