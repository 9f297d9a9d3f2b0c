package pipeline

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/metrics"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/spool"
)

// WriteSelf appends the self record ev to s and syncs it.
func WriteSelf(s sink.Sink, ev auditlog.Self) error {
	b, err := auditlog.MarshalSelf(ev)
	if err != nil {
		return err
	}
	if err := s.Write(b); err != nil {
		return err
	}
	return s.Sync()
}

// RecordGap writes the gap record g, events that will never reach a
// destination, as the container's (info; g's Time and container fields
// are set here): to audit.log, so the trail itself shows the gap, and to
// quarantine.log with a summary. It returns the line it wrote to audit.log
// (for Forward). It retries nothing: a failing file is logged, as the
// pipeline's own writes will also find it failing.
func RecordGap(g auditlog.Gap, info dockerlog.Info, auditFile, quarantine sink.Sink) ([]byte, error) {
	g.Time = time.Now().UTC().Format(time.RFC3339Nano)
	g.ContainerID, g.ContainerName = info.ContainerID, info.Name()
	a, err := auditlog.MarshalGap(g)
	if err != nil {
		return nil, err
	}
	q, err := auditlog.MarshalQuarantineGap(g)
	if err != nil {
		return nil, err
	}
	if err := auditFile.Write(a); err != nil {
		return a, err
	}
	if err := quarantine.Write(q); err != nil {
		return a, err
	}
	if err := auditFile.Sync(); err != nil {
		return a, err
	}
	return a, quarantine.Sync()
}

// forwardWait bounds how long Forward waits for room in a spool with
// spool-full=block.
const forwardWait = time.Second

// Forward hands line, a record of the plugin's own (a gap record, or a
// self record about delivery), to the container's remote destinations
// through its spool sp, so that a SIEM sees a loss as a record and not only
// as a jump in ucp-audit/seq. The record is not chained (it has no
// ucp-audit/chain field) and is marked as the plugin's by its top-level
// key; its seq in the spool is 0, so that a loss of it is not counted as
// one of the container's events. It never waits long: a spool that stays full forwards nothing, and the
// trail has the record anyway. What its own append makes a full spool
// drop (spool-full=drop) is passed to lost, which must record it without
// forwarding it again.
func Forward(sp *spool.Spool, line []byte, lost func(auditlog.Gap)) error {
	ctx, cancel := context.WithTimeout(context.Background(), forwardWait)
	defer cancel()
	gaps, err := sp.Append(ctx, sink.Event{Line: line, Time: time.Now()})
	for _, g := range gaps {
		lost(auditlog.Gap{Destination: g.Destination, Lost: g.Lost, FirstSeq: g.FirstSeq, LastSeq: g.LastSeq,
			Reason: "spool full: oldest undelivered events discarded to forward a record of the plugin's own"})
	}
	if err != nil {
		return err
	}
	return sp.Sync()
}

// lossEvery spaces the records of lost input while the loss goes on.
const lossEvery = 10 * time.Second

// reportLoss records input the reader lost, if any: a quarantine record
// (with the byte count and the reason, but no raw line: there is none) and
// a self-audit event in audit.log. It writes at most one per lossEvery
// while losses go on, and one at the stream's end.
func (p *Pipeline) reportLoss() {
	if time.Since(p.lossAt) < lossEvery {
		return
	}
	frames, n, reason := p.o.Loss.Take()
	if n == 0 {
		return
	}
	p.lossAt = time.Now()
	if !p.trusted() {
		// Not a producer: its losses are its docker logs', not the
		// trail's; the plugin's log says so.
		p.o.Log.Warn("container output lost", "bytes", n, "reason", reason)
		return
	}
	detail := fmt.Sprintf("%d bytes of container output lost", n)
	if frames > 0 {
		detail = fmt.Sprintf("%d log entries (%d bytes) of container output lost", frames, n)
	}
	p.o.Metrics.InputLost(n)
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
		err = p.o.Quarantine.Write(b)
	}
	if err == nil {
		p.state.Quarantined++
		p.dirty = true
	}
	if p.o.NewSelf != nil {
		ev := p.o.NewSelf(auditlog.SelfInputLost)
		ev.Detail = rec.Reason
		err = errors.Join(err, WriteSelf(p.o.AuditFile, ev))
	}
	if err != nil {
		p.o.Log.Error("cannot record lost container output", "detail", rec.Reason, "error", err)
	}
}

// maxQuarantineRecord bounds a quarantine record so that it stays a line
// the readers take (auditlog.MaxLine, with room for the chain field):
// escaping can make raw six times the line.
const maxQuarantineRecord = auditlog.MaxLine - 64<<10

func (p *Pipeline) quarantineLine(ctx context.Context, l *line, reason string) error {
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
		if len(b)+1 <= p.maxRecord || len(data) == 0 { // +1: the newline
			break
		}
		data = data[:len(data)/2]
		for valid && len(data) > 0 && !utf8.Valid(data) {
			data = data[:len(data)-1] // a rune cut in two
		}
		rec.RawBytes = len(data)
	}
	if err := p.write(ctx, p.o.Quarantine, b, "quarantine-file"); err != nil {
		return err
	}
	p.state.Quarantined++
	p.o.Metrics.Event(metrics.OutcomeQuarantined)
	// A flood of bad lines must not flood the plugin's log: the records
	// are in quarantine.log, the log only says that it happens (never with
	// the reason, which can quote a field's value).
	n := p.state.Quarantined
	p.qwarn.Do(func() {
		p.o.Log.Warn("quarantined audit lines; the records are in the quarantine file", "total", n)
	})
	return nil
}
