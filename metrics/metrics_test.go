package metrics

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	relp  = "syslog relp://127.0.0.1:2514"
	beats = "logstash beats://127.0.0.1:5044"
)

// TestMethods checks that each method moves exactly its series, against the
// golden exposition text in testdata/<name>.prom.
func TestMethods(t *testing.T) {
	tests := []struct {
		name    string
		do      func(m *Metrics)
		metrics []string // the families compared with the golden file
	}{
		{"build_info", func(m *Metrics) {
			m.SetBuildInfo("0.9.0", "0000000")
			m.SetBuildInfo("1.2.0", "abc1234") // replaces
		}, []string{"ucp_audit_build_info"}},
		{"lines_read", func(m *Metrics) {
			for range 3 {
				m.LineRead()
			}
		}, []string{"ucp_audit_lines_read_total"}},
		{"events", func(m *Metrics) {
			for _, o := range []string{"validated", "validated", "forwarded", "ignored", "redacted", "quarantined", "quarantined", "quarantined", "bogus"} {
				m.Event(o)
			}
		}, []string{"ucp_audit_events_total"}},
		{"events_initial", func(*Metrics) {}, []string{"ucp_audit_events_total"}},
		{"delivered", func(m *Metrics) {
			m.Delivered(relp, 256)
			m.Delivered(relp, 44)
			m.Delivered(beats, 7)
			m.Delivered(beats, 0)  // ignored
			m.Delivered(beats, -3) // ignored
		}, []string{"ucp_audit_delivered_events_total"}},
		{"delivery_failures", func(m *Metrics) {
			m.DeliveryFailed(relp)
			m.DeliveryFailed(relp)
			m.DeliveryFailed(beats)
		}, []string{"ucp_audit_delivery_failures_total"}},
		{"lost", func(m *Metrics) {
			m.Lost(beats, 12)
			m.Lost(beats, 0) // ignored
			m.Lost(relp, 1<<40)
		}, []string{"ucp_audit_lost_events_total"}},
		{"spool", func(m *Metrics) {
			m.SetSpool(relp, 4096, 1024)
			m.SetSpool(relp, 8192, 2048) // replaces
			m.SetSpool(beats, 100, 0)
		}, []string{"ucp_audit_spool_bytes", "ucp_audit_spool_lag_bytes"}},
		{"spool_shared", func(m *Metrics) {
			a, b := m.Spool(beats), m.Spool(beats)
			a.Set(1000, 10)
			b.Set(500, 5)
			a.Set(2000, 20) // this spool now holds 2000: the sum is 2500
			c := m.Spool(relp)
			c.Set(300, 30)
		}, []string{"ucp_audit_spool_bytes", "ucp_audit_spool_lag_bytes"}},
		{"spool_delete", func(m *Metrics) {
			m.SetSpool(relp, 4096, 1024)
			m.SetSpool(beats, 100, 50)
			m.DeleteDestination(relp)
			m.DeleteDestination("never set") // no-op
		}, []string{"ucp_audit_spool_bytes", "ucp_audit_spool_lag_bytes"}},
		{"spool_close", func(m *Metrics) {
			a, b := m.Spool(beats), m.Spool(beats)
			a.Set(1000, 10)
			b.Set(500, 5)
			a.Close()
			a.Close()     // no-op
			a.Set(99, 99) // no-op after Close
		}, []string{"ucp_audit_spool_bytes", "ucp_audit_spool_lag_bytes"}},
		{"gauges", func(m *Metrics) {
			m.StreamsActive(5)
			m.StreamsActive(3)
			m.FIFOsOpen(4)
		}, []string{"ucp_audit_streams_active", "ucp_audit_fifos_open"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			tt.do(m)
			golden := filepath.Join("testdata", tt.name+".prom")
			if *update {
				writeGolden(t, m, golden, tt.metrics)
			}
			f, err := os.Open(golden)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := testutil.GatherAndCompare(m.Registry(), f, tt.metrics...); err != nil {
				t.Error(err)
			}
		})
	}
}

