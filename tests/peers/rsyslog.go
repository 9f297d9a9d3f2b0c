package peers

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Rsyslog is a real rsyslogd listening on loopback with imtcp (RFC 6587
// octet counting or LF framing), imtcp over TLS (gtls, anonymous client
// authentication, the server certificate of PKI), imudp and imrelp. It is
// configured as in docs: maxMessageSize 256k, imrelp maxDataSize 256k,
// control characters kept. Every message it receives, on any input, is
// written as one line of msgs.log: the header fields as rsyslog parsed them
// and the raw message as received (see SyslogMessage).
type Rsyslog struct {
	t   testing.TB
	Dir string
	PKI *PKI
	// Ports of the inputs, all on 127.0.0.1.
	TCPPort, TLSPort, UDPPort, RELPPort int

	bin    string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	output bytes.Buffer
}

// SyslogMessage is one message as rsyslog received it.
type SyslogMessage struct {
	// Fields as rsyslog's parser saw them: %pri%, %timereported% (RFC
	// 3339), %hostname%, %app-name%, %procid%, %msgid%, %structured-data%.
	PRI, Time, Host, AppName, ProcID, MsgID, SD string
	// Raw is %rawmsg%: the whole message as received, without the
	// transport framing (octet count, RELP header).
	Raw string
}

const rsyslogMissing = "rsyslogd not installed (apt-get install rsyslog rsyslog-gnutls rsyslog-relp)"

// findRsyslog returns the path of rsyslogd, or "" when it is not installed.
func findRsyslog() string {
	if p, err := exec.LookPath("rsyslogd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/rsyslogd"); err == nil {
		return "/usr/sbin/rsyslogd"
	}
	return ""
}

// rsyslogBinary finds rsyslogd; the test fails when it is missing.
func rsyslogBinary(t testing.TB) string {
	t.Helper()
	p := findRsyslog()
	if p == "" {
		t.Fatal(rsyslogMissing)
	}
	return p
}

// SkipWithoutRsyslog skips t when rsyslogd is not installed, so that unit
// tests run on a machine without it; in CI (CI=true, or
// UCP_AUDIT_E2E_REQUIRED=1) a missing rsyslogd fails t instead.
func SkipWithoutRsyslog(t testing.TB) {
	t.Helper()
	if findRsyslog() != "" {
		return
	}
	msg := rsyslogMissing + ": real-receiver tests skipped"
	if os.Getenv("CI") == "true" || os.Getenv("UCP_AUDIT_E2E_REQUIRED") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// NewRsyslog prepares a receiver in dir (created if needed) with free ports
// and a fresh PKI; it is down until Start. t.Cleanup stops it.
func NewRsyslog(t testing.TB, dir string) *Rsyslog {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := &Rsyslog{t: t, Dir: dir, bin: rsyslogBinary(t), PKI: NewPKI(t, dir),
		TCPPort: FreeTCPPort(t), TLSPort: FreeTCPPort(t), UDPPort: FreeUDPPort(t), RELPPort: FreeTCPPort(t)}
	// One tab-separated line per message: rsyslog's parsed header fields,
	// then %rawmsg%. Tabs and newlines cannot occur in a header or in
	// compact JSON, so the split is unambiguous.
	conf := fmt.Sprintf(`global(workDirectory="%[1]s/work" maxMessageSize="256k" parser.escapeControlCharactersOnReceive="off"
       defaultNetstreamDriverCAFile="%[2]s" defaultNetstreamDriverCertFile="%[3]s"
       defaultNetstreamDriverKeyFile="%[4]s")
module(load="imtcp" maxSessions="64") module(load="imudp") module(load="imrelp")
template(name="fields" type="string" string="%%pri%%	%%timereported:::date-rfc3339%%	%%hostname%%	%%app-name%%	%%procid%%	%%msgid%%	%%structured-data%%	%%rawmsg%%\n")
ruleset(name="out") { action(type="omfile" file="%[1]s/msgs.log" template="fields") }
*.* action(type="omfile" file="%[1]s/internal.log")
input(type="imtcp" address="127.0.0.1" port="%[5]d" ruleset="out")
input(type="imtcp" address="127.0.0.1" port="%[6]d" ruleset="out" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imudp" address="127.0.0.1" port="%[7]d" ruleset="out" rcvbufSize="8m")
input(type="imrelp" address="127.0.0.1" port="%[8]d" ruleset="out" maxDataSize="256k")
`, dir, r.PKI.CAFile, r.PKI.CertFile, r.PKI.KeyFile, r.TCPPort, r.TLSPort, r.UDPPort, r.RELPPort)
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// StartRsyslog is NewRsyslog followed by Start.
func StartRsyslog(t testing.TB, dir string) *Rsyslog {
	t.Helper()
	r := NewRsyslog(t, dir)
	r.Start()
	return r
}

// Start runs rsyslogd -n and waits until its TCP inputs accept connections.
func (r *Rsyslog) Start() {
	t := r.t
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		t.Fatal("rsyslogd already running")
	}
	r.output.Reset()
	cmd := exec.Command(r.bin, "-n", "-f", filepath.Join(r.Dir, "rsyslog.conf"), "-i", filepath.Join(r.Dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = &r.output, &r.output
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting rsyslogd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	r.cmd, r.exited = cmd, exited
	deadline := time.Now().Add(15 * time.Second)
	for _, port := range []int{r.TCPPort, r.TLSPort, r.RELPPort} {
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				t.Fatalf("rsyslogd exited: %s\n%s", cmd.ProcessState, r.diagnosticsLocked())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("rsyslogd not listening on %d: %v\n%s", port, err, r.diagnosticsLocked())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Stop shuts rsyslogd down with SIGTERM (so it writes out what it has
// acknowledged) and waits for it; SIGKILL after 10 s. Stopping a stopped
// receiver does nothing.
func (r *Rsyslog) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	terminate(r.cmd, r.exited)
	r.cmd = nil
}

// Kill stops rsyslogd with SIGKILL, as a crash would, and waits for it.
// Killing a stopped receiver does nothing.
func (r *Rsyslog) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.exited
	r.cmd = nil
}

// Diagnostics returns rsyslogd's output and internal.log, for failures.
func (r *Rsyslog) Diagnostics() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.diagnosticsLocked()
}

func (r *Rsyslog) diagnosticsLocked() string {
	internal, _ := os.ReadFile(filepath.Join(r.Dir, "internal.log"))
	return fmt.Sprintf("rsyslogd output:\n%s\ninternal.log (last 4 KiB):\n%s", r.output.String(), lastBytes(internal, 4096))
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Messages returns every message received so far, in the order rsyslog
// wrote them. A last line without its newline (being written) is left out.
func (r *Rsyslog) Messages() []SyslogMessage {
	r.t.Helper()
	b, err := os.ReadFile(filepath.Join(r.Dir, "msgs.log"))
	if err != nil && !os.IsNotExist(err) {
		r.t.Fatal(err)
	}
	var out []SyslogMessage
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		line := string(b[:i])
		b = b[i+1:]
		f := strings.SplitN(line, "\t", 8)
		if len(f) != 8 {
			r.t.Fatalf("msgs.log: line of %d fields: %.300q", len(f), line)
		}
		out = append(out, SyslogMessage{PRI: f[0], Time: f[1], Host: f[2], AppName: f[3], ProcID: f[4], MsgID: f[5], SD: f[6], Raw: f[7]})
	}
	return out
}

// WaitFor polls Messages until done returns true or within passes; it
// returns the last messages read and whether done held.
func (r *Rsyslog) WaitFor(within time.Duration, done func([]SyslogMessage) bool) ([]SyslogMessage, bool) {
	r.t.Helper()
	var msgs []SyslogMessage
	ok := WaitUntil(within, func() bool {
		msgs = r.Messages()
		return done(msgs)
	})
	return msgs, ok
}
