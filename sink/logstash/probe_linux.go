package logstash

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"time"
)

// peerClosed reports whether the peer has closed (or reset) conn, or sent
// something unexpected on it, without blocking: Logstash sends nothing
// between batches. An idle connection that Logstash dropped (e.g. its
// client_inactivity_timeout, or a restart) is then redialled instead of
// failing the next batch.
func peerClosed(conn net.Conn) bool {
	raw := conn
	tc, isTLS := conn.(*tls.Conn)
	if isTLS {
		raw = tc.NetConn()
	}
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	// A past read deadline (go-lumber leaves one) would fail rc.Read.
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return true
	}
	var (
		buf  [1]byte
		n    int
		rerr error
	)
	if err := rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	}); err != nil {
		return true
	}
	switch {
	case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EINTR):
		return false // nothing pending: alive
	case rerr != nil || n == 0:
		return true // reset, or EOF
	case !isTLS:
		return true // unexpected data
	}
	// TLS: the pending bytes may be a post-handshake message (a session
	// ticket), which crypto/tls consumes, or a close_notify alert.
	if err := tc.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		return true
	}
	defer tc.SetReadDeadline(time.Time{})
	_, err = tc.Read(buf[:])
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}
