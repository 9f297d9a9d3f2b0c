package output

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/alert"
	"github.com/ucp-audit/ucp-audit/review"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	fired   = time.Date(2024, 3, 2, 10, 4, 6, 250000000, time.UTC)
	evTime  = time.Date(2024, 3, 2, 10, 4, 5, 123456000, time.UTC)
	selfTim = time.Date(2024, 3, 2, 9, 59, 0, 0, time.UTC)
)

// alerts are one of each shape: a rule on an event, a counted and grouped
// rule, a built-in on a gap record, a destination that stays down, and a
// rule on a self record with characters Slack and JSON must escape.
var alerts = map[string]alert.Alert{
	"exec": {Rule: "exec-into-pod", Output: "am", Severity: alert.Warning, FiredAt: fired, Count: 1,
		Record: alert.Record{Kind: alert.KindEvent, Time: evTime, AuditID: "0b7c1a52-4f0e-4c0a-9f3e-6a1d2b3c4d5e", Stage: "ResponseComplete",
			User: "bob", Verb: "create", RequestURI: "/api/v1/namespaces/default/pods/web-1/exec?command=sh&stdin=true", SourceIP: "10.0.0.7",
			Code: 101, ObjectRef: review.ObjectRef{Namespace: "default", Resource: "pods", Subresource: "exec", Name: "web-1", APIVersion: "v1"},
			Host: "mgr-1", ContainerID: "3f1c9a7b", ContainerName: "ucp-controller"}},
	"burst": {Rule: "denied-burst", Output: "ops", Severity: alert.Critical, FiredAt: fired, Count: 12, Suppressed: 3, Group: []string{"mallory"},
		Record: alert.Record{Kind: alert.KindEvent, Time: evTime, AuditID: "7559d301-fa6b-4ad6-901c-b587fab75277", Stage: "ResponseComplete",
			User: "mallory", Verb: "GET", RequestURI: "/v1.41/secrets", SourceIP: "203.0.113.9:51234", Code: 403,
			Host: "mgr-2", ContainerID: "9a8b7c6d", ContainerName: "ucp-controller"}},
	"gap": {Rule: "ucp-audit-gap", Builtin: alert.GapRecorded, Output: "hook", Severity: alert.Critical, FiredAt: fired, Count: 1,
		Record: alert.Record{Kind: alert.KindGap, Time: selfTim, Type: alert.GapType, Host: "mgr-1", ContainerID: "3f1c9a7b", ContainerName: "ucp-controller",
			Destination: "logstash beats://siem:5044", Lost: 120, FirstSeq: 880, LastSeq: 999, Reason: "spool full"}},
	"down": {Rule: "ucp-audit-destination-down", Builtin: alert.DestinationDown, Output: "am", Severity: alert.Critical, FiredAt: fired, Count: 1,
		DownFor: 5*time.Minute + 6*time.Second,
		Record: alert.Record{Kind: alert.KindSelf, Time: selfTim, Type: "destination-down", Host: "mgr-1", ContainerID: "3f1c9a7b",
			ContainerName: "ucp-controller", Destination: "syslog relp://siem:2514", Detail: "dial tcp 10.0.0.9:2514: connect: connection refused"}},
	"escaped": {Rule: "odd<rule>", Output: "ops", Severity: alert.Info, FiredAt: fired, Count: 1,
		Record: alert.Record{Kind: alert.KindSelf, Time: selfTim, Type: "configuration-rejected", Host: "mgr-1",
			Detail: "log-opt \"tag\": <@U123> & <!channel>\n\u2028line"}},
}

func TestFormatGolden(t *testing.T) {
	for name, a := range alerts {
		for _, typ := range []alert.OutputType{alert.Alertmanager, alert.Webhook, alert.Slack} {
			ev, err := Event(typ, a)
			if err != nil {
				t.Fatalf("%s %s: %v", name, typ, err)
			}
			if !json.Valid(ev.Line) || bytes.ContainsAny(ev.Line, "\n") || ev.AuditID != a.Record.AuditID || !ev.Time.Equal(fired) {
				t.Errorf("%s %s: %+v", name, typ, ev)
			}
			// Golden files hold the payload indented, for review.
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, ev.Line, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := filepath.Join("testdata", name+"."+string(typ)+".json")
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run TestFormatGolden -update writes it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("%s differs from the golden file:\n%s", golden, pretty.Bytes())
			}
		}
	}
	if _, err := Event("pagerduty", alerts["exec"]); err == nil {
		t.Error("an unknown type: no error")
	}
}

func TestWebhookBodyDecodes(t *testing.T) {
	line, err := FormatWebhook(alerts["burst"])
	if err != nil {
		t.Fatal(err)
	}
	var b WebhookBody
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&b); err != nil {
		t.Fatal(err)
	}
	if b.Version != WebhookVersion || len(b.ID) != 32 || b.Event == nil || b.Self != nil || b.Event.Code != 403 || b.Count != 12 || b.Suppressed != 3 {
		t.Errorf("%+v", b)
	}
	if ID(alerts["burst"]) != b.ID || ID(alerts["exec"]) == b.ID {
		t.Error("IDs are not stable, or not distinct")
	}
}

