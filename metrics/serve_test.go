package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve starts m on a loopback port and returns its address; the server is
// stopped, and ServeListener's return checked, at the end of the test.
func serve(t *testing.T, m *Metrics) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- m.ServeListener(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("ServeListener: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("ServeListener did not return after cancel")
		}
	})
	return l.Addr().String()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestServe(t *testing.T) {
	m := New()
	m.LineRead()
	m.Delivered(beats, 42)
	addr := serve(t, m)

	code, body := httpGet(t, "http://"+addr+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		"ucp_audit_lines_read_total 1\n",
		`ucp_audit_delivered_events_total{destination="logstash beats://127.0.0.1:5044"} 42` + "\n",
		`ucp_audit_events_total{outcome="quarantined"} 0` + "\n",
		"ucp_audit_start_time_seconds ",
		"go_goroutines ",
		"process_open_fds ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if code, body := httpGet(t, "http://"+addr+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	m.SetHealth(func() error { return errors.New("spool: disk full") })
	if code, body := httpGet(t, "http://"+addr+"/healthz"); code != 503 || body != "spool: disk full\n" {
		t.Errorf("/healthz = %d %q, want 503 with the error", code, body)
	}
}

// TestServeStops checks that Serve listens on the address it is given and
// returns, with the port closed, once ctx is done.
func TestServeStops(t *testing.T) {
	// Find a free port, then let Serve listen on it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	m := New()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- m.Serve(ctx, addr) }()

	var up bool
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			up = true
			break
		}
	}
	if !up {
		t.Fatal("Serve never answered")
	}
	// Neither an idle keep-alive connection (http.Get above) nor one that
	// never sends a request may hold the shutdown up for long.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	cancel()
	start := time.Now()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if d := time.Since(start); d > shutdownTimeout+time.Second {
		t.Errorf("Serve took %v to return", d)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("port still open after Serve returned")
	}
}

func TestServeListenError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = New().Serve(t.Context(), l.Addr().String()) // in use
	if err == nil || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Errorf("Serve on a busy port: %v, want an error naming the address", err)
	}
	if err := New().Serve(t.Context(), "no-port"); err == nil {
		t.Error("Serve on a bad address: no error")
	}
}
