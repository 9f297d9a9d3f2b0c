package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ucp-audit/ucp-audit/audit"
	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/driver/delivery"
	"github.com/ucp-audit/ucp-audit/driver/ingest"
	"github.com/ucp-audit/ucp-audit/driver/pipeline"
	"github.com/ucp-audit/ucp-audit/node"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/sink/file"
	"github.com/ucp-audit/ucp-audit/spool"
)

// stream is one container's logging: the FIFO reader and the pipeline,
// each in a goroutine the stream starts, stops and waits for.
type stream struct {
	id     string
	dir    string
	info   dockerlog.Info
	st     *ingest.Store
	reader *ingest.Reader
	log    *slog.Logger
	dl     *delivery.Delivery // nil without remote destinations
	// progress is shared by the reader and the pipeline: a suspend waits
	// for the pipeline to catch up.
	progress *ingest.Progress
	// producer says whether the container is an audit producer, as the
	// node configuration in force says (SetNode updates it).
	producer atomic.Bool
	cfg      config.Config
	gone     error // why the FIFO was not re-opened at re-attach; nil when it was

	cancel     context.CancelFunc // hard stop of the pipeline
	readerDone chan struct{}
	pipeDone   chan struct{}
	pipeErr    error // set before pipeDone closes
}

// startStream opens everything a container's logging needs and starts its
// two goroutines. onDone runs once the pipeline has ended.
func (d *Driver) startStream(fifoPath string, info dockerlog.Info, cfg config.Config, onDone func(*stream)) (*stream, error) {
	return d.startStreamAs(fifoPath, info, cfg, onDone, auditlog.SelfStreamAttached, nil)
}

// startStreamAs is startStream, recording the start as how (attached or
// re-attached) in the container's audit file. A non-nil gone says why the
// FIFO of a stream to re-attach cannot be opened: the stream then handles
// what the plugin took from it before it stopped (the journal, and the
// store past the checkpoint) and ends, as if dockerd had closed the FIFO.
func (d *Driver) startStreamAs(fifoPath string, info dockerlog.Info, cfg config.Config, onDone func(*stream), how string, gone error) (_ *stream, err error) {
	dir := d.containerDir(info.ContainerID)
	st, err := ingest.OpenStore(dir, cfg.StoreMaxSize, cfg.StoreMaxFile)
	if err != nil {
		return nil, err
	}
	state, err := resumeState(dir, st, info, cfg, fifoPath)
	if err != nil {
		return nil, err
	}
	var undo []func() // what to release, last first, if the stream does not start
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	out := d.outputs()
	producer := d.node.Load().IsProducer(container(info))
	var dl *delivery.Delivery
	if producer {
		// Only a producer's events are forwarded: another container's
		// destinations are never opened.
		if cfg.SpoolMaxSize, err = d.spoolRoom(info.ContainerID, cfg.SpoolMaxSize); err != nil {
			return nil, err
		}
		if dl, err = d.openStreamDelivery(dir, cfg, info); err != nil {
			return nil, err
		}
	}
	var sp *spool.Spool
	var blocked func() bool // spool-full=block: the reader is paced while the spool is full
	if dl != nil {
		undo = append(undo, dl.Stop)
		sp = dl.Spool()
		if cfg.SpoolFull == spool.Block {
			blocked = sp.Waiting
		}
	}
	log := d.log.With("container", info.ContainerID)
	prog, loss := &ingest.Progress{}, &ingest.Loss{}
	// Pin before the reader can rotate segments: until the pipeline runs,
	// nothing it has not read may be pruned.
	st.SetPin(state.Safe.Seg)
	r, err := ingest.NewReader(ingest.ReaderOptions{
		Dir: dir, FIFO: fifoPath, OpenTimeout: d.hooks.fifoOpenTimeout, Gone: gone != nil,
		Store: st, Progress: prog, Loss: loss, Blocked: blocked, Log: log,
	})
	if err != nil {
		return nil, err
	}
	undo = append(undo, r.Abort)
	if err := pipeline.Save(dir, state); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{
		id: info.ContainerID, dir: dir, info: info, st: st, reader: r, log: log, dl: dl, progress: prog, cfg: cfg,
		cancel:     cancel,
		readerDone: make(chan struct{}),
		pipeDone:   make(chan struct{}),
	}
	s.producer.Store(producer)
	p := pipeline.New(pipeline.Options{
		Dir: dir, Store: st, Config: cfg, Host: d.opts.Host,
		AuditFile: out.audit, Quarantine: out.quarantine, Spool: sp, State: state,
		Progress: prog, Loss: loss,
		NewSelf: func(typ string) auditlog.Self { return d.selfEvent(typ, &info) },
		Metrics: d.opts.Metrics, Log: log, MaxQuarantineRecord: d.hooks.maxQuarantineRecord,
		Trusted: s.producer.Load,
		Ceiling: func() audit.Level { return d.node.Load().AuditLevel },
	})
	started := d.startEvent(how, info, fifoPath, state.Seq, gone)
	go func() {
		defer close(s.readerDone)
		r.Run()
	}()
	go d.runPipeline(ctx, s, p, out, started, onDone)
	return s, nil
}

