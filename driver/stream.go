package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/fifo"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"

	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/sink/file"
	"github.com/ucp-audit/ucp-audit/spool"
)

// With spool-full=block, while the spool is full or the reader is blockLag
// ahead of the audit pipeline, the reader takes at most blockRate bytes a
// second from the FIFO (see stream.read): each read from the FIFO is
// followed by a sleep that keeps the pace (a pipe's 64 KiB: 62 ms).
//
// Why not an unbroken stall: dockerd copies a container's output (the
// shim's 64 KiB pipe and a 32 KiB copy buffer) into an in-memory buffer
// that feeds the log driver; the copy blocks once that buffer holds 1 MB
// and its newest chunk is full, which can be at up to 2 MB. Once the
// container's process has exited, dockerd gives the copy 2 s and then
// drops what it has not moved (moby daemon/monitor.go; the broadcaster
// discards it without a word, or "stream copy error"); the buffer itself
// is offered to the driver for 10 s more. The plugin cannot tell when a
// container exits, so it must always be able to take the buffer back to
// 1 MB and the copy's 96 KiB in well under 2 s: at blockRate, about 1 s.
// (Pauses of 1 s followed by 256 KiB reads, then a pace of 256 KiB/s,
// still lost a container's last events in tests.)
const (
	blockLag  = 4 << 20
	blockRate = 1 << 20
)

// fifoReadSize is the frame reader's buffer: the most one read takes from
// the FIFO.
const fifoReadSize = 256 << 10

// backlogged reports whether, with spool-full=block, the reader should
// slow down.
func (s *stream) backlogged() bool {
	return s.dl.sp.Waiting() || s.appended.Load()-s.consumed.Load() > blockLag
}

// stream is one container's logging: the FIFO reader and the pipeline.
type stream struct {
	id, file, dir string
	st            *store
	fifo          io.ReadCloser
	log           *slog.Logger
	dl            *delivery // nil without remote destinations
	block         bool      // spool-full=block: stop reading while the spool is full
	// appended and consumed count the frame bytes the reader stored and
	// the pipeline handled in this run; with block the reader stays at
	// most blockLag ahead.
	appended, consumed atomic.Int64
	// checkpointed is consumed as of the pipeline's last checkpoint.
	checkpointed atomic.Int64

	loss    inputLoss   // what the reader could not keep
	journal *journal    // what the reader took from the FIFO and has not stored yet
	crashed atomic.Bool // tests: end like kill -9, leaving the journal
	// suspending is set when the plugin stops while the container goes
	// on: an entry cut short stays in the journal for the next process.
	suspending atomic.Bool

	cancel     context.CancelFunc // hard stop of the pipeline
	readerDone chan struct{}
	pipeDone   chan struct{}
	pipeErr    error // set before pipeDone closes
	closeOnce  sync.Once
	fifoClosed atomic.Bool // set by closeFifo before it closes the FIFO
}

// startStream opens everything a container's logging needs and starts its
// two goroutines. onDone runs once the pipeline has ended.
func (d *Driver) startStream(fifoPath string, info dockerlog.Info, cfg config.Config, onDone func(*stream)) (*stream, error) {
	return d.startStreamAs(fifoPath, info, cfg, onDone, selfStreamAttached, nil)
}

// errFIFOOpen says the log FIFO could not be opened (after a crash: nobody
// writes it any more).
var errFIFOOpen = errors.New("cannot open log fifo")

