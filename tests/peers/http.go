package peers

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
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
	Recorder
	t    testing.TB
	Addr string      // 127.0.0.1:port
	TLS  *tls.Config // set before Start: serve HTTPS
	// Decode, when set before Start, makes the messages recorded of a
	// POST instead of its NDJSON lines (an alert output's payloads, say);
	// an error is answered 400 and nothing is recorded.
	Decode func(r *http.Request, body []byte) ([]string, error)

	mu           sync.Mutex
	srv          *http.Server
	done         chan struct{}
	requests     int
	contentTypes map[string]int
}

// NewHTTP reserves a loopback port; the peer is down until Start.
// t.Cleanup stops it.
func NewHTTP(t testing.TB) *HTTP {
	t.Helper()
	p := &HTTP{t: t, Addr: loopbackAddr(t, "tcp"), contentTypes: map[string]int{}}
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

// URL is the address to give the plugin: http://127.0.0.1:port/, or
// https:// with TLS.
func (p *HTTP) URL() string {
	if p.TLS != nil {
		return "https://" + p.Addr + "/"
	}
	return "http://" + p.Addr + "/"
}

// Start listens on Addr and serves until Stop.
func (p *HTTP) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		p.t.Fatal("http peer already running")
	}
	l := ListenRetry(p.t, p.Addr)
	if p.TLS != nil {
		l = tls.NewListener(l, p.TLS)
	}
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
	if p.Decode != nil {
		if lines, err = p.Decode(r, body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	} else {
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
		for sc.Scan() {
			if len(sc.Bytes()) > 0 {
				lines = append(lines, sc.Text())
			}
		}
	}
	for _, l := range lines {
		p.Add(l)
	}
	p.mu.Lock()
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