func writeGolden(t *testing.T, m *Metrics, path string, names []string) {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, f := range fams {
		for _, n := range names {
			if f.GetName() == n {
				if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestToFloat64(t *testing.T) {
	m := New()
	m.LineRead()
	m.Event("quarantined")
	m.Delivered(relp, 3)
	m.DeliveryFailed(relp)
	m.Lost(relp, 2)
	m.SetSpool(relp, 10, 4)
	m.StreamsActive(2)
	m.FIFOsOpen(1)
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"lines", testutil.ToFloat64(m.linesRead), 1},
		{"quarantined", testutil.ToFloat64(m.events.WithLabelValues("quarantined")), 1},
		{"validated", testutil.ToFloat64(m.events.WithLabelValues("validated")), 0},
		{"delivered", testutil.ToFloat64(m.delivered.WithLabelValues(relp)), 3},
		{"failed", testutil.ToFloat64(m.deliveryFails.WithLabelValues(relp)), 1},
		{"lost", testutil.ToFloat64(m.lost.WithLabelValues(relp)), 2},
		{"spool", testutil.ToFloat64(m.spoolBytes.WithLabelValues(relp)), 10},
		{"lag", testutil.ToFloat64(m.spoolLag.WithLabelValues(relp)), 4},
		{"streams", testutil.ToFloat64(m.streamsActive), 2},
		{"fifos", testutil.ToFloat64(m.fifosOpen), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if st := testutil.ToFloat64(m.startTime); time.Since(time.Unix(int64(st), 0)) > time.Minute {
		t.Errorf("start time %v is not now", st)
	}
}

// TestDeleteDestination checks that the gauge series go once the last
// contribution is withdrawn, and that the bookkeeping map shrinks with them.
func TestDeleteDestination(t *testing.T) {
	m := New()
	m.SetSpool(relp, 1, 1)
	a := m.Spool(relp)
	a.Set(10, 10)
	m.Delivered(relp, 1)

	m.DeleteDestination(relp)
	if got := testutil.ToFloat64(m.spoolBytes.WithLabelValues(relp)); got != 10 {
		t.Errorf("after DeleteDestination with a live handle: spool bytes %v, want 10", got)
	}
	a.Close()
	if n := testutil.CollectAndCount(m.spoolBytes); n != 0 {
		t.Errorf("spool_bytes series left: %d", n)
	}
	if n := testutil.CollectAndCount(m.spoolLag); n != 0 {
		t.Errorf("spool_lag_bytes series left: %d", n)
	}
	if len(m.spools) != 0 {
		t.Errorf("spool bookkeeping left: %v", m.spools)
	}
	// Counters stay: they are totals, bounded by the destinations configured.
	if n := testutil.CollectAndCount(m.delivered); n != 1 {
		t.Errorf("delivered series: %d, want 1", n)
	}
}

func TestNil(t *testing.T) {
	var m *Metrics
	m.SetBuildInfo("1", "2")
	m.LineRead()
	m.Event("validated")
	m.Delivered(relp, 1)
	m.DeliveryFailed(relp)
	m.Lost(relp, 1)
	m.SetSpool(relp, 1, 1)
	m.DeleteDestination(relp)
	m.StreamsActive(1)
	m.FIFOsOpen(1)
	m.SetHealth(func() error { return nil })
	g := m.Spool(relp)
	g.Set(1, 1)
	g.Close()
	if m.Registry() != nil {
		t.Error("nil Metrics has a registry")
	}
	if err := m.Serve(t.Context(), "127.0.0.1:0"); err != nil {
		t.Errorf("Serve: %v", err)
	}
	for _, path := range []string{"/metrics", "/healthz"} {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s: %d, want 503", path, rec.Code)
		}
	}
}

func TestHealthHandler(t *testing.T) {
	m := New()
	check := func(want int, body string) {
		t.Helper()
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		if rec.Code != want || rec.Body.String() != body {
			t.Errorf("/healthz = %d %q, want %d %q", rec.Code, rec.Body.String(), want, body)
		}
	}
	check(200, "ok\n")
	m.SetHealth(func() error { return errors.New("audit file: no space left on device") })
	check(503, "audit file: no space left on device\n")
	m.SetHealth(func() error { return nil })
	check(200, "ok\n")
	m.SetHealth(nil)
	check(200, "ok\n")

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/other", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("/other = %d, want 404", rec.Code)
	}
}

// TestConcurrent runs every method at once, for the race detector, and checks
// the sums.
func TestConcurrent(t *testing.T) {
	m := New()
	const workers, rounds = 8, 200
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			g := m.Spool(beats)
			defer g.Close()
			for j := range rounds {
				m.LineRead()
				m.Event(OutcomeForwarded)
				m.Delivered(beats, 1)
				m.DeliveryFailed(relp)
				m.Lost(relp, 1)
				g.Set(int64(j), int64(j/2))
				m.StreamsActive(i)
				m.FIFOsOpen(j)
				m.SetHealth(func() error { return nil })
				_ = m.healthy()
			}
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-t.Context().Done():
				return
			default:
			}
			if _, err := m.Registry().Gather(); err != nil {
				t.Error(err)
				return
			}
			if testutil.ToFloat64(m.linesRead) == workers*rounds {
				return
			}
		}
	}()
	wg.Wait()
	<-done
	if got := testutil.ToFloat64(m.delivered.WithLabelValues(beats)); got != workers*rounds {
		t.Errorf("delivered %v, want %d", got, workers*rounds)
	}
	if n := testutil.CollectAndCount(m.spoolBytes); n != 0 {
		t.Errorf("spool series left after every handle closed: %d", n)
	}
}

// The destination label is bounded: containers choose their destinations.
func TestDestinationLabelBounded(t *testing.T) {
	m := New()
	var gauges []*SpoolGauge
	for i := range 3 * MaxDestinations {
		dest := fmt.Sprintf("syslog udp://10.0.0.%d:514", i)
		m.Delivered(dest, 1)
		m.Lost(dest, 1)
		m.DeliveryFailed(dest)
		g := m.Spool(dest)
		g.Set(10, 5)
		gauges = append(gauges, g)
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "ucp_audit_delivered_events_total", "ucp_audit_lost_events_total", "ucp_audit_delivery_failures_total", "ucp_audit_spool_bytes", "ucp_audit_spool_lag_bytes":
			if n := len(mf.GetMetric()); n != MaxDestinations+1 {
				t.Errorf("%s: %d series, want %d", mf.GetName(), n, MaxDestinations+1)
			}
		}
	}
	for _, g := range gauges {
		g.Close()
	}
	mfs, _ = m.Registry().Gather()
	for _, mf := range mfs {
		if mf.GetName() == "ucp_audit_spool_bytes" && len(mf.GetMetric()) != 0 {
			t.Errorf("spool gauges left after every spool closed: %d", len(mf.GetMetric()))
		}
	}
}