// resumeState returns the state a stream of the container resumes from:
// the one saved in dir, or a new one at the end of the store, marked
// running on fifoPath.
func resumeState(dir string, st *ingest.Store, info dockerlog.Info, cfg config.Config, fifoPath string) (pipeline.State, error) {
	state, found, err := pipeline.Load(dir)
	if err != nil {
		return state, err
	}
	if !found {
		// A new store starts with the segment Attach creates.
		state.Safe = st.End()
		state.Done = state.Safe
	}
	if ann := cfg.Extra; ann != nil {
		state.Annotations = ann // computed at StartLogging; a re-attach keeps the saved ones
	}
	state.Info = info
	state.Running = true
	state.FIFO = fifoPath
	return state, nil
}

// outputs are the trail's audit and quarantine files, as a stream or a
// delivery writes them.
type outputs struct {
	audit, quarantine sink.Sink
}

// outputs returns views of the node's trail, which follow it when the node
// configuration moves it.
func (d *Driver) outputs() outputs {
	return outputs{audit: d.trail.auditFile(), quarantine: d.trail.quarantineFile()}
}

// container is what producer rules are matched against.
func container(info dockerlog.Info) node.Container {
	return node.Container{ImageName: info.ContainerImageName, ImageID: info.ContainerImageID, Name: info.ContainerName}
}

// spoolRoom returns the spool size a producer's stream may have: want,
// less what the node's caps.spoolTotal leaves once the other streams'
// spools are counted (at least 1 MiB). A container's spool is bounded by
// caps.spoolSize when its options are parsed.
func (d *Driver) spoolRoom(id string, want int64) (int64, error) {
	total := d.node.Load().Caps.SpoolTotal
	d.mu.Lock()
	for other, s := range d.byID {
		if other != id && s.dl != nil {
			total -= s.cfg.SpoolMaxSize
		}
	}
	d.mu.Unlock()
	if room := max(total, 1<<20); want > room {
		d.log.Warn("spool-max-size cut to what the node's caps.spoolTotal leaves", "container", id, "spool_max_size", room)
		return room, nil
	}
	return want, nil
}

// openSink opens an output file, wrapped by the wrapSink hook if set.
func (d *Driver) openSink(o file.Options) (sink.Sink, error) {
	s, err := d.files.Open(o)
	if d.hooks.wrapSink == nil {
		return s, err
	}
	if err != nil {
		return nil, err
	}
	return d.hooks.wrapSink(s), nil
}

// openStreamDelivery opens the remote delivery of a container's stream;
// without remote destinations it returns nil.
func (d *Driver) openStreamDelivery(dir string, cfg config.Config, info dockerlog.Info) (*delivery.Delivery, error) {
	targets, err := delivery.NewTargets(cfg, info, d.opts.Host)
	if err != nil || len(targets) == 0 {
		return nil, err
	}
	return d.openDelivery(dir, cfg, info, targets, true)
}

