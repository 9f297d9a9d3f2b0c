// Package peers holds the real receivers that ucp-audit's tests (the
// destinations' own, and the end-to-end suite) start on loopback as
// stand-ins for remote destinations: an rsyslogd (Debian's rsyslog with
// rsyslog-gnutls and rsyslog-relp) listening with imtcp, imtcp over TLS,
// imudp and imrelp; go-lumber's Lumberjack v2 server standing in for
// Logstash's beats input; an HTTP server taking NDJSON as Logstash's http
// input does; stream receivers with json_lines or RFC 6587 framing (Stream)
// and datagram receivers (Datagram), over TCP or TLS, UDP, or unix sockets;
// a receiver that accepts and never answers (Silent); a real Prometheus
// Alertmanager (Debian's prometheus-alertmanager) whose webhook receiver
// is an HTTP peer (Alertmanager); and a throwaway PKI.
//
// Every peer but Silent can be stopped and started again on the same
// address, so tests can simulate an outage, and records what arrived byte
// for byte (Recorder). Peers are stopped by t.Cleanup.
package peers

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// FreeTCPPort returns a loopback TCP port that was free a moment ago.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeUDPPort returns a loopback UDP port that was free a moment ago.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// loopbackAddr returns an address for a peer on network: a loopback port
// that was free a moment ago for tcp and udp, a path in a new temporary
// directory for unix and unixgram (t.TempDir can be too long for a socket
// path).
func loopbackAddr(t testing.TB, network string) string {
	t.Helper()
	switch network {
	case "tcp":
		return "127.0.0.1:" + strconv.Itoa(FreeTCPPort(t))
	case "udp":
		return "127.0.0.1:" + strconv.Itoa(FreeUDPPort(t))
	case "unix", "unixgram":
		dir, err := os.MkdirTemp("", "peer")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return filepath.Join(dir, network+".sock")
	}
	t.Fatalf("peer: network %q", network)
	return ""
}

// ListenRetry listens on TCP addr, retrying briefly: a port just closed by a
// previous instance of the peer may take a moment to be free.
func ListenRetry(t testing.TB, addr string) net.Listener {
	t.Helper()
	var err error
	for range 250 {
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("listen %s: %v", addr, err)
	return nil
}

// WaitUntil polls cond every 50 ms until it holds or within passes, and
// reports whether it held.
func WaitUntil(within time.Duration, cond func() bool) bool {
	return WaitUntilEvery(within, 50*time.Millisecond, cond)
}

// WaitUntilEvery is WaitUntil polling every every.
func WaitUntilEvery(within, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
}

// terminate stops a peer's process with SIGTERM, so that it writes out
// what it has taken, and waits until exited is closed; SIGKILL after 10 s.
func terminate(cmd *exec.Cmd, exited <-chan struct{}) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}
