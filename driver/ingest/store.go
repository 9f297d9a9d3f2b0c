package ingest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/ucp-audit/ucp-audit/seglog"
)

// The store keeps one container's raw LogEntry frames in a segmented log
// (package seglog), segments "00000000000000000001.seg" and up. Segments
// are never renamed: the writer starts a new one when the current one
// reaches maxSize, and drops the oldest while there are more than maxFile,
// but never one the pipeline has not finished (the pin), so an audit line
// is never lost to rotation. Readers (the pipeline and `docker logs`) see a
// segment only up to its committed length, which moves at frame boundaries
// on flush.

// SegSuffix ends the name of every segment file.
const SegSuffix = ".seg"

// Position is a place in the store: a segment number and a byte offset.
type Position = seglog.Position

// Store is one container's docker-logs store (see above). Its methods are
// safe for concurrent use; one writer appends (the Reader) while the
// pipeline and `docker logs` read.
type Store struct {
	maxSize int64
	maxFile int

	mu      sync.Mutex
	log     *seglog.Log
	pin     int64 // lowest segment still needed by the pipeline; 0: none
	writing bool
}

// OpenStore opens (creating if needed) the store in dir, for reading;
// Attach makes it writable.
func OpenStore(dir string, maxSize int64, maxFile int) (*Store, error) {
	l, err := seglog.Open(seglog.Options{Dir: dir, Suffix: SegSuffix, Valid: wholeFrames})
	if err != nil {
		return nil, fmt.Errorf("log store: %w", err)
	}
	return &Store{maxSize: maxSize, maxFile: maxFile, log: l}, nil
}

// wholeFrames is the store's framing: the length of the whole frames at
// the start of r.
func wholeFrames(r io.Reader) int64 {
	fr := NewFrameReader(r, 64<<10)
	var off int64
	for {
		f, err := fr.Next()
		if err != nil {
			return off
		}
		off += int64(len(f))
	}
}

// StoreExists reports whether dir holds a store.
func StoreExists(dir string) bool { return seglog.Exists(dir, SegSuffix) }

// tail returns the last n bytes of the store's whole frames, across
// segments, or all of them when it holds fewer.
func (s *Store) tail(n int64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts [][]byte // newest first
	for i := s.log.Len() - 1; i >= 0 && n > 0; i-- {
		seg := s.log.Segment(i)
		k := min(n, seg.Size)
		b, err := readAt(s.log.Path(seg.N), seg.Size-k, k)
		if err != nil {
			return nil, err
		}
		parts = append(parts, b)
		n -= k
	}
	var out []byte
	for i := len(parts) - 1; i >= 0; i-- {
		out = append(out, parts[i]...)
	}
	return out, nil
}

// readAt reads n bytes at off of the file at path.
func readAt(path string, off, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("log store: %w", err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("log store: %w", err)
	}
	return b, nil
}

// Attach makes the store writable. Frames are appended to the newest
// segment (dockerd starts a logger, and so a stream, for every `docker logs`
// of a stopped container: an empty segment each time would push real ones
// out), after any torn frame at its end is cut off.
func (s *Store) Attach() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writing {
		return errors.New("log store: already attached")
	}
	var err error
	if n := s.log.Len(); n > 0 && s.log.Segment(n-1).Size < s.maxSize {
		err = s.log.AppendNewest()
	} else {
		err = s.newSegmentLocked()
	}
	if err != nil {
		return fmt.Errorf("log store: %w", err)
	}
	s.writing = true
	return nil
}

func (s *Store) newSegmentLocked() error {
	if err := s.log.StartSegment(); err != nil {
		return err
	}
	s.pruneLocked()
	return nil
}

// pruneLocked drops the oldest segments beyond maxFile that nobody needs.
func (s *Store) pruneLocked() {
	for s.log.Len() > s.maxFile {
		old := s.log.Segment(0).N
		if s.pin != 0 && old >= s.pin {
			return // the pipeline is behind: keep, never lose audit lines
		}
		if s.log.Remove(old) != nil {
			return
		}
	}
}

// Append adds one whole frame. It is called only by the stream's Reader.
// A failing disk loses the frame, never the store: the next append starts
// a new segment and goes on.
func (s *Store) Append(frame []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.writing {
		return errors.New("log store: not attached")
	}
	if w := s.log.Written(); s.log.Writing() && w > 0 && w+int64(len(frame)) > s.maxSize {
		if err := s.flushLocked(); err != nil {
			return err
		}
		if err := s.newSegmentLocked(); err != nil {
			// The flushed segment stays; the next append tries again.
			_ = s.log.CloseWriter()
			return fmt.Errorf("log store: %w", err)
		}
	}
	if !s.log.Writing() {
		if err := s.newSegmentLocked(); err != nil {
			return fmt.Errorf("log store: %w", err)
		}
	}
	if err := s.log.Write(frame); err != nil {
		s.log.Abandon()
		return fmt.Errorf("log store: write: %w", err)
	}
	return nil
}

