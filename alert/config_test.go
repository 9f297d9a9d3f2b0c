package alert

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// issueExample is the "alerts" section as issue 13 shows it.
const issueExample = `{
  "outputs": [{"name": "am", "type": "alertmanager", "url": "http://127.0.0.1:9093"}],
  "rules": [
    {"name": "exec-into-pod", "when": "event != null && has(event.objectRef) && event.objectRef.subresource in ['exec', 'attach']", "severity": "warning", "outputs": ["am"]}
  ]
}`

func TestParseIssueExample(t *testing.T) {
	c, err := Parse([]byte(issueExample))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Outputs) != 1 || c.Outputs[0].Type != Alertmanager || c.Outputs[0].Timeout != DefaultTimeout {
		t.Errorf("outputs %+v", c.Outputs)
	}
	if len(c.Rules) != 1 || c.Rules[0].Name != "exec-into-pod" || c.Rules[0].Severity != Warning || c.Rules[0].Count != 1 || c.Rules[0].Throttle != 0 {
		t.Errorf("rules %+v", c.Rules)
	}
	if len(c.Builtins) != len(BuiltinKinds) {
		t.Fatalf("%d built-ins, want %d", len(c.Builtins), len(BuiltinKinds))
	}
	for _, b := range c.Builtins {
		if !b.Enabled || b.Outputs != nil || b.Throttle != DefaultBuiltinThrottle || b.Severity == "" {
			t.Errorf("built-in %s not on by default: %+v", b.Kind, b)
		}
	}
	if _, err := Compile(c); err != nil {
		t.Fatal(err)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, doc := range []string{"", "null", "{}", " \n"} {
		c, err := Parse([]byte(doc))
		if err != nil || len(c.Outputs) != 0 || len(c.Rules) != 0 || len(c.Builtins) != len(BuiltinKinds) {
			t.Errorf("%q: %+v, %v", doc, c, err)
		}
	}
}

