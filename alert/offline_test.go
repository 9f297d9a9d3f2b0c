package alert

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTestRules(t *testing.T) {
	dir := t.TempDir()
	doc := `{"outputs": [{"name": "am", "type": "alertmanager", "url": "http://127.0.0.1:9093"},
	                     {"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/", "secret_file": "/var/lib/ucp-audit/k"}],
	  "rules": [` + execRule + `,
	    {"name": "deletes", "when": "event != null && event.verb == 'delete'", "severity": "info", "outputs": ["am"]},
	    {"name": "broken", "when": "event != null && event.nope == 1", "severity": "info", "outputs": ["am"]}
	  ]}`
	cfg, err := Env{}.ParseDocument([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	// The rotated file, compressed, holds the older records.
	var old bytes.Buffer
	zw := gzip.NewWriter(&old)
	for _, l := range [][]byte{eventLine(t, id(1), t0, nil), gapLine(t, t0.Add(time.Second))} {
		zw.Write(append(l, '\n'))
	}
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "audit.log.1.gz"), old.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var live []byte
	// The destination is still down at the next record, 9m57s later:
	// offline, the timer fires then.
	for _, l := range [][]byte{
		[]byte(`{"ucp-audit/seal":{"reason":"open","time":"2024-03-02T10:04:00Z","file":2,"keep":5,"records":1}}`),
		eventLine(t, id(2), t0.Add(2*time.Second), nil),
		selfLine(t, "destination-down", t0.Add(3*time.Second), "logstash beats://siem:5044", "refused"),
		eventLine(t, id(3), t0.Add(10*time.Minute), map[string]any{"objectRef": map[string]any{"resource": "pods"}}),
		[]byte(""),
	} {
		live = append(live, l...)
		live = append(live, '\n')
	}
	live = append(live, eventLine(t, id(4), t0.Add(11*time.Minute), nil)...) // unfinished last line
	if err := os.WriteFile(filepath.Join(dir, "audit.log"), live, 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep, err := TestRules(cfg, []string{dir}, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := `exec-into-pod: 3 alerts
  ` + id(1) + `
  ` + id(2) + `
  ` + id(4) + `
ucp-audit-destination-down: 1 alert
  destination-down at 2024-03-02T10:04:08Z: destination logstash beats://siem:5044 down for 9m57s: refused
ucp-audit-gap: 1 alert
  gap at 2024-03-02T10:04:06Z: 120 events (seq 880-999) will never reach logstash beats://siem:5044: spool full
did not fire: deletes, broken
evaluation errors: broken: 4 (the first: no such key: nope)
7 records read
`
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if rep.Records != 7 || len(rep.Fired) != 3 || rep.EvalErrors["broken"] != 4 {
		t.Errorf("report %+v", rep)
	}
	if _, err := TestRules(cfg, []string{filepath.Join(dir, "none")}, nil); err == nil {
		t.Error("a missing path: no error")
	}
}
