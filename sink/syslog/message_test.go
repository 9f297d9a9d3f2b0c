package syslog

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got: %q\nwant: %q", path, got, want)
	}
}

var eventTime = time.Date(2024, 3, 5, 8, 8, 9, 123456789, time.FixedZone("CET", 3600)) // 07:08:09.123456789Z

func testEvent(seq uint64) sink.Event {
	return sink.Event{
		Line:    []byte(fmt.Sprintf(`{"annotations":{"ucp-audit/seq":"%d"},"auditID":"0b9c6f1e-2f54-4e4e-9d2a-7f3c1f1e2d3c","verb":"get"}`, seq)),
		AuditID: "0b9c6f1e-2f54-4e4e-9d2a-7f3c1f1e2d3c",
		Seq:     seq,
		Time:    eventTime,
	}
}

func TestAppendMessageGolden(t *testing.T) {
	base := Options{Facility: DefaultFacility, Hostname: "node-1.example.com", AppName: "ucp-audit/ucp-controller"}
	with := func(f func(*Options)) Options { o := base; f(&o); return o }
	long := strings.Repeat("h", 300)
	tests := []struct {
		name string
		o    Options
		ev   sink.Event
	}{
		{"rfc5424", base, testEvent(42)},
		{"rfc5424micro", with(func(o *Options) { o.Format = FormatRFC5424Micro }), testEvent(42)},
		{"rfc3164", with(func(o *Options) { o.Format = FormatRFC3164 }), testEvent(42)},
		{"rfc3164-day15-local7", with(func(o *Options) { o.Format = FormatRFC3164; o.Facility = 23 }),
			sink.Event{Line: []byte(`{}`), Time: time.Date(2024, 12, 15, 23, 59, 59, 0, time.UTC)}},
		{"rfc3164-tag-sanitised", with(func(o *Options) {
			o.Format = FormatRFC3164
			o.AppName = "my:tag[1] with spaces and a very long suffix"
			o.Hostname = "host name"
		}), testEvent(1)},
		{"sd-escaping", base, sink.Event{Line: []byte(`{"x":"\"]\\"}`), AuditID: `a"b\c]d`, Seq: 7, Time: eventTime}},
		{"sd-invalid-utf8", base, sink.Event{Line: []byte(`{}`), AuditID: "é\xff", Seq: 1, Time: eventTime}},
		{"sd-only-seq", base, sink.Event{Line: []byte(`{}`), Seq: 18446744073709551615, Time: eventTime}},
		{"sanitised-header", with(func(o *Options) {
			o.Hostname = "bad host\tÄ" + long
			o.AppName = "ucp audit/tag—" + strings.Repeat("a", 60)
		}), testEvent(3)},
		{"nil-fields", Options{Facility: 0}, sink.Event{Line: []byte(`{}`)}},
		{"nil-fields-rfc3164", Options{Format: FormatRFC3164, Facility: 1}, sink.Event{Line: []byte(`{}`), Time: eventTime}},
		{"msg-bytes-kept", base, sink.Event{Line: []byte("{\"s\":\"\u00e9\u2028 \\n tab\t\"}"), AuditID: "x", Seq: 9, Time: eventTime}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix|")
			got := AppendMessage(append([]byte(nil), prefix...), tt.o, tt.ev)
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("AppendMessage did not append to dst: %q", got)
			}
			got = got[len(prefix):]
			if !bytes.HasSuffix(got, tt.ev.Line) {
				t.Errorf("MSG is not ev.Line byte for byte: %q", got)
			}
			if tt.o.Format != FormatRFC3164 {
				checkRFC5424Header(t, got, tt.ev)
			}
			golden(t, "message/"+tt.name+".golden", got)
		})
	}
}

// rfc5424Header matches the header AppendMessage writes, with the limits
// of RFC 5424 §6.
var rfc5424Header = regexp.MustCompile(`^<([0-9]{1,3})>1 (-|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z) ([!-~]{1,255}) ([!-~]{1,48}) ([!-~]{1,128}) ([!-~]{1,32}) (-|\[[^ \]]+( [^ =\]"]+="(?:[^"\\\]]|\\["\\\]])*")*\]) `)

func checkRFC5424Header(t *testing.T, msg []byte, ev sink.Event) {
	t.Helper()
	m := rfc5424Header.FindSubmatch(msg)
	if m == nil {
		t.Fatalf("not a valid RFC 5424 header: %q", msg)
	}
	if rest := msg[len(m[0]):]; !bytes.Equal(rest, ev.Line) {
		t.Errorf("MSG = %q, want %q", rest, ev.Line)
	}
	if !ev.Time.IsZero() {
		ts, err := time.Parse(time.RFC3339Nano, string(m[2]))
		if err != nil {
			t.Fatalf("timestamp %q: %v", m[2], err)
		}
		if d := ev.Time.Sub(ts); d < 0 || d >= time.Second {
			t.Errorf("timestamp %s is not the event's time %s", ts, ev.Time)
		}
	}
}