func TestParseFull(t *testing.T) {
	doc := `{
	  "outputs": [
	    {"name": "am", "type": "alertmanager", "url": "https://am.example.com/prefix", "ca_file": "/srv/state/ca.pem", "timeout": "30s"},
	    {"name": "hook", "type": "webhook", "url": "https://hooks.example.com/ucp?token=t", "secret_file": "/srv/state/keys/../hook.key"},
	    {"name": "ops", "type": "slack", "url": "https://hooks.slack.com/services/T0/B0/XXXX"}
	  ],
	  "rules": [
	    {"name": "burst", "when": "event != null", "severity": "critical", "outputs": ["am", "ops"],
	     "group_by": ["event.user.username", "event.annotations[\"ucp-audit/user\"]"], "throttle": "10m", "count": 10, "within": "1m"}
	  ],
	  "builtins": {
	    "destination_down": {"after": "2m", "outputs": ["ops"]},
	    "gap": {"enabled": false},
	    "configuration_rejected": {"severity": "critical", "throttle": "0s"}
	  }
	}`
	c, err := Env{StateDir: "/srv/state"}.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Outputs[1]; o.SecretFile != "/srv/state/hook.key" || o.Type != Webhook {
		t.Errorf("webhook %+v", o)
	}
	if o := c.Outputs[0]; o.CAFile != "/srv/state/ca.pem" || o.Timeout != 30*time.Second {
		t.Errorf("alertmanager %+v", o)
	}
	r := c.Rules[0]
	if r.Count != 10 || r.Within != time.Minute || r.Throttle != 10*time.Minute || len(r.GroupBy) != 2 || len(r.Outputs) != 2 {
		t.Errorf("rule %+v", r)
	}
	byKind := map[BuiltinKind]Builtin{}
	for _, b := range c.Builtins {
		byKind[b.Kind] = b
	}
	if b := byKind[DestinationDown]; b.After != 2*time.Minute || len(b.Outputs) != 1 || !b.Enabled {
		t.Errorf("destination_down %+v", b)
	}
	if byKind[GapRecorded].Enabled {
		t.Error("gap not switched off")
	}
	if b := byKind[ConfigRejected]; b.Severity != Critical || b.Throttle != 0 {
		t.Errorf("configuration_rejected %+v", b)
	}
	if got := c.Outputs[2].Redacted(); got != "https://hooks.slack.com" {
		t.Errorf("Redacted = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	out := `"outputs": [{"name": "am", "type": "alertmanager", "url": "http://127.0.0.1:9093"}]`
	rule := func(extra string) string {
		return `{` + out + `, "rules": [{"name": "r", "when": "true", "severity": "info", "outputs": ["am"]}, {"name": "r2", "when": "true", "severity": "info", "outputs": ["am"]` + extra + `}]}`
	}
	for _, tc := range []struct {
		doc, key string
		err      error
		msg      string
	}{
		{`[]`, "alerts", ErrInvalidValue, "not a JSON object"},
		{`{"output": []}`, "alerts.output", ErrUnknownKey, "known: outputs, rules, builtins"},
		{`{"outputs": [{"Name": "am"}]}`, "alerts.outputs[0].Name", ErrUnknownKey, ""},
		{`{"outputs": [], "outputs": []}`, "alerts.outputs", ErrInvalidValue, "given twice"},
		{`{"outputs": {}}`, "alerts.outputs", ErrInvalidValue, "not a list"},
		{`{"outputs": [{"name": "am", "type": "pagerduty", "url": "http://h"}]}`, "alerts.outputs[0].type", ErrInvalidValue, `"pagerduty"`},
		{`{"outputs": [{"name": "a b", "type": "slack", "url": "http://h"}]}`, "alerts.outputs[0].name", ErrInvalidValue, ""},
		{`{"outputs": [{"name": "am", "type": "slack", "url": "http://h"}, {"name": "am", "type": "slack", "url": "http://h"}]}`, "alerts.outputs[1].name", ErrInvalidValue, "another output"},
		{`{"outputs": [{"name": "am", "type": "slack", "url": "ftp://h/T0/SECRET"}]}`, "alerts.outputs[0].url", ErrInvalidValue, `scheme "ftp"`},
		{`{"outputs": [{"name": "am", "type": "slack", "url": "hooks.slack.com/services/SECRET"}]}`, "alerts.outputs[0].url", ErrInvalidValue, "not shown"},
		{`{"outputs": [{"name": "am", "type": "alertmanager", "url": "http://h/?x=SECRET"}]}`, "alerts.outputs[0].url", ErrInvalidValue, "has a query"},
		{`{"outputs": [{"name": "h", "type": "webhook", "url": "http://h"}]}`, "alerts.outputs[0].secret_file", ErrInvalidValue, "always signed"},
		{`{"outputs": [{"name": "h", "type": "webhook", "url": "http://h", "secret_file": "/etc/shadow"}]}`, "alerts.outputs[0].secret_file", ErrInvalidValue, "not below /var/lib/ucp-audit"},
		{`{"outputs": [{"name": "h", "type": "webhook", "url": "http://h", "secret_file": "key"}]}`, "alerts.outputs[0].secret_file", ErrInvalidValue, "not below"},
		{`{"outputs": [{"name": "s", "type": "slack", "url": "http://h", "secret_file": "/var/lib/ucp-audit/k"}]}`, "alerts.outputs[0].secret_file", ErrInvalidValue, "only a webhook"},
		{`{"outputs": [{"name": "s", "type": "slack", "url": "http://h", "ca_file": "/var/lib/ucp-audit/ca.pem"}]}`, "alerts.outputs[0].ca_file", ErrInvalidValue, "not https"},
		{`{"outputs": [{"name": "s", "type": "slack", "url": "http://h", "timeout": "5ms"}]}`, "alerts.outputs[0].timeout", ErrInvalidValue, `"5ms"`},
		{rule(`, "whenn": "x"`), "alerts.rules[1].whenn", ErrUnknownKey, "known: name, when"},
		{rule(`, "severity": "high"`), "alerts.rules[1].severity", ErrInvalidValue, "given twice"},
		{`{` + out + `, "rules": [{"name": "r", "when": "true", "severity": "high", "outputs": ["am"]}]}`, "alerts.rules[0].severity", ErrInvalidValue, "critical, warning or info"},
		{`{` + out + `, "rules": [{"name": "r", "when": " ", "severity": "info", "outputs": ["am"]}]}`, "alerts.rules[0].when", ErrInvalidValue, "missing"},
		{`{` + out + `, "rules": [{"name": "r", "when": "true", "severity": "info"}]}`, "alerts.rules[0].outputs", ErrInvalidValue, "missing"},
		{`{` + out + `, "rules": [{"name": "r", "when": "true", "severity": "info", "outputs": ["pager"]}]}`, "alerts.rules[0].outputs[0]", ErrInvalidValue, `no output is named "pager"`},
		{`{` + out + `, "rules": [{"name": "ucp-audit-gap", "when": "true", "severity": "info", "outputs": ["am"]}]}`, "alerts.rules[0].name", ErrInvalidValue, "not starting with ucp-audit-"},
		{`{` + out + `, "rules": [{"name": "r", "when": "true", "severity": "info", "outputs": ["am"]}, {"name": "r", "when": "true", "severity": "info", "outputs": ["am"]}]}`, "alerts.rules[1].name", ErrInvalidValue, "another rule"},
		{rule(`, "group_by": ["user.name"]`), "alerts.rules[1].group_by[0]", ErrInvalidValue, "start with event or self"},
		{rule(`, "group_by": ["event.annotations[ucp-audit/user]"]`), "alerts.rules[1].group_by[0]", ErrInvalidValue, "quoted key or an index"},
		{rule(`, "count": 5`), "alerts.rules[1].within", ErrInvalidValue, "count needs a window"},
		{rule(`, "within": "1m"`), "alerts.rules[1].count", ErrInvalidValue, "within needs a count"},
		{rule(`, "count": 0, "within": "1m"`), "alerts.rules[1].count", ErrInvalidValue, "from 1 to 100000"},
		{rule(`, "throttle": "soon"`), "alerts.rules[1].throttle", ErrInvalidValue, `"soon"`},
		{`{` + out + `, "builtins": {"gaps": {}}}`, "alerts.builtins.gaps", ErrUnknownKey, "destination_down"},
		{`{` + out + `, "builtins": {"gap": {"after": "1m"}}}`, "alerts.builtins.gap.after", ErrUnknownKey, ""},
		{`{` + out + `, "builtins": {"gap": {"enabled": "no"}}}`, "alerts.builtins.gap.enabled", ErrInvalidValue, "true or false"},
		{`{` + out + `, "builtins": {"gap": {"outputs": ["x"]}}}`, "alerts.builtins.gap.outputs[0]", ErrInvalidValue, "no output"},
		{`{"rules": []} {}`, "alerts", ErrInvalidValue, "more follows"},
	} {
		_, err := Parse([]byte(tc.doc))
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != tc.key || !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s:\n got %v\nwant key %q, %v, %q", tc.doc, err, tc.key, tc.err, tc.msg)
			continue
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: the error shows the URL: %v", tc.doc, err)
		}
		if !strings.HasPrefix(err.Error(), `ucp-audit: node configuration "`+tc.key+`"`) {
			t.Errorf("%s: %v does not start by naming the key", tc.doc, err)
		}
	}
}

func TestPaths(t *testing.T) {
	event := map[string]any{
		"user":        map[string]any{"username": "6f1e", "extra": map[string]any{"username": []any{"bob"}}},
		"annotations": map[string]any{"ucp-audit/user": "bob", "a]b": "x"},
		"code":        int64(403),
		"objectRef":   map[string]any{"resource": "pods"},
	}
	self := map[string]any{"container-id": "3f1c", "type": "gap"}
	for _, tc := range []struct{ path, want string }{
		{"event.user.username", "6f1e"},
		{"event.user.extra.username[0]", "bob"},
		{"event.user.extra.username[1]", ""},
		{`event.annotations["ucp-audit/user"]`, "bob"},
		{`event.annotations['a]b']`, "x"},
		{"event.code", "403"},
		{"event.objectRef", `{"resource":"pods"}`},
		{"event.missing.deeper", ""},
		{"event.user[0]", ""},
		{"self.container-id", ""},
		{"event", `{"annotations":{"a]b":"x","ucp-audit/user":"bob"},"code":403,"objectRef":{"resource":"pods"},"user":{"extra":{"username":["bob"]},"username":"6f1e"}}`},
	} {
		p, err := parsePath(tc.path)
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		if got := p.value(event, nil); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.path, got, tc.want)
		}
	}
	p, _ := parsePath("self.container-id")
	if got := p.value(nil, self); got != "3f1c" {
		t.Errorf("self.container-id = %q", got)
	}
	for _, bad := range []string{"", "events.x", "event.", "event..x", "event[", "event[-1]", "event[01]", `event["x]`, "event.x y", "event[x]"} {
		if _, err := parsePath(bad); !errors.Is(err, errPath) {
			t.Errorf("%q: %v, want errPath", bad, err)
		}
	}
}
func TestParseDocument(t *testing.T) {
	node := `{"logLevel": "INFO", "alerts": ` + issueExample + `}`
	for _, doc := range []string{node, issueExample} {
		c, err := Env{}.ParseDocument([]byte(doc))
		if err != nil || len(c.Rules) != 1 {
			t.Errorf("%.40s: %+v, %v", doc, c, err)
		}
	}
	if _, err := (Env{}).ParseDocument([]byte(`{"logLevel": "INFO"}`)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("a node document without alerts: %v, want an unknown key", err)
	}
}

// docs/alerting.md names every key of the section and every built-in.
func TestDocsListEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/alerting.md")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	keys = append(keys, topKeys...)
	keys = append(keys, outputKeys...)
	keys = append(keys, ruleKeys...)
	keys = append(keys, builtinKeys...)
	for _, b := range BuiltinKinds {
		keys = append(keys, string(b.Kind), b.Name)
		keys = append(keys, b.Types...)
	}
	for _, k := range keys {
		if !strings.Contains(string(doc), "`"+k+"`") && !strings.Contains(string(doc), "`alerts."+k) {
			t.Errorf("docs/alerting.md does not name `%s`", k)
		}
	}
}
