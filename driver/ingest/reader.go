package ingest

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
)

// With spool-full=block, while the spool is full or the reader is blockLag
// ahead of the audit pipeline, the reader takes at most BlockRate bytes a
// second from the FIFO (see Reader.Run): each read from the FIFO is
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
// 1 MB and the copy's 96 KiB in well under 2 s: at BlockRate, about 1 s.
// Slower paces lose a container's last events (docs/design.md).
const (
	blockLag = 4 << 20
	// BlockRate is the pace, in bytes a second, of the reader's intake
	// from the FIFO while spool-full=block holds it back.
	BlockRate = 1 << 20
)

// fifoReadSize is the frame reader's buffer: the most one read takes from
// the FIFO.
const fifoReadSize = 256 << 10

// ErrFIFOOpen says the log FIFO could not be opened (after a crash: nobody
// writes it any more).
var ErrFIFOOpen = errors.New("cannot open log fifo")

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	// Dir is the container's directory, which holds the journal
	// (JournalFile).
	Dir string
	// FIFO is the path of the container's log FIFO.
	FIFO string
	// OpenTimeout bounds opening the FIFO: dockerd holds its end open, so
	// only a stale FIFO (its container gone) takes long.
	OpenTimeout time.Duration
	// Gone says the FIFO cannot be opened any more: the reader takes what
	// the journal holds and ends, as if dockerd had closed the FIFO.
	Gone bool
	// Store takes the frames; NewReader attaches it, Run detaches it.
	Store *Store
	// Progress counts what is stored (Appended).
	Progress *Progress
	// Loss counts what the reader could not keep.
	Loss *Loss
	// Blocked, if not nil, reports whether the spool is full
	// (spool-full=block): the reader then paces its intake from the FIFO
	// to BlockRate, as it does while it is blockLag ahead of the
	// pipeline. Nil: never paced.
	Blocked func() bool
	Log     *slog.Logger
}

// Reader drains one container's FIFO into its store, through the journal
// (see journal). Nothing else happens on this path, so the FIFO is emptied
// as fast as the disk takes appends, whatever the pipeline or a sink is
// doing. Run runs in one goroutine; Close, Pending, Suspend and Crash may
// be called from others.
type Reader struct {
	fifo     io.ReadCloser
	st       *Store
	journal  *journal // what the reader took from the FIFO and has not stored yet
	progress *Progress
	loss     *Loss
	blocked  func() bool
	log      *slog.Logger

	closeOnce  sync.Once
	fifoClosed atomic.Bool // set by Close before it closes the FIFO
	// suspending is set when the plugin stops while the container goes
	// on: an entry cut short stays in the journal for the next process.
	suspending atomic.Bool
	crashed    atomic.Bool // end like kill -9, leaving the journal
}

// NewReader opens the journal (skipping the entries at its head that the
// store already ends with), attaches the store and opens the FIFO. A FIFO
// that does not open within OpenTimeout is an error that wraps
// ErrFIFOOpen. Run reads; Abort releases all of it when Run is never
// called.
func NewReader(o ReaderOptions) (*Reader, error) {
	jr, err := openJournal(filepath.Join(o.Dir, JournalFile))
	if err != nil {
		return nil, err
	}
	// Before Attach, which may start a new segment: the store's tail is
	// what the journal's stored prefix is matched against.
	if n, err := jr.skipStored(o.Store.tail); err != nil {
		o.Log.Warn("cannot compare the log journal with the store: entries in both may be stored twice", "error", err)
	} else if n > 0 {
		o.Log.Info("log journal: skipping entries the store already holds", "bytes", n)
	}
	if err := o.Store.Attach(); err != nil {
		_ = jr.close()
		return nil, err
	}
	var f io.ReadCloser = io.NopCloser(strings.NewReader("")) // gone: at its end at once
	if !o.Gone {
		ctx, cancel := context.WithTimeout(context.Background(), o.OpenTimeout)
		defer cancel()
		if f, err = fifo.OpenFifo(ctx, o.FIFO, syscall.O_RDONLY, 0o700); err != nil {
			_ = o.Store.Detach()
			_ = jr.close()
			return nil, fmt.Errorf("%w %q: %w", ErrFIFOOpen, o.FIFO, err)
		}
	}
	return &Reader{
		fifo: f, st: o.Store, journal: jr, progress: o.Progress, loss: o.Loss,
		blocked: o.Blocked, log: o.Log,
	}, nil
}

// Abort releases what NewReader took (the FIFO, the store's writer and
// the journal), for a stream that does not start after all.
func (r *Reader) Abort() {
	_ = r.fifo.Close()
	_ = r.st.Detach()
	_ = r.journal.close()
}

// backlogged reports whether, with spool-full=block, the reader should
// slow down.
func (r *Reader) backlogged() bool {
	return r.blocked() || r.progress.Appended.Load()-r.progress.Consumed.Load() > blockLag
}

