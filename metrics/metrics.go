package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "ucp_audit"

// Outcomes of ucp_audit_events_total. Any other value passed to Event is
// counted as OutcomeOther, so the label stays bounded.
const (
	OutcomeValidated   = "validated"
	OutcomeForwarded   = "forwarded"
	OutcomeIgnored     = "ignored"
	OutcomeRedacted    = "redacted"
	OutcomeQuarantined = "quarantined"
	// OutcomeUntrusted: an audit-looking line of a container that is not
	// an audit producer, kept out of the trail.
	OutcomeUntrusted = "untrusted"
	OutcomeOther     = "other"
)

// outcomes are the outcome label values, in the order Status prints them.
var outcomes = []string{OutcomeValidated, OutcomeForwarded, OutcomeIgnored, OutcomeRedacted, OutcomeQuarantined, OutcomeUntrusted, OutcomeOther}

// Metrics holds the plugin's metrics in its own registry. The zero value is
// not usable; use New. A nil *Metrics is a no-op. All methods are safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	buildInfo     *prometheus.GaugeVec
	startTime     prometheus.Gauge
	linesRead     prometheus.Counter
	events        *prometheus.CounterVec
	delivered     *prometheus.CounterVec
	deliveryFails *prometheus.CounterVec
	lost          *prometheus.CounterVec
	inputLost     prometheus.Counter
	spoolBytes    *prometheus.GaugeVec
	spoolLag      *prometheus.GaugeVec
	streamsActive prometheus.Gauge
	fifosOpen     prometheus.Gauge
	alertsFired   *prometheus.CounterVec
	sinkFailing   prometheus.Gauge

	health atomic.Pointer[func() error]

	mu     sync.Mutex // guards spools, and the spool gauges against a concurrent delete
	spools map[string]*spoolDest

	lmu   sync.Mutex
	dests map[string]bool // the destination label values in use (MaxDestinations at most)
}

// MaxDestinations bounds the values of the destination label: a container
// chooses its own destinations, so without a bound it could grow the
// series without end. The destinations seen after the first
// MaxDestinations share the label value OtherDestination.
const (
	MaxDestinations  = 64
	OtherDestination = "other"
)

// destLabel returns the label value of dest: dest itself for the first
// MaxDestinations destinations, OtherDestination for the rest.
func (m *Metrics) destLabel(dest string) string {
	m.lmu.Lock()
	defer m.lmu.Unlock()
	if m.dests[dest] {
		return dest
	}
	if len(m.dests) >= MaxDestinations {
		return OtherDestination
	}
	m.dests[dest] = true
	return dest
}

// spoolDest is the sum of the spools feeding one destination, and who
// contributes to it.
type spoolDest struct {
	bytes, lag int64
	owners     map[*SpoolGauge]spoolUse // nil key: SetSpool's contribution
}

type spoolUse struct{ bytes, lag int64 }

// New returns a Metrics with its own registry holding the ucp_audit_*
// metrics and the Go and process collectors. ucp_audit_start_time_seconds is
// set to now.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "build_info",
			Help: "Always 1; the labels identify the running build.",
		}, []string{"version", "commit"}),
		startTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "start_time_seconds",
			Help: "Unix time at which the plugin started.",
		}),
		linesRead: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "lines_read_total",
			Help: "Complete log lines read from the containers' FIFOs, audit or not.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "events_total",
			Help: "Audit events by outcome (validated, forwarded, ignored, redacted, quarantined, untrusted: from a container that is not an audit producer, other); an event counts once for each outcome it reaches.",
		}, []string{"outcome"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "delivered_events_total",
			Help: "Audit events acknowledged by a remote destination.",
		}, []string{"destination"}),
		deliveryFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "delivery_failures_total",
			Help: "Failed delivery attempts to a remote destination; the events stay in the spool and are retried.",
		}, []string{"destination"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "lost_events_total",
			Help: "Audit events a remote destination will never get, each recorded as a gap.",
		}, []string{"destination"}),
		inputLost: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "input_lost_bytes_total",
			Help: "Bytes of container output the plugin could not keep (a failing log store, a corrupt FIFO stream), each loss recorded in quarantine.log.",
		}),
		spoolBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "spool_bytes",
			Help: "Bytes held in the spools feeding a remote destination.",
		}, []string{"destination"}),
		spoolLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "spool_lag_bytes",
			Help: "Spooled bytes not yet delivered to a remote destination.",
		}, []string{"destination"}),
		streamsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "streams_active",
			Help: "Container log streams currently attached.",
		}),
		sinkFailing: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "sink_failing",
			Help: "1 while a file of the audit trail fails to write or sync (until it recovers), else 0.",
		}),
		alertsFired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "alerts_fired_total",
			Help: "Alerts raised, by rule or built-in alarm (one per output the rule names), each recorded as an alert-fired self record.",
		}, []string{"rule"}),
		fifosOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "fifos_open",
			Help: "FIFOs from dockerd currently open.",
		}),
		spools: make(map[string]*spoolDest),
		dests:  make(map[string]bool),
	}
	m.reg.MustRegister(
		m.buildInfo, m.startTime, m.linesRead, m.events,
		m.delivered, m.deliveryFails, m.lost, m.inputLost, m.spoolBytes, m.spoolLag,
		m.streamsActive, m.fifosOpen, m.alertsFired, m.sinkFailing,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Every outcome is exported from the start, so a rate over it works
	// before the first event.
	for _, o := range outcomes {
		m.events.WithLabelValues(o)
	}
	m.startTime.Set(float64(time.Now().UnixNano()) / 1e9)
	return m
}

