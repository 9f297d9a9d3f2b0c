package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/docker/docker/api/types/plugins/logdriver"
	"golang.org/x/time/rate"

	"github.com/ucp-audit/ucp-audit/audit"
	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/driver/ingest"
	"github.com/ucp-audit/ucp-audit/metrics"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/spool"
)

// Options configure a Pipeline. Everything it shares with the stream is
// here, set once: nothing is set after New.
type Options struct {
	// Dir is the container's directory, where the state is saved
	// (StateFile).
	Dir string
	// Store is the container's docker-logs store, which the pipeline
	// tails and pins.
	Store *ingest.Store
	// Config is the container's configuration (its log-opts).
	Config config.Config
	// Host is the node's name, added to every event.
	Host string
	// AuditFile and Quarantine are the container's output files.
	AuditFile, Quarantine sink.Sink
	// Spool, if not nil, takes every forwarded event for the remote
	// destinations.
	Spool *spool.Spool
	// State is where to resume, as Load returned it.
	State State
	// Progress is shared with the stream's reader: the pipeline counts
	// what it handled (Consumed) and checkpointed. Nil: counted for none.
	Progress *ingest.Progress
	// Loss is what the reader could not keep, which the pipeline records.
	// Nil: the reader loses nothing.
	Loss *ingest.Loss
	// NewSelf returns a self record of type typ for the container; nil:
	// no self records.
	NewSelf func(typ string) auditlog.Self
	// Metrics, if not nil, counts what the pipeline does.
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// MaxQuarantineRecord bounds a quarantine record; 0 is
	// maxQuarantineRecord.
	MaxQuarantineRecord int
	// Trusted reports whether the container is an audit producer now (the
	// node configuration decides, and may change while the stream runs):
	// only a producer's audit-looking lines feed the trail and the spool;
	// another's are counted (State.Untrusted) and stay in its docker logs.
	// Nil: trusted.
	Trusted func() bool
	// Ceiling is the node's audit level now; the pipeline applies the
	// lower of it and the container's own. Nil: the container's alone.
	Ceiling func() audit.Level
}

// Pipeline tails one container's store and turns its lines into audit
// events. It runs in one goroutine; nothing in it is shared but what
// Options names.
type Pipeline struct {
	o         Options
	policy    audit.Policy
	maxRecord int            // see Options.MaxQuarantineRecord
	lossAt    time.Time      // last loss record, to write at most one per lossEvery
	warn      rate.Sometimes // sink and checkpoint failures
	qwarn     rate.Sometimes // quarantined lines

	state    State
	reasm    *reassembler
	starts   map[string]ingest.Position // where each source's pending line began
	at       ingest.Position            // the frame end that named the last line handled
	atN      int                        // its index among the lines that frame completed
	unsynced int
	dirty    bool
}

// New returns the pipeline of one container's stream; Run runs it.
func New(o Options) *Pipeline {
	if o.Progress == nil {
		o.Progress = &ingest.Progress{}
	}
	if o.Loss == nil {
		o.Loss = &ingest.Loss{}
	}
	maxRecord := o.MaxQuarantineRecord
	if maxRecord == 0 {
		maxRecord = maxQuarantineRecord
	}
	return &Pipeline{
		o:         o,
		policy:    audit.Policy{Level: o.Config.AuditLevel, Ignore: o.Config.AuditIgnore},
		maxRecord: maxRecord,
		warn:      rate.Sometimes{Interval: 10 * time.Second},
		qwarn:     rate.Sometimes{Interval: 10 * time.Second},
		state:     o.State,
		reasm:     newReassembler(o.Config.MaxLineSize),
		starts:    map[string]ingest.Position{},
	}
}

// State returns the pipeline's state: after Run, where it ended.
func (p *Pipeline) State() State { return p.state }