// Run drains the FIFO into the store until the FIFO is closed (by dockerd,
// or by Close), then detaches the store.
func (r *Reader) Run() {
	// What the FIFO gives goes to the journal before it is parsed (see
	// journal): a kill -9 loses none of it. A new process first takes what
	// the journal holds (without the entries the store already ends with:
	// see journal.skipStored).
	fr := NewFrameReader(r.journal.reader(r.fifo, &r.fifoClosed), fifoReadSize)
	warn := rate.Sometimes{Interval: 10 * time.Second}
	flush := func() {
		if err := r.st.flush(); err != nil {
			warn.Do(func() { r.log.Error("log store flush failed: log lines are lost", "error", err) })
		}
	}
	if r.blocked != nil {
		// spool-full=block: the site prefers slowing the container to
		// losing events, so while the spool is full the FIFO is read at
		// BlockRate (see there); what is read meanwhile waits in the
		// store. The burst is one read, the frame reader's buffer.
		lim := rate.NewLimiter(rate.Limit(BlockRate), fifoReadSize)
		r.journal.pace = func(n int) {
			if !r.backlogged() {
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
			if err := r.journal.consumed(nil); err != nil {
				warn.Do(func() { r.log.Error("log journal failed", "error", err) })
			}
		} else if r.journal.big() {
			// The container never pauses: keep only what is not parsed.
			flush()
			rest, _ := fr.r.Peek(fr.Buffered())
			if err := r.journal.consumed(rest); err != nil {
				warn.Do(func() { r.log.Error("log journal failed", "error", err) })
			}
		}
		frame, skipped, err := fr.NextInStep()
		if skipped > 0 {
			reason := fmt.Sprintf("the log stream was out of step: %d bytes that were not a log entry were skipped (a plugin restart in the middle of an entry, or a corrupt stream); audit events among them are lost", skipped)
			r.loss.Add(0, skipped, reason)
			warn.Do(func() { r.log.Error("log fifo out of step: bytes skipped", "bytes", skipped) })
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, fifo.ErrReadClosed) && !errors.Is(err, io.ErrClosedPipe) && !isClosedErr(err) {
				r.log.Error("reading log fifo failed", "error", err)
			}
			if n := fr.Buffered(); n > 0 && errors.Is(err, io.ErrClosedPipe) && !r.crashed.Load() {
				// Closed on purpose inside a log entry: dockerd had
				// written only its head.
				if r.suspending.Load() {
					// The container goes on and the next process
					// re-attaches: it completes the entry with the rest
					// from the FIFO.
					flush()
					rest, _ := fr.r.Peek(n)
					if err := r.journal.consumed(rest); err != nil {
						r.log.Error("log journal failed", "error", err)
					}
				} else {
					_, _ = fr.r.Discard(n)
					r.loss.Add(0, int64(n), "the log stream ended inside a log entry: its head was all dockerd wrote; audit events in it are lost")
				}
			}
			break
		}
		r.progress.Appended.Add(int64(len(frame)))
		if err := r.st.Append(frame); err != nil {
			// The disk is full or gone. Keep draining so the container
			// never blocks; the frame is lost to the store, and the
			// pipeline records that in quarantine.log.
			r.loss.Add(1, int64(len(frame)), fmt.Sprintf("the docker-logs store could not take log entries (%v); audit events among them are lost", err))
			warn.Do(func() { r.log.Error("log store append failed: log lines are lost", "error", err) })
		}
	}
	if err := r.st.Detach(); err != nil {
		r.log.Error("log store close failed", "error", err)
	}
	if !r.crashed.Load() && fr.Buffered() == 0 {
		if err := r.journal.consumed(nil); err != nil {
			r.log.Error("log journal failed", "error", err)
		}
	}
}

func isClosedErr(err error) bool {
	return errors.Is(err, fifo.ErrClosed) || errors.Is(err, os.ErrClosed)
}

// Close closes the FIFO on purpose, which ends Run.
func (r *Reader) Close() {
	r.closeOnce.Do(func() {
		r.fifoClosed.Store(true)
		_ = r.fifo.Close()
	})
}

// Suspend says the plugin stops while the container goes on: when Close
// ends Run inside a log entry, its head stays in the journal for the next
// process to complete, rather than being counted lost.
func (r *Reader) Suspend() { r.suspending.Store(true) }

// Crash makes Close end Run as a kill -9 would leave things: the journal
// is not cut back, and an entry cut short is neither kept nor counted.
// Tests use it to play a crash.
func (r *Reader) Crash() { r.crashed.Store(true) }

// Pending reports how many bytes wait in the FIFO, unread (FIONREAD, which
// Linux names TIOCINQ).
func (r *Reader) Pending() (int, error) {
	sc, ok := r.fifo.(syscall.Conn)
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