// Registry returns the registry holding all metrics (nil for a nil
// Metrics), for tests and for registering further collectors.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// SetBuildInfo sets ucp_audit_build_info{version,commit} to 1, replacing any
// previous build info.
func (m *Metrics) SetBuildInfo(version, commit string) {
	if m == nil {
		return
	}
	m.buildInfo.Reset()
	m.buildInfo.WithLabelValues(version, commit).Set(1)
}

// LineRead counts one complete line read from a container
// (ucp_audit_lines_read_total).
func (m *Metrics) LineRead() {
	if m == nil {
		return
	}
	m.linesRead.Inc()
}

// Event counts one audit event reaching outcome (ucp_audit_events_total).
// outcome is one of the Outcome constants; anything else counts as
// OutcomeOther.
func (m *Metrics) Event(outcome string) {
	if m == nil {
		return
	}
	switch outcome {
	case OutcomeValidated, OutcomeForwarded, OutcomeIgnored, OutcomeRedacted, OutcomeQuarantined, OutcomeUntrusted:
	default:
		outcome = OutcomeOther
	}
	m.events.WithLabelValues(outcome).Inc()
}

// Delivered counts n events acknowledged by dest
// (ucp_audit_delivered_events_total). n <= 0 is ignored.
func (m *Metrics) Delivered(dest string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.delivered.WithLabelValues(m.destLabel(dest)).Add(float64(n))
}

// DeliveryFailed counts one failed delivery attempt to dest
// (ucp_audit_delivery_failures_total).
func (m *Metrics) DeliveryFailed(dest string) {
	if m == nil {
		return
	}
	m.deliveryFails.WithLabelValues(m.destLabel(dest)).Inc()
}

// Lost counts n events dest will never get (ucp_audit_lost_events_total).
// n == 0 is ignored.
func (m *Metrics) Lost(dest string, n uint64) {
	if m == nil || n == 0 {
		return
	}
	m.lost.WithLabelValues(m.destLabel(dest)).Add(float64(n))
}

// SetSinkFailing sets ucp_audit_sink_failing: whether a file of the trail
// fails now.
func (m *Metrics) SetSinkFailing(failing bool) {
	if m == nil {
		return
	}
	v := 0.0
	if failing {
		v = 1
	}
	m.sinkFailing.Set(v)
}

// SetPipelineLag registers ucp_audit_pipeline_lag_bytes, read from lag
// at each scrape: the bytes the pipelines are behind what their readers
// stored. lag must be quick and safe for concurrent use.
func (m *Metrics) SetPipelineLag(lag func() int64) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "pipeline_lag_bytes",
		Help: "Bytes the audit pipelines are behind what their readers stored from the FIFOs.",
	}, func() float64 { return float64(lag()) }))
}

// AlertFired counts an alert raised by rule (ucp_audit_alerts_fired_total).
// Rules are the node configuration's, so the label is bounded by it.
func (m *Metrics) AlertFired(rule string) {
	if m == nil {
		return
	}
	m.alertsFired.WithLabelValues(rule).Inc()
}

// InputLost counts n bytes of container output the plugin could not keep
// (ucp_audit_input_lost_bytes_total). n <= 0 is ignored.
func (m *Metrics) InputLost(n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.inputLost.Add(float64(n))
}

