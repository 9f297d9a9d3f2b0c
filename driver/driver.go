package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/driver/delivery"
	"github.com/ucp-audit/ucp-audit/driver/ingest"
	"github.com/ucp-audit/ucp-audit/driver/pipeline"
	"github.com/ucp-audit/ucp-audit/metrics"
	"github.com/ucp-audit/ucp-audit/node"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/sink/file"
)

// Sentinel errors of the driver.
var (
	// ErrAlreadyLogging: StartLogging for a FIFO that is already being read.
	ErrAlreadyLogging = errors.New("already logging")
	// ErrNotLogging: StopLogging for a FIFO the driver does not know.
	ErrNotLogging = errors.New("not logging")
	// ErrNoLogs: ReadLogs for a container the plugin holds no logs of.
	ErrNoLogs = errors.New("no logs stored for this container")
	// ErrClosed: a call after Close.
	ErrClosed = errors.New("driver closed")
)

// Options configure a Driver.
type Options struct {
	// StateDir holds one directory per container: the docker-logs store and
	// the pipeline's state. The plugin mounts /var/lib/ucp-audit here.
	StateDir string
	// LogDir is where audit and quarantine files may be written.
	LogDir string
	// Host is the node's name, added to every event.
	Host string
	// DrainTimeout bounds how long StopLogging waits for a stream to drain.
	DrainTimeout time.Duration
	// Retention is how long the store of a stopped container is kept.
	Retention time.Duration
	Logger    *slog.Logger
	// Version is recorded in the plugin's self-audit events.
	Version string
	// Metrics, if not nil, counts what the driver does.
	Metrics *metrics.Metrics
	// Sealing is the tamper evidence of every audit and quarantine file:
	// they are always hash chains; Sealing.Key signs their seals. An empty
	// Sealing.StateDir is StateDir/chains: the record of each file's last
	// seal, outside the log directory.
	Sealing file.Sealing
	// Node is the node configuration in force at the start (its trail's
	// files, caps, ceiling, producers); the zero Config is the defaults
	// for LogDir. SetNode changes it while the driver runs.
	Node node.Config
}

// hooks are the driver's seams for tests (see export_test.go); New sets
// none.
type hooks struct {
	// fifoOpenTimeout bounds opening a FIFO: dockerd holds its end open,
	// so only a stale FIFO (its container gone) takes long. 0: 10 s.
	fifoOpenTimeout time.Duration
	// maxQuarantineRecord, if not 0, bounds quarantine records (see
	// pipeline.Options.MaxQuarantineRecord).
	maxQuarantineRecord int
	// wrapSink, if not nil, wraps every output file the driver opens.
	wrapSink func(sink.Sink) sink.Sink
}

// Driver owns every container stream. Its methods are safe for concurrent
// use; dockerd calls them from the plugin's HTTP handlers.
type Driver struct {
	opts   Options
	hooks  hooks
	log    *slog.Logger
	files  *file.Registry
	trail  *trail    // the node's audit and quarantine files
	alerts *alerting // the node's alerting (alerts.go)
	// sinkFail is the trail's failure while a file fails (health.go).
	sinkFail atomic.Pointer[sinkFailure]
	node     atomic.Pointer[node.Config] // the node configuration in force

	// rejected and untrusted space out records a container can cause
	// at will (bad options, audit-looking lines of a non-producer).
	rejected, untrusted recordLimit

	mu      sync.Mutex
	closed  bool
	streams map[string]*stream // by FIFO path, while dockerd logs to it
	byID    map[string]*stream // by container ID, until the pipeline ends
	// starting holds the FIFO paths and container IDs of the streams
	// being started outside the lock (see start).
	starting map[string]bool
	// deliveries by container ID, until every destination has everything
	deliveries map[string]*delivery.Delivery

	ctx     context.Context // cancelled by Close; ends ReadLogs followers
	cancel  context.CancelFunc
	wg      sync.WaitGroup // ReadLogs goroutines, recovery, housekeeping, deliveries ending
	startWG sync.WaitGroup // starts in progress; Close waits for them first
}