// startStreamAs is startStream, recording the start as how (attached or
// re-attached) in the container's audit file. A non-nil gone says why the
// FIFO of a stream to re-attach cannot be opened: the stream then handles
// what the plugin took from it before it stopped (the journal, and the
// store past the checkpoint) and ends, as if dockerd had closed the FIFO.
func (d *Driver) startStreamAs(fifoPath string, info dockerlog.Info, cfg config.Config, onDone func(*stream), how string, gone error) (_ *stream, err error) {
	dir := d.containerDir(info.ContainerID)
	st, err := openStore(dir, cfg.StoreMaxSize, cfg.StoreMaxFile)
	if err != nil {
		return nil, err
	}
	state, found, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	if !found {
		// A new store starts with the segment attach creates.
		state.Safe = st.end()
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
	var dl *delivery
	dests, err := destinations(cfg, info, d.opts.Host)
	if err != nil {
		return nil, err
	}
	if len(dests) > 0 {
		if dl, err = d.openDelivery(dir, cfg, info, dests); err != nil {
			closeAll(dests)
			return nil, err
		}
		closers = append(closers, func() error { dl.stop(); return nil })
	}
	// Pin before the reader can rotate segments: until the pipeline runs,
	// nothing it has not read may be pruned.
	st.setPin(state.Safe.Seg)
	jr, err := openJournal(filepath.Join(dir, journalFile))
	if err != nil {
		return nil, err
	}
	closers = append(closers, jr.close)
	// Before attach, which may start a new segment: the store's tail is
	// what the journal's stored prefix is matched against.
	if n, err := jr.skipStored(st.tail); err != nil {
		d.log.Warn("cannot compare the log journal with the store: entries in both may be stored twice", "container", info.ContainerID, "error", err)
	} else if n > 0 {
		d.log.Info("log journal: skipping entries the store already holds", "container", info.ContainerID, "bytes", n)
	}
	if err := st.attach(); err != nil {
		return nil, err
	}
	closers = append(closers, st.detach)

	var f io.ReadCloser = io.NopCloser(strings.NewReader("")) // gone: at its end at once
	if gone == nil {
		octx, ocancel := context.WithTimeout(context.Background(), d.fifoOpenTimeout)
		defer ocancel()
		if f, err = fifo.OpenFifo(octx, fifoPath, syscall.O_RDONLY, 0o700); err != nil {
			return nil, fmt.Errorf("%w %q: %w", errFIFOOpen, fifoPath, err)
		}
	}
	closers = append(closers, f.Close)
	if err := saveState(dir, state); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{
		id: info.ContainerID, file: fifoPath, dir: dir, st: st, fifo: f, dl: dl, journal: jr,
		block:      dl != nil && cfg.SpoolFull == spool.Block,
		log:        d.log.With("container", info.ContainerID),
		cancel:     cancel,
		readerDone: make(chan struct{}),
		pipeDone:   make(chan struct{}),
	}
	p := newPipeline(dir, st, cfg, d.opts.Host, sinks[0], sinks[1], state, s.log)
	if dl != nil {
		p.spool = dl.sp
	}
	p.consumed = &s.consumed
	p.checkpointed = &s.checkpointed
	p.loss = &s.loss
	p.newSelf = func(typ string) selfEvent { return d.selfEvent(typ, &info) }
	p.metrics = d.opts.Metrics
	ev := d.selfEvent(how, &info)
	ev.Detail = fmt.Sprintf("fifo %s; resuming at seq %d", fifoPath, state.Seq+1)
	if gone != nil {
		ev.Detail = fmt.Sprintf("fifo %s cannot be re-opened (%v): handling what the plugin took from it before it stopped, then detaching; resuming at seq %d", fifoPath, gone, state.Seq+1)
	}
	go s.read()
	go func() {
		// Written here, not in StartLogging: a stalled output file must
		// never hold up the container's start.
		if err := writeSelf(sinks[0], ev); err != nil {
			s.log.Warn("cannot record a self-audit event", "event", how, "error", err)
		}
		err := p.run(ctx)
		if err == nil {
			p.state.Running = false
			err = saveState(dir, p.state)
			ev := d.selfEvent(selfStreamDetached, &info)
			ev.Detail = fmt.Sprintf("%d events forwarded, %d quarantined, %d ignored in all", p.state.Seq, p.state.Quarantined, p.state.Skipped)
			if werr := writeSelf(sinks[0], ev); werr != nil {
				s.log.Warn("cannot record a self-audit event", "event", selfStreamDetached, "error", werr)
			}
		}
		if dl != nil {
			dl.finish() // delivery goes on until every destination has it all
			if d.opts.Retention > 0 {
				dl.giveUpAt(time.Now().Add(d.opts.Retention))
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

// read drains the FIFO into the store until the FIFO is closed.
func (s *stream) read() {
	defer close(s.readerDone)
	// What the FIFO gives goes to the journal before it is parsed (see
	// journal): a kill -9 loses none of it. A new process first takes what
	// the journal holds (without the entries the store already ends with:
	// see journal.skipStored).
	fr := newFrameReader(s.journal.reader(s.fifo, &s.fifoClosed), fifoReadSize)
	warn := rate.Sometimes{Interval: 10 * time.Second}
	flush := func() {
		if err := s.st.flush(); err != nil {
			warn.Do(func() { s.log.Error("log store flush failed: log lines are lost", "error", err) })
		}
	}
	if s.block {
		// spool-full=block: the site prefers slowing the container to
		// losing events, so while the spool is full the FIFO is read at
		// blockRate (see there); what is read meanwhile waits in the
		// store. The burst is one read, the frame reader's buffer.
		lim := rate.NewLimiter(rate.Limit(blockRate), fifoReadSize)
		s.journal.pace = func(n int) {
			if !s.backlogged() {
				return
			}
			flush() // the pipeline must see what is stored, to catch up
			time.Sleep(lim.ReserveN(time.Now(), min(n, fifoReadSize)).Delay())
		}
	}
	for {
		if fr.Buffered() == 0 {
			flush() // about to wait for the container: let readers see it all
			// Everything taken from the FIFO is stored (or counted lost).
			if err := s.journal.consumed(nil); err != nil {
				warn.Do(func() { s.log.Error("log journal failed", "error", err) })
			}
		} else if s.journal.big() {
			// The container never pauses: keep only what is not parsed.
			flush()
			rest, _ := fr.r.Peek(fr.Buffered())
			if err := s.journal.consumed(rest); err != nil {
				warn.Do(func() { s.log.Error("log journal failed", "error", err) })
			}
		}
		frame, skipped, err := fr.NextInStep()
		if skipped > 0 {
			reason := fmt.Sprintf("the log stream was out of step: %d bytes that were not a log entry were skipped (a plugin restart in the middle of an entry, or a corrupt stream); audit events among them are lost", skipped)
			s.loss.add(0, skipped, reason)
			warn.Do(func() { s.log.Error("log fifo out of step: bytes skipped", "bytes", skipped) })
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, fifo.ErrReadClosed) && !errors.Is(err, io.ErrClosedPipe) && !isClosedErr(err) {
				s.log.Error("reading log fifo failed", "error", err)
			}
			if n := fr.Buffered(); n > 0 && errors.Is(err, io.ErrClosedPipe) && !s.crashed.Load() {
				// Closed on purpose inside a log entry: dockerd had
				// written only its head.
				if s.suspending.Load() {
					// The container goes on and the next process
					// re-attaches: it completes the entry with the rest
					// from the FIFO.
					flush()
					rest, _ := fr.r.Peek(n)
					if err := s.journal.consumed(rest); err != nil {
						s.log.Error("log journal failed", "error", err)
					}
				} else {
					_, _ = fr.r.Discard(n)
					s.loss.add(0, int64(n), "the log stream ended inside a log entry: its head was all dockerd wrote; audit events in it are lost")
				}
			}
			break
		}
		s.appended.Add(int64(len(frame)))
		if err := s.st.append(frame); err != nil {
			// The disk is full or gone. Keep draining so the container
			// never blocks; the frame is lost to the store, and the
			// pipeline records that in quarantine.log.
			s.loss.add(1, int64(len(frame)), fmt.Sprintf("the docker-logs store could not take log entries (%v); audit events among them are lost", err))
			warn.Do(func() { s.log.Error("log store append failed: log lines are lost", "error", err) })
		}
	}
	if err := s.st.detach(); err != nil {
		s.log.Error("log store close failed", "error", err)
	}
	if !s.crashed.Load() && fr.Buffered() == 0 {
		if err := s.journal.consumed(nil); err != nil {
			s.log.Error("log journal failed", "error", err)
		}
	}
}

// inputLoss counts what the reader could not keep. The pipeline takes it
// and records it in quarantine.log and as a self-audit event. Safe for
// concurrent use.
type inputLoss struct {
	mu            sync.Mutex
	frames, bytes int64
	reason        string // the latest
}

func (l *inputLoss) add(frames, bytes int64, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frames += frames
	l.bytes += bytes
	l.reason = reason
}

// take returns and resets what was lost since the last call.
func (l *inputLoss) take() (frames, bytes int64, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	frames, bytes, reason = l.frames, l.bytes, l.reason
	l.frames, l.bytes, l.reason = 0, 0, ""
	return frames, bytes, reason
}

func isClosedErr(err error) bool {
	return errors.Is(err, fifo.ErrClosed) || errors.Is(err, os.ErrClosed)
}

// closeFifo ends the reader.
func (s *stream) closeFifo() {
	s.closeOnce.Do(func() {
		s.fifoClosed.Store(true)
		_ = s.fifo.Close()
	})
}

// pending reports how many bytes wait in the FIFO, unread (FIONREAD, which
// Linux names TIOCINQ).
func (s *stream) pending() (int, error) {
	sc, ok := s.fifo.(syscall.Conn)
	if !ok {
		return 0, errors.New("fifo has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil {
		return 0, err
	}
	return n, ierr
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
		n, err := s.pending()
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
	s.closeFifo()
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
	s.suspending.Store(true)
	defer s.kill()
	for {
		n, err := s.pending()
		if err != nil || n == 0 {
			break
		}
		if !sleep(ctx, 5*time.Millisecond) {
			return fmt.Errorf("container %s: %w", s.id, ErrDrainTimeout)
		}
	}
	for s.consumed.Load() < s.appended.Load() || s.checkpointed.Load() < s.consumed.Load() {
		select {
		case <-s.pipeDone:
			return nil
		default:
		}
		if !sleep(ctx, 5*time.Millisecond) {
			return fmt.Errorf("container %s: %w", s.id, ErrDrainTimeout)
		}
	}
	return nil
}

// kill stops the stream at once; the last checkpoint stands.
func (s *stream) kill() {
	s.cancel() // first: the pipeline must not see the end of the stream
	s.closeFifo()
	<-s.readerDone
	<-s.pipeDone
}