// Flush makes everything appended so far visible to readers.
func (s *Store) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

func (s *Store) flushLocked() error {
	if !s.writing || !s.log.Writing() {
		return nil
	}
	if err := s.log.Flush(); err != nil {
		s.log.Abandon()
		return fmt.Errorf("log store: flush: %w", err)
	}
	s.log.Commit()
	return nil
}

// Detach flushes and closes the writer; readers following the store see
// the end once they have read everything.
func (s *Store) Detach() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.writing {
		return nil
	}
	err := s.flushLocked()
	if cerr := s.log.CloseWriter(); err == nil && cerr != nil {
		err = fmt.Errorf("log store: close: %w", cerr)
	}
	s.writing = false
	s.log.Broadcast()
	return err
}

// SetPin tells the store which segment the pipeline is reading.
func (s *Store) SetPin(seg int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seg != s.pin {
		s.pin = seg
		s.pruneLocked()
	}
}

// Watch returns a channel closed at the next change, and whether a writer
// is attached. Take it before reading, so that no change between the read
// and the wait is missed.
func (s *Store) Watch() (<-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.Watch(), s.writing
}

// extent reports the readable length of segment n, the first segment after
// it (0 if none), and the oldest segment still present. (It runs for every
// frame read; a segment's path is only made when a reader opens it.)
func (s *Store) extent(n int64) (length, next, oldest int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	length, _ = s.log.Committed(n)
	return length, s.log.Next(n), s.log.First().Seg
}

// First returns the position of the oldest frame.
func (s *Store) First() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.First()
}

// End returns the position just past the newest committed frame.
func (s *Store) End() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.End()
}

// StoreReader reads frames in order from a position. Next returns io.EOF
// when it has caught up with the committed end; it may be called again
// after the store changes.
type StoreReader struct {
	s     *Store
	pos   Position
	f     *os.File
	fr    *FrameReader
	limit int64 // committed length the frame reader was set up for
	// pruned counts the segments removed before the reader got to them
	// (it goes on with the oldest one present).
	pruned int64
}

// Reader returns a reader of the store's frames from position from.
func (s *Store) Reader(from Position) *StoreReader {
	return &StoreReader{s: s, pos: from}
}

// Pos returns the position just past the last frame Next returned.
func (r *StoreReader) Pos() Position { return r.pos }

// TakePruned returns how many segments were pruned before the reader got
// to them since the last call, and resets the count.
func (r *StoreReader) TakePruned() int64 {
	n := r.pruned
	r.pruned = 0
	return n
}

// Next returns the next frame; the slice is valid until the next call.
func (r *StoreReader) Next() ([]byte, error) {
	for {
		length, next, oldest := r.s.extent(r.pos.Seg)
		if r.pos.Seg < oldest {
			// The segment was pruned (`docker logs` readers can be this
			// far behind; the pipeline pins what it needs): go on with
			// the oldest one present, and count what was missed.
			r.pruned += oldest - r.pos.Seg
			r.closeFile()
			r.pos = Position{Seg: oldest}
			continue
		}
		if r.pos.Off < length {
			if r.f == nil {
				f, err := os.Open(r.s.log.Path(r.pos.Seg)) // the directory and naming never change
				if err != nil {
					if _, _, o := r.s.extent(r.pos.Seg); errors.Is(err, fs.ErrNotExist) && r.pos.Seg < o {
						continue // pruned just now
					}
					return nil, fmt.Errorf("log store: %w", err)
				}
				r.f = f
			}
			if r.fr == nil || r.limit != length {
				r.fr = NewFrameReader(io.NewSectionReader(r.f, r.pos.Off, length-r.pos.Off), 64<<10)
				r.limit = length
			}
			frame, err := r.fr.Next()
			if err == nil {
				r.pos.Off += int64(len(frame))
				return frame, nil
			}
			if !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("log store: segment %d at %d: %w", r.pos.Seg, r.pos.Off, err)
			}
			r.fr = nil
			continue
		}
		if next != 0 {
			r.closeFile()
			r.pos = Position{Seg: next}
			continue
		}
		return nil, io.EOF
	}
}

func (r *StoreReader) closeFile() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.fr = nil
}

// Close releases the open segment.
func (r *StoreReader) Close() { r.closeFile() }
