package syslog

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
)

// rsyslogd is a real rsyslog receiver (Debian's rsyslog, rsyslog-gnutls and
// rsyslog-relp) listening on loopback: imtcp plain and with gtls, imudp and
// imrelp, all writing %rawmsg% to raw.log and the parsed RFC 5424 header
// fields to parsed.log.
type rsyslogd struct {
	t                                   *testing.T
	dir                                 string
	tcpPort, tlsPort, udpPort, relpPort int
	pki                                 *testPKI
	bin                                 string
	stopFn                              func()
	stderr                              bytes.Buffer
}

func rsyslogBinary(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("rsyslogd")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/rsyslogd"); err2 == nil {
			return "/usr/sbin/rsyslogd"
		}
		msg := "rsyslogd not installed (apt-get install rsyslog rsyslog-gnutls rsyslog-relp): real-receiver tests skipped"
		if os.Getenv("CI") == "true" || os.Getenv("UCP_AUDIT_E2E_REQUIRED") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

func freeTCPPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func freeUDPPort(t *testing.T) int {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// newRsyslogd prepares (but does not start) a receiver in a fresh t.TempDir.
func newRsyslogd(t *testing.T) *rsyslogd {
	bin := rsyslogBinary(t)
	dir := t.TempDir()
	r := &rsyslogd{t: t, dir: dir, bin: bin, pki: newTestPKI(t, dir),
		tcpPort: freeTCPPort(t), tlsPort: freeTCPPort(t), udpPort: freeUDPPort(t), relpPort: freeTCPPort(t)}
	if err := os.Mkdir(filepath.Join(dir, "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`global(workDirectory="%[1]s/work" maxMessageSize="256k" parser.escapeControlCharactersOnReceive="off"
       defaultNetstreamDriverCAFile="%[1]s/ca.pem" defaultNetstreamDriverCertFile="%[1]s/server.pem"
       defaultNetstreamDriverKeyFile="%[1]s/server.key")
module(load="imtcp" maxSessions="64") module(load="imudp") module(load="imrelp")
template(name="raw" type="string" string="%%rawmsg%%\n")
template(name="parsed" type="string" string="%%pri%%|%%timereported:::date-rfc3339%%|%%hostname%%|%%app-name%%|%%procid%%|%%msgid%%|%%structured-data%%\n")
ruleset(name="out") {
  action(type="omfile" file="%[1]s/raw.log" template="raw")
  action(type="omfile" file="%[1]s/parsed.log" template="parsed")
}
*.* action(type="omfile" file="%[1]s/internal.log")
input(type="imtcp" address="127.0.0.1" port="%[2]d" ruleset="out")
input(type="imtcp" address="127.0.0.1" port="%[3]d" ruleset="out" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imudp" address="127.0.0.1" port="%[4]d" ruleset="out")
input(type="imrelp" address="127.0.0.1" port="%[5]d" ruleset="out" maxDataSize="256k")
`, dir, r.tcpPort, r.tlsPort, r.udpPort, r.relpPort)
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs rsyslogd -n in the foreground and waits until its TCP inputs
// accept connections. t.Cleanup stops it.
func (r *rsyslogd) start() {
	t := r.t
	t.Helper()
	r.stderr.Reset()
	cmd := exec.Command(r.bin, "-n", "-f", filepath.Join(r.dir, "rsyslog.conf"), "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = &r.stderr, &r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting rsyslogd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	t.Cleanup(stop)
	r.stopFn = stop
	deadline := time.Now().Add(15 * time.Second)
	for _, port := range []int{r.tcpPort, r.tlsPort, r.relpPort} {
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				t.Fatalf("rsyslogd exited: %s\n%s", cmd.ProcessState, r.diagnostics())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("rsyslogd not listening on %d: %v\n%s", port, err, r.diagnostics())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (r *rsyslogd) stop() { r.stopFn() }

func (r *rsyslogd) diagnostics() string {
	internal, _ := os.ReadFile(filepath.Join(r.dir, "internal.log"))
	return fmt.Sprintf("rsyslogd output:\n%s\ninternal.log:\n%s", r.stderr.String(), internal)
}

func (r *rsyslogd) lines(name string) []string {
	b, err := os.ReadFile(filepath.Join(r.dir, name))
	if err != nil && !os.IsNotExist(err) {
		r.t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// waitRaw polls raw.log until it has n lines (rsyslog writes
// asynchronously) and returns its lines and parsed.log's.
func (r *rsyslogd) waitRaw(n int) (raw, parsed []string) {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		raw, parsed = r.lines("raw.log"), r.lines("parsed.log")
		if len(raw) >= n && len(parsed) >= n {
			return raw, parsed
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("raw.log has %d lines, want %d\n%s", len(raw), n, r.diagnostics())
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	r := newRsyslogd(t)
	r.start()
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
			t.Fatalf("Send: %v\n%s", err, r.diagnostics())
		}
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		raw, parsed := r.waitRaw(total + len(batch))
		checkReceived(t, o, raw[total:], parsed[total:], batch, !strings.HasPrefix(addr, "udp"))
		total += len(batch)
	}
	t.Run("tcp", func(t *testing.T) {
		send(t, fmt.Sprintf("tcp://127.0.0.1:%d", r.tcpPort), e2eBatch(1, true))
	})
	t.Run("tcp+tls", func(t *testing.T) {
		send(t, fmt.Sprintf("tcp+tls://127.0.0.1:%d", r.tlsPort), e2eBatch(101, true),
			func(o *Options) { o.TLS = &tls.Config{RootCAs: r.pki.pool} })
	})
	t.Run("relp", func(t *testing.T) {
		send(t, fmt.Sprintf("relp://127.0.0.1:%d", r.relpPort), e2eBatch(201, true))
	})
	t.Run("relp-window", func(t *testing.T) {
		send(t, fmt.Sprintf("relp://127.0.0.1:%d", r.relpPort), batchOf(301, 500))
	})
	t.Run("tcp-rfc5424micro", func(t *testing.T) {
		send(t, fmt.Sprintf("tcp://127.0.0.1:%d", r.tcpPort), e2eBatch(401, false),
			func(o *Options) { o.Format = FormatRFC5424Micro })
	})
	t.Run("relp-rfc3164", func(t *testing.T) {
		send(t, fmt.Sprintf("relp://127.0.0.1:%d", r.relpPort), e2eBatch(501, true),
			func(o *Options) { o.Format = FormatRFC3164 })
	})
	t.Run("udp", func(t *testing.T) {
		send(t, fmt.Sprintf("udp://127.0.0.1:%d", r.udpPort), e2eBatch(1001, true))
	})
}

// RELP with rsyslog down: Send fails without hanging past ctx; once
// rsyslog is up again, the next Send on the same Forwarder delivers.
func TestRsyslogRELPRestart(t *testing.T) {
	r := newRsyslogd(t)
	f := mustNew(t, fmt.Sprintf("relp://127.0.0.1:%d", r.relpPort))
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

	r.start()
	if err := f.Send(context.Background(), b1); err != nil {
		t.Fatalf("Send after rsyslog started: %v\n%s", err, r.diagnostics())
	}
	raw, parsed := r.waitRaw(3)
	checkReceived(t, o, raw, parsed, b1, true)

	// rsyslog stops while the Forwarder holds an open session.
	r.stop()
	b2 := batchOf(4, 3)
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	start = time.Now()
	err = f.Send(ctx, b2)
	cancel()
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("Send with rsyslog stopped = %v after %v, want a prompt error", err, time.Since(start))
	}
	r.start()
	if err := f.Send(context.Background(), b2); err != nil {
		t.Fatalf("Send after rsyslog restarted: %v\n%s", err, r.diagnostics())
	}
	raw, parsed = r.waitRaw(6)
	checkReceived(t, o, raw[3:], parsed[3:], b2, true)
}
