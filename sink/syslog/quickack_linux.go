package syslog

import (
	"crypto/tls"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// quickAck asks Linux to acknowledge what nc receives at once instead of
// delaying the ACK. rsyslog's imrelp answers with small frames and Nagle's
// algorithm: with a delayed ACK on this side, the last answers of every
// batch waited 40 ms, which capped RELP at a few thousand events per
// second. Linux clears the flag by itself, so it is set before each wait
// for answers. Errors are ignored: it only costs speed.
func quickAck(nc net.Conn) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
}
