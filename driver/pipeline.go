package driver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/docker/docker/api/types/plugins/logdriver"
	"golang.org/x/time/rate"

	"github.com/ucp-audit/ucp-audit/audit"
	"github.com/ucp-audit/ucp-audit/config"
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
	st         *store
	cfg        config.Config
	policy     audit.Policy
	host       string
	auditSink  sink.Sink
	quarantine sink.Sink
	spool      *spool.Spool  // nil without remote destinations
	consumed   *atomic.Int64 // frame bytes handled; may be nil
	metrics    *metrics.Metrics
	log        *slog.Logger
	warn       rate.Sometimes // sink and checkpoint failures
	qwarn      rate.Sometimes // quarantined lines

	state    streamState
	reasm    *reassembler
	starts   map[string]position // where each source's pending line began
	unsynced int
	dirty    bool
}

func newPipeline(dir string, st *store, cfg config.Config, host string, auditSink, quarantine sink.Sink, state streamState, log *slog.Logger) *pipeline {
	return &pipeline{
		dir: dir, st: st, cfg: cfg, host: host,
		policy:    audit.Policy{Level: cfg.AuditLevel, Ignore: cfg.AuditIgnore},
		auditSink: auditSink, quarantine: quarantine,
		log:    log,
		warn:   rate.Sometimes{Interval: 10 * time.Second},
		qwarn:  rate.Sometimes{Interval: 10 * time.Second},
		state:  state,
		reasm:  newReassembler(cfg.MaxLineSize),
		starts: map[string]position{},
	}
}

// run processes the store until the writer has detached and every line is
// handled (a clean end), or until ctx is cancelled (a hard stop: the state
// of the last checkpoint stands and processing resumes from there).
func (p *pipeline) run(ctx context.Context) error {
	r := p.st.reader(p.state.Safe)
	defer r.Close()
	p.st.setPin(p.state.Safe.Seg)
	var e logdriver.LogEntry
	for {
		changed, writing := p.st.watch()
		start := r.pos
		frame, err := r.Next()
		switch {
		case err == nil:
			if derr := decodeFrame(frame, &e); derr != nil {
				// The store holds what dockerd sent; a frame that does
				// not decode cannot be a line. Say so and go on.
				p.log.Error("skipping undecodable log entry", "pos", start, "error", derr)
				continue
			}
			if err := p.entry(ctx, &e, start, r.pos); err != nil {
				return err
			}
			if p.consumed != nil {
				p.consumed.Add(int64(len(frame)))
			}
			if p.unsynced >= syncEvery {
				if err := p.checkpoint(ctx, r.pos); err != nil {
					return err
				}
			}
			continue
		case !errors.Is(err, io.EOF):
			return err
		}
		if !writing {
			// The container's output has ended: its unfinished lines
			// are complete now.
			end := r.pos
			if err := p.reasm.flush(func(l *line) error { return p.handle(ctx, l, end) }); err != nil {
				return err
			}
			clear(p.starts)
			return p.checkpoint(ctx, end)
		}
		if err := p.checkpoint(ctx, r.pos); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// entry feeds one frame, read from [start, end), to the reassembler.
func (p *pipeline) entry(ctx context.Context, e *logdriver.LogEntry, start, end position) error {
	src := e.Source
	hadID, had := p.reasm.pendingID(src), p.reasm.hasPending(src)
	err := p.reasm.add(e, func(l *line) error {
		lend := end
		if l.Unfinished {
			lend = start // superseded by the entry at start
		}
		return p.handle(ctx, l, lend)
	})
	switch {
	case !p.reasm.hasPending(src):
		delete(p.starts, src)
	case !had || p.reasm.pendingID(src) != hadID:
		p.starts[src] = start
	}
	return err
}

// handle runs one complete line through the audit model. end is where the
// line ends in the store.
func (p *pipeline) handle(ctx context.Context, l *line, end position) error {
	if !p.state.Done.before(end) {
		return nil // handled before a restart
	}
	p.state.Done = end
	p.dirty = true
	p.metrics.LineRead()
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
		ContainerName: containerName(p.state.Info),
		Image:         p.state.Info.ContainerImageName,
		Host:          p.host,
		Stream:        l.Source,
		ReceivedAt:    time.Unix(0, l.TimeNano),
		Seq:           p.state.Seq + 1,
	})
	if err != nil {
		return p.quarantineLine(ctx, l, fmt.Sprintf("encode: %v", err))
	}
	if err := p.write(ctx, p.auditSink, out, "audit-file"); err != nil {
		return err
	}
	p.state.Seq++
	p.metrics.Event(metrics.OutcomeForwarded)
	if p.spool != nil {
		return p.toSpool(ctx, sink.Event{Line: out, AuditID: ev.AuditID(), Seq: p.state.Seq, Time: ev.ReceivedAt()})
	}
	return nil
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
	if errors.Is(err, spool.ErrTooLarge) {
		p.gap(gapRecord{Destination: "all remote destinations", Lost: 1, FirstSeq: ev.Seq, LastSeq: ev.Seq,
			Reason: fmt.Sprintf("event of %d bytes is larger than spool-max-size", len(ev.Line))})
		return nil
	}
	return err
}

