// Package seglog owns the segmented log under both the container's
// `docker logs` store and its spool of events awaiting remote delivery: a
// directory of numbered segment files ("00000000000000000001.seg" and up,
// the suffix the owner's), written by one appender through a buffer, read
// by any number of readers up to each segment's committed (reader-visible)
// length, with a change notification. The record framing is the owner's:
// Options.Valid tells how much of a segment is whole records, so that a
// segment torn by a crash is cut back to its last whole record. Which
// segments to drop, and when, is the owner's policy too (the store keeps
// what its pipeline has not read; the spool what a destination has not
// taken).
//
// Creating and removing a segment fsyncs the directory, so that a segment
// the owner has made durable does not vanish with its directory entry.
//
// A Log is not safe for concurrent use: its owner serialises every call
// under its own lock. Readers open the segment files by Path.
package seglog

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ucp-audit/ucp-audit/atomicfile"
)

// Position is a place in a log: a segment number and a byte offset.
type Position struct {
	Seg int64 `json:"seg"`
	Off int64 `json:"off"`
}

// Before reports whether p comes before q.
func (p Position) Before(q Position) bool {
	return p.Seg < q.Seg || (p.Seg == q.Seg && p.Off < q.Off)
}

// Framing returns the length of the whole records at the start of r: a
// record cut short by a crash, and anything after it, is not counted.
type Framing func(r io.Reader) int64

// Options configure a Log.
type Options struct {
	Dir    string
	Suffix string // of the segment files, with its dot: ".seg"
	// Valid tells the whole records of a segment; nil: every byte counts.
	Valid Framing
	// CheckAll checks every segment with Valid when the log is opened;
	// otherwise only the newest one (older ones were complete when a
	// newer one was started).
	CheckAll bool
	// BufferSize is the appender's buffer; 0: 64 KiB.
	BufferSize int
}

// Segment is one segment file: its number and its committed length.
type Segment struct {
	N    int64
	Size int64
}

// Log is a directory of segments; see the package comment.
type Log struct {
	o       Options
	segs    []Segment // present segments, ascending; Size is the committed length
	w       *os.File  // the newest segment while an appender writes it
	bw      *bufio.Writer
	wsize   int64 // bytes written to the newest segment, buffered or not
	changed chan struct{}
}

