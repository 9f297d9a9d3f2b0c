// Package spool owns the durable queue between the audit pipeline and the
// remote destinations of one container.
//
// The pipeline appends every forwarded event; a Sync makes the events
// durable and visible to readers. Each destination reads with its own
// cursor, persisted in the spool directory, and commits it only once the
// destination has taken the events, so a crash or restart re-delivers from
// the last commit (at-least-once). Segment files are removed once every
// destination is past them.
//
// The spool is bounded by MaxSize bytes. When an Append would pass it, the
// policy decides: Drop removes the oldest segment even if a destination has
// not read it, and reports each destination's loss as a Gap so the caller
// can record it; Block makes Append wait until the destinations free room.
package spool

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

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
	// ErrTooLarge is returned by Append for an event larger than the
	// whole spool.
	ErrTooLarge = errors.New("event larger than the spool")
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
type Position struct {
	Seg int64 `json:"seg"`
	Off int64 `json:"off"`
}

func (p Position) before(q Position) bool {
	return p.Seg < q.Seg || (p.Seg == q.Seg && p.Off < q.Off)
}

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

// failLocked gives up what was not synced (and ev, if not nil, which was
// not appended) after err, and returns the WriteError saying so.
func (s *Spool) failLocked(err error, ev *sink.Event) error {
	lost := s.unsynced
	if ev != nil {
		if lost.Lost == 0 {
			lost.FirstSeq = ev.Seq
		}
		lost.LastSeq = ev.Seq
		lost.Lost++
	}
	s.unsynced = Gap{}
	if s.w != nil {
		cur := s.segs[len(s.segs)-1]
		_ = s.w.Close()
		_ = os.Truncate(s.segPath(cur.n), cur.size) // best effort: readers stop at cur.size anyway
		s.total -= s.wsize - cur.size
		s.wsize = cur.size
		s.w = nil
		s.bw.Reset(io.Discard)
	}
	return &WriteError{Lost: lost, Err: err}
}

type segment struct {
	n    int64
	size int64 // committed: visible to readers
}

// Spool is safe for concurrent use: one appender, any number of readers.
type Spool struct {
	o Options

	mu      sync.Mutex
	segs    []*segment
	total   int64 // bytes in all segments, written or buffered
	w       *os.File
	bw      *bufio.Writer
	wsize   int64 // bytes written to the current segment, flushed or not
	cursors map[string]Position
	waiting bool // an Append waits for room
	// unsynced are the records appended since the last Sync: lost, for
	// every destination, if the disk fails before the next one.
	unsynced Gap
	closed   bool
	changed  chan struct{}
}

const (
	segSuffix = ".spool"
	hdrLen    = 4 + 8 + 8 + 2 // length, seq, time, id length
)

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
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{o: o, cursors: map[string]Position{}, changed: make(chan struct{})}
	ents, err := os.ReadDir(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, segSuffix) {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || n <= 0 {
			continue
		}
		size, err := validLength(s.segPath(n))
		if err != nil {
			return nil, err
		}
		s.segs = append(s.segs, &segment{n: n, size: size})
		s.total += size
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].n < s.segs[j].n })
	if err := s.openWriterLocked(); err != nil {
		return nil, err
	}
	end := s.endLocked()
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

func (s *Spool) segPath(n int64) string {
	return filepath.Join(s.o.Dir, fmt.Sprintf("%020d%s", n, segSuffix))
}

func (s *Spool) cursorPath(dest string) string {
	h := sha256.Sum256([]byte(dest))
	return filepath.Join(s.o.Dir, "cursor-"+hex.EncodeToString(h[:8])+".json")
}

type cursorFile struct {
	Destination string   `json:"destination"`
	Position    Position `json:"position"`
}

func (s *Spool) loadCursor(dest string) (*Position, error) {
	b, err := os.ReadFile(s.cursorPath(dest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spool cursor: %w", err)
	}
	var c cursorFile
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("spool cursor %q: %w", s.cursorPath(dest), err)
	}
	return &c.Position, nil
}

func (s *Spool) saveCursor(dest string, pos Position) error {
	b, _ := json.Marshal(cursorFile{Destination: dest, Position: pos})
	tmp := s.cursorPath(dest) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool cursor: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.cursorPath(dest))
	}
	if err != nil {
		return fmt.Errorf("spool cursor: %w", err)
	}
	return nil
}

// validLength is the length of a segment up to its last whole record.
func validLength(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var off int64
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break
		}
		n := int64(binary.BigEndian.Uint32(hdr[:]))
		if n < hdrLen-4 {
			break
		}
		if _, err := r.Discard(int(n)); err != nil {
			break
		}
		off += 4 + n
	}
	return off, nil
}

