package logstash

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
)

type httpPeer struct {
	mu     sync.Mutex
	bodies []string
	ctypes []string
	paths  []string
	auth   []string
}

func (p *httpPeer) record(r *http.Request) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bodies = append(p.bodies, string(b))
	p.ctypes = append(p.ctypes, r.Header.Get("Content-Type"))
	p.paths = append(p.paths, r.URL.RequestURI())
	u, pw, _ := r.BasicAuth()
	p.auth = append(p.auth, u+":"+pw)
	return nil
}

func ndjson(evs []sink.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.Write(ev.Line)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestHTTPDeliversByteExact(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "http"
		if useTLS {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			peer := &httpPeer{}
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := peer.record(r); err != nil {
					w.WriteHeader(400)
					return
				}
				w.Write([]byte("ok"))
			})
			var srv *httptest.Server
			var o Options
			if useTLS {
				srv = httptest.NewTLSServer(h)
				o.TLS = srv.Client().Transport.(*http.Transport).TLSClientConfig
			} else {
				srv = httptest.NewServer(h)
			}
			defer srv.Close()
			f := mustNew(t, srv.URL+"/ingest/audit?pipeline=x", o)
			batch := events(20)
			if err := f.Send(context.Background(), batch); err != nil {
				t.Fatalf("Send: %v", err)
			}
			batch2 := events(2)
			if err := f.Send(context.Background(), batch2); err != nil {
				t.Fatalf("Send: %v", err)
			}
			peer.mu.Lock()
			defer peer.mu.Unlock()
			if len(peer.bodies) != 2 {
				t.Fatalf("%d requests, want 2", len(peer.bodies))
			}
			if peer.bodies[0] != ndjson(batch) || peer.bodies[1] != ndjson(batch2) {
				t.Fatalf("bodies differ from the NDJSON of the batches")
			}
			checkLinesEqual(t, strings.Split(strings.TrimSuffix(peer.bodies[0], "\n"), "\n"), lines(batch))
			if peer.ctypes[0] != "application/x-ndjson" {
				t.Errorf("Content-Type %q", peer.ctypes[0])
			}
			if peer.paths[0] != "/ingest/audit?pipeline=x" {
				t.Errorf("path %q", peer.paths[0])
			}
		})
	}
}

func TestHTTPDefaultPathAndBasicAuth(t *testing.T) {
	peer := &httpPeer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer.record(r)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	url := strings.Replace(srv.URL, "http://", "http://audit:s3cret@", 1)
	f := mustNew(t, url, Options{})
	if err := f.Send(context.Background(), events(1)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if peer.paths[0] != "/" || peer.auth[0] != "audit:s3cret" {
		t.Fatalf("path %q auth %q, want / and audit:s3cret", peer.paths[0], peer.auth[0])
	}
}

func TestHTTPStatuses(t *testing.T) {
	var status atomic.Int32
	peer := &httpPeer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer.record(r)
		code := int(status.Load())
		if code == http.StatusFound {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
		w.Write([]byte("queue is full\nsorry"))
	}))
	defer srv.Close()
	f := mustNew(t, srv.URL+"/", Options{})
	batch := events(5)

	// 503 then 200: the first Send fails (retryable), the second succeeds.
	status.Store(503)
	err := f.Send(context.Background(), batch)
	var se *StatusError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &se) || se.Code != 503 || !se.Retryable() {
		t.Fatalf("503: error %v, want ErrUnavailable with status 503", err)
	}
	if !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), `logstash "`+srv.URL+`/"`) {
		t.Fatalf("503: error %q does not say the status and the destination", err)
	}
	t.Logf("503: %v", err)
	status.Store(200)
	if err := f.Send(context.Background(), batch); err != nil {
		t.Fatalf("Send after 503: %v", err)
	}
	if peer.bodies[0] != ndjson(batch) || peer.bodies[1] != ndjson(batch) {
		t.Fatal("bodies differ")
	}

	for _, tc := range []struct {
		code    int
		want    error
		wantMsg string
	}{
		{201, nil, ""},
		{204, nil, ""},
		{429, ErrUnavailable, "429"},
		{500, ErrUnavailable, "500"},
		{400, ErrUnexpectedStatus, "refused"},
		{401, ErrUnexpectedStatus, "401"},
		{413, ErrUnexpectedStatus, "413"},
		{302, ErrUnexpectedStatus, "302"},
	} {
		status.Store(int32(tc.code))
		err := f.Send(context.Background(), batch)
		if tc.want == nil {
			if err != nil {
				t.Errorf("status %d: %v", tc.code, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantMsg) {
			t.Errorf("status %d: error %v, want %v containing %q", tc.code, err, tc.want, tc.wantMsg)
		}
	}
}

func TestHTTPServerDown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := srv.URL
	srv.Close()
	f := mustNew(t, url+"/", Options{Timeout: 5 * time.Second})
	if _, err := sendWithin(t, f, context.Background(), events(1), 2*time.Second); err == nil {
		t.Fatal("Send to a stopped server succeeded")
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	f := mustNew(t, srv.URL+"/", Options{Timeout: 300 * time.Millisecond})
	_, err := sendWithin(t, f, context.Background(), events(2), 3*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}
}

func TestLineFramingRejectsNewlines(t *testing.T) {
	for _, addr := range []string{"http://127.0.0.1:1/", "tcp://127.0.0.1:1"} {
		f := mustNew(t, addr, Options{})
		batch := events(3)
		batch[2].Line = []byte("{\n\"a\":1}")
		err := f.Send(context.Background(), batch)
		var tl *sink.TooLargeError
		if !errors.Is(err, sink.ErrTooLarge) || !errors.As(err, &tl) || tl.Seq != 3 {
			t.Fatalf("%s: error %v, want a TooLargeError for seq 3", addr, err)
		}
	}
}

// An event longer than MaxMessageSize is refused before anything is sent,
// whatever the transport.
func TestMaxMessageSize(t *testing.T) {
	for _, addr := range []string{"http://127.0.0.1:1/", "tcp://127.0.0.1:1", "beats://127.0.0.1:1"} {
		f := mustNew(t, addr, Options{MaxMessageSize: 1 << 10})
		batch := events(3)
		batch[1].Line = []byte(`{"a":"` + strings.Repeat("x", 2<<10) + `"}`)
		err := f.Send(context.Background(), batch)
		var tl *sink.TooLargeError
		if !errors.Is(err, sink.ErrTooLarge) || !errors.As(err, &tl) || tl.Seq != 2 || tl.Limit != 1<<10 {
			t.Fatalf("%s: error %v, want a TooLargeError for seq 2", addr, err)
		}
	}
}
