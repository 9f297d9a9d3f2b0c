package rules_test

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/alert"
	"github.com/ucp-audit/ucp-audit/review"
	"github.com/ucp-audit/ucp-audit/rules"
)

// Every shipped rule fires on its fires fixture and stays quiet on its
// quiet fixture, without an evaluation error on either; no fixture is
// left without a rule.
func TestShippedRules(t *testing.T) {
	cfg, err := alert.Parse(rules.Example)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := alert.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != 8 {
		t.Errorf("%d rules, want the 8 of issue 13", len(cfg.Rules))
	}
	var want []string
	for _, r := range cfg.Rules {
		want = append(want, r.Name+".fires.log", r.Name+".quiet.log")
		t.Run(r.Name, func(t *testing.T) {
			for _, kind := range []string{"fires", "quiet"} {
				e := alert.NewEngine(rs, alert.Options{})
				var on []string
				for _, line := range readFixture(t, filepath.Join("testdata", r.Name+"."+kind+".log")) {
					_, ev, err := review.Parse(line)
					if err != nil || ev == nil || ev.Time.IsZero() {
						t.Fatalf("%s: not an event with a time: %s", kind, line)
					}
					for _, a := range e.Observe(line, ev.Time) {
						if a.Rule == r.Name {
							on = append(on, a.Record.AuditID)
						}
					}
				}
				if n := e.EvalErrors()[r.Name]; n != 0 {
					t.Errorf("%s: %d evaluation errors", kind, n)
				}
				switch {
				case kind == "fires" && len(on) == 0:
					t.Errorf("did not fire on %s.fires.log", r.Name)
				case kind == "quiet" && len(on) != 0:
					t.Errorf("fired on %s.quiet.log: %v", r.Name, on)
				}
				t.Logf("%s: fired on %v", kind, on)
			}
		})
	}
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.Contains(want, e.Name()) {
			t.Errorf("testdata/%s belongs to no rule", e.Name())
		}
	}
}

// The fixtures as the operator would run them: one alert per request
// (group_by auditID), one per burst.
func TestShippedRulesOffline(t *testing.T) {
	cfg, err := alert.Parse(rules.Example)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := alert.TestRules(cfg, []string{"testdata"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, f := range rep.Fired {
		got[f.Rule] = len(f.On)
	}
	want := map[string]int{"exec-into-pod": 3, "secret-read-outside-group": 2, "cluster-admin-binding": 2, "denied-burst": 1,
		"swarm-token-rotation": 3, "node-role-change": 2, "privileged-or-root-mount": 6, "audit-logging-config-change": 2}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s fired %d times, want %d", k, got[k], v)
		}
	}
	if len(rep.Quiet) != 0 || len(rep.EvalErrors) != 0 {
		t.Errorf("quiet %v, errors %v", rep.Quiet, rep.EvalErrors)
	}
}

func readFixture(t *testing.T, name string) [][]byte {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			lines = append(lines, []byte(sc.Text()))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 {
		t.Fatalf("%s is empty", name)
	}
	return lines
}
