package peers

import (
	"crypto/tls"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-lumber/lj"
	lumbersrv "github.com/elastic/go-lumber/server/v2"
)

// Beats is go-lumber's Lumberjack v2 server (Elastic's own implementation)
// standing in for Logstash's beats input. It records the raw JSON of every
// data frame (Events) and acknowledges every batch once it has recorded
// it, and can be stopped and started again on its port.
type Beats struct {
	Recorder
	t    testing.TB
	Addr string // 127.0.0.1:port

	// Set before Start:
	TLS *tls.Config // serve over TLS (beats+tls)
	// Options are go-lumber server options (lumbersrv.Keepalive, …),
	// applied after the peer's decoder, which keeps each data frame's
	// bytes as a string: a lumbersrv.JSONDecoder here replaces it, and
	// the peer then records only the events that decode to strings.
	Options []lumbersrv.Option
	// Manual leaves every batch to the test: the peer neither records nor
	// acknowledges it, and Receive hands it over.
	Manual bool

	mu      sync.Mutex
	srv     *lumbersrv.Server
	done    chan struct{}
	batches int
}

// NewBeats reserves a loopback port; the peer is down until Start.
// t.Cleanup stops it.
func NewBeats(t testing.TB) *Beats {
	t.Helper()
	p := &Beats{t: t, Addr: loopbackAddr(t, "tcp")}
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
	l := ListenRetry(p.t, p.Addr)
	if p.TLS != nil {
		l = tls.NewListener(l, p.TLS)
	}
	// The decoder keeps each JSON data frame's bytes as they were sent.
	opts := append([]lumbersrv.Option{lumbersrv.JSONDecoder(func(b []byte, v interface{}) error {
		*v.(*interface{}) = string(b)
		return nil
	})}, p.Options...)
	srv, err := lumbersrv.NewWithListener(l, opts...)
	if err != nil {
		l.Close()
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	p.srv, p.done = srv, done
	if p.Manual {
		close(done)
		return
	}
	go func() {
		defer close(done)
		for b := range srv.ReceiveChan() {
			for _, e := range b.Events {
				if s, ok := e.(string); ok {
					p.Add(s)
				}
			}
			p.mu.Lock()
			p.batches++
			p.mu.Unlock()
			b.ACK()
		}
	}()
}

// Receive returns the next batch, which the test acknowledges (b.ACK())
// or not; the test fails if none comes within the given time. Only for a
// Manual peer.
func (p *Beats) Receive(within time.Duration) *lj.Batch {
	p.t.Helper()
	p.mu.Lock()
	srv := p.srv
	p.mu.Unlock()
	if srv == nil || !p.Manual {
		p.t.Fatal("Receive needs a running Manual beats peer")
	}
	select {
	case b := <-srv.ReceiveChan():
		return b
	case <-time.After(within):
		p.t.Fatal("no batch received")
		return nil
	}
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

// Batches returns how many batches were received and acknowledged.
func (p *Beats) Batches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.batches
}
