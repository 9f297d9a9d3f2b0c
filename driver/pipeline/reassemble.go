package pipeline

import (
	"github.com/docker/docker/api/types/plugins/logdriver"
)

// line is one complete log line, reassembled from its frames.
type line struct {
	Source   string
	TimeNano int64  // time of its first chunk, when dockerd read it
	Data     []byte // at most the reassembler's limit
	Size     int    // the line's real length; > len(Data) when cut
	// Unfinished is set for a line the container left without a newline,
	// flushed because its stream ended or another line began.
	Unfinished bool
	// HeadLost is set for the rest of an over-long line whose start a
	// plugin restart did not replay (see reassembler.resume): Data holds
	// what followed, and Size counts from the restart.
	HeadLost bool
}

// Truncated reports whether the line was longer than the limit.
func (l *line) Truncated() bool { return l.Size > len(l.Data) }

// reassembler joins the 16 KiB chunks dockerd makes of long lines. Chunks
// of stdout and stderr may interleave, so each source has its own pending
// line. A line keeps at most limit bytes; the rest is counted, not kept
// (the docker-logs store still has it whole).
type reassembler struct {
	limit   int
	pending map[string]*pendingLine
	spare   []byte // the buffer of the last line emitted, for the next one
}

// spareMax bounds the buffer kept for the next long line.
const spareMax = 256 << 10

type pendingLine struct {
	id       string
	l        line
	overlong bool // reported by overlong once
}

func newReassembler(limit int) *reassembler {
	return &reassembler{limit: limit, pending: map[string]*pendingLine{}}
}

// add takes one entry and calls emit for each line it completes: the
// entry's own line, and before it a pending line of the same source that
// the entry shows was left unfinished. emit must not keep l.Data.
func (r *reassembler) add(e *logdriver.LogEntry, emit func(l *line) error) error {
	p := r.pending[e.Source]
	if !e.Partial {
		if p != nil {
			if err := r.flushSource(e.Source, emit); err != nil {
				return err
			}
		}
		l := line{Source: e.Source, TimeNano: e.TimeNano, Size: len(e.Line), Data: e.Line}
		if len(l.Data) > r.limit {
			l.Data = l.Data[:r.limit]
		}
		return emit(&l)
	}
	id := e.GetPartialLogMetadata().GetId()
	if p != nil && p.id != id {
		if err := r.flushSource(e.Source, emit); err != nil {
			return err
		}
		p = nil
	}
	if p == nil {
		p = &pendingLine{id: id, l: line{Source: e.Source, TimeNano: e.TimeNano, Data: r.spare}}
		r.spare = nil
		r.pending[e.Source] = p
	}
	if p.l.HeadLost && p.l.Size == 0 && e.GetPartialLogMetadata().GetOrdinal() == 1 {
		p.l.HeadLost = false // the replay reached the line's start after all
		p.l.TimeNano = e.TimeNano
	}
	p.l.Size += len(e.Line)
	if room := r.limit - len(p.l.Data); room > 0 {
		chunk := e.Line
		if len(chunk) > room {
			chunk = chunk[:room]
		}
		p.l.Data = append(p.l.Data, chunk...)
	}
	if e.GetPartialLogMetadata().GetLast() {
		delete(r.pending, e.Source)
		return r.emitPending(p, emit)
	}
	return nil
}

func (r *reassembler) flushSource(src string, emit func(l *line) error) error {
	p := r.pending[src]
	delete(r.pending, src)
	p.l.Unfinished = true
	return r.emitPending(p, emit)
}

// emitPending emits a pending line, then keeps its buffer for the next one
// (emit does not keep l.Data).
func (r *reassembler) emitPending(p *pendingLine, emit func(l *line) error) error {
	err := emit(&p.l)
	if cap(p.l.Data) <= spareMax {
		r.spare = p.l.Data[:0]
	}
	return err
}

// flush emits every pending line as unfinished, stdout first. It is called
// when the stream ends, so the tail of a line is never lost.
func (r *reassembler) flush(emit func(l *line) error) error {
	for _, src := range []string{"stdout", "stderr"} {
		if r.pending[src] != nil {
			if err := r.flushSource(src, emit); err != nil {
				return err
			}
		}
	}
	for src := range r.pending {
		if err := r.flushSource(src, emit); err != nil {
			return err
		}
	}
	return nil
}

func (r *reassembler) pendingID(src string) string {
	if p := r.pending[src]; p != nil {
		return p.id
	}
	return ""
}

func (r *reassembler) hasPending(src string) bool { return r.pending[src] != nil }

// overlong reports, once per line, that the pending line of src has just
// grown past the limit, with its id and kept head. emit must not keep
// head.
func (r *reassembler) overlong(src string) (id string, head []byte, ok bool) {
	p := r.pending[src]
	if p == nil || p.overlong || p.l.Size <= r.limit {
		return "", nil, false
	}
	p.overlong = true
	return p.id, p.l.Data, true
}

// isOverlong reports whether the pending line of src is past the limit.
func (r *reassembler) isOverlong(src string) bool {
	p := r.pending[src]
	return p != nil && p.l.Size > r.limit
}

// resume sets up a pending over-long line of src whose start is not
// replayed: its later chunks make up a line with HeadLost set.
func (r *reassembler) resume(src, id string, timeNano int64) {
	r.pending[src] = &pendingLine{id: id, overlong: true, l: line{Source: src, TimeNano: timeNano, HeadLost: true}}
}