// openDelivery starts the remote delivery of a container to targets,
// recording its losses, and a destination going down or coming back, in
// the node's trail; with forward, also in the container's spool for its
// destinations (pipeline.Forward): a SIEM then sees them. It takes targets
// over: if it fails, it closes them. The caller registers it in
// d.deliveries.
func (d *Driver) openDelivery(dir string, cfg config.Config, info dockerlog.Info, targets []delivery.Target, forward bool) (*delivery.Delivery, error) {
	out := d.outputs()
	log := d.log.With("container", info.ContainerID)
	var sp atomic.Pointer[spool.Spool] // once Open returns
	record := func(g auditlog.Gap) []byte {
		d.opts.Metrics.Lost(g.Destination, g.Lost)
		line, err := pipeline.RecordGap(g, info, out.audit, out.quarantine)
		if err != nil {
			log.Error("recording a delivery gap failed", "gap", g, "error", err)
		}
		log.Warn("events lost for a destination", "destination", g.Destination, "lost", g.Lost, "first_seq", g.FirstSeq, "reason", g.Reason)
		return line
	}
	fwd := func(line []byte) {
		if s := sp.Load(); forward && s != nil && line != nil {
			if err := pipeline.Forward(s, line, func(g auditlog.Gap) { record(g) }); err != nil {
				log.Warn("a record of the plugin's own could not be forwarded (it is in the trail)", "error", err)
			}
		}
	}
	lost := func(g auditlog.Gap) { fwd(record(g)) }
	note := func(typ, dest, detail string) {
		ev := d.selfEvent(typ, &info)
		ev.Destination, ev.Detail = dest, detail
		if err := pipeline.WriteSelf(out.audit, ev); err != nil {
			log.Warn("cannot record a self-audit event", "event", typ, "error", err)
		}
		if line, err := auditlog.MarshalSelf(ev); err == nil {
			fwd(line)
		}
	}
	dl, err := delivery.Open(delivery.Options{
		Dir: dir, Config: cfg, Targets: targets, Log: log, Lost: lost, Note: note,
		Metrics: d.opts.Metrics, BlockRate: ingest.BlockRate,
	})
	if err != nil {
		delivery.CloseTargets(targets)
		return nil, err
	}
	sp.Store(dl.Spool())
	id := info.ContainerID
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		<-dl.Done()
		d.mu.Lock()
		if d.deliveries[id] == dl {
			delete(d.deliveries, id)
		}
		d.mu.Unlock()
	}()
	return dl, nil
}

// startEvent returns the self record of a stream's start (how: attached
// or re-attached), resuming after seq; gone is as for startStreamAs.
func (d *Driver) startEvent(how string, info dockerlog.Info, fifoPath string, seq uint64, gone error) auditlog.Self {
	ev := d.selfEvent(how, &info)
	ev.Detail = fmt.Sprintf("fifo %s; resuming at seq %d", fifoPath, seq+1)
	if gone != nil {
		ev.Detail = fmt.Sprintf("fifo %s cannot be re-opened (%v): handling what the plugin took from it before it stopped, then detaching; resuming at seq %d", fifoPath, gone, seq+1)
	}
	return ev
}

