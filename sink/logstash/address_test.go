package logstash

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseAddress(t *testing.T) {
	good := []struct {
		in   string
		want Address
		str  string
	}{
		{"beats://127.0.0.1:5044", Address{Scheme: "beats", Addr: "127.0.0.1:5044"}, "beats://127.0.0.1:5044"},
		{"beats+tls://logstash.example:5044", Address{Scheme: "beats+tls", Addr: "logstash.example:5044"}, "beats+tls://logstash.example:5044"},
		{"beats://[::1]:5044", Address{Scheme: "beats", Addr: "[::1]:5044"}, "beats://[::1]:5044"},
		{"BEATS://h:1", Address{Scheme: "beats", Addr: "h:1"}, "beats://h:1"},
		{"tcp://host:5000", Address{Scheme: "tcp", Addr: "host:5000"}, "tcp://host:5000"},
		{"tcp://host:5000/", Address{Scheme: "tcp", Addr: "host:5000"}, "tcp://host:5000"},
		{"tls://host:6514", Address{Scheme: "tls", Addr: "host:6514"}, "tls://host:6514"},
		{"http://host:8080/path", Address{Scheme: "http", Addr: "host:8080", URL: "http://host:8080/path"}, "http://host:8080/path"},
		{"http://host", Address{Scheme: "http", Addr: "host", URL: "http://host/"}, "http://host/"},
		{"https://host/a/b?x=1", Address{Scheme: "https", Addr: "host", URL: "https://host/a/b?x=1"}, "https://host/a/b?x=xxxxx"},
		{"https://u:secret@host:8443/", Address{Scheme: "https", Addr: "host:8443", URL: "https://u:secret@host:8443/"}, "https://xxxxx@host:8443/"},
	}
	for _, tc := range good {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseAddress(tc.in)
			if err != nil {
				t.Fatalf("ParseAddress(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("ParseAddress(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if s := got.String(); s != tc.str {
				t.Fatalf("String() = %q, want %q", s, tc.str)
			}
		})
	}

	bad := []struct{ in, wantErr string }{
		{"", "empty"},
		{" beats://h:1", "spaces"},
		{"127.0.0.1:5044", "want scheme://host:port with scheme beats, beats+tls, http, https, tcp or tls"},
		{"udp://h:514", `unknown scheme "udp": want beats, beats+tls, http, https, tcp or tls`},
		{"ftp://h/", "unknown scheme"},
		{"://h:1", "missing protocol scheme"},
		{"beats://127.0.0.1", "explicit port (e.g. beats://host:5044)"},
		{"tcp://host", "explicit port (e.g. tcp://host:5000)"},
		{"tls://host:", "invalid port"},
		{"beats://:5044", "missing host"},
		{"beats://h:0", `invalid port "0"`},
		{"beats://h:70000", `invalid port "70000"`},
		{"beats://h:http", `invalid port`},
		{"tcp://h:5000/path", "takes no path"},
		{"tcp://h:5000?x=1", "takes no path, query"},
		{"beats://u:p@h:5044", "no user"},
		{"http://", "missing host"},
		{"http:///path", "missing host"},
		{"https://h:99999/", "invalid port"},
		{"http://h/#frag", "no fragment"},
		{"http://h:80x/", "invalid port"},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.in, func(t *testing.T) {
			_, err := ParseAddress(tc.in)
			if err == nil {
				t.Fatalf("ParseAddress(%q): no error", tc.in)
			}
			if !errors.Is(err, ErrInvalidAddress) {
				t.Errorf("error %v does not wrap ErrInvalidAddress", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseAddress(%q) error %q, want it to contain %q", tc.in, err, tc.wantErr)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	a, _ := ParseAddress("beats://127.0.0.1:1") // nothing listens: New never dials
	f, err := New(Options{Address: a})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.Close()
	for _, tc := range []struct {
		name string
		o    Options
		want error
	}{
		{"zero address", Options{}, ErrInvalidAddress},
		{"hand-made bad address", Options{Address: Address{Scheme: "beats", Addr: "nohost"}}, ErrInvalidAddress},
		{"negative timeout", Options{Address: a, Timeout: -time.Second}, ErrInvalidOptions},
		{"compression 10", Options{Address: a, CompressionLevel: 10}, ErrInvalidOptions},
		{"compression -2", Options{Address: a, CompressionLevel: -2}, ErrInvalidOptions},
	} {
		if _, err := New(tc.o); !errors.Is(err, tc.want) {
			t.Errorf("%s: New error %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, s := range []string{"beats://h:1", "beats+tls://h:1", "http://h/", "https://h/", "tcp://h:1", "tls://h:1"} {
		a, _ := ParseAddress(s)
		f, err := New(Options{Address: a, CompressionLevel: NoCompression})
		if err != nil {
			t.Fatalf("New(%s): %v", s, err)
		}
		ack, ok := f.(interface{ Acknowledged() bool })
		if !ok {
			t.Fatalf("%s: Forwarder does not implement sink.Acknowledged", s)
		}
		want := !strings.HasPrefix(s, "tcp") && !strings.HasPrefix(s, "tls")
		if ack.Acknowledged() != want {
			t.Errorf("%s: Acknowledged() = %v, want %v", s, ack.Acknowledged(), want)
		}
		f.Close()
	}
}