// Run processes the store until the writer has detached and every line is
// handled (a clean end), or until ctx is cancelled (a hard stop: the state
// of the last checkpoint stands and processing resumes from there).
func (p *Pipeline) Run(ctx context.Context) error {
	r := p.o.Store.Reader(p.state.Safe)
	defer r.Close()
	for src, n := range p.state.Overlong {
		p.reasm.resume(src, n.ID, n.TimeNano)
	}
	p.o.Store.SetPin(p.state.Safe.Seg)
	var e logdriver.LogEntry
	last := p.state.Safe // end of the last frame read
	for {
		changed, writing := p.o.Store.Watch()
		start := r.Pos()
		frame, err := r.Next()
		switch {
		case err == nil:
			last = r.Pos()
			if pruned := r.TakePruned(); pruned > 0 {
				// Never expected (the pipeline pins what it has not
				// read), but if it happens it is on record.
				p.o.Loss.Add(0, pruned*p.o.Config.StoreMaxSize, fmt.Sprintf("the docker-logs store dropped %d segments the audit pipeline had not read (about max-size bytes each); audit events in them are lost", pruned))
			}
			if derr := ingest.DecodeFrame(frame, &e); derr != nil {
				// The store holds what dockerd sent; a frame that does
				// not decode cannot be a line. Say so and go on.
				p.warn.Do(func() { p.o.Log.Error("skipping undecodable log entry", "pos", start, "error", derr) })
				continue
			}
			if err := p.entry(ctx, &e, start, r.Pos()); err != nil {
				return err
			}
			p.o.Progress.Consumed.Add(int64(len(frame)))
			if p.unsynced >= syncEvery {
				if err := p.checkpoint(ctx, r.Pos()); err != nil {
					return err
				}
			}
			continue
		case !errors.Is(err, io.EOF):
			return err
		}
		if !writing && ctx.Err() != nil {
			// A hard stop (kill, crash, suspend) closes the FIFO after
			// cancelling: the writer's end is not the stream's.
			return ctx.Err()
		}
		if !writing {
			// The container's output has ended: its unfinished lines
			// are complete now. They are named after the last frame, as
			// if it had completed them.
			if err := p.reasm.flush(func(l *line) error { return p.handle(ctx, l, last) }); err != nil {
				return err
			}
			clear(p.starts)
			p.state.Overlong = nil
			p.lossAt = time.Time{}
			p.reportLoss()
			return p.checkpoint(ctx, r.Pos())
		}
		p.reportLoss()
		if err := p.checkpoint(ctx, r.Pos()); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// entry feeds one frame, read from [start, end), to the reassembler, and
// keeps track of where the pending lines began, which the checkpoint must
// not pass.
func (p *Pipeline) entry(ctx context.Context, e *logdriver.LogEntry, start, end ingest.Position) error {
	src := e.Source
	hadID, had := p.reasm.pendingID(src), p.reasm.hasPending(src)
	err := p.reasm.add(e, func(l *line) error { return p.handle(ctx, l, end) })
	id, pending := p.reasm.pendingID(src), p.reasm.hasPending(src)
	if n, ok := p.state.Overlong[src]; ok && (!pending || n.ID != id) {
		delete(p.state.Overlong, src)
		p.dirty = true
	}
	switch {
	case !pending:
		delete(p.starts, src)
	case p.reasm.isOverlong(src):
		// Past max-line-size the line is quarantined whatever follows,
		// so its start need not pin the store: an endless line would
		// keep every segment. If it looks like audit, a note in the
		// state lets a restart resume it, head lost, so it is still
		// quarantined.
		delete(p.starts, src)
		if oid, head, first := p.reasm.overlong(src); first && audit.LooksLikeAudit(head) {
			if p.state.Overlong == nil {
				p.state.Overlong = map[string]OverlongLine{}
			}
			p.state.Overlong[src] = OverlongLine{ID: oid, TimeNano: e.TimeNano}
			p.dirty = true
		}
	case !had || id != hadID:
		p.starts[src] = start
	}
	return err
}

// handle runs one complete line through the audit model. end is the end
// of the frame that completed it; with the line's index among those that
// frame completed, it names the line across restarts, as replaying the
// store from a checkpoint completes the same lines in the same order.
func (p *Pipeline) handle(ctx context.Context, l *line, end ingest.Position) error {
	n := 0
	if end == p.at {
		n = p.atN + 1
	}
	p.at, p.atN = end, n
	if !p.state.Done.Before(end) && (end != p.state.Done || n <= p.state.DoneN) {
		return nil // handled before a restart
	}
	p.state.Done, p.state.DoneN = end, n
	p.dirty = true
	p.o.Metrics.LineRead()
	if !p.trusted() {
		// Not an audit producer: nothing of it reaches the trail, not
		// even a quarantine record; its lines stay in its docker logs.
		if l.HeadLost || audit.LooksLikeAudit(l.Data) {
			p.state.Untrusted++
			p.o.Metrics.Event(metrics.OutcomeUntrusted)
		}
		return nil
	}
	if l.HeadLost {
		reason := fmt.Sprintf("line exceeds max-line-size (%d bytes); a plugin restart lost its start, so raw holds what followed it and size counts from the restart", p.o.Config.MaxLineSize)
		return p.quarantineLine(ctx, l, reason)
	}
	if !audit.LooksLikeAudit(l.Data) {
		return nil
	}
	if l.Truncated() {
		reason := fmt.Sprintf("line of %d bytes exceeds max-line-size (%d bytes); raw holds its first %d bytes", l.Size, p.o.Config.MaxLineSize, len(l.Data))
		return p.quarantineLine(ctx, l, reason)
	}
	ev, err := audit.Parse(l.Data)
	if errors.Is(err, audit.ErrNotAudit) {
		return nil
	}
	if err != nil {
		return p.quarantineLine(ctx, l, err.Error())
	}
	p.o.Metrics.Event(metrics.OutcomeValidated)
	policy := p.policy
	if p.o.Ceiling != nil {
		policy.Level = min(policy.Level, p.o.Ceiling())
	}
	if ok, _ := policy.Allows(ev); !ok {
		p.state.Skipped++
		p.o.Metrics.Event(metrics.OutcomeIgnored)
		return nil
	}
	policy.Apply(ev)
	if ev.Redacted() {
		p.o.Metrics.Event(metrics.OutcomeRedacted)
	}
	out, err := ev.Encode(audit.Enrichment{
		ContainerID:   p.state.Info.ContainerID,
		ContainerName: p.state.Info.Name(),
		Image:         p.state.Info.ContainerImageName,
		ImageID:       p.state.Info.ContainerImageID,
		Host:          p.o.Host,
		Stream:        l.Source,
		ReceivedAt:    time.Unix(0, l.TimeNano),
		Seq:           p.state.Seq + 1,
		Extra:         p.state.Annotations,
	})
	if err != nil {
		return p.quarantineLine(ctx, l, fmt.Sprintf("encode: %v", err))
	}
	if err := p.write(ctx, p.o.AuditFile, out, "audit-file"); errors.Is(err, errUnwritable) {
		return p.quarantineLine(ctx, l, err.Error())
	} else if err != nil {
		return err
	}
	p.state.Seq++
	p.o.Metrics.Event(metrics.OutcomeForwarded)
	if p.o.Spool != nil {
		return p.toSpool(ctx, sink.Event{Line: p.link(out), AuditID: ev.AuditID(), Seq: p.state.Seq, Time: ev.ReceivedAt()})
	}
	return nil
}

// trusted reports whether the container is an audit producer now.
func (p *Pipeline) trusted() bool { return p.o.Trusted == nil || p.o.Trusted() }

// errUnwritable wraps a sink's refusal of a line as it is (see write).
var errUnwritable = errors.New("the output file refuses this line")

// write hands b to s, retrying with capped backoff while the sink fails
// (a full disk, say): the line stays in the store and is never dropped. A
// line the sink refuses as such (not one JSON object, a newline, a
// reserved field, too long) is not retried: the error wraps errUnwritable, and an
// event is quarantined instead.
func (p *Pipeline) write(ctx context.Context, s sink.Sink, b []byte, what string) error {
	backoff := 100 * time.Millisecond
	for {
		err := s.Write(b)
		if err == nil {
			p.unsynced += len(b)
			return nil
		}
		if errors.Is(err, sink.ErrRefused) {
			// Retrying cannot help: the sink refuses this line as it is.
			return fmt.Errorf("%w: %w", errUnwritable, err)
		}
		p.warn.Do(func() { p.o.Log.Error("sink write failed; retrying", "sink", what, "error", err) })
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
