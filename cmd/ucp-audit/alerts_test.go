package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAlertsTest(t *testing.T) {
	dir := t.TempDir()
	trail := filepath.Join(dir, "audit.log")
	lines := `{"annotations":{"ucp-audit/host":"mgr-1","ucp-audit/user":"bob"},"auditID":"a-1","kind":"Event","level":"Metadata","objectRef":{"resource":"pods","subresource":"exec","name":"web","namespace":"default"},"requestReceivedTimestamp":"2024-03-02T10:04:05Z","requestURI":"/api/v1/namespaces/default/pods/web/exec","stage":"ResponseComplete","user":{"username":"6f1e"},"verb":"create"}
{"annotations":{"ucp-audit/host":"mgr-1"},"auditID":"a-2","kind":"docker-swarm","level":"metadata","requestReceivedTimestamp":"2024-03-02T10:04:06Z","requestURI":"/v1.41/containers/json","stage":"RequestReceived","user":{"username":"6f1e"},"verb":"GET"}
`
	if err := os.WriteFile(trail, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "alerts.json")
	os.WriteFile(config, []byte(`{"logLevel": "INFO", "alerts": {
	  "outputs": [{"name": "am", "type": "alertmanager", "url": "http://127.0.0.1:9093"}],
	  "rules": [{"name": "exec-into-pod", "when": "event != null && event.?objectRef.?subresource.orValue('') == 'exec'", "severity": "warning", "outputs": ["am"]},
	            {"name": "deletes", "when": "event != null && event.verb == 'delete'", "severity": "info", "outputs": ["am"]}]}}`), 0o600)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"outputs": [{"name": "am", "type": "alertmanager", "url": "http://127.0.0.1:9093"}],
	  "rules": [{"name": "r", "when": "event != null &&\n evnt.verb == 'x'", "severity": "info", "outputs": ["am"]}]}`), 0o600)

	for _, tc := range []struct {
		args      []string
		stdin     string
		code      int
		out, errs string
	}{
		{[]string{"test", config, trail}, "", 0, "exec-into-pod: 1 alert\n  a-1\ndid not fire: deletes\n2 records read\n", ""},
		{[]string{"test", "-", dir}, `{"outputs": [{"name": "am", "type": "alertmanager", "url": "http://127.0.0.1:9093"}], "rules": []}`, 0, "2 records read\n", ""},
		{[]string{"test", bad, trail}, "", 2, "", `"alerts.rules[0].when": invalid rule: rule "r": 2:2: undeclared reference to 'evnt'`},
		{[]string{"test", config, filepath.Join(dir, "none")}, "", 1, "", "no such file"},
		{[]string{"test", filepath.Join(dir, "none.json")}, "", 2, "", "no such file"},
		{[]string{"test"}, "", 2, "", "no CONFIG"},
		{[]string{"test", "-x"}, "", 2, "", "flag provided but not defined: -x"},
		{[]string{}, "", 2, "", "usage: ucp-audit alerts test"},
		{[]string{"run"}, "", 2, "", "usage: ucp-audit alerts test"},
		{[]string{"-h"}, "", 0, "usage: ucp-audit alerts test", ""},
		{[]string{"test", "-h"}, "", 0, "usage: ucp-audit alerts test", ""},
	} {
		var out, errs strings.Builder
		env := hostEnv{stdin: strings.NewReader(tc.stdin), stdout: &out, stderr: &errs}
		code := runAlerts(t.Context(), tc.args, env)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errs.String(), tc.errs) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", tc.args, code, out.String(), errs.String())
		}
	}
}
