package metrics

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const (
	statusTimeout   = 10 * time.Second // when ctx has no deadline
	maxMetricsBody  = 16 << 20
	maxHealthzBody  = 4 << 10
	maxHealthOutput = 200 // characters of the /healthz error shown
)

// Status fetches /metrics and /healthz from the listener at addr (host:port
// as given to Serve, or a base URL such as http://127.0.0.1:9464) and returns
// a short human summary: health, version, uptime, streams, lines read,
// events by outcome, per destination delivered/failed/lost/spool, and the
// process' goroutines, open file descriptors and RSS. An unspecified host
// (":9464", "0.0.0.0:9464", "[::]:9464") is reached on loopback. An
// unhealthy plugin is part of the summary, not an error; errors are for an
// address that cannot be read, and name it.
func Status(ctx context.Context, addr string) (string, error) {
	base, err := baseURL(addr)
	if err != nil {
		return "", err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, statusTimeout)
		defer cancel()
	}
	client := &http.Client{}

	fams, err := fetchMetrics(ctx, client, base)
	if err != nil {
		return "", fmt.Errorf("metrics at %s: %w", addr, err)
	}
	health, err := fetchHealth(ctx, client, base)
	if err != nil {
		return "", fmt.Errorf("health at %s: %w", addr, err)
	}
	return summarize(addr, health, fams, time.Now()), nil
}

// baseURL turns the operator's address into the URL to fetch from.
func baseURL(addr string) (string, error) {
	if strings.Contains(addr, "://") {
		return strings.TrimRight(addr, "/"), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

func get(ctx context.Context, client *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	return client.Do(req)
}

func fetchMetrics(ctx context.Context, client *http.Client, base string) (map[string]*dto.MetricFamily, error) {
	resp, err := get(ctx, client, base+"/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, maxMetricsBody))
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	return fams, nil
}

// fetchHealth returns "ok", or what is wrong.
func fetchHealth(ctx context.Context, client *http.Client, base string) (string, error) {
	resp, err := get(ctx, client, base+"/healthz")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthzBody))
	if err != nil {
		return "", fmt.Errorf("GET /healthz: %w", err)
	}
	text := strings.Join(strings.Fields(string(b)), " ")
	if len(text) > maxHealthOutput {
		text = text[:maxHealthOutput] + "…"
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return "ok", nil
	case http.StatusServiceUnavailable:
		return "UNHEALTHY: " + text, nil
	default:
		return "", fmt.Errorf("GET /healthz: %s", resp.Status)
	}
}

// summarize renders the summary. now is the time uptime is measured to.
func summarize(addr, health string, fams map[string]*dto.MetricFamily, now time.Time) string {
	var b strings.Builder
	line := func(k, format string, args ...any) {
		fmt.Fprintf(&b, "%-14s%s\n", k+":", fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(&b, "ucp-audit at %s\n", addr)
	line("health", "%s", health)

	if ms := series(fams, "ucp_audit_build_info"); len(ms) > 0 {
		line("version", "%s (commit %s)", label(ms[0], "version"), label(ms[0], "commit"))
	}
	if v, ok := single(fams, "ucp_audit_start_time_seconds"); ok && v > 0 {
		start := time.Unix(0, int64(v*1e9))
		line("uptime", "%s (since %s)", now.Sub(start).Truncate(time.Second), start.UTC().Format(time.RFC3339))
	}
	line("streams", "%s active, %s FIFOs open",
		num(fams, "ucp_audit_streams_active"), num(fams, "ucp_audit_fifos_open"))
	line("lines read", "%s", num(fams, "ucp_audit_lines_read_total"))

	byOutcome := map[string]float64{}
	for _, m := range series(fams, "ucp_audit_events_total") {
		byOutcome[label(m, "outcome")] += value(m)
	}
	var ev []string
	for _, o := range outcomes {
		if v, ok := byOutcome[o]; ok && ((o != OutcomeOther && o != OutcomeUntrusted) || v > 0) {
			ev = append(ev, o+" "+count(v))
		}
	}
	line("events", "%s", strings.Join(ev, ", "))

	dests := destinations(fams)
	if len(dests) == 0 {
		line("destinations", "none")
	} else {
		b.WriteString("destinations:\n")
		for _, d := range dests {
			spool := "spool -"
			if v, ok := byDest(fams, "ucp_audit_spool_bytes", d); ok {
				lag, _ := byDest(fams, "ucp_audit_spool_lag_bytes", d)
				spool = "spool " + units.BytesSize(v) + ", lag " + units.BytesSize(lag)
			}
			dv, _ := byDest(fams, "ucp_audit_delivered_events_total", d)
			fv, _ := byDest(fams, "ucp_audit_delivery_failures_total", d)
			lv, _ := byDest(fams, "ucp_audit_lost_events_total", d)
			fmt.Fprintf(&b, "  %s: delivered %s, failed %s, lost %s, %s\n", d, count(dv), count(fv), count(lv), spool)
		}
	}

	proc := []string{"goroutines " + num(fams, "go_goroutines")}
	if _, ok := single(fams, "process_open_fds"); ok {
		fds := "open fds " + num(fams, "process_open_fds")
		if _, ok := single(fams, "process_max_fds"); ok {
			fds += "/" + num(fams, "process_max_fds")
		}
		proc = append(proc, fds)
	}
	if v, ok := single(fams, "process_resident_memory_bytes"); ok {
		proc = append(proc, "RSS "+units.BytesSize(v))
	}
	line("process", "%s", strings.Join(proc, ", "))
	return b.String()
}

// destinationMetrics are the families labelled by destination.
var destinationMetrics = []string{
	"ucp_audit_delivered_events_total", "ucp_audit_delivery_failures_total",
	"ucp_audit_lost_events_total", "ucp_audit_spool_bytes", "ucp_audit_spool_lag_bytes",
}

func destinations(fams map[string]*dto.MetricFamily) []string {
	var ds []string
	for _, name := range destinationMetrics {
		for _, m := range series(fams, name) {
			if d := label(m, "destination"); !slices.Contains(ds, d) {
				ds = append(ds, d)
			}
		}
	}
	slices.Sort(ds)
	return ds
}

func series(fams map[string]*dto.MetricFamily, name string) []*dto.Metric {
	if f := fams[name]; f != nil {
		return f.GetMetric()
	}
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func single(fams map[string]*dto.MetricFamily, name string) (float64, bool) {
	ms := series(fams, name)
	if len(ms) == 0 {
		return 0, false
	}
	return value(ms[0]), true
}

func byDest(fams map[string]*dto.MetricFamily, name, dest string) (float64, bool) {
	for _, m := range series(fams, name) {
		if label(m, "destination") == dest {
			return value(m), true
		}
	}
	return 0, false
}

// num is the value of an unlabelled metric, or "?" when it is missing.
func num(fams map[string]*dto.MetricFamily, name string) string {
	if v, ok := single(fams, name); ok {
		return count(v)
	}
	return "?"
}

func count(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
