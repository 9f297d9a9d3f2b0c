package peers

import (
	"net"
	"os"
	"sync"
	"testing"
)

// Datagram is a receiver on a loopback UDP port or a unix datagram socket
// that records each datagram as one message. It can be stopped and started
// again on its address.
type Datagram struct {
	Recorder
	t       testing.TB
	Network string // "udp" or "unixgram"
	Addr    string // 127.0.0.1:port, or the socket's path

	mu   sync.Mutex
	pc   net.PacketConn // nil when stopped
	done chan struct{}
}

// NewDatagram prepares a receiver on network "udp" (a free loopback port)
// or "unixgram" (a socket in a new temporary directory); it is down until
// Start. t.Cleanup stops it.
func NewDatagram(t testing.TB, network string) *Datagram {
	t.Helper()
	p := &Datagram{t: t, Network: network, Addr: loopbackAddr(t, network)}
	t.Cleanup(p.Stop)
	return p
}

// StartDatagram is NewDatagram followed by Start.
func StartDatagram(t testing.TB, network string) *Datagram {
	t.Helper()
	p := NewDatagram(t, network)
	p.Start()
	return p
}

// Start listens on Addr and records until Stop.
func (p *Datagram) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pc != nil {
		p.t.Fatal("datagram peer already running")
	}
	if p.Network == "unixgram" {
		os.Remove(p.Addr)
	}
	pc, err := net.ListenPacket(p.Network, p.Addr)
	if err != nil {
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	p.pc, p.done = pc, done
	go func() {
		defer close(done)
		buf := make([]byte, 1<<17)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			p.Add(string(buf[:n]))
		}
	}()
}

// Stop closes the socket and waits for the reader. Stopping a stopped peer
// does nothing.
func (p *Datagram) Stop() {
	p.mu.Lock()
	pc, done := p.pc, p.done
	p.pc = nil
	p.mu.Unlock()
	if pc != nil {
		pc.Close()
		<-done
	}
}
