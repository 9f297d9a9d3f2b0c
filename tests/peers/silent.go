package peers

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Silent accepts connections and never reads or writes on them: a TLS
// handshake, an answer, or a write once the socket buffers are full, waits
// on it for ever. It stands in for a receiver that hangs.
type Silent struct {
	Network string // "tcp" or "unix"
	Addr    string // 127.0.0.1:port, or the socket's path

	mu       sync.Mutex
	conns    []net.Conn
	accepted int
}

// StartSilent listens on network "tcp" (a free loopback port) or "unix" (a
// socket in a new temporary directory). t.Cleanup stops it and closes its
// connections.
func StartSilent(t testing.TB, network string) *Silent {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = loopbackAddr(t, network)
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &Silent{Network: network, Addr: l.Addr().String()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.accepted++
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

// WaitAccepted reports whether the peer has accepted a connection within
// the given time.
func (p *Silent) WaitAccepted(within time.Duration) bool {
	return WaitUntilEvery(within, 10*time.Millisecond, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.accepted > 0
	})
}
