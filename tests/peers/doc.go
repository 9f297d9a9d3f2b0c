// Package peers holds real receivers that ucp-audit's end-to-end tests start
// on loopback as stand-ins for remote destinations: an rsyslogd (Debian's
// rsyslog with rsyslog-gnutls and rsyslog-relp) listening with imtcp, imtcp
// over TLS, imudp and imrelp; go-lumber's Lumberjack v2 server standing in
// for Logstash's beats input; and an HTTP server taking NDJSON as Logstash's
// http input does.
//
// Every peer can be stopped and started again on the same port, so tests
// can simulate an outage, and records what arrived byte for byte. Peers are
// stopped by t.Cleanup.
package peers

import (
	"net"
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

// listenRetry listens on addr, retrying briefly: a port just closed by a
// previous instance of the peer may take a moment to be free.
func listenRetry(t testing.TB, addr string) net.Listener {
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