// runPipeline runs the stream's pipeline until it ends, then lets the
// delivery go on alone, closes the outputs and calls onDone. The self
// record started is written here, not in StartLogging: a stalled output
// file must never hold up the container's start.
func (d *Driver) runPipeline(ctx context.Context, s *stream, p *pipeline.Pipeline, out outputs, started auditlog.Self, onDone func(*stream)) {
	// Only a producer's stream is on record: a node's other containers
	// come and go without a word in the trail.
	if s.producer.Load() {
		if err := pipeline.WriteSelf(out.audit, started); err != nil {
			s.log.Warn("cannot record a self-audit event", "event", started.Type, "error", err)
		}
	}
	err := p.Run(ctx)
	if err == nil {
		err = d.detached(s, p.State(), out.audit)
	}
	if s.dl != nil {
		s.dl.Finish() // delivery goes on until every destination has it all
		if d.opts.Retention > 0 {
			s.dl.GiveUpAt(time.Now().Add(d.opts.Retention))
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error("audit pipeline ended", "error", err)
	}
	s.pipeErr = err
	close(s.pipeDone)
	onDone(s)
}

// detached saves the state of a stream that ended, end, as no longer
// running, and records the end with its counts in the audit file.
func (d *Driver) detached(s *stream, end pipeline.State, auditFile sink.Sink) error {
	end.Running = false
	err := pipeline.Save(s.dir, end)
	if !s.producer.Load() {
		d.untrustedLines(s, end.Untrusted)
		return err
	}
	ev := d.selfEvent(auditlog.SelfStreamDetached, &s.info)
	ev.Detail = fmt.Sprintf("%d events forwarded, %d quarantined, %d ignored in all", end.Seq, end.Quarantined, end.Skipped)
	if end.Untrusted > 0 {
		ev.Detail += fmt.Sprintf("; %d audit-looking lines while it was not an audit producer, kept out of the trail", end.Untrusted)
	}
	if werr := pipeline.WriteSelf(auditFile, ev); werr != nil {
		s.log.Warn("cannot record a self-audit event", "event", auditlog.SelfStreamDetached, "error", werr)
	}
	return err
}

// ErrDrainTimeout is returned by StopLogging when the stream was not
// drained by its deadline. Nothing is lost: the pipeline goes on in the
// background from the store, and a restart resumes it.
var ErrDrainTimeout = errors.New("drain deadline exceeded")

// stop drains the stream: dockerd calls StopLogging after its copier has
// written everything, so once the FIFO holds no more bytes the reader has
// them all. Then it waits for the pipeline to handle every line.
func (s *stream) stop(ctx context.Context) error {
	for {
		n, err := s.reader.Pending()
		if err != nil || n == 0 {
			break
		}
		select {
		case <-time.After(5 * time.Millisecond):
			continue
		case <-ctx.Done():
		}
		break
	}
	s.reader.Close()
	select {
	case <-s.readerDone:
	case <-ctx.Done():
		return fmt.Errorf("container %s: %w", s.id, ErrDrainTimeout)
	}
	select {
	case <-s.pipeDone:
		if s.pipeErr != nil && !errors.Is(s.pipeErr, context.Canceled) {
			return fmt.Errorf("container %s: %w", s.id, s.pipeErr)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("container %s: %w", s.id, ErrDrainTimeout)
	}
}

// suspend ends the stream for a plugin shutdown while its container goes
// on: it takes what waits in the FIFO, lets the pipeline handle all of it
// and checkpoint, then stops both without ending the stream (pending
// partial lines stay pending, state.json keeps running), so the next
// process re-attaches and carries on. Past ctx it stops anyway: the last
// checkpoint stands, and the rest is handled after the re-attach.
func (s *stream) suspend(ctx context.Context) error {
	s.reader.Suspend()
	defer s.kill()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	wait := func() error {
		select {
		case <-poll.C:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("container %s: %w", s.id, ErrDrainTimeout)
		}
	}
	for {
		n, err := s.reader.Pending()
		if err != nil || n == 0 {
			break
		}
		if err := wait(); err != nil {
			return err
		}
	}
	for !s.progress.Settled() {
		select {
		case <-s.pipeDone:
			return nil
		default:
		}
		if err := wait(); err != nil {
			return err
		}
	}
	return nil
}

// kill stops the stream at once; the last checkpoint stands.
func (s *stream) kill() {
	s.cancel() // first: the pipeline must not see the end of the stream
	s.reader.Close()
	<-s.readerDone
	<-s.pipeDone
}
