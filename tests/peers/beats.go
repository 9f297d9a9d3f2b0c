package peers

import (
	"net"
	"sync"
	"testing"

	lumbersrv "github.com/elastic/go-lumber/server/v2"
)

// Beats is go-lumber's Lumberjack v2 server (Elastic's own implementation)
// standing in for Logstash's beats input. It acknowledges every batch once
// it has recorded it, and can be stopped and started again on its port.
type Beats struct {
	t    testing.TB
	Addr string // 127.0.0.1:port

	mu      sync.Mutex
	srv     *lumbersrv.Server
	done    chan struct{}
	events  []string // data frames, raw, in arrival order
	batches int
}

// NewBeats reserves a loopback port; the peer is down until Start.
// t.Cleanup stops it.
func NewBeats(t testing.TB) *Beats {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Beats{t: t, Addr: l.Addr().String()}
	l.Close()
	t.Cleanup(p.Stop)
	return p
}

// StartBeats is NewBeats followed by Start.
func StartBeats(t testing.TB) *Beats {
	t.Helper()
	p := NewBeats(t)
	p.Start()
	return p
}

// Start listens on Addr and serves until Stop.
func (p *Beats) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		p.t.Fatal("beats peer already running")
	}
	l := listenRetry(p.t, p.Addr)
	// The decoder keeps each JSON data frame's bytes as they were sent.
	srv, err := lumbersrv.NewWithListener(l, lumbersrv.JSONDecoder(func(b []byte, v interface{}) error {
		*v.(*interface{}) = string(b)
		return nil
	}))
	if err != nil {
		l.Close()
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	p.srv, p.done = srv, done
	go func() {
		defer close(done)
		for b := range srv.ReceiveChan() {
			p.mu.Lock()
			for _, e := range b.Events {
				s, _ := e.(string)
				p.events = append(p.events, s)
			}
			p.batches++
			p.mu.Unlock()
			b.ACK()
		}
	}()
}

// Stop closes the server and its connections. Stopping a stopped peer does
// nothing.
func (p *Beats) Stop() {
	p.mu.Lock()
	srv, done := p.srv, p.done
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		srv.Close()
		<-done
	}
}

// Events returns the raw JSON of every event received so far, in arrival
// order (duplicates included).
func (p *Beats) Events() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.events...)
}

// Count returns how many events were received so far (duplicates
// included).
func (p *Beats) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}

// Batches returns how many batches were received and acknowledged.
func (p *Beats) Batches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.batches
}
