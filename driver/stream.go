package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/driver/delivery"
	"github.com/ucp-audit/ucp-audit/driver/ingest"
	"github.com/ucp-audit/ucp-audit/driver/pipeline"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/sink/file"
	"github.com/ucp-audit/ucp-audit/spool"
)

// stream is one container's logging: the FIFO reader and the pipeline.
type stream struct {
	id     string
	st     *ingest.Store
	reader *ingest.Reader
	log    *slog.Logger
	dl     *delivery.Delivery // nil without remote destinations
	// progress is shared by the reader and the pipeline: a suspend waits
	// for the pipeline to catch up.
	progress *ingest.Progress

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
	state, found, err := pipeline.Load(dir)
	if err != nil {
		return nil, err
	}
	if !found {
		// A new store starts with the segment attach creates.
		state.Safe = st.End()
		state.Done = state.Safe
	}
	state.Info = info
	state.Running = true
	state.FIFO = fifoPath

	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i]()
			}
		}
	}()
	sinks := make([]sink.Sink, 2)
	for i, o := range []file.Options{
		{Path: cfg.AuditFile, MaxSize: cfg.AuditFileMaxSize, MaxFiles: cfg.AuditFileMaxFile},
		{Path: cfg.QuarantineFile, MaxSize: cfg.AuditFileMaxSize, MaxFiles: cfg.AuditFileMaxFile},
	} {
		s, err := d.openSink(o)
		if err != nil {
			return nil, err
		}
		sinks[i] = s
		closers = append(closers, s.Close)
	}
	var dl *delivery.Delivery
	dests, err := delivery.NewTargets(cfg, info, d.opts.Host)
	if err != nil {
		return nil, err
	}
	if len(dests) > 0 {
		if dl, err = d.openDelivery(dir, cfg, info, dests); err != nil {
			delivery.CloseTargets(dests)
			return nil, err
		}
		closers = append(closers, func() error { dl.Stop(); return nil })
	}
	log := d.log.With("container", info.ContainerID)
	prog, loss := &ingest.Progress{}, &ingest.Loss{}
	// Pin before the reader can rotate segments: until the pipeline runs,
	// nothing it has not read may be pruned.
	st.SetPin(state.Safe.Seg)
	var blocked func() bool
	if dl != nil && cfg.SpoolFull == spool.Block {
		blocked = dl.Spool().Waiting
	}
	r, err := ingest.NewReader(ingest.ReaderOptions{
		Dir: dir, FIFO: fifoPath, OpenTimeout: d.fifoOpenTimeout, Gone: gone != nil,
		Store: st, Progress: prog, Loss: loss, Blocked: blocked, Log: log,
	})
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() error { r.Abort(); return nil })
	if err := pipeline.Save(dir, state); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{
		id: info.ContainerID, st: st, reader: r, log: log, dl: dl, progress: prog,
		cancel:     cancel,
		readerDone: make(chan struct{}),
		pipeDone:   make(chan struct{}),
	}
	var sp *spool.Spool
	if dl != nil {
		sp = dl.Spool()
	}
	p := pipeline.New(pipeline.Options{
		Dir: dir, Store: st, Config: cfg, Host: d.opts.Host,
		AuditFile: sinks[0], Quarantine: sinks[1], Spool: sp, State: state,
		Progress: prog, Loss: loss,
		NewSelf: func(typ string) auditlog.Self { return d.selfEvent(typ, &info) },
		Metrics: d.opts.Metrics, Log: log, MaxQuarantineRecord: d.maxQuarantineRecord,
	})
	ev := d.selfEvent(how, &info)
	ev.Detail = fmt.Sprintf("fifo %s; resuming at seq %d", fifoPath, state.Seq+1)
	if gone != nil {
		ev.Detail = fmt.Sprintf("fifo %s cannot be re-opened (%v): handling what the plugin took from it before it stopped, then detaching; resuming at seq %d", fifoPath, gone, state.Seq+1)
	}
	go func() {
		defer close(s.readerDone)
		r.Run()
	}()
	go func() {
		// Written here, not in StartLogging: a stalled output file must
		// never hold up the container's start.
		if err := pipeline.WriteSelf(sinks[0], ev); err != nil {
			s.log.Warn("cannot record a self-audit event", "event", how, "error", err)
		}
		err := p.Run(ctx)
		if err == nil {
			end := p.State()
			end.Running = false
			err = pipeline.Save(dir, end)
			ev := d.selfEvent(auditlog.SelfStreamDetached, &info)
			ev.Detail = fmt.Sprintf("%d events forwarded, %d quarantined, %d ignored in all", end.Seq, end.Quarantined, end.Skipped)
			if werr := pipeline.WriteSelf(sinks[0], ev); werr != nil {
				s.log.Warn("cannot record a self-audit event", "event", auditlog.SelfStreamDetached, "error", werr)
			}
		}
		if dl != nil {
			dl.Finish() // delivery goes on until every destination has it all
			if d.opts.Retention > 0 {
				dl.GiveUpAt(time.Now().Add(d.opts.Retention))
			}
		}
		for _, k := range sinks {
			err = errors.Join(err, k.Close())
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("audit pipeline ended", "error", err)
		}
		s.pipeErr = err
		close(s.pipeDone)
		onDone(s)
	}()
	return s, nil
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
