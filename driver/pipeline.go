package driver

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/docker/docker/api/types/plugins/logdriver"
	"golang.org/x/time/rate"

	"github.com/ucp-audit/ucp-audit/audit"
	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/driver/ingest"
	"github.com/ucp-audit/ucp-audit/metrics"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/spool"
)

// syncEvery bounds how much the pipeline writes between checkpoints when
// it never catches up with the container.
const syncEvery = 1 << 20

// pipeline tails one container's store and turns its lines into audit
// events. It runs in one goroutine; nothing in it is shared.
type pipeline struct {
	dir        string
	st         *ingest.Store
	cfg        config.Config
	policy     audit.Policy
	host       string
	auditSink  sink.Sink
	quarantine sink.Sink
	spool      *spool.Spool     // nil without remote destinations
	progress   *ingest.Progress // Consumed: frame bytes handled; may be nil
	loss       *ingest.Loss     // what the reader lost; may be nil
	newSelf    func(typ string) selfEvent
	lossAt     time.Time // last loss record, to write at most one per lossEvery
	metrics    *metrics.Metrics
	log        *slog.Logger
	warn       rate.Sometimes // sink and checkpoint failures
	qwarn      rate.Sometimes // quarantined lines

	state    streamState
	reasm    *reassembler
	starts   map[string]ingest.Position // where each source's pending line began
	at       ingest.Position            // the frame end that named the last line handled
	atN      int                        // its index among the lines that frame completed
	unsynced int
	dirty    bool
}

func newPipeline(dir string, st *ingest.Store, cfg config.Config, host string, auditSink, quarantine sink.Sink, state streamState, log *slog.Logger) *pipeline {
	return &pipeline{
		dir: dir, st: st, cfg: cfg, host: host,
		policy:    audit.Policy{Level: cfg.AuditLevel, Ignore: cfg.AuditIgnore},
		auditSink: auditSink, quarantine: quarantine,
		log:    log,
		warn:   rate.Sometimes{Interval: 10 * time.Second},
		qwarn:  rate.Sometimes{Interval: 10 * time.Second},
		state:  state,
		reasm:  newReassembler(cfg.MaxLineSize),
		starts: map[string]ingest.Position{},
	}
}

