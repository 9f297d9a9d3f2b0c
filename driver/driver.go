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
	"github.com/ucp-audit/ucp-audit/driver/ingest"
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

	fifoOpenTimeout time.Duration // tests shorten it
	// maxQuarantineRecord, if set, bounds quarantine records (tests).
	maxQuarantineRecord int
	// wrapSink, if set, wraps every output file the driver opens (tests).
	wrapSink func(sink.Sink) sink.Sink
}

// Driver owns every container stream. Its methods are safe for concurrent
// use; dockerd calls them from the plugin's HTTP handlers.
type Driver struct {
	opts  Options
	log   *slog.Logger
	files *file.Registry
	// openSink opens an output file; tests replace it.
	openSink   func(file.Options) (sink.Sink, error)
	defaultCfg config.Config // for self-audit events outside any stream
	// fifoOpenTimeout bounds opening a FIFO: dockerd holds its end open,
	// so only a stale FIFO (its container gone) takes long.
	fifoOpenTimeout     time.Duration
	maxQuarantineRecord int // see pipeline.Options.MaxQuarantineRecord

	mu      sync.Mutex
	closed  bool
	streams map[string]*stream // by FIFO path, while dockerd logs to it
	byID    map[string]*stream // by container ID, until the pipeline ends
	// deliveries by container ID, until every destination has everything
	deliveries map[string]*delivery.Delivery

	ctx    context.Context // cancelled by Close; ends ReadLogs followers
	cancel context.CancelFunc
	wg     sync.WaitGroup // ReadLogs goroutines and the janitor
}