// openWriterLocked appends to the newest segment, after cutting a torn
// record off its end, or starts the first one.
func (s *Spool) openWriterLocked() error {
	if n := len(s.segs); n > 0 {
		last := s.segs[n-1]
		if err := os.Truncate(s.segPath(last.n), last.size); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		f, err := os.OpenFile(s.segPath(last.n), os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.w, s.wsize = f, last.size
		s.bw = bufio.NewWriterSize(f, 64<<10)
		return nil
	}
	return s.newSegmentLocked()
}

func (s *Spool) newSegmentLocked() error {
	next := int64(1)
	if n := len(s.segs); n > 0 {
		next = s.segs[n-1].n + 1
	}
	f, err := os.OpenFile(s.segPath(next), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool: new segment: %w", err)
	}
	if s.w != nil {
		s.w.Close()
	}
	s.w, s.wsize = f, 0
	if s.bw == nil {
		s.bw = bufio.NewWriterSize(f, 64<<10)
	} else {
		s.bw.Reset(f)
	}
	s.segs = append(s.segs, &segment{n: next})
	return nil
}

func (s *Spool) endLocked() Position {
	last := s.segs[len(s.segs)-1]
	return Position{Seg: last.n, Off: last.size}
}

// clampLocked moves a position that points before the oldest segment (or
// past the end) to a valid one.
func (s *Spool) clampLocked(p Position) Position {
	if p.Seg < s.segs[0].n {
		return Position{Seg: s.segs[0].n}
	}
	if end := s.endLocked(); end.before(p) {
		return end
	}
	return p
}

func recordSize(ev sink.Event) int64 { return int64(hdrLen + len(ev.AuditID) + len(ev.Line)) }

// Append adds an event. It is not visible to readers before Sync. With the
// Drop policy, the Gaps say what destinations lost to make room; with
// Block, Append waits for room until ctx is done or the spool is closed.
func (s *Spool) Append(ctx context.Context, ev sink.Event) ([]Gap, error) {
	size := recordSize(ev)
	if len(ev.AuditID) > 0xffff {
		ev.AuditID = ev.AuditID[:0xffff]
		size = recordSize(ev)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if size > s.o.MaxSize || size > 1<<31 {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	if s.w == nil { // the last write failed: start afresh
		if err := s.newSegmentLocked(); err != nil {
			return nil, s.failLocked(err, &ev)
		}
	}
	var gaps []Gap
	for s.total+size > s.o.MaxSize {
		if s.o.Full == Block {
			if err := s.waitLocked(ctx); err != nil {
				return nil, err
			}
			continue
		}
		g, err := s.dropOldestLocked()
		gaps = append(gaps, g...)
		if err != nil {
			return gaps, s.failLocked(err, &ev)
		}
	}
	if s.wsize > 0 && s.wsize+size > s.o.SegmentSize {
		if err := s.rotateLocked(); err != nil {
			return gaps, s.failLocked(err, &ev)
		}
	}
	var hdr [hdrLen]byte
	binary.BigEndian.PutUint32(hdr[0:], uint32(size-4))
	binary.BigEndian.PutUint64(hdr[4:], ev.Seq)
	binary.BigEndian.PutUint64(hdr[12:], uint64(ev.Time.UnixNano()))
	binary.BigEndian.PutUint16(hdr[20:], uint16(len(ev.AuditID)))
	s.bw.Write(hdr[:])
	s.bw.WriteString(ev.AuditID)
	if _, err := s.bw.Write(ev.Line); err != nil {
		return gaps, s.failLocked(err, &ev)
	}
	s.wsize += size
	s.total += size
	if s.unsynced.Lost == 0 {
		s.unsynced.FirstSeq = ev.Seq
	}
	s.unsynced.LastSeq = ev.Seq
	s.unsynced.Lost++
	return gaps, nil
}

// waitLocked waits for a change with s.mu held on return.
func (s *Spool) waitLocked(ctx context.Context) error {
	s.waiting = true
	ch := s.changed
	s.mu.Unlock()
	if s.o.OnWait != nil {
		s.o.OnWait()
	}
	select {
	case <-ch:
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.waiting = false
	if s.closed {
		return ErrClosed
	}
	return ctx.Err()
}

// Waiting reports whether an Append is blocked for room: the caller then
// slows its reading of the container (the Block policy's promise).
func (s *Spool) Waiting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

// dropOldestLocked removes the oldest segment and moves the cursors in it.
// The current segment is first closed off, so the writer never loses the
// file it writes.
func (s *Spool) dropOldestLocked() ([]Gap, error) {
	if len(s.segs) == 1 {
		if err := s.rotateLocked(); err != nil {
			return nil, err
		}
	}
	old := s.segs[0]
	var gaps []Gap
	for _, d := range s.sortedDestinations() {
		pos := s.cursors[d]
		if pos.Seg != old.n {
			continue
		}
		g, err := s.countFrom(old, pos.Off)
		if err != nil {
			return nil, err
		}
		if g.Lost > 0 {
			g.Destination = d
			gaps = append(gaps, g)
		}
		next := Position{Seg: s.segs[1].n}
		s.cursors[d] = next
		if err := s.saveCursor(d, next); err != nil {
			return gaps, err
		}
	}
	if err := os.Remove(s.segPath(old.n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return gaps, fmt.Errorf("spool: %w", err)
	}
	s.total -= old.size
	s.segs = s.segs[1:]
	s.broadcastLocked()
	return gaps, nil
}

// rotateLocked seals the current segment (durable, all of it visible) and
// starts a new one.
func (s *Spool) rotateLocked() error {
	if err := s.flushLocked(); err != nil {
		return err
	}
	if err := s.w.Sync(); err != nil {
		return fmt.Errorf("spool: fsync: %w", err)
	}
	s.segs[len(s.segs)-1].size = s.wsize
	s.unsynced = Gap{}
	s.broadcastLocked()
	return s.newSegmentLocked()
}

// countFrom counts the records of seg from off (all of them written, even
// those not yet synced) and their seq range.
func (s *Spool) countFrom(seg *segment, off int64) (Gap, error) {
	var g Gap
	f, err := os.Open(s.segPath(seg.n))
	if err != nil {
		return g, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return g, fmt.Errorf("spool: %w", err)
	}
	recs, _, err := readRecords(f, Position{Seg: seg.n, Off: off}, fi.Size(), 1<<62, 1<<62, true)
	if err != nil {
		return g, err
	}
	for i, r := range recs {
		if i == 0 {
			g.FirstSeq = r.Seq
		}
		g.LastSeq = r.Seq
		g.Lost++
	}
	return g, nil
}

func (s *Spool) sortedDestinations() []string {
	ds := make([]string, 0, len(s.cursors))
	for d := range s.cursors {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	return ds
}

// Sync makes every appended event durable and visible to readers.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.w == nil {
		return nil // nothing written since a failure gave it all up
	}
	if err := s.flushLocked(); err != nil {
		return s.failLocked(err, nil)
	}
	if err := s.w.Sync(); err != nil {
		return s.failLocked(fmt.Errorf("spool: fsync: %w", err), nil)
	}
	s.unsynced = Gap{}
	cur := s.segs[len(s.segs)-1]
	if cur.size != s.wsize {
		cur.size = s.wsize
		s.broadcastLocked()
	}
	return nil
}

func (s *Spool) flushLocked() error {
	if s.w == nil {
		return nil
	}
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("spool: flush: %w", err)
	}
	return nil
}

func (s *Spool) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Watch returns a channel closed at the next change: new events, a commit,
// a dropped segment, Close. Take it before reading, so no change is missed.
func (s *Spool) Watch() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Read returns up to maxEvents events (and about maxBytes) after dest's
// cursor, or none when dest has read everything synced. It does not move
// the cursor: Commit does.
func (s *Spool) Read(dest string, maxEvents int, maxBytes int64) ([]Record, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		pos, ok := s.cursors[dest]
		if !ok {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: %q", ErrUnknownDestination, dest)
		}
		var seg *segment
		var next int64
		for i, sg := range s.segs {
			if sg.n == pos.Seg {
				seg = sg
				if i+1 < len(s.segs) {
					next = s.segs[i+1].n
				}
			}
		}
		if seg == nil {
			// Cannot happen: dropping and pruning move cursors along.
			s.mu.Unlock()
			return nil, fmt.Errorf("spool: cursor of %q points at missing segment %d", dest, pos.Seg)
		}
		limit := seg.size
		s.mu.Unlock()
		if pos.Off >= limit {
			if next == 0 {
				return nil, nil
			}
			// The segment is done: move on without committing; Commit
			// of the next batch carries the cursor over.
			recs, err := s.readFrom(Position{Seg: next}, maxEvents, maxBytes)
			if err != nil || len(recs) > 0 {
				return recs, err
			}
			// Nothing synced in the next one yet.
			return nil, nil
		}
		f, err := os.Open(s.segPath(seg.n))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		recs, _, err := readRecords(f, pos, limit, maxEvents, maxBytes, false)
		f.Close()
		return recs, err
	}
}

// readFrom reads from a segment start (used when a cursor sits at the end of
// a finished segment).
func (s *Spool) readFrom(pos Position, maxEvents int, maxBytes int64) ([]Record, error) {
	s.mu.Lock()
	var limit int64 = -1
	for _, sg := range s.segs {
		if sg.n == pos.Seg {
			limit = sg.size
		}
	}
	s.mu.Unlock()
	if limit <= 0 {
		return nil, nil
	}
	f, err := os.Open(s.segPath(pos.Seg))
	if err != nil {
		return nil, nil // dropped meanwhile; the next Read sorts it out
	}
	defer f.Close()
	recs, _, err := readRecords(f, pos, limit, maxEvents, maxBytes, false)
	return recs, err
}

// readRecords reads records of one segment from pos up to limit.
func readRecords(f *os.File, pos Position, limit int64, maxEvents int, maxBytes int64, lenient bool) ([]Record, int64, error) {
	r := bufio.NewReaderSize(io.NewSectionReader(f, pos.Off, limit-pos.Off), 64<<10)
	var recs []Record
	var bytes int64
	off := pos.Off
	for len(recs) < maxEvents && bytes < maxBytes {
		var hdr [hdrLen]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || lenient {
				break
			}
			return recs, off, fmt.Errorf("spool: segment %d at %d: %w", pos.Seg, off, err)
		}
		n := int64(binary.BigEndian.Uint32(hdr[0:]))
		idLen := int64(binary.BigEndian.Uint16(hdr[20:]))
		if n < hdrLen-4+idLen {
			return recs, off, fmt.Errorf("spool: segment %d at %d: corrupt record", pos.Seg, off)
		}
		body := make([]byte, n-(hdrLen-4))
		if _, err := io.ReadFull(r, body); err != nil {
			if lenient {
				break
			}
			return recs, off, fmt.Errorf("spool: segment %d at %d: %w", pos.Seg, off, err)
		}
		off += 4 + n
		bytes += 4 + n
		recs = append(recs, Record{
			Event: sink.Event{
				Seq:     binary.BigEndian.Uint64(hdr[4:]),
				Time:    time.Unix(0, int64(binary.BigEndian.Uint64(hdr[12:]))),
				AuditID: string(body[:idLen]),
				Line:    body[idLen:],
			},
			End: Position{Seg: pos.Seg, Off: off},
		})
	}
	return recs, off, nil
}

// Commit records that dest has taken every event up to pos, and removes
// segments no destination needs any more.
func (s *Spool) Commit(dest string, pos Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	cur, ok := s.cursors[dest]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownDestination, dest)
	}
	if !cur.before(pos) {
		return nil
	}
	if err := s.saveCursor(dest, pos); err != nil {
		return err
	}
	s.cursors[dest] = pos
	s.pruneLocked()
	s.broadcastLocked()
	return nil
}