func TestHeaderSanitising(t *testing.T) {
	o := Options{Hostname: strings.Repeat("é", 400), AppName: strings.Repeat("x y", 40)}
	msg := AppendMessage(nil, o, sink.Event{Line: []byte("{}")})
	f := strings.Fields(string(msg))
	if host := f[2]; len(host) != 255 || strings.Trim(host, "_") != "" {
		t.Errorf("hostname %q (%d bytes), want 255 underscores", host, len(host))
	}
	if app := f[3]; len(app) != 48 || strings.Contains(app, " ") {
		t.Errorf("app-name %q (%d bytes), want 48 bytes", app, len(app))
	}
}

func TestParseGolden(t *testing.T) {
	var out bytes.Buffer
	for _, s := range []string{
		"tcp://127.0.0.1:10514", "udp://host", "udp://HOST.example:514", "tcp://host",
		"tcp+tls://logs.example.com", "tcp+tls://logs.example.com:10514", "relp://host:2514", "relp://10.0.0.1",
		"TCP://[::1]:514", "udp://[fe80::1%eth0]", "unix:///dev/log", "unixgram:///run/systemd/journal/syslog",
		"unix:///var/run//x/../syslog.sock",
		// errors
		"", "127.0.0.1:514", "http://host:80", "tls://host", "udp://", "udp://:514", "tcp://host:",
		"tcp://host:0", "tcp://host:65536", "tcp://host:port", "tcp://host:+1", "tcp://::1", "tcp://[::1",
		"tcp://[host]:1", "tcp://[::1]x", "tcp://host/path", "tcp://user@host", "tcp://host?x=1",
		"tcp://ho st", "unix://dev/log", "unix://", "unixgram:relative", "unixgram://relative/sock", "unix:///a?b",
	} {
		a, err := ParseAddress(s)
		if err != nil {
			fmt.Fprintf(&out, "ParseAddress(%q): error: %v\n", s, err)
		} else {
			fmt.Fprintf(&out, "ParseAddress(%q) = %+v (%s)\n", s, a, a)
		}
	}
	for _, s := range []string{"rfc5424", "rfc5424micro", "rfc3164", "RFC5424", "", "rfc5425", "json"} {
		f, err := ParseFormat(s)
		if err != nil {
			fmt.Fprintf(&out, "ParseFormat(%q): error: %v\n", s, err)
		} else {
			fmt.Fprintf(&out, "ParseFormat(%q) = %d (%s)\n", s, int(f), f)
		}
	}
	for _, s := range []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
		"authpriv", "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
		"LOCAL3", "0", "12", "23", "07",
		"", "24", "-1", "+3", "100", "local8", "security", "daemon ", "3.0"} {
		n, err := ParseFacility(s)
		if err != nil {
			fmt.Fprintf(&out, "ParseFacility(%q): error: %v\n", s, err)
		} else {
			fmt.Fprintf(&out, "ParseFacility(%q) = %d\n", s, n)
		}
	}
	golden(t, "parse.golden", out.Bytes())
}

func TestParseErrorsExplain(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"http://host", "unknown scheme \"http\" (want one of udp, tcp, tcp+tls, relp, unix, unixgram)"},
		{"udp://", "missing host"},
		{"udp://:514", "missing host"},
		{"tcp://host:99999", "bad port \"99999\""},
		{"unix://dev/log", "not absolute"},
		{"host:514", "want SCHEME://"},
	} {
		_, err := ParseAddress(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseAddress(%q) = %v, want error containing %q", tt.in, err, tt.want)
		}
	}
	if _, err := ParseFormat("x"); err == nil || !strings.Contains(err.Error(), "rfc5424, rfc5424micro, rfc3164") {
		t.Errorf("ParseFormat error %v does not list the formats", err)
	}
	if _, err := ParseFacility("x"); err == nil || !strings.Contains(err.Error(), "local7") || !strings.Contains(err.Error(), "0 to 23") {
		t.Errorf("ParseFacility error %v does not list the facilities", err)
	}
	a, err := ParseAddress("udp://host")
	if err != nil || a != (Address{"udp", "udp", "host:514"}) {
		t.Errorf("ParseAddress(udp://host) = %+v, %v", a, err)
	}
}

func BenchmarkAppendMessage(b *testing.B) {
	ev := testEvent(1)
	ev.Line = append(ev.Line[:len(ev.Line)-1], fmt.Sprintf(`,"pad":"%s"}`, strings.Repeat("x", 1024-len(ev.Line)-10))...)
	o := Options{Facility: 3, Hostname: "node-1.example.com", AppName: "ucp-audit"}
	for _, f := range []Format{FormatRFC5424, FormatRFC5424Micro, FormatRFC3164} {
		o.Format = f
		b.Run(f.String(), func(b *testing.B) {
			b.SetBytes(int64(len(ev.Line)))
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = AppendMessage(buf[:0], o, ev)
			}
		})
	}
}
