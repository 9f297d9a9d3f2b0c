package peers

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// HTTP is an HTTP server taking NDJSON as Logstash's http input does with
// additional_codecs => { "application/x-ndjson" => "json_lines" }: every
// POST body is split into lines, each recorded, and answered 200 "ok". It
// can be stopped and started again on its port.
type HTTP struct {
	t    testing.TB
	Addr string // 127.0.0.1:port

	mu           sync.Mutex
	srv          *http.Server
	done         chan struct{}
	events       []string
	requests     int
	contentTypes map[string]int
}

// NewHTTP reserves a loopback port; the peer is down until Start.
// t.Cleanup stops it.
func NewHTTP(t testing.TB) *HTTP {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &HTTP{t: t, Addr: l.Addr().String(), contentTypes: map[string]int{}}
	l.Close()
	t.Cleanup(p.Stop)
	return p
}

// StartHTTP is NewHTTP followed by Start.
func StartHTTP(t testing.TB) *HTTP {
	t.Helper()
	p := NewHTTP(t)
	p.Start()
	return p
}

// URL is the address to give the plugin: http://127.0.0.1:port/.
func (p *HTTP) URL() string { return "http://" + p.Addr + "/" }

// Start listens on Addr and serves until Stop.
func (p *HTTP) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		p.t.Fatal("http peer already running")
	}
	l := listenRetry(p.t, p.Addr)
	srv := &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	p.srv, p.done = srv, done
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
}

func (p *HTTP) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			lines = append(lines, sc.Text())
		}
	}
	p.mu.Lock()
	p.events = append(p.events, lines...)
	p.requests++
	p.contentTypes[r.Header.Get("Content-Type")]++
	p.mu.Unlock()
	w.Write([]byte("ok"))
}

// Stop closes the server and its connections. Stopping a stopped peer does
// nothing.
func (p *HTTP) Stop() {
	p.mu.Lock()
	srv, done := p.srv, p.done
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-done
	}
}

// Events returns every NDJSON line received so far, in arrival order
// (duplicates included).
func (p *HTTP) Events() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.events...)
}

// ContentTypes returns the Content-Type headers seen, with their counts.
func (p *HTTP) ContentTypes() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.contentTypes {
		out[k] = v
	}
	return out
}