// run processes the store until the writer has detached and every line is
// handled (a clean end), or until ctx is cancelled (a hard stop: the state
// of the last checkpoint stands and processing resumes from there).
func (p *pipeline) run(ctx context.Context) error {
	r := p.st.Reader(p.state.Safe)
	defer r.Close()
	for src, n := range p.state.Overlong {
		p.reasm.resume(src, n.ID, n.TimeNano)
	}
	p.st.SetPin(p.state.Safe.Seg)
	var e logdriver.LogEntry
	last := p.state.Safe // end of the last frame read
	for {
		changed, writing := p.st.Watch()
		start := r.Pos()
		frame, err := r.Next()
		switch {
		case err == nil:
			last = r.Pos()
			if pruned := r.TakePruned(); pruned > 0 && p.loss != nil {
				// Never expected (the pipeline pins what it has not
				// read), but if it happens it is on record.
				p.loss.Add(0, pruned*p.cfg.StoreMaxSize, fmt.Sprintf("the docker-logs store dropped %d segments the audit pipeline had not read (about max-size bytes each); audit events in them are lost", pruned))
			}
			if derr := ingest.DecodeFrame(frame, &e); derr != nil {
				// The store holds what dockerd sent; a frame that does
				// not decode cannot be a line. Say so and go on.
				p.warn.Do(func() { p.log.Error("skipping undecodable log entry", "pos", start, "error", derr) })
				continue
			}
			if err := p.entry(ctx, &e, start, r.Pos()); err != nil {
				return err
			}
			if p.progress != nil {
				p.progress.Consumed.Add(int64(len(frame)))
			}
			if p.unsynced >= syncEvery {
				if err := p.checkpoint(ctx, r.Pos()); err != nil {
					return err
				}
			}
			continue
		case !errors.Is(err, io.EOF):
			return err
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
func (p *pipeline) entry(ctx context.Context, e *logdriver.LogEntry, start, end ingest.Position) error {
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
				p.state.Overlong = map[string]overlongLine{}
			}
			p.state.Overlong[src] = overlongLine{ID: oid, TimeNano: e.TimeNano}
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
func (p *pipeline) handle(ctx context.Context, l *line, end ingest.Position) error {
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
	p.metrics.LineRead()
	if l.HeadLost {
		reason := fmt.Sprintf("line exceeds max-line-size (%d bytes); a plugin restart lost its start, so raw holds what followed it and size counts from the restart", p.cfg.MaxLineSize)
		return p.quarantineLine(ctx, l, reason)
	}
	if !audit.LooksLikeAudit(l.Data) {
		return nil
	}
	if l.Truncated() {
		reason := fmt.Sprintf("line of %d bytes exceeds max-line-size (%d bytes); raw holds its first %d bytes", l.Size, p.cfg.MaxLineSize, len(l.Data))
		return p.quarantineLine(ctx, l, reason)
	}
	ev, err := audit.Parse(l.Data)
	if errors.Is(err, audit.ErrNotAudit) {
		return nil
	}
	if err != nil {
		return p.quarantineLine(ctx, l, err.Error())
	}
	p.metrics.Event(metrics.OutcomeValidated)
	if ok, _ := p.policy.Allows(ev); !ok {
		p.state.Skipped++
		p.metrics.Event(metrics.OutcomeIgnored)
		return nil
	}
	p.policy.Apply(ev)
	if ev.Redacted() {
		p.metrics.Event(metrics.OutcomeRedacted)
	}
	out, err := ev.Encode(audit.Enrichment{
		ContainerID:   p.state.Info.ContainerID,
		ContainerName: p.state.Info.Name(),
		Image:         p.state.Info.ContainerImageName,
		Host:          p.host,
		Stream:        l.Source,
		ReceivedAt:    time.Unix(0, l.TimeNano),
		Seq:           p.state.Seq + 1,
	})
	if err != nil {
		return p.quarantineLine(ctx, l, fmt.Sprintf("encode: %v", err))
	}
	if err := p.write(ctx, p.auditSink, out, "audit-file"); errors.Is(err, errUnwritable) {
		return p.quarantineLine(ctx, l, err.Error())
	} else if err != nil {
		return err
	}
	p.state.Seq++
	p.metrics.Event(metrics.OutcomeForwarded)
	if p.spool != nil {
		return p.toSpool(ctx, sink.Event{Line: p.link(out), AuditID: ev.AuditID(), Seq: p.state.Seq, Time: ev.ReceivedAt()})
	}
	return nil
}

// link returns the event as remote destinations get it: with the chain
// field of the container's own chain (package chain's format, with n the
// event's seq and prev the hash of the container's previous forwarded
// event), so a receiver can check each record and the order of a
// container's records without the files. The hash is kept in the state:
// an event handled again after a restart gets the same link.
func (p *pipeline) link(out []byte) []byte {
	h := chain.Head{N: p.state.Seq - 1, Hash: p.state.Chain}
	line, err := h.Append(make([]byte, 0, len(out)+200), out)
	if err != nil {
		// Encode never makes such a record (Parse rejects the reserved
		// keys); forward it unlinked rather than not at all.
		p.warn.Do(func() { p.log.Error("cannot link a forwarded event", "seq", p.state.Seq, "error", err) })
		return out
	}
	p.state.Chain = h.Hash
	return line
}

// toSpool hands the event to the remote destinations. With spool-full=drop
// the spool may discard older undelivered events to make room: each such
// gap is recorded. With block, Append waits (and the reader stops).
func (p *pipeline) toSpool(ctx context.Context, ev sink.Event) error {
	gaps, err := p.spool.Append(ctx, ev)
	for _, g := range gaps {
		p.gap(gapRecord{Destination: g.Destination, Lost: g.Lost, FirstSeq: g.FirstSeq, LastSeq: g.LastSeq,
			Reason: fmt.Sprintf("spool full (spool-max-size %d bytes, spool-full=drop): oldest undelivered events discarded", p.cfg.SpoolMaxSize)})
	}
	if errors.Is(err, spool.ErrLargerThanSpool) {
		p.gap(gapRecord{Destination: "all remote destinations", Lost: 1, FirstSeq: ev.Seq, LastSeq: ev.Seq,
			Reason: fmt.Sprintf("event of %d bytes is larger than spool-max-size", len(ev.Line))})
		return nil
	}
	if p.spoolFailed(err) {
		return nil
	}
	return err
}

// spoolFailed records the events a failing disk under the spool took from
// the remote destinations (they are in the audit file), and reports whether
// err was such a failure: the spool has recovered, and the pipeline goes on.
func (p *pipeline) spoolFailed(err error) bool {
	var we *spool.WriteError
	if !errors.As(err, &we) {
		return false
	}
	if we.Lost.Lost > 0 {
		p.gap(gapRecord{Destination: "all remote destinations", Lost: we.Lost.Lost, FirstSeq: we.Lost.FirstSeq, LastSeq: we.Lost.LastSeq,
			Reason: fmt.Sprintf("the spool could not write them (%v)", we.Err)})
	}
	return true
}

func (p *pipeline) gap(g gapRecord) {
	p.metrics.Lost(g.Destination, g.Lost)
	if err := recordGap(g, p.state.Info, p.auditSink, p.quarantine); err != nil {
		p.log.Error("recording a delivery gap failed", "gap", g, "error", err)
	}
	p.log.Warn("events lost for a destination", "destination", g.Destination, "lost", g.Lost, "first_seq", g.FirstSeq, "last_seq", g.LastSeq, "reason", g.Reason)
}

// lossEvery spaces the records of lost input while the loss goes on.
const lossEvery = 10 * time.Second

// reportLoss records input the reader lost, if any: a quarantine record
// (with the byte count and the reason, but no raw line: there is none) and
// a self-audit event in audit.log. It writes at most one per lossEvery
// while losses go on, and one at the stream's end.
func (p *pipeline) reportLoss() {
	if p.loss == nil || time.Since(p.lossAt) < lossEvery {
		return
	}
	frames, n, reason := p.loss.Take()
	if n == 0 {
		return
	}
	p.lossAt = time.Now()
	detail := fmt.Sprintf("%d bytes of container output lost", n)
	if frames > 0 {
		detail = fmt.Sprintf("%d log entries (%d bytes) of container output lost", frames, n)
	}
	p.metrics.InputLost(n)
	rec := auditlog.Quarantine{
		Time:          time.Now().UTC().Format(time.RFC3339Nano),
		Reason:        detail + ": " + reason,
		ContainerID:   p.state.Info.ContainerID,
		ContainerName: p.state.Info.Name(),
		Seq:           p.state.Quarantined + 1,
		Size:          int(n),
	}
	b, err := auditlog.MarshalQuarantine(rec)
	if err == nil {
		err = p.quarantine.Write(b)
	}
	if err == nil {
		p.state.Quarantined++
		p.dirty = true
	}
	if p.newSelf != nil {
		ev := p.newSelf(selfInputLost)
		ev.Detail = rec.Reason
		err = errors.Join(err, writeSelf(p.auditSink, ev))
	}
	if err != nil {
		p.log.Error("cannot record lost container output", "detail", rec.Reason, "error", err)
	}
}

// maxQuarantineRecord bounds a quarantine record so that it stays a line
// the readers take (auditlog.MaxLine, with room for the chain field):
// escaping can make raw six times the line. A variable for tests.
var maxQuarantineRecord = auditlog.MaxLine - 64<<10

func (p *pipeline) quarantineLine(ctx context.Context, l *line, reason string) error {
	rec := auditlog.Quarantine{
		Time:          time.Unix(0, l.TimeNano).UTC().Format(time.RFC3339Nano),
		Reason:        reason,
		ContainerID:   p.state.Info.ContainerID,
		ContainerName: p.state.Info.Name(),
		Stream:        l.Source,
		Seq:           p.state.Quarantined + 1,
		Size:          l.Size,
		Truncated:     l.Truncated(),
		Unfinished:    l.Unfinished,
	}
	valid := utf8.Valid(l.Data)
	var b []byte
	for data := l.Data; ; {
		if valid {
			rec.Raw = string(data)
		} else {
			rec.RawBase64 = base64.StdEncoding.EncodeToString(data)
		}
		var err error
		if b, err = auditlog.MarshalQuarantine(rec); err != nil {
			return err
		}
		if len(b)+1 <= maxQuarantineRecord || len(data) == 0 { // +1: the newline
			break
		}
		data = data[:len(data)/2]
		for valid && len(data) > 0 && !utf8.Valid(data) {
			data = data[:len(data)-1] // a rune cut in two
		}
		rec.RawBytes = len(data)
	}
	if err := p.write(ctx, p.quarantine, b, "quarantine-file"); err != nil {
		return err
	}
	p.state.Quarantined++
	p.metrics.Event(metrics.OutcomeQuarantined)
	// A flood of bad lines must not flood the plugin's log: the records
	// are in quarantine.log, the log only says that it happens (never with
	// the reason, which can quote a field's value).
	n := p.state.Quarantined
	p.qwarn.Do(func() {
		p.log.Warn("quarantined audit lines; the records are in the quarantine file", "total", n, "file", p.cfg.QuarantineFile)
	})
	return nil
}

// errUnwritable wraps a sink's refusal of a line as it is (see write).
var errUnwritable = errors.New("the output file refuses this line")

// write hands b to s, retrying with capped backoff while the sink fails
// (a full disk, say): the line stays in the store and is never dropped. A
// line the sink refuses as such (not one JSON object, a newline, a
// reserved field, too long) is not retried: the error wraps errUnwritable, and an
// event is quarantined instead.
func (p *pipeline) write(ctx context.Context, s sink.Sink, b []byte, what string) error {
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
		p.warn.Do(func() { p.log.Error("sink write failed; retrying", "sink", what, "error", err) })
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// checkpoint makes the sinks durable, then records how far the pipeline
// got, so a restart neither loses nor repeats a line.
func (p *pipeline) checkpoint(ctx context.Context, pos ingest.Position) error {
	safe := pos
	for _, s := range p.starts {
		if s.Before(safe) {
			safe = s
		}
	}
	if !p.dirty && safe == p.state.Safe {
		p.markCheckpointed()
		return nil
	}
	backoff := 100 * time.Millisecond
	for {
		err := errors.Join(p.auditSink.Sync(), p.quarantine.Sync())
		if err == nil && p.spool != nil {
			if err = p.spool.Sync(); p.spoolFailed(err) {
				err = nil
			}
		}
		if err == nil {
			p.state.Safe = safe
			p.state.Updated = time.Now().UTC()
			err = saveState(p.dir, p.state)
		}
		if err == nil {
			break
		}
		p.warn.Do(func() { p.log.Error("checkpoint failed; retrying", "error", err) })
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	p.unsynced = 0
	p.dirty = false
	p.st.SetPin(safe.Seg)
	p.markCheckpointed()
	return nil
}

func (p *pipeline) markCheckpointed() {
	if p.progress != nil {
		p.progress.Checkpoint()
	}
}