// New returns a Driver; Close releases it.
func New(opts Options) (*Driver, error) { return newDriver(opts, hooks{}) }

// newDriver is New with test hooks.
func newDriver(opts Options, h hooks) (*Driver, error) {
	if opts.StateDir == "" {
		return nil, errors.New("driver: no state directory")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 20 * time.Second
	}
	if opts.Sealing.StateDir == "" {
		opts.Sealing.StateDir = filepath.Join(opts.StateDir, "chains")
	}
	if opts.Sealing.OnRecordError == nil {
		warn := &rate.Sometimes{Interval: time.Minute}
		log := opts.Logger
		opts.Sealing.OnRecordError = func(path string, err error) {
			warn.Do(func() {
				log.Error("cannot record a file's last seal in the state directory: a cut of the file back to that seal while the plugin is down would go unnoticed", "file", path, "error", err)
			})
		}
	}
	// The trail says so too (chain-error), through alerting, which exists
	// before any file is opened.
	al := &alerting{}
	onRecord := opts.Sealing.OnRecordError
	opts.Sealing.OnRecordError = func(path string, err error) {
		onRecord(path, err)
		al.chainError(path, err)
	}
	if err := os.MkdirAll(filepath.Join(opts.StateDir, "containers"), 0o700); err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	if h.fifoOpenTimeout == 0 {
		h.fifoOpenTimeout = 10 * time.Second
	}
	if opts.Node.Trail.AuditFile == "" {
		opts.Node = node.Default(node.Env{LogDir: opts.LogDir, StateDir: opts.StateDir})
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Driver{
		opts: opts, hooks: h, log: opts.Logger, files: file.NewSealedRegistry(opts.Sealing),
		streams: map[string]*stream{}, byID: map[string]*stream{}, starting: map[string]bool{},
		deliveries: map[string]*delivery.Delivery{},
		ctx:        ctx, cancel: cancel,
	}
	newAlerting(d, al)
	d.alerts = al
	d.files.OnRecovered = d.sinkRecovered
	d.files.OnCompressError = func(path string, err error) {
		d.log.Error("compressing a rotated audit file failed: it stays plain, and the next rotation tries again", "file", path, "error", err)
	}
	nc := opts.Node
	d.node.Store(&nc)
	t, err := openTrail(nc.Trail, d.openSink, trailHooks{observe: al.observe, failed: d.sinkFailed, synced: d.sinkSynced})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("driver: %w", err)
	}
	d.trail = t
	crashed := d.markRunning()
	d.writeSelf(d.selfEvent(auditlog.SelfPluginStarted, nil))
	if crashed {
		ev := d.selfEvent(auditlog.SelfRestartedAfterCrash, nil)
		ev.Detail = "the previous plugin process did not stop cleanly (killed, or the node went down): its streams are re-attached and their output since is handled"
		d.writeSelf(ev)
	}
	al.apply(nc.Alerts)
	al.start()
	// In the background: a stale FIFO takes the FIFO open timeout to give up,
	// and dockerd waits for the plugin's socket meanwhile.
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.reattach()
		d.resumeDeliveries()
	}()
	if opts.Retention > 0 {
		d.wg.Add(1)
		go d.janitor()
	}
	d.wg.Add(1)
	go d.sealer()
	return d, nil
}

func (d *Driver) containerDir(id string) string {
	return filepath.Join(d.opts.StateDir, "containers", id)
}

// validID keeps container IDs from naming paths outside the state dir.
func validID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/\\.") {
		return fmt.Errorf("invalid container ID %q", id)
	}
	return nil
}