func (p *pipeline) gap(g gapRecord) {
	p.metrics.Lost(g.Destination, g.Lost)
	if err := recordGap(g, p.state.Info, p.auditSink, p.quarantine); err != nil {
		p.log.Error("recording a delivery gap failed", "gap", g, "error", err)
	}
	p.log.Warn("events lost for a destination", "destination", g.Destination, "lost", g.Lost, "first_seq", g.FirstSeq, "last_seq", g.LastSeq, "reason", g.Reason)
}

// quarantineRecord is one line of quarantine.log.
type quarantineRecord struct {
	Time          string `json:"time"`
	Reason        string `json:"reason"`
	ContainerID   string `json:"container-id"`
	ContainerName string `json:"container-name"`
	Stream        string `json:"stream"`
	Seq           uint64 `json:"quarantine-seq"`
	Size          int    `json:"size"`
	Truncated     bool   `json:"truncated,omitempty"`
	Unfinished    bool   `json:"unfinished,omitempty"`
	Raw           string `json:"raw,omitempty"`
	RawBase64     string `json:"raw-base64,omitempty"`
}

func (p *pipeline) quarantineLine(ctx context.Context, l *line, reason string) error {
	rec := quarantineRecord{
		Time:          time.Unix(0, l.TimeNano).UTC().Format(time.RFC3339Nano),
		Reason:        reason,
		ContainerID:   p.state.Info.ContainerID,
		ContainerName: containerName(p.state.Info),
		Stream:        l.Source,
		Seq:           p.state.Quarantined + 1,
		Size:          l.Size,
		Truncated:     l.Truncated(),
		Unfinished:    l.Unfinished,
	}
	if utf8.Valid(l.Data) {
		rec.Raw = string(l.Data)
	} else {
		rec.RawBase64 = base64.StdEncoding.EncodeToString(l.Data)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		return fmt.Errorf("quarantine record: %w", err)
	}
	if err := p.write(ctx, p.quarantine, bytes.TrimSuffix(buf.Bytes(), []byte("\n")), "quarantine-file"); err != nil {
		return err
	}
	p.state.Quarantined++
	p.metrics.Event(metrics.OutcomeQuarantined)
	// A flood of bad lines must not flood the plugin's log: the records
	// are in quarantine.log, the log only says that it happens.
	n := p.state.Quarantined
	p.qwarn.Do(func() { p.log.Warn("quarantined audit lines", "total", n, "last_reason", reason) })
	return nil
}

// write hands b to s, retrying with capped backoff while the sink fails
// (a full disk, say): the line stays in the store and is never dropped.
func (p *pipeline) write(ctx context.Context, s sink.Sink, b []byte, what string) error {
	backoff := 100 * time.Millisecond
	for {
		err := s.Write(b)
		if err == nil {
			p.unsynced += len(b)
			return nil
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
func (p *pipeline) checkpoint(ctx context.Context, pos position) error {
	safe := pos
	for _, s := range p.starts {
		if s.before(safe) {
			safe = s
		}
	}
	if !p.dirty && safe == p.state.Safe {
		return nil
	}
	backoff := 100 * time.Millisecond
	for {
		err := errors.Join(p.auditSink.Sync(), p.quarantine.Sync())
		if err == nil && p.spool != nil {
			err = p.spool.Sync()
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
	p.st.setPin(safe.Seg)
	return nil
}

func containerName(info Info) string {
	if len(info.ContainerName) > 0 && info.ContainerName[0] == '/' {
		return info.ContainerName[1:]
	}
	return info.ContainerName
}
