package logopt

import (
	"errors"
	"strings"
	"testing"
)

func TestMaskAddress(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@logstash.example.com:8443/in?token=abc&x=1": "https://xxxxx@logstash.example.com:8443/in?token=xxxxx&x=xxxxx",
		"https://apikey@h/p":        "https://xxxxx@h/p",
		"http://h:8080/path":        "http://h:8080/path",
		"beats://h:5044":            "beats://h:5044",
		"relp://127.0.0.1":          "relp://127.0.0.1",
		"a b":                       "a b",
		"tcp://us er:p w@h:1":       "tcp://xxxxx@h:1", // not a URL: masked as text
		"unix:///run/x.sock?k=v":    "unix:///run/x.sock?k=xxxxx",
		"https://u:%70w@h":          "https://xxxxx@h",
		"weird://u:pw@h:1/%zz?q=s3": "weird://xxxxx@h:1/%zz?q=xxxxx",
	} {
		if got := MaskAddress(in); got != want {
			t.Errorf("MaskAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

// An address's credentials never reach an option error, whoever repeats
// the value in the reason.
func TestOptionErrorMasksAddress(t *testing.T) {
	addr := `https://alice:s3cr"et@h:0/p?token=t0k3n`
	err := Invalid("logstash-address", addr, "a URL", errors.New(`logstash address "`+strings.ReplaceAll(addr, `"`, `\"`)+`": invalid port "0"; user alice, token t0k3n`))
	msg := err.Error()
	for _, secret := range []string{"alice", "s3cr", "t0k3n"} {
		if strings.Contains(msg, secret) {
			t.Errorf("%q in %s", secret, msg)
		}
	}
	if !strings.Contains(msg, `ucp-audit: log-opt "logstash-address": invalid value "https://xxxxx@h:0/p?token=xxxxx"`) {
		t.Errorf("got %s", msg)
	}
	// Other keys are shown as given.
	if msg := Invalid("x-count", "u:pw@h", "", nil).Error(); !strings.Contains(msg, "u:pw@h") {
		t.Errorf("got %s", msg)
	}
	// The TLS cross-check names the address masked too.
	err = RequireAddress("logstash", map[string]string{"logstash-address": "http://u:pw@h", "logstash-tls-ca-cert": "/c"}, true, false)
	if err == nil || strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "u:") {
		t.Errorf("got %v", err)
	}
}

func FuzzMaskAddress(f *testing.F) {
	f.Add("https://user:pw@h:1/p?token=abc")
	f.Add("tcp://a@b@c?d=e&f")
	f.Fuzz(func(t *testing.T, addr string) {
		msg := Invalid("syslog-address", addr, "", errors.New("bad "+addr)).Error()
		for _, sec := range secrets(addr) {
			if len(sec) >= 4 && strings.Contains(msg, sec) && !strings.Contains(Masked, sec) && !strings.Contains(`ucp-audit: log-opt "syslog-address": invalid value bad `, sec) {
				t.Fatalf("secret %q of %q in %s", sec, addr, msg)
			}
		}
	})
}