// StartLogging parses the container's log-opts and starts reading its FIFO.
// An option error is returned as is, so dockerd shows it to the user.
func (d *Driver) StartLogging(fifoPath string, info dockerlog.Info) error {
	if err := validID(info.ContainerID); err != nil {
		return err
	}
	env := d.configEnv()
	env.Producer = d.node.Load().IsProducer(container(info))
	cfg, err := config.Parse(info.Config, env)
	if err != nil {
		d.rejectedOptions(info, err)
		return err
	}
	// What the options select of the container's labels and environment,
	// redacted; the rest is never kept (the environment holds secrets).
	cfg.Extra = cfg.Attributes(info.ContainerLabels, info.ContainerEnv)
	info.ContainerLabels, info.ContainerEnv = nil, nil
	s, err := d.start(fifoPath, info, cfg, auditlog.SelfStreamAttached, nil, true)
	if err != nil {
		return err
	}
	d.log.Info("logging started", "container", info.ContainerID, "name", info.Name(), "producer", s.producer.Load())
	return nil
}

// configEnv is what config.Parse needs of the node.
func (d *Driver) configEnv() config.Env {
	return config.Env{Caps: d.node.Load().Caps, CertDir: filepath.Join(d.opts.StateDir, "certs")}
}

// rejectedOptions records a container's options that were refused: at most
// one record a second, node-wide (a container can try as often as it
// likes), with the count of the others.
func (d *Driver) rejectedOptions(info dockerlog.Info, err error) {
	ok, dropped := d.rejected.allow()
	if !ok {
		return
	}
	ev := d.selfEvent(auditlog.SelfConfigRejected, &info)
	ev.Detail = err.Error()
	if dropped > 0 {
		ev.Detail += fmt.Sprintf(" (and %d more refusals since the last record)", dropped)
	}
	d.writeSelf(ev)
}

// start starts a stream of info's container on fifoPath (how: attached or
// re-attached; gone as for startStreamAs). It reserves the FIFO and the
// container under the lock, then opens and starts everything without it:
// a slow start (a large store, a stale FIFO at re-attach) never holds up
// another container's StartLogging. With replace, a stream or delivery of
// the container still running (it restarted while they drained) is
// stopped at its checkpoint and the new stream takes over; without it,
// they make the start fail.
func (d *Driver) start(fifoPath string, info dockerlog.Info, cfg config.Config, how string, gone error, replace bool) (*stream, error) {
	id := info.ContainerID
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return nil, ErrClosed
	case d.streams[fifoPath] != nil || d.starting[fifoPath]:
		d.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", fifoPath, ErrAlreadyLogging)
	case d.starting["id:"+id] || (!replace && d.byID[id] != nil):
		d.mu.Unlock()
		return nil, fmt.Errorf("container %s: %w", id, ErrAlreadyLogging)
	}
	old, oldDl := d.byID[id], d.deliveries[id]
	delete(d.byID, id)
	delete(d.deliveries, id)
	d.starting[fifoPath], d.starting["id:"+id] = true, true
	d.startWG.Add(1)
	d.mu.Unlock()
	defer d.startWG.Done()

	if old != nil {
		old.kill()
	}
	if oldDl != nil {
		// Still delivering the previous run's events: the new stream's
		// delivery takes over the spool and the cursors.
		oldDl.Stop()
	}
	s, err := d.startStreamAs(fifoPath, info, cfg, d.streamDone, how, gone)
	if gone == nil && errors.Is(err, ingest.ErrFIFOOpen) && how == auditlog.SelfStreamReattach {
		// A FIFO nobody writes any more does not open within the
		// timeout: finish the stream from what the plugin took.
		gone = err
		s, err = d.startStreamAs(fifoPath, info, cfg, d.streamDone, how, gone)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.starting, fifoPath)
	delete(d.starting, "id:"+id)
	if err != nil {
		return nil, fmt.Errorf("ucp-audit: container %s: %w", id, err)
	}
	// Registered even after a Close began: Close waits for the starts
	// in progress, then suspends every stream it finds.
	if gone == nil {
		d.streams[fifoPath] = s
	}
	d.byID[id] = s
	if s.dl != nil {
		d.deliveries[id] = s.dl
	}
	s.gone = gone
	d.gaugesLocked()
	return s, nil
}