// Open lists the segments in o.Dir (creating it, mode 0700, if missing)
// and how much of each is whole records.
func Open(o Options) (*Log, error) {
	if o.BufferSize <= 0 {
		o.BufferSize = 64 << 10
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", o.Dir, err)
	}
	l := &Log{o: o, changed: make(chan struct{})}
	ents, err := os.ReadDir(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Dir, err)
	}
	for _, e := range ents {
		if n, ok := l.number(e.Name()); ok {
			l.segs = append(l.segs, Segment{N: n})
		}
	}
	slices.SortFunc(l.segs, func(a, b Segment) int { return cmp.Compare(a.N, b.N) })
	for i := range l.segs {
		if l.segs[i].Size, err = l.validLength(l.segs[i].N, o.CheckAll || i == len(l.segs)-1); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// number parses a segment file's name.
func (l *Log) number(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, l.o.Suffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return n, err == nil && n > 0
}

// Path returns the path of segment n.
func (l *Log) Path(n int64) string { return filepath.Join(l.o.Dir, Name(n, l.o.Suffix)) }

// Name is the file name of segment n: 20 decimal digits and the suffix.
func Name(n int64, suffix string) string { return fmt.Sprintf("%020d%s", n, suffix) }

// Exists reports whether dir holds a segment with suffix.
func Exists(dir, suffix string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*"+suffix))
	return len(m) > 0
}

// validLength is how much of segment n is whole records (all of it unless
// check).
func (l *Log) validLength(n int64, check bool) (int64, error) {
	f, err := os.Open(l.Path(n))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !check || l.o.Valid == nil {
		return fi.Size(), nil
	}
	return min(l.o.Valid(bufio.NewReaderSize(f, 64<<10)), fi.Size()), nil
}

// Segments returns the present segments, oldest first (a copy).
func (l *Log) Segments() []Segment { return slices.Clone(l.segs) }

// Len is the number of segments.
func (l *Log) Len() int { return len(l.segs) }

// Segment returns the i-th segment, oldest first.
func (l *Log) Segment(i int) Segment { return l.segs[i] }

// Committed returns segment n's committed length, and whether it exists.
func (l *Log) Committed(n int64) (int64, bool) {
	i, ok := l.index(n)
	if !ok {
		return 0, false
	}
	return l.segs[i].Size, true
}

// Next returns the first segment after n, or 0.
func (l *Log) Next(n int64) int64 {
	i, _ := slices.BinarySearchFunc(l.segs, n+1, bySeg)
	if i < len(l.segs) {
		return l.segs[i].N
	}
	return 0
}

func (l *Log) index(n int64) (int, bool) {
	return slices.BinarySearchFunc(l.segs, n, bySeg)
}

func bySeg(s Segment, n int64) int { return cmp.Compare(s.N, n) }

// First returns the position of the oldest record ({1, 0} when empty).
func (l *Log) First() Position {
	if len(l.segs) == 0 {
		return Position{Seg: 1}
	}
	return Position{Seg: l.segs[0].N}
}

// End returns the position just past the newest committed record.
func (l *Log) End() Position {
	if len(l.segs) == 0 {
		return Position{Seg: 1}
	}
	s := l.segs[len(l.segs)-1]
	return Position{Seg: s.N, Off: s.Size}
}

// File is the segment file being written, nil when none: for inspection
// (tests make the disk fail under it by closing it).
func (l *Log) File() *os.File { return l.w }

// Writing reports whether an appender has the newest segment open.
func (l *Log) Writing() bool { return l.w != nil }

// Written is how many bytes the newest segment holds, committed, flushed
// or buffered.
func (l *Log) Written() int64 { return l.wsize }

// AppendNewest opens the newest segment for appending, after cutting off
// any torn record at its end; with no segment it starts the first one.
func (l *Log) AppendNewest() error {
	if len(l.segs) == 0 {
		return l.StartSegment()
	}
	last := l.segs[len(l.segs)-1]
	if err := os.Truncate(l.Path(last.N), last.Size); err != nil {
		return fmt.Errorf("cut torn record: %w", err)
	}
	f, err := os.OpenFile(l.Path(last.N), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	l.setWriter(f, last.Size)
	return nil
}

// StartSegment closes the segment being written, if any (its buffered
// bytes must have been flushed), and starts the next one.
func (l *Log) StartSegment() error {
	next := int64(1)
	if n := len(l.segs); n > 0 {
		next = l.segs[n-1].N + 1
	}
	f, err := os.OpenFile(l.Path(next), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("new segment: %w", err)
	}
	if err := atomicfile.SyncDir(l.o.Dir); err != nil {
		f.Close()
		_ = os.Remove(l.Path(next))
		return fmt.Errorf("new segment: %w", err)
	}
	if l.w != nil {
		_ = l.w.Close() // flushed by the caller; a regular file's close loses nothing more
	}
	l.setWriter(f, 0)
	l.segs = append(l.segs, Segment{N: next})
	return nil
}

func (l *Log) setWriter(f *os.File, size int64) {
	l.w, l.wsize = f, size
	if l.bw == nil {
		l.bw = bufio.NewWriterSize(f, l.o.BufferSize)
	} else {
		l.bw.Reset(f)
	}
}

// ErrNoWriter is returned by Write, Flush and Sync when no segment is open
// for writing (after Abandon, or before AppendNewest or StartSegment).
var ErrNoWriter = errors.New("no segment open for writing")

// Write buffers p at the end of the newest segment. A failure leaves the
// segment as it was committed only after Abandon.
func (l *Log) Write(p ...[]byte) error {
	if l.w == nil {
		return ErrNoWriter
	}
	for _, b := range p {
		n, err := l.bw.Write(b)
		l.wsize += int64(n)
		if err != nil {
			return err
		}
	}
	return nil
}

// Flush hands the buffered bytes to the kernel.
func (l *Log) Flush() error {
	if l.w == nil {
		return nil
	}
	return l.bw.Flush()
}

// Sync flushes and fsyncs the newest segment.
func (l *Log) Sync() error {
	if l.w == nil {
		return nil
	}
	if err := l.bw.Flush(); err != nil {
		return err
	}
	return l.w.Sync()
}

// Commit makes what was written to the newest segment visible to readers
// (the owner flushes or syncs first, as its promise needs), and notifies
// them when that changed anything.
func (l *Log) Commit() {
	if len(l.segs) == 0 || l.w == nil {
		return
	}
	if s := &l.segs[len(l.segs)-1]; s.Size != l.wsize {
		s.Size = l.wsize
		l.Broadcast()
	}
}

// Abandon gives up the segment being written after a write error: what
// was committed stays readable, the rest is cut off (best effort), and
// the next write needs AppendNewest or StartSegment.
func (l *Log) Abandon() {
	if l.w == nil {
		return
	}
	cur := l.segs[len(l.segs)-1]
	_ = l.w.Close()
	_ = os.Truncate(l.Path(cur.N), cur.Size)
	l.w, l.wsize = nil, cur.Size
	l.bw.Reset(io.Discard)
}

// CloseWriter flushes and closes the segment being written.
func (l *Log) CloseWriter() error {
	if l.w == nil {
		return nil
	}
	err := l.bw.Flush()
	if cerr := l.w.Close(); err == nil {
		err = cerr
	}
	l.w = nil
	return err
}

// Remove deletes segment n (never the one being written) and fsyncs the
// directory.
func (l *Log) Remove(n int64) error {
	i, ok := l.index(n)
	if !ok {
		return nil
	}
	if l.w != nil && i == len(l.segs)-1 {
		return errors.New("remove: the segment is being written")
	}
	if err := os.Remove(l.Path(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	l.segs = slices.Delete(l.segs, i, i+1)
	return atomicfile.SyncDir(l.o.Dir)
}

// Watch returns a channel closed at the next Broadcast. Take it before
// reading, so that no change between the read and the wait is missed.
func (l *Log) Watch() <-chan struct{} { return l.changed }

// Broadcast wakes every watcher.
func (l *Log) Broadcast() {
	close(l.changed)
	l.changed = make(chan struct{})
}
