package logopt

import (
	"errors"
	"slices"
	"strconv"
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
		"https://h/p#?token=t0k3n":  "https://h/p#xxxxx", // a fragment is no query, but masked all the same
		"https://h/p?a=1#frag":      "https://h/p?a=xxxxx#xxxxx",
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

// FuzzMaskAddress builds addresses whose user, password, query value and
// fragment each end in a marker ("Zq9"): neither the mask's letters, nor
// escapes, nor quoting can spell a secret holding it, so finding one in
// the masked address or an option error is a leak, not a coincidence. A
// part whose bytes change the address's shape (an "@" in the password,
// say) is no secret of it, and not checked.
func FuzzMaskAddress(f *testing.F) {
	f.Add("https", "user", "pw", "h:1", "/p", "token", "abc", "")
	f.Add("tcp", "a@b", "", "c", "", "d", "e&f", "")
	f.Add("", "0000", "", "\x0000", "", "", "", "")
	f.Add("A000", "", "", "0", "", "", "", "a000")
	f.Add("weird", "u", "p\"w", "h", "/%zz", "q", "s 3", "?x=1")
	f.Fuzz(func(t *testing.T, scheme, user, pw, host, path, key, value, frag string) {
		const mark = "Zq9"
		var addr strings.Builder
		if scheme != "" {
			addr.WriteString(scheme + "://")
		}
		var planted []string
		plant := func(s string) string {
			planted = append(planted, s+mark)
			return s + mark
		}
		addr.WriteString(plant(user))
		if pw != "" {
			addr.WriteString(":" + plant(pw))
		}
		addr.WriteString("@" + host + path)
		if key != "" {
			addr.WriteString("?" + key + "=" + plant(value))
		}
		if frag != "" {
			addr.WriteString("#" + plant(frag))
		}
		a := addr.String()
		if strings.Contains(strings.ToLower(publicParts(a)), strings.ToLower(mark)) {
			return // a public part holds the marker itself
		}
		masked := MaskAddress(a)
		msg := Invalid("syslog-address", a, "", errors.New("bad "+a)).Error()
		for _, sec := range planted {
			if !slices.Contains(secrets(a), sec) {
				continue // the part changed the address's shape: not a secret of it
			}
			q := strconv.Quote(sec)
			for _, form := range []string{sec, q[1 : len(q)-1]} {
				if strings.Contains(masked, form) {
					t.Fatalf("secret %q of %q in the masked %q", sec, a, masked)
				}
				if strings.Contains(msg, form) {
					t.Fatalf("secret %q of %q in %s", sec, a, msg)
				}
			}
		}
	})
}

// probe stands for a secret in publicParts.
const probe = "\uFFFD"

// publicParts returns the address with what secrets finds replaced by
// probe, read the same way: the scheme, the host, the path and the
// query's keys stay.
func publicParts(s string) string {
	var b strings.Builder
	rest := s
	if i := strings.Index(rest, "://"); i >= 0 {
		b.WriteString(rest[:i+3])
		rest = rest[i+3:]
	}
	hostEnd := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		hostEnd = i
	}
	host := rest[:hostEnd]
	if i := strings.LastIndex(host, "@"); i >= 0 {
		b.WriteString(probe)
		host = host[i:]
	}
	b.WriteString(host)
	tail, _, hasFragment := strings.Cut(rest[hostEnd:], "#")
	path, q, hasQuery := strings.Cut(tail, "?")
	b.WriteString(path)
	if hasQuery {
		b.WriteByte('?')
		for i, kv := range strings.Split(q, "&") {
			if i > 0 {
				b.WriteByte('&')
			}
			k, _, ok := strings.Cut(kv, "=")
			b.WriteString(k)
			if ok {
				b.WriteString("=" + probe)
			}
		}
	}
	if hasFragment {
		b.WriteString("#" + probe)
	}
	return b.String()
}