// pruneLocked removes segments every cursor has left behind (never the
// one being written).
func (s *Spool) pruneLocked() {
	for len(s.segs) > 1 {
		old := s.segs[0]
		for _, p := range s.cursors {
			if p.Seg < old.n || (p.Seg == old.n && p.Off < old.size) {
				return
			}
		}
		if err := os.Remove(s.segPath(old.n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return
		}
		s.total -= old.size
		s.segs = s.segs[1:]
		// Cursors at the very end of the removed segment move on.
		for d, p := range s.cursors {
			if p.Seg == old.n {
				s.cursors[d] = Position{Seg: s.segs[0].n}
			}
		}
	}
}

// Pending reports whether dest has events it has not committed, synced or
// not yet.
func (s *Spool) Pending(dest string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos := s.cursors[dest]
	for i := len(s.segs) - 1; i >= 0; i-- {
		sg := s.segs[i]
		size := sg.size
		if i == len(s.segs)-1 {
			size = s.wsize
		}
		if size > 0 {
			return pos.before(Position{Seg: sg.n, Off: size})
		}
	}
	return false
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
	var err error
	if s.w != nil {
		err = s.flushLocked()
		if err == nil {
			err = s.w.Sync()
		}
		if cerr := s.w.Close(); err == nil {
			err = cerr
		}
	}
	s.closed = true
	s.broadcastLocked()
	if err != nil {
		return fmt.Errorf("spool: close: %w", err)
	}
	return nil
}

// Lag returns how many bytes dest has not committed yet.
func (s *Spool) Lag(dest string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos, ok := s.cursors[dest]
	if !ok {
		return 0
	}
	var lag int64
	for i, sg := range s.segs {
		size := sg.size
		if i == len(s.segs)-1 {
			size = s.wsize
		}
		switch {
		case sg.n == pos.Seg:
			lag += max(0, size-pos.Off)
		case sg.n > pos.Seg:
			lag += size
		}
	}
	return lag
}
