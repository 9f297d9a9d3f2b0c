//go:build unix

package syslog

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// idleAlive reports whether the idle stream connection nc is still open: it
// peeks at the socket without blocking. End of file or an error means the
// peer closed or reset it; pending bytes mean the peer said something
// unsolicited (RELP "serverclose", for instance), so the connection is not
// reused either, except for TLS, where they may be a post-handshake message
// (a TLS 1.3 session ticket) that a short read consumes.
func idleAlive(nc net.Conn) bool {
	raw := nc
	tc, isTLS := nc.(*tls.Conn)
	if isTLS {
		raw = tc.NetConn()
	}
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var rerr error
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	switch {
	case err != nil:
		return false
	case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK):
		return true
	case rerr != nil || n == 0:
		return false
	case !isTLS:
		return false
	}
	// TLS: read what is pending; only a timeout (nothing for the
	// application) leaves the connection usable.
	tc.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	var buf [64]byte
	_, err = tc.Read(buf[:])
	return errors.Is(err, os.ErrDeadlineExceeded)
}
