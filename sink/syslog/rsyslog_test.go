package syslog

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// newRsyslog prepares (but does not start) a real rsyslog receiver
// (peers.Rsyslog: imtcp plain and with gtls, imudp and imrelp) in a fresh
// t.TempDir; the test is skipped where rsyslogd is not installed, outside
// CI.
func newRsyslog(t *testing.T) *peers.Rsyslog {
	t.Helper()
	peers.SkipWithoutRsyslog(t)
	return peers.NewRsyslog(t, t.TempDir())
}

// waitRaw waits until rsyslog has written n messages (it writes
// asynchronously) and returns each one's %rawmsg% and its parsed RFC 5424
// header fields, "|"-separated.
func waitRaw(t *testing.T, r *peers.Rsyslog, n int) (raw, parsed []string) {
	t.Helper()
	msgs, ok := r.WaitFor(15*time.Second, func(m []peers.SyslogMessage) bool { return len(m) >= n })
	if !ok {
		t.Fatalf("rsyslog wrote %d messages, want %d\n%s", len(msgs), n, r.Diagnostics())
	}
	for _, m := range msgs {
		raw = append(raw, m.Raw)
		parsed = append(parsed, strings.Join([]string{m.PRI, m.Time, m.Host, m.AppName, m.ProcID, m.MsgID, m.SD}, "|"))
	}
	return raw, parsed
}

// e2eBatch is a batch with ordinary events, one with every character JSON
// allows unescaped and SD-escaped auditID, and a 60 KB event.
func e2eBatch(first uint64, size60k bool) []sink.Event {
	b := batchOf(first, 5)
	odd := testEvent(first + 5)
	odd.AuditID = `id"with\escapes]`
	odd.Line = []byte(`{"auditID":"id\"with\\escapes]","s":"é ü 日本 \u2028 <>&'[]{}"}`)
	b = append(b, odd)
	if size60k {
		big := testEvent(first + 6)
		big.Line = []byte(`{"auditID":"big","pad":"` + strings.Repeat("0123456789", 6000) + `"}`)
		b = append(b, big)
	}
	return append(b, testEvent(first+uint64(len(b))))
}

var parsedLine = regexp.MustCompile(`^30\|([^|]+)\|node-1\|ucp-audit\|-\|audit\|\[ucp-audit@32473 auditID="((?:[^"\\]|\\.)*)" seq="([0-9]+)"\]$`)

