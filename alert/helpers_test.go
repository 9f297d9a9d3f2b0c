package alert

import (
	"encoding/json"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

// t0 is the tests' start of time.
var t0 = time.Date(2024, 3, 2, 10, 4, 5, 0, time.UTC)

// eventLine returns an audit event as the plugin writes it to audit.log
// (a Kubernetes exec by bob through ucp-controller on mgr-1), with the
// top-level keys of mods replacing the event's, at time at.
func eventLine(t testing.TB, id string, at time.Time, mods map[string]any) []byte {
	t.Helper()
	ev := map[string]any{
		"annotations": map[string]any{
			"ucp-audit/container-id":   "3f1c9a7b",
			"ucp-audit/container-name": "ucp-controller",
			"ucp-audit/host":           "mgr-1",
			"ucp-audit/seq":            "7",
			"ucp-audit/user":           "bob",
			"ucp-audit/received-at":    at.Format(time.RFC3339Nano),
		},
		"apiVersion":               "audit.k8s.io/v1",
		"auditID":                  id,
		"kind":                     "Event",
		"level":                    "Metadata",
		"objectRef":                map[string]any{"apiVersion": "v1", "name": "web-1", "namespace": "default", "resource": "pods", "subresource": "exec"},
		"requestReceivedTimestamp": at.Format(time.RFC3339Nano),
		"requestURI":               "/api/v1/namespaces/default/pods/web-1/exec?command=sh&stdin=true&tty=true",
		"responseStatus":           map[string]any{"code": 101, "metadata": map[string]any{}},
		"sourceIPs":                []any{"10.0.0.7"},
		"stage":                    "ResponseComplete",
		"stageTimestamp":           at.Format(time.RFC3339Nano),
		"user": map[string]any{
			"extra":    map[string]any{"licenseKey": []any{"sha256:0123456789abcdef"}, "username": []any{"bob"}},
			"groups":   []any{"system:authenticated"},
			"uid":      "6f1e0c1a",
			"username": "6f1e0c1a",
		},
		"verb":            "create",
		"userAgent":       "kubectl/v1.27.3",
		"ucp-audit/chain": map[string]any{"n": 3, "prev": "00", "hash": "11"},
	}
	maps.Copy(ev, mods)
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// selfLine returns a self record of type typ at time at.
func selfLine(t testing.TB, typ string, at time.Time, dest, detail string) []byte {
	t.Helper()
	b, err := auditlog.MarshalSelf(auditlog.Self{Type: typ, Time: at.Format(time.RFC3339Nano), Host: "mgr-1", Version: "1.4.0",
		ContainerID: "3f1c9a7b", ContainerName: "ucp-controller", Destination: dest, Detail: detail})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gapLine returns a gap record at time at.
func gapLine(t testing.TB, at time.Time) []byte {
	t.Helper()
	b, err := auditlog.MarshalGap(auditlog.Gap{Time: at.Format(time.RFC3339Nano), ContainerID: "3f1c9a7b", ContainerName: "ucp-controller",
		Destination: "logstash beats://siem:5044", Lost: 120, FirstSeq: 880, LastSeq: 999, Reason: "spool full"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// config returns a configuration with outputs am and hook and the rules,
// parsed and compiled.
func config(t testing.TB, rules string, builtins string) *Rules {
	t.Helper()
	if builtins == "" {
		builtins = "{}"
	}
	doc := `{"outputs": [{"name": "am", "type": "alertmanager", "url": "http://127.0.0.1:9093"},
	                     {"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/hook", "secret_file": "/var/lib/ucp-audit/hook.key"}],
	         "rules": [` + rules + `], "builtins": ` + builtins + `}`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Compile(c)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// names lists the alerts as "rule/output".
func names(as []Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Rule+"/"+a.Output)
	}
	return out
}

func id(i int) string { return "0b7c1a52-4f0e-4c0a-9f3e-" + strconv.Itoa(100000000000+i) }
