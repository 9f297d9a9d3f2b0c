package peers

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Framing splits a byte stream into messages.
type Framing struct {
	name string
	// read returns the next message; io.EOF itself (not wrapped) at a
	// clean end of the stream, between two messages.
	read func(r *bufio.Reader) ([]byte, error)
	// strict fails the test on anything but a clean end.
	strict bool
}

// Lines is LF framing, as Logstash's json_lines codec reads it: each
// message is a line without its "\n". A last line without "\n" is dropped.
var Lines = Framing{name: "json_lines", read: func(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	return line[:len(line)-1], nil
}}

// OctetCounted is RFC 6587 octet counting ("LEN SP MSG"), as syslog over
// TCP, TLS and unix stream sockets frames it. It is read strictly: any
// other bytes fail the test.
var OctetCounted = Framing{name: "octet-counted", strict: true, read: func(r *bufio.Reader) ([]byte, error) {
	lenStr, err := r.ReadString(' ')
	if err == io.EOF && lenStr == "" {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("reading length %q: %v", lenStr, err)
	}
	size, err := strconv.Atoi(strings.TrimSuffix(lenStr, " "))
	if err != nil || size <= 0 || lenStr[0] == '0' {
		return nil, fmt.Errorf("bad octet count %q", lenStr)
	}
	m := make([]byte, size)
	if _, err := io.ReadFull(r, m); err != nil {
		return nil, fmt.Errorf("reading message: %v", err)
	}
	return m, nil
}}

// Stream is a receiver on a loopback TCP port (plain or TLS) or a unix
// stream socket that splits what it reads into messages with its Framing
// and records them. It can be stopped and started again on its address.
type Stream struct {
	Recorder
	t       testing.TB
	Network string // "tcp" or "unix"
	Addr    string // 127.0.0.1:port, or the socket's path
	// Set before Start:
	TLS *tls.Config // serve over TLS
	// CloseAfter > 0 closes each connection after that many messages, as
	// a receiver that restarts between batches.
	CloseAfter int

	framing  Framing
	mu       sync.Mutex
	l        net.Listener      // nil when stopped
	conns    map[net.Conn]bool // open connections; true once the peer closed one
	accepted int
	wg       sync.WaitGroup
}

// NewStream prepares a receiver on network "tcp" (a free loopback port) or
// "unix" (a socket in a new temporary directory); it is down until Start.
// t.Cleanup stops it.
func NewStream(t testing.TB, network string, f Framing) *Stream {
	t.Helper()
	p := &Stream{t: t, Network: network, Addr: loopbackAddr(t, network), framing: f, conns: map[net.Conn]bool{}}
	t.Cleanup(p.Stop)
	return p
}

// StartStream is NewStream followed by Start.
func StartStream(t testing.TB, network string, f Framing) *Stream {
	t.Helper()
	p := NewStream(t, network, f)
	p.Start()
	return p
}

// Start listens on Addr and serves until Stop.
func (p *Stream) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.t.Fatal("stream peer already running")
	}
	var l net.Listener
	if p.Network == "unix" {
		os.Remove(p.Addr)
		var err error
		if l, err = net.Listen("unix", p.Addr); err != nil {
			p.t.Fatal(err)
		}
	} else {
		l = ListenRetry(p.t, p.Addr)
	}
	if p.TLS != nil {
		l = tls.NewListener(l, p.TLS)
	}
	p.l = l
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.l != l { // stopped meanwhile
				p.mu.Unlock()
				c.Close()
				return
			}
			p.conns[c] = false
			p.accepted++
			p.wg.Add(1)
			p.mu.Unlock()
			go p.serve(c)
		}
	}()
}

func (p *Stream) serve(c net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return // a client that does not trust the peer: its test checks its own error
		}
	}
	r := bufio.NewReaderSize(c, 1<<20)
	for n := 0; p.CloseAfter == 0 || n < p.CloseAfter; n++ {
		m, err := p.framing.read(r)
		if err != nil {
			if p.framing.strict && err != io.EOF && !p.closedByPeer(c) {
				p.t.Errorf("%s peer: %v", p.framing.name, err)
			}
			return
		}
		p.Add(string(m))
	}
}

// closedByPeer reports whether the peer closed c itself (Stop, DropConns).
func (p *Stream) closedByPeer(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.l == nil || p.conns[c]
}

// Stop closes the listener and every connection and waits for them.
// Stopping a stopped peer does nothing.
func (p *Stream) Stop() {
	p.mu.Lock()
	l := p.l
	p.l = nil
	if l != nil {
		l.Close()
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// DropConns closes every open connection; the peer goes on listening, as
// a receiver that restarted.
func (p *Stream) DropConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		p.conns[c] = true
		c.Close()
	}
}

// Accepted returns how many connections the peer accepted.
func (p *Stream) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}