// checkReceived checks that rsyslog got exactly the messages of batch, MSG
// byte for byte, and parsed their RFC 5424 headers as sent.
func checkReceived(t *testing.T, o Options, raw, parsed []string, batch []sink.Event, ordered bool) {
	t.Helper()
	want := make([]string, len(batch))
	for i, ev := range batch {
		want[i] = string(AppendMessage(nil, o, ev))
	}
	if !ordered {
		raw, want = slices.Sorted(slices.Values(raw)), slices.Sorted(slices.Values(want))
		parsed = slices.Sorted(slices.Values(parsed))
	}
	if len(raw) != len(want) {
		t.Fatalf("rsyslog received %d messages, want %d", len(raw), len(want))
	}
	for i := range raw {
		if raw[i] != want[i] {
			t.Errorf("message %d (%d bytes) differs from what was sent (%d bytes):\n got %.300q\nwant %.300q", i, len(raw[i]), len(want[i]), raw[i], want[i])
		}
	}
	bySeq := map[string]sink.Event{}
	for _, ev := range batch {
		bySeq[strconv.FormatUint(ev.Seq, 10)] = ev
	}
	for _, p := range parsed {
		if o.Format == FormatRFC3164 {
			break // no structured data to check
		}
		m := parsedLine.FindStringSubmatch(p)
		if m == nil {
			t.Errorf("rsyslog parsed the header as %q", p)
			continue
		}
		ev, ok := bySeq[m[3]]
		if !ok {
			t.Errorf("unknown seq in %q", p)
			continue
		}
		prec := time.Second
		if o.Format == FormatRFC5424Micro {
			prec = time.Microsecond
		}
		if ts, err := time.Parse(time.RFC3339Nano, m[1]); err != nil || !ts.Equal(ev.Time.Truncate(prec)) {
			t.Errorf("rsyslog's timereported %q, want the event's time %s (%v)", m[1], ev.Time, err)
		}
		if got := strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\]`, `]`).Replace(m[2]); got != ev.AuditID {
			t.Errorf("rsyslog's auditID %q, want %q", got, ev.AuditID)
		}
	}
}

func TestRsyslog(t *testing.T) {
	r := newRsyslog(t)
	r.Start()
	total := 0
	send := func(t *testing.T, addr string, batch []sink.Event, mod ...func(*Options)) {
		t.Helper()
		o := defaultOpts()
		for _, m := range mod {
			m(&o)
		}
		f := mustNew(t, addr, mod...)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := f.Send(ctx, batch); err != nil {
			t.Fatalf("Send: %v\n%s", err, r.Diagnostics())
		}
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		raw, parsed := waitRaw(t, r, total+len(batch))
		checkReceived(t, o, raw[total:], parsed[total:], batch, !strings.HasPrefix(addr, "udp"))
		total += len(batch)
	}
	t.Run("tcp", func(t *testing.T) {
		send(t, fmt.Sprintf("tcp://127.0.0.1:%d", r.TCPPort), e2eBatch(1, true))
	})
	t.Run("tcp+tls", func(t *testing.T) {
		send(t, fmt.Sprintf("tcp+tls://127.0.0.1:%d", r.TLSPort), e2eBatch(101, true),
			func(o *Options) { o.TLS = r.PKI.ClientTLS() })
	})
	t.Run("relp", func(t *testing.T) {
		send(t, fmt.Sprintf("relp://127.0.0.1:%d", r.RELPPort), e2eBatch(201, true))
	})
	t.Run("relp-window", func(t *testing.T) {
		send(t, fmt.Sprintf("relp://127.0.0.1:%d", r.RELPPort), batchOf(301, 500))
	})
	t.Run("tcp-rfc5424micro", func(t *testing.T) {
		send(t, fmt.Sprintf("tcp://127.0.0.1:%d", r.TCPPort), e2eBatch(401, false),
			func(o *Options) { o.Format = FormatRFC5424Micro })
	})
	t.Run("relp-rfc3164", func(t *testing.T) {
		send(t, fmt.Sprintf("relp://127.0.0.1:%d", r.RELPPort), e2eBatch(501, true),
			func(o *Options) { o.Format = FormatRFC3164 })
	})
	t.Run("udp", func(t *testing.T) {
		send(t, fmt.Sprintf("udp://127.0.0.1:%d", r.UDPPort), e2eBatch(1001, true))
	})
}

// RELP with rsyslog down: Send fails without hanging past ctx; once
// rsyslog is up again, the next Send on the same Forwarder delivers.
func TestRsyslogRELPRestart(t *testing.T) {
	r := newRsyslog(t)
	f := mustNew(t, fmt.Sprintf("relp://127.0.0.1:%d", r.RELPPort))
	o := defaultOpts()

	b1 := batchOf(1, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	start := time.Now()
	err := f.Send(ctx, b1)
	cancel()
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("Send with rsyslog not running = %v after %v, want a prompt error", err, time.Since(start))
	}
	t.Logf("rsyslog down: %v", err)

	r.Start()
	if err := f.Send(context.Background(), b1); err != nil {
		t.Fatalf("Send after rsyslog started: %v\n%s", err, r.Diagnostics())
	}
	raw, parsed := waitRaw(t, r, 3)
	checkReceived(t, o, raw, parsed, b1, true)

	// rsyslog stops while the Forwarder holds an open session.
	r.Kill()
	b2 := batchOf(4, 3)
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	start = time.Now()
	err = f.Send(ctx, b2)
	cancel()
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("Send with rsyslog stopped = %v after %v, want a prompt error", err, time.Since(start))
	}
	r.Start()
	if err := f.Send(context.Background(), b2); err != nil {
		t.Fatalf("Send after rsyslog restarted: %v\n%s", err, r.Diagnostics())
	}
	raw, parsed = waitRaw(t, r, 6)
	checkReceived(t, o, raw[3:], parsed[3:], b2, true)
}
