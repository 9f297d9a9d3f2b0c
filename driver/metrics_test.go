package driver

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/metrics"
)

// metricValue sums the series of a metric whose labels contain want.
func metricValue(t *testing.T, m *metrics.Metrics, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, mt := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, lp := range mt.GetLabel() {
					if lp.GetName() == k && strings.HasPrefix(lp.GetValue(), v) {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			switch {
			case mt.Counter != nil:
				sum += mt.Counter.GetValue()
			case mt.Gauge != nil:
				sum += mt.Gauge.GetValue()
			}
		}
	}
	return sum
}

func TestDriverMetrics(t *testing.T) {
	peer := newBeatsPeer(t)
	peer.start()
	m := metrics.New()
	root := t.TempDir()
	d, err := New(Options{StateDir: filepath.Join(root, "state"), LogDir: filepath.Join(root, "log"), DrainTimeout: 10 * time.Second, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	h := &harness{t: t, d: d, logDir: filepath.Join(root, "log"), id: strings.Repeat("ef", 32)}
	h.start(map[string]string{"logstash-address": "beats://" + peer.addr})
	if got := metricValue(t, m, "ucp_audit_streams_active", nil); got != 1 {
		t.Errorf("streams_active = %v", got)
	}
	h.write("stdout", "plain")
	h.write("stdout", auditLine("a", "/v1.41/nodes"))
	h.write("stdout", auditLine("b", "/_ping"))
	h.write("stdout", `{"audit":"broken","auditID":"c"}`)
	h.stop()
	peer.waitFor([]string{"a"}, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, m, "ucp_audit_delivered_events_total", nil) < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ucp_audit_lines_read_total", nil, 4},
		{"ucp_audit_events_total", map[string]string{"outcome": "validated"}, 2},
		{"ucp_audit_events_total", map[string]string{"outcome": "ignored"}, 1},
		{"ucp_audit_events_total", map[string]string{"outcome": "forwarded"}, 1},
		{"ucp_audit_events_total", map[string]string{"outcome": "quarantined"}, 1},
		{"ucp_audit_delivered_events_total", map[string]string{"destination": "logstash beats://"}, 1},
		{"ucp_audit_fifos_open", nil, 0},
	} {
		if got := metricValue(t, m, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