// StreamsActive sets ucp_audit_streams_active.
func (m *Metrics) StreamsActive(n int) {
	if m == nil {
		return
	}
	m.streamsActive.Set(float64(n))
}

// FIFOsOpen sets ucp_audit_fifos_open.
func (m *Metrics) FIFOsOpen(n int) {
	if m == nil {
		return
	}
	m.fifosOpen.Set(float64(n))
}

// SetHealth sets the health check behind /healthz: 200 "ok" while f returns
// nil, else 503 with the error's text. f must be quick and safe for
// concurrent use; nil means always healthy.
func (m *Metrics) SetHealth(f func() error) {
	if m == nil {
		return
	}
	if f == nil {
		m.health.Store(nil)
		return
	}
	m.health.Store(&f)
}

// healthy runs the health check.
func (m *Metrics) healthy() error {
	if f := m.health.Load(); f != nil {
		return (*f)()
	}
	return nil
}

// SpoolGauge is one spool's contribution to the spool gauges of a
// destination. Several containers' spools usually feed the same destination
// name; ucp_audit_spool_bytes and ucp_audit_spool_lag_bytes show the sum of
// the live contributions. A nil *SpoolGauge is a no-op.
type SpoolGauge struct {
	m      *Metrics
	dest   string
	closed bool // guarded by m.mu
}

// Spool registers one spool feeding dest and returns its handle. Set it as
// the spool changes and Close it when the delivery ends: the destination's
// gauge series are removed when its last contribution is closed.
func (m *Metrics) Spool(dest string) *SpoolGauge {
	if m == nil {
		return nil
	}
	g := &SpoolGauge{m: m, dest: m.destLabel(dest)}
	m.setSpool(g.dest, g, 0, 0)
	return g
}

// Set records this spool's size and undelivered bytes.
func (g *SpoolGauge) Set(bytes, lag int64) {
	if g == nil {
		return
	}
	g.m.setSpool(g.dest, g, bytes, lag)
}

// Close withdraws this spool's contribution. Set and Close do nothing
// after Close.
func (g *SpoolGauge) Close() {
	if g == nil {
		return
	}
	g.m.dropSpool(g.dest, g)
}

// SetSpool sets the spool gauges of dest for a destination fed by a single
// spool (ucp_audit_spool_bytes = bytes, ucp_audit_spool_lag_bytes = lag, the
// bytes not yet delivered). When several spools feed the same destination
// name, give each its own handle with Spool instead; the two add up.
func (m *Metrics) SetSpool(dest string, bytes, lag int64) {
	if m == nil {
		return
	}
	m.setSpool(m.destLabel(dest), nil, bytes, lag)
}

// DeleteDestination withdraws what SetSpool set for dest; once no Spool
// handle contributes either, the destination's gauge series are removed.
// Its counters are kept: they are bounded by the destinations configured.
func (m *Metrics) DeleteDestination(dest string) {
	if m == nil {
		return
	}
	m.dropSpool(m.destLabel(dest), nil)
}

func (m *Metrics) setSpool(dest string, owner *SpoolGauge, bytes, lag int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if owner != nil && owner.closed {
		return
	}
	d := m.spools[dest]
	if d == nil {
		d = &spoolDest{owners: make(map[*SpoolGauge]spoolUse)}
		m.spools[dest] = d
	}
	old := d.owners[owner]
	d.owners[owner] = spoolUse{bytes, lag}
	d.bytes += bytes - old.bytes
	d.lag += lag - old.lag
	m.spoolBytes.WithLabelValues(dest).Set(float64(d.bytes))
	m.spoolLag.WithLabelValues(dest).Set(float64(d.lag))
}

func (m *Metrics) dropSpool(dest string, owner *SpoolGauge) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if owner != nil {
		owner.closed = true
	}
	d := m.spools[dest]
	if d == nil {
		return
	}
	old, ok := d.owners[owner]
	if !ok {
		return
	}
	delete(d.owners, owner)
	if len(d.owners) == 0 {
		delete(m.spools, dest)
		m.spoolBytes.DeleteLabelValues(dest)
		m.spoolLag.DeleteLabelValues(dest)
		return
	}
	d.bytes -= old.bytes
	d.lag -= old.lag
	m.spoolBytes.WithLabelValues(dest).Set(float64(d.bytes))
	m.spoolLag.WithLabelValues(dest).Set(float64(d.lag))
}
