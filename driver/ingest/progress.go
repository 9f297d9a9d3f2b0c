package ingest

import (
	"sync"
	"sync/atomic"
)

// Progress counts the frame bytes of one run of a stream, which the reader,
// the pipeline and the driver share: the driver waits on it for the
// pipeline to catch up (a suspend), and with spool-full=block the reader
// stays at most blockLag ahead of the pipeline. Safe for concurrent use.
type Progress struct {
	// Appended counts what the reader stored.
	Appended atomic.Int64
	// Consumed counts what the pipeline handled.
	Consumed atomic.Int64
	// Checkpointed is Consumed as of the pipeline's last checkpoint.
	Checkpointed atomic.Int64
}

// Checkpoint records that everything Consumed so far is checkpointed.
func (p *Progress) Checkpoint() { p.Checkpointed.Store(p.Consumed.Load()) }

// Settled reports whether the pipeline has handled and checkpointed
// everything the reader stored.
func (p *Progress) Settled() bool {
	return p.Consumed.Load() >= p.Appended.Load() && p.Checkpointed.Load() >= p.Consumed.Load()
}

// Loss counts what the reader could not keep. The pipeline takes it and
// records it in quarantine.log and as a self-audit event. Safe for
// concurrent use.
type Loss struct {
	mu            sync.Mutex
	frames, bytes int64
	reason        string // the latest
}

// Add counts frames whole log entries and bytes bytes lost, for reason.
func (l *Loss) Add(frames, bytes int64, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frames += frames
	l.bytes += bytes
	l.reason = reason
}

// Take returns and resets what was lost since the last call, with the
// latest reason.
func (l *Loss) Take() (frames, bytes int64, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	frames, bytes, reason = l.frames, l.bytes, l.reason
	l.frames, l.bytes, l.reason = 0, 0, ""
	return frames, bytes, reason
}