// New returns a Driver; Close releases it.
func New(opts Options) (*Driver, error) {
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
	ctx, cancel := context.WithCancel(context.Background())
	d := &Driver{
		opts: opts, log: opts.Logger, files: file.NewSealedRegistry(opts.Sealing),
		streams: map[string]*stream{}, byID: map[string]*stream{}, deliveries: map[string]*delivery.Delivery{},
		ctx: ctx, cancel: cancel,
	}
	d.openSink = d.files.Open
	if wrap := opts.wrapSink; wrap != nil {
		d.openSink = func(o file.Options) (sink.Sink, error) {
			s, err := d.files.Open(o)
			if err != nil {
				return nil, err
			}
			return wrap(s), nil
		}
	}
	d.defaultCfg = config.Default(config.Env{LogDir: opts.LogDir})
	started := d.selfEvent(auditlog.SelfPluginStarted, nil)
	d.writeSelfDefault(started)
	d.fifoOpenTimeout = opts.fifoOpenTimeout
	d.maxQuarantineRecord = opts.maxQuarantineRecord
	if d.fifoOpenTimeout == 0 {
		d.fifoOpenTimeout = 10 * time.Second
	}
	// In the background: a stale FIFO takes fifoOpenTimeout to give up,
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

// sealer seals the audit and quarantine files that went quiet with lines
// not sealed yet, checking four times per seal interval: a file's
// unsealed tail is then at most about one interval old.
func (d *Driver) sealer() {
	defer d.wg.Done()
	every := d.opts.Sealing.Interval
	if every <= 0 {
		every = file.DefaultSealInterval
	}
	t := time.NewTicker(every / 4)
	defer t.Stop()
	warn := rate.Sometimes{Interval: time.Minute}
	for {
		select {
		case <-t.C:
		case <-d.ctx.Done():
			return
		}
		if err := d.files.SealIdle(); err != nil {
			warn.Do(func() { d.log.Error("sealing an idle audit file failed", "error", err) })
		}
	}
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

// janitor removes the stores of containers stopped longer than Retention,
// so that private copies of logs never fill the disk unnoticed.
func (d *Driver) janitor() {
	defer d.wg.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		d.prune(time.Now())
		select {
		case <-t.C:
		case <-d.ctx.Done():
			return
		}
	}
}

func (d *Driver) prune(now time.Time) {
	root := filepath.Join(d.opts.StateDir, "containers")
	ents, err := os.ReadDir(root)
	if err != nil {
		d.log.Error("prune stores", "error", err)
		return
	}
	for _, e := range ents {
		id := e.Name()
		d.pruneOne(filepath.Join(root, id), id, now)
	}
}

// pruneOne checks and removes under the driver's lock, so that no
// StartLogging can begin on a store being removed.
func (d *Driver) pruneOne(dir, id string, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byID[id] != nil || d.deliveries[id] != nil {
		return
	}
	st, found, err := pipeline.Load(dir)
	if err != nil || !found || st.Running || now.Sub(st.Updated) < d.opts.Retention {
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		d.log.Error("prune store", "container", id, "error", err)
		return
	}
	d.log.Info("removed the log store of a container stopped long ago", "container", id, "stopped", st.Updated)
}

// openDelivery starts the remote delivery of a container, with its own
// references to the container's output files for recording losses. The
// caller holds d.mu (or is New).
func (d *Driver) openDelivery(dir string, cfg config.Config, info dockerlog.Info, dests []delivery.Target) (*delivery.Delivery, error) {
	auditFile, err := d.openSink(file.Options{Path: cfg.AuditFile, MaxSize: cfg.AuditFileMaxSize, MaxFiles: cfg.AuditFileMaxFile})
	if err != nil {
		return nil, err
	}
	quarantine, err := d.openSink(file.Options{Path: cfg.QuarantineFile, MaxSize: cfg.AuditFileMaxSize, MaxFiles: cfg.AuditFileMaxFile})
	if err != nil {
		auditFile.Close()
		return nil, err
	}
	log := d.log.With("container", info.ContainerID)
	lost := func(g auditlog.Gap) {
		d.opts.Metrics.Lost(g.Destination, g.Lost)
		if err := pipeline.RecordGap(g, info, auditFile, quarantine); err != nil {
			log.Error("recording a delivery gap failed", "gap", g, "error", err)
		}
		log.Warn("events lost for a destination", "destination", g.Destination, "lost", g.Lost, "first_seq", g.FirstSeq, "reason", g.Reason)
	}
	note := func(typ, dest, detail string) {
		ev := d.selfEvent(typ, &info)
		ev.Destination, ev.Detail = dest, detail
		if err := pipeline.WriteSelf(auditFile, ev); err != nil {
			log.Warn("cannot record a self-audit event", "event", typ, "error", err)
		}
	}
	dl, err := delivery.Open(delivery.Options{
		Dir: dir, Config: cfg, Targets: dests, Log: log, Lost: lost, Note: note,
		Metrics: d.opts.Metrics, BlockRate: ingest.BlockRate,
	})
	if err != nil {
		auditFile.Close()
		quarantine.Close()
		return nil, err
	}
	id := info.ContainerID
	d.deliveries[id] = dl
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		<-dl.Done()
		auditFile.Close()
		quarantine.Close()
		d.mu.Lock()
		if d.deliveries[id] == dl {
			delete(d.deliveries, id)
		}
		d.mu.Unlock()
	}()
	return dl, nil
}

// resumeDeliveries restarts the delivery of events spooled before the
// plugin stopped: containers that are gone or stopped still get every event
// to every destination.
func (d *Driver) resumeDeliveries() {
	root := filepath.Join(d.opts.StateDir, "containers")
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "spool")); err != nil {
			continue
		}
		st, found, err := pipeline.Load(dir)
		if err != nil || !found || validID(st.Info.ContainerID) != nil {
			continue
		}
		cfg, err := config.Parse(st.Info.Config, config.Env{LogDir: d.opts.LogDir})
		if err != nil {
			// The spool stays for when the options parse again (a
			// certificate put back); the audit trail says why it waits.
			d.log.Error("cannot resume delivery: its options no longer parse", "container", st.Info.ContainerID, "error", err)
			ev := d.selfEvent(auditlog.SelfConfigRejected, &st.Info)
			ev.Detail = fmt.Sprintf("spooled events wait undelivered: the container's options no longer parse: %v", err)
			d.writeSelfDefault(ev)
			continue
		}
		d.resumeOne(dir, cfg, st)
	}
}