// Alerts carry no payload of the event and nothing the trail does not
// hold: an event rich in secrets, through the Engine, to every output.
func TestNoSecretInAlerts(t *testing.T) {
	cfg, err := alert.Parse([]byte(`{"outputs": [
	    {"name": "am", "type": "alertmanager", "url": "http://127.0.0.1:9093"},
	    {"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/h?token=URLTOKEN", "secret_file": "/var/lib/ucp-audit/hook.key"},
	    {"name": "ops", "type": "slack", "url": "https://hooks.slack.com/services/T0/B0/SLACKTOKEN"}],
	  "rules": [{"name": "secrets", "when": "event != null && event.objectRef.resource == 'secrets'", "severity": "critical", "outputs": ["am", "hook", "ops"],
	             "group_by": ["event.user.username"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := alert.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	line := `{"annotations":{"ucp-audit/host":"mgr-1","ucp-audit/redacted":"requestObject.data.password"},"apiVersion":"audit.k8s.io/v1","auditID":"a1",` +
		`"kind":"Event","level":"Request","objectRef":{"name":"db","namespace":"prod","resource":"secrets"},` +
		`"requestObject":{"data":{"password":"<redacted>","note":"PAYLOADVALUE"},"kind":"Secret"},"responseObject":{"token":"RESPONSEVALUE"},` +
		`"requestReceivedTimestamp":"2024-03-02T10:04:05Z","requestURI":"/api/v1/namespaces/prod/secrets","sourceIPs":["10.0.0.7"],"stage":"ResponseComplete",` +
		`"user":{"extra":{"licenseKey":["sha256:LICENSEHASH"]},"username":"6f1e"},"verb":"create"}`
	got := alert.NewEngine(rs, alert.Options{}).Observe([]byte(line), fired)
	if len(got) != 3 {
		t.Fatalf("%d alerts", len(got))
	}
	for _, a := range got {
		typ := map[string]alert.OutputType{"am": alert.Alertmanager, "hook": alert.Webhook, "ops": alert.Slack}[a.Output]
		ev, err := Event(typ, a)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"PAYLOADVALUE", "RESPONSEVALUE", "LICENSEHASH", "licenseKey", "requestObject", "redacted", "URLTOKEN", "SLACKTOKEN", "hook.key"} {
			if strings.Contains(string(ev.Line), secret) {
				t.Errorf("%s payload holds %q: %s", a.Output, secret, ev.Line)
			}
		}
	}
}

func TestSignature(t *testing.T) {
	// RFC 4231-style check against a well-known vector.
	if got := Sign([]byte("key"), []byte("The quick brown fox jumps over the lazy dog")); got != "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8" {
		t.Errorf("Sign = %s", got)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"version":1}`)
	sig := Sign(secret, body)
	if !Verify(secret, body, sig) || !Verify(secret, body, " "+sig+"\r\n") {
		t.Error("a good signature does not verify")
	}
	for _, bad := range []struct {
		secret, body []byte
		sig          string
	}{
		{secret, []byte(`{"version":2}`), sig},
		{[]byte("another secret of 32 bytes......"), body, sig},
		{secret, body, strings.TrimPrefix(sig, "sha256=")},
		{secret, body, strings.ToUpper(sig)},
		{secret, body, ""},
	} {
		if Verify(bad.secret, bad.body, bad.sig) {
			t.Errorf("%q verifies %s", bad.sig, bad.body)
		}
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("  0123456789abcdef0123\n"), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("SHORTSECRET\n"), 0o600)
	if s, err := ReadSecret(good); err != nil || string(s) != "0123456789abcdef0123" {
		t.Errorf("%q, %v", s, err)
	}
	for _, p := range []string{short, filepath.Join(dir, "missing")} {
		_, err := ReadSecret(p)
		if err == nil || !strings.Contains(err.Error(), "bad webhook secret") || strings.Contains(err.Error(), "SHORTSECRET") {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// The shell check docs/alerting.md shows agrees with Sign.
func TestSignatureMatchesOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	key, body := filepath.Join(dir, "alert-webhook.key"), filepath.Join(dir, "body.json")
	os.WriteFile(key, append(testSecret, '\n'), 0o600)
	line, _ := FormatWebhook(alerts["gap"])
	os.WriteFile(body, line, 0o600)
	out, err := exec.Command("sh", "-c", `sig=$(openssl dgst -sha256 -hmac "$(cat "$1")" -hex < "$2" | sed 's/^.* //'); echo "sha256=$sig"`, "sh", key, body).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != Sign(testSecret, line) {
		t.Errorf("openssl: %s, Sign: %s", got, Sign(testSecret, line))
	}
}
