package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/driver/delivery"
	"github.com/ucp-audit/ucp-audit/driver/pipeline"
	"github.com/ucp-audit/ucp-audit/metrics"
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
	opts       Options
	hooks      hooks
	log        *slog.Logger
	files      *file.Registry
	defaultCfg config.Config // for self-audit events outside any stream

	mu      sync.Mutex
	closed  bool
	streams map[string]*stream // by FIFO path, while dockerd logs to it
	byID    map[string]*stream // by container ID, until the pipeline ends
	// deliveries by container ID, until every destination has everything
	deliveries map[string]*delivery.Delivery

	ctx    context.Context // cancelled by Close; ends ReadLogs followers
	cancel context.CancelFunc
	wg     sync.WaitGroup // ReadLogs goroutines, recovery, housekeeping, deliveries ending
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
	if err := os.MkdirAll(filepath.Join(opts.StateDir, "containers"), 0o700); err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	if h.fifoOpenTimeout == 0 {
		h.fifoOpenTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Driver{
		opts: opts, hooks: h, log: opts.Logger, files: file.NewSealedRegistry(opts.Sealing),
		streams: map[string]*stream{}, byID: map[string]*stream{}, deliveries: map[string]*delivery.Delivery{},
		ctx: ctx, cancel: cancel,
	}
	d.defaultCfg = config.Default(config.Env{LogDir: opts.LogDir})
	started := d.selfEvent(auditlog.SelfPluginStarted, nil)
	d.writeSelfDefault(started)
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
	cfg, err := config.Parse(info.Config, config.Env{LogDir: d.opts.LogDir})
	if err != nil {
		ev := d.selfEvent(auditlog.SelfConfigRejected, &info)
		ev.Detail = err.Error()
		d.writeSelfDefault(ev)
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if _, ok := d.streams[fifoPath]; ok {
		return fmt.Errorf("%s: %w", fifoPath, ErrAlreadyLogging)
	}
	if old := d.byID[info.ContainerID]; old != nil {
		// The container was restarted while its previous stream was
		// still draining: stop that one at its checkpoint; the new
		// stream resumes from there.
		old.kill()
		delete(d.byID, info.ContainerID)
	}
	if old := d.deliveries[info.ContainerID]; old != nil {
		// Still delivering the previous run's events: the new stream's
		// delivery takes over the spool and the cursors.
		old.Stop()
		delete(d.deliveries, info.ContainerID)
	}
	s, err := d.startStream(fifoPath, info, cfg, d.streamDone)
	if err != nil {
		return fmt.Errorf("ucp-audit: container %s: %w", info.ContainerID, err)
	}
	d.streams[fifoPath] = s
	d.byID[info.ContainerID] = s
	d.gaugesLocked()
	d.log.Info("logging started", "container", info.ContainerID, "name", info.Name())
	return nil
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

// Healthy reports an error when the driver cannot take new streams.
func (d *Driver) Healthy() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return nil
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
	d.cancel()
	d.wg.Wait()
	d.writeSelfDefault(d.selfEvent(auditlog.SelfPluginStopped, nil))
	return d.files.Close()
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
