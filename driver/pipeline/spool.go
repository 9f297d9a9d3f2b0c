package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/spool"
)

// link returns the event as remote destinations get it: with the chain
// field of the container's own chain (package chain's format, with n the
// event's seq and prev the hash of the container's previous forwarded
// event), so a receiver can check each record and the order of a
// container's records without the files. The hash is kept in the state:
// an event handled again after a restart gets the same link.
func (p *Pipeline) link(out []byte) []byte {
	h := chain.Head{N: p.state.Seq - 1, Hash: p.state.Chain}
	line, err := h.Append(make([]byte, 0, len(out)+200), out)
	if err != nil {
		// Encode never makes such a record (Parse rejects the reserved
		// keys); forward it unlinked rather than not at all.
		p.warn.Do(func() { p.o.Log.Error("cannot link a forwarded event", "seq", p.state.Seq, "error", err) })
		return out
	}
	p.state.Chain = h.Hash
	return line
}

// toSpool hands the event to the remote destinations. With spool-full=drop
// the spool may discard older undelivered events to make room: each such
// gap is recorded. With block, Append waits (and the reader is paced:
// see ingest.BlockRate).
func (p *Pipeline) toSpool(ctx context.Context, ev sink.Event) error {
	gaps, err := p.o.Spool.Append(ctx, ev)
	for _, g := range gaps {
		p.gap(auditlog.Gap{Destination: g.Destination, Lost: g.Lost, FirstSeq: g.FirstSeq, LastSeq: g.LastSeq,
			Reason: fmt.Sprintf("spool full (spool-max-size %d bytes, spool-full=drop): oldest undelivered events discarded", p.o.Config.SpoolMaxSize)})
	}
	if errors.Is(err, spool.ErrLargerThanSpool) {
		p.gap(auditlog.Gap{Destination: "all remote destinations", Lost: 1, FirstSeq: ev.Seq, LastSeq: ev.Seq,
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
func (p *Pipeline) spoolFailed(err error) bool {
	var we *spool.WriteError
	if !errors.As(err, &we) {
		return false
	}
	if we.Lost.Lost > 0 {
		p.gap(auditlog.Gap{Destination: "all remote destinations", Lost: we.Lost.Lost, FirstSeq: we.Lost.FirstSeq, LastSeq: we.Lost.LastSeq,
			Reason: fmt.Sprintf("the spool could not write them (%v)", we.Err)})
	}
	return true
}

// gap records events lost for a destination (see RecordGap), and forwards
// the record to the destinations (see Forward).
func (p *Pipeline) gap(g auditlog.Gap) {
	line := p.recordGap(g)
	if line != nil && p.o.Spool != nil {
		if err := Forward(p.o.Spool, line, func(g auditlog.Gap) { p.recordGap(g) }); err != nil {
			p.warn.Do(func() { p.o.Log.Warn("a gap record could not be forwarded (it is in the trail)", "error", err) })
		}
	}
}

// recordGap records a gap in the trail and returns its line.
func (p *Pipeline) recordGap(g auditlog.Gap) []byte {
	p.o.Metrics.Lost(g.Destination, g.Lost)
	line, err := RecordGap(g, p.state.Info, p.o.AuditFile, p.o.Quarantine)
	if err != nil {
		p.o.Log.Error("recording a delivery gap failed", "gap", g, "error", err)
	}
	p.o.Log.Warn("events lost for a destination", "destination", g.Destination, "lost", g.Lost, "first_seq", g.FirstSeq, "last_seq", g.LastSeq, "reason", g.Reason)
	return line
}