func (d *Driver) streamDone(s *stream) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byID[s.id] == s {
		delete(d.byID, s.id)
	}
	d.gaugesLocked()
}

// gaugesLocked updates the stream gauges; d.mu is held.
func (d *Driver) gaugesLocked() {
	d.opts.Metrics.StreamsActive(len(d.byID))
	d.opts.Metrics.FIFOsOpen(len(d.streams))
}

// StopLogging drains the stream of fifoPath, waiting at most DrainTimeout.
func (d *Driver) StopLogging(fifoPath string) error {
	d.mu.Lock()
	s := d.streams[fifoPath]
	delete(d.streams, fifoPath)
	d.gaugesLocked()
	d.mu.Unlock()
	if s == nil {
		return fmt.Errorf("%s: %w", fifoPath, ErrNotLogging)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.DrainTimeout)
	defer cancel()
	err := s.stop(ctx)
	if err != nil {
		d.log.Error("stop logging", "container", s.id, "error", err)
		// Answer dockerd anyway: the container must be able to stop, and
		// the lines are safe in the store.
		if errors.Is(err, ErrDrainTimeout) {
			return nil
		}
		return err
	}
	d.log.Info("logging stopped", "container", s.id)
	return nil
}

// Close drains every stream (each within DrainTimeout), stops the rest at
// their checkpoints, ends ReadLogs followers and waits for all goroutines.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.startWG.Wait()
	d.mu.Lock()
	var all []*stream
	for _, s := range d.byID {
		all = append(all, s)
	}
	d.mu.Unlock()

	// Streams still here were not stopped by dockerd: their containers
	// go on (the plugin is being disabled with -f, or upgraded). Each is
	// suspended, not ended: what dockerd wrote is stored and handled,
	// and the next start of the plugin re-attaches to the FIFO.
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.DrainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.suspend(ctx); err != nil {
				d.log.Error("drain at shutdown", "container", s.id, "error", err)
			}
		}()
	}
	wg.Wait()
	// Remote delivery stops at its last commit; the next start resumes it.
	d.mu.Lock()
	var dls []*delivery.Delivery
	for _, dl := range d.deliveries {
		dls = append(dls, dl)
	}
	d.mu.Unlock()
	for _, dl := range dls {
		dl.Stop()
	}
	// The alerts of the last records go into their spools first.
	d.alerts.close()
	d.cancel()
	d.wg.Wait()
	d.writeSelf(d.selfEvent(auditlog.SelfPluginStopped, nil))
	err := errors.Join(d.trail.close(), d.files.Close())
	if err == nil {
		d.markStopped()
	}
	return err
}

// runningMarker is a file that exists while a plugin process runs on the
// state directory: found at start, the last process did not stop cleanly.
func (d *Driver) runningMarker() string { return filepath.Join(d.opts.StateDir, "plugin.running") }

// markRunning creates the running marker and reports whether it was
// already there.
func (d *Driver) markRunning() (crashed bool) {
	p := d.runningMarker()
	_, err := os.Stat(p)
	crashed = err == nil
	if err := os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		d.log.Warn("cannot mark the plugin as running: a crash will not be told from a clean stop", "error", err)
	}
	return crashed
}

// markStopped removes the running marker after a clean stop.
func (d *Driver) markStopped() {
	if err := os.Remove(d.runningMarker()); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Warn("cannot remove the plugin's running marker", "error", err)
	}
}

// eachState calls visit with the directory and the saved state of every
// container under the state directory whose state loads.
func (d *Driver) eachState(visit func(dir string, st pipeline.State)) error {
	root := filepath.Join(d.opts.StateDir, "containers")
	ents, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		st, found, err := pipeline.Load(dir)
		if err != nil || !found {
			continue
		}
		visit(dir, st)
	}
	return nil
}
