// Package spool owns the durable queue between the audit pipeline and the
// remote destinations of one container.
//
// The pipeline appends every forwarded event; a Sync makes the events
// durable and visible to readers. Each destination reads with its own
// cursor, persisted in the spool directory, and commits it only once the
// destination has taken the events, so a crash or restart re-delivers from
// the last commit (at-least-once). Segments (package seglog, suffix
// ".spool") are removed once every destination is past them.
//
// The spool is bounded by MaxSize bytes. When an Append would pass it, the
// policy decides: Drop removes the oldest segment even if a destination has
// not read it, and reports each destination's loss as a Gap so the caller
// can record it; Block makes Append wait until the destinations free room.
//
// Files: spool.go (the type, Open, Close), append.go (Append, Sync, the
// full policy and disk failures), read.go (Read, Commit, pruning, Lag),
// cursor.go (the destinations' persisted cursors).
package spool

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ucp-audit/ucp-audit/seglog"
	"github.com/ucp-audit/ucp-audit/sink"
)

// FullPolicy says what Append does when the spool is full.
type FullPolicy int

const (
	// Drop discards the oldest segment and reports the loss as Gaps.
	Drop FullPolicy = iota
	// Block waits until destinations free room.
	Block
)

// ParseFullPolicy reads "drop" or "block".
func ParseFullPolicy(s string) (FullPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "drop":
		return Drop, nil
	case "block":
		return Block, nil
	}
	return Drop, fmt.Errorf("unknown policy %q", s)
}

func (p FullPolicy) String() string {
	if p == Block {
		return "block"
	}
	return "drop"
}

// Sentinel errors.
var (
	// ErrClosed is returned by calls after Close, and by an Append that
	// was waiting for room when Close came.
	ErrClosed = errors.New("spool closed")
	// ErrLargerThanSpool is returned by Append for an event larger than
	// the whole spool (MaxSize). Not to be confused with sink.ErrTooLarge,
	// an event a transport cannot carry.
	ErrLargerThanSpool = errors.New("event larger than the whole spool")
	// ErrUnknownDestination is returned for a destination not given to Open.
	ErrUnknownDestination = errors.New("unknown destination")
)

// Options configure a Spool.
type Options struct {
	Dir     string
	MaxSize int64 // total bytes of all segments
	// SegmentSize is the size at which a new segment starts; 0 picks
	// MaxSize/8, at most 16 MiB and at least 64 KiB.
	SegmentSize int64
	Full        FullPolicy
	// OnWait, if set, is called when an Append starts waiting for room
	// (Block), without the spool's lock held; it must not call Append.
	OnWait func()
}

// Position is a place in the spool.
type Position = seglog.Position

// Record is an event read from the spool, with the position just past it.
type Record struct {
	sink.Event
	End Position
}

// Gap reports events a destination lost because the spool was full.
type Gap struct {
	Destination       string
	Lost              uint64
	FirstSeq, LastSeq uint64
}

// WriteError is returned by Append and Sync when the disk failed under
// the spool (full, or gone). The spool has recovered: the records it had
// not made durable yet, Lost (the Destination is empty: every destination
// lost them), are given up; what was synced stays readable, and the next
// Append starts a new segment.
type WriteError struct {
	Lost Gap
	Err  error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("spool: write failed, %d events not spooled (seq %d-%d): %v", e.Lost.Lost, e.Lost.FirstSeq, e.Lost.LastSeq, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// Spool is safe for concurrent use: one appender, any number of readers.
type Spool struct {
	o Options

	mu      sync.Mutex
	log     *seglog.Log
	total   int64 // bytes in all segments, written or buffered
	cursors map[string]Position
	waiting bool // an Append waits for room
	// unsynced are the records appended since the last Sync: lost, for
	// every destination, if the disk fails before the next one.
	unsynced Gap
	closed   bool
}

const (
	segSuffix = ".spool"
	hdrLen    = 4 + 8 + 8 + 2 // length, seq, time, id length
)

// validLength is the framing of a segment: the length of its whole
// records (a length prefix counting the rest of the header and the body).
func validLength(r io.Reader) int64 {
	var off int64
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return off
		}
		n := int64(hdr[0])<<24 | int64(hdr[1])<<16 | int64(hdr[2])<<8 | int64(hdr[3])
		if n < hdrLen-4 {
			return off
		}
		if _, err := io.CopyN(io.Discard, r, n); err != nil {
			return off
		}
		off += 4 + n
	}
}

// Open opens or creates the spool in o.Dir for the given destinations. A
// destination without a saved cursor starts at the end: it gets events
// appended from now on.
func Open(o Options, destinations []string) (*Spool, error) {
	if o.MaxSize <= 0 {
		return nil, errors.New("spool: MaxSize must be positive")
	}
	if o.SegmentSize <= 0 {
		o.SegmentSize = min(max(o.MaxSize/8, 64<<10), 16<<20)
	}
	l, err := seglog.Open(seglog.Options{Dir: o.Dir, Suffix: segSuffix, Valid: validLength, CheckAll: true})
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{o: o, log: l, cursors: map[string]Position{}}
	for _, sg := range l.Segments() {
		s.total += sg.Size
	}
	if err := l.AppendNewest(); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	end := l.End()
	for _, d := range destinations {
		pos, err := s.loadCursor(d)
		if err != nil {
			return nil, err
		}
		if pos == nil {
			// Persist the starting point now: events appended before
			// the first commit must survive a restart too.
			pos = &end
			if err := s.saveCursor(d, end); err != nil {
				return nil, err
			}
		}
		s.cursors[d] = s.clampLocked(*pos)
	}
	s.pruneLocked()
	return s, nil
}

// Waiting reports whether an Append is blocked for room: the caller then
// slows its reading of the container (the Block policy's promise), and a
// reader should send what it has rather than wait for more, which cannot
// come before it commits. An Append that starts waiting wakes Watch.
func (s *Spool) Waiting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

// Watch returns a channel closed at the next change: new events, a commit,
// a dropped segment, an Append starting to wait for room, Close. Take it before reading, so no change is missed.
func (s *Spool) Watch() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.Watch()
}

// Size returns the bytes the spool holds.
func (s *Spool) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Close syncs and releases the spool; a waiting Append returns ErrClosed.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	err := s.log.Sync()
	if cerr := s.log.CloseWriter(); err == nil {
		err = cerr
	}
	s.closed = true
	s.log.Broadcast()
	if err != nil {
		return fmt.Errorf("spool: close: %w", err)
	}
	return nil
}