func (d *Driver) resumeOne(dir string, cfg config.Config, st pipeline.State) {
	info := st.Info
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.deliveries[info.ContainerID] != nil || d.byID[info.ContainerID] != nil {
		return
	}
	dests, err := delivery.NewTargets(cfg, info, d.opts.Host)
	if err != nil || len(dests) == 0 {
		return
	}
	dl, err := d.openDelivery(dir, cfg, info, dests)
	if err != nil {
		delivery.CloseTargets(dests)
		d.log.Error("cannot resume delivery", "container", info.ContainerID, "error", err)
		return
	}
	dl.Finish()
	if d.opts.Retention > 0 && !st.Running {
		dl.GiveUpAt(st.Updated.Add(d.opts.Retention))
	}
	d.log.Info("resumed delivery of spooled events", "container", info.ContainerID)
}

// reattach resumes the streams that were running when the plugin stopped
// without StopLogging (a crash, kill -9): dockerd restarts the plugin but
// never calls StartLogging again, while it keeps the FIFO open, so what the
// container wrote meanwhile waits in the pipe. The pipeline resumes from its
// checkpoint, so seq numbering continues.
func (d *Driver) reattach() {
	root := filepath.Join(d.opts.StateDir, "containers")
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		st, found, err := pipeline.Load(dir)
		if err != nil || !found || !st.Running || st.FIFO == "" || validID(st.Info.ContainerID) != nil {
			continue
		}
		gone, err := d.reattachOne(dir, st)
		if err != nil {
			d.log.Warn("not re-attaching a stream", "container", st.Info.ContainerID, "fifo", st.FIFO, "reason", err)
			st.Running = false
			if err := pipeline.Save(dir, st); err != nil {
				d.log.Error("save stream state", "container", st.Info.ContainerID, "error", err)
			}
			continue
		}
		if gone != nil {
			d.log.Warn("cannot re-attach a stream: handling what was taken from its FIFO, then detaching", "container", st.Info.ContainerID, "fifo", st.FIFO, "reason", gone)
			continue
		}
		d.log.Info("re-attached to a running container's stream", "container", st.Info.ContainerID, "fifo", st.FIFO)
	}
}

// reattachOne resumes one stream. When its FIFO is gone, or nobody writes
// it any more (the container ended while the plugin was down, or dockerd
// restarted), it still finishes the stream from what the plugin had taken
// (see startStreamAs), and gone says why the FIFO was not re-opened.
func (d *Driver) reattachOne(dir string, st pipeline.State) (gone, err error) {
	if fi, err := os.Stat(st.FIFO); err != nil {
		gone = err
	} else if fi.Mode()&os.ModeNamedPipe == 0 {
		gone = fmt.Errorf("%s is not a FIFO", st.FIFO)
	}
	cfg, err := config.Parse(st.Info.Config, config.Env{LogDir: d.opts.LogDir})
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	if d.byID[st.Info.ContainerID] != nil {
		return nil, errors.New("the container started logging again meanwhile")
	}
	// A FIFO nobody writes any more does not open within the timeout.
	s, err := d.startStreamAs(st.FIFO, st.Info, cfg, d.streamDone, auditlog.SelfStreamReattach, gone)
	if gone == nil && errors.Is(err, ingest.ErrFIFOOpen) {
		gone = err
		s, err = d.startStreamAs(st.FIFO, st.Info, cfg, d.streamDone, auditlog.SelfStreamReattach, gone)
	}
	if err != nil {
		return nil, err
	}
	if gone == nil {
		d.streams[st.FIFO] = s
	}
	d.byID[st.Info.ContainerID] = s
	d.gaugesLocked()
	return gone, nil
}

// crash stops every goroutine the way kill -9 would, as far as the state
// directory can tell: no drain, no final checkpoint, streams stay marked
// running. For tests of re-attaching.
func (d *Driver) crash() {
	d.mu.Lock()
	d.closed = true
	var all []*stream
	for _, s := range d.byID {
		all = append(all, s)
	}
	var dls []*delivery.Delivery
	for _, dl := range d.deliveries {
		dls = append(dls, dl)
	}
	d.mu.Unlock()
	for _, s := range all {
		s.reader.Crash()
		s.kill()
	}
	for _, dl := range dls {
		dl.Stop()
	}
	d.cancel()
	d.wg.Wait()
	_ = d.files.Close()
}
