package ingest

import (
	"bufio"
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
)

// The store keeps one container's raw LogEntry frames in numbered segment
// files, "00000000000000000001.seg" and up. Segments are never renamed: the
// writer starts a new one when the current one reaches maxSize, and drops
// the oldest while there are more than maxFile, but never one the pipeline
// has not finished (the pin), so an audit line is never lost to rotation.
// Readers (the pipeline and `docker logs`) see a segment only up to its
// committed length, which moves at frame boundaries on flush.

// SegSuffix ends the name of every segment file.
const SegSuffix = ".seg"

// Position is a place in the store: a segment number and a byte offset.
type Position struct {
	Seg int64 `json:"seg"`
	Off int64 `json:"off"`
}

// Before reports whether p comes before q in the store.
func (p Position) Before(q Position) bool {
	return p.Seg < q.Seg || (p.Seg == q.Seg && p.Off < q.Off)
}

// Store is one container's docker-logs store (see above). Its methods are
// safe for concurrent use; one writer appends (the Reader) while the
// pipeline and `docker logs` read.
type Store struct {
	dir     string
	maxSize int64
	maxFile int

	mu        sync.Mutex
	segs      []int64         // present segments, ascending
	committed map[int64]int64 // readable length of each segment
	w         *os.File        // current segment while a writer is attached
	bw        *bufio.Writer
	size      int64 // bytes written to the current segment, flushed or not
	pin       int64 // lowest segment still needed by the pipeline; 0: none
	writing   bool
	changed   chan struct{} // closed and replaced on every flush and on detach
}

// OpenStore opens (creating if needed) the store in dir, for reading;
// Attach makes it writable.
func OpenStore(dir string, maxSize int64, maxFile int) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("log store %q: %w", dir, err)
	}
	s := &Store{dir: dir, maxSize: maxSize, maxFile: maxFile, committed: map[int64]int64{}, changed: make(chan struct{})}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("log store %q: %w", dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, SegSuffix) {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(name, SegSuffix), 10, 64)
		if err != nil || n <= 0 {
			continue
		}
		s.segs = append(s.segs, n)
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i] < s.segs[j] })
	for i, n := range s.segs {
		size, err := s.validLength(n, i == len(s.segs)-1)
		if err != nil {
			return nil, err
		}
		s.committed[n] = size
	}
	return s, nil
}

// StoreExists reports whether dir holds a store.
func StoreExists(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*"+SegSuffix))
	return len(m) > 0
}

func (s *Store) segPath(n int64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", n, SegSuffix))
}

// validLength returns the length of segment n up to its last whole frame
// (a crash may have torn the newest one; Attach cuts that off).
func (s *Store) validLength(n int64, newest bool) (int64, error) {
	f, err := os.Open(s.segPath(n))
	if err != nil {
		return 0, fmt.Errorf("log store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("log store: %w", err)
	}
	if !newest {
		return fi.Size(), nil
	}
	fr := NewFrameReader(f, 64<<10)
	var off int64
	for {
		fr, err := fr.Next()
		if err != nil {
			break
		}
		off += int64(len(fr))
	}
	return off, nil
}

// tail returns the last n bytes of the store's whole frames, across
// segments, or all of them when it holds fewer.
func (s *Store) tail(n int64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts [][]byte // newest first
	for i := len(s.segs) - 1; i >= 0 && n > 0; i-- {
		seg := s.segs[i]
		size := s.committed[seg]
		k := min(n, size)
		b, err := readAt(s.segPath(seg), size-k, k)
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
	if n := len(s.segs); n > 0 && s.committed[s.segs[n-1]] < s.maxSize {
		last := s.segs[n-1]
		size := s.committed[last]
		if err := os.Truncate(s.segPath(last), size); err != nil {
			return fmt.Errorf("log store: cut torn frame: %w", err)
		}
		f, err := os.OpenFile(s.segPath(last), os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("log store: %w", err)
		}
		s.w, s.size = f, size
		if s.bw == nil {
			s.bw = bufio.NewWriterSize(f, 64<<10)
		} else {
			s.bw.Reset(f)
		}
	} else if err := s.newSegmentLocked(); err != nil {
		return err
	}
	s.writing = true
	return nil
}

func (s *Store) newSegmentLocked() error {
	next := int64(1)
	if len(s.segs) > 0 {
		next = s.segs[len(s.segs)-1] + 1
	}
	f, err := os.OpenFile(s.segPath(next), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("log store: new segment: %w", err)
	}
	s.w, s.size = f, 0
	if s.bw == nil {
		s.bw = bufio.NewWriterSize(f, 64<<10)
	} else {
		s.bw.Reset(f)
	}
	s.segs = append(s.segs, next)
	s.committed[next] = 0
	s.pruneLocked()
	return nil
}

// pruneLocked drops the oldest segments beyond maxFile that nobody needs.
func (s *Store) pruneLocked() {
	for len(s.segs) > s.maxFile {
		old := s.segs[0]
		if s.pin != 0 && old >= s.pin {
			return // the pipeline is behind: keep, never lose audit lines
		}
		if err := os.Remove(s.segPath(old)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return
		}
		s.segs = s.segs[1:]
		delete(s.committed, old)
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
	if s.w != nil && s.size > 0 && s.size+int64(len(frame)) > s.maxSize {
		if err := s.flushLocked(); err != nil {
			return err
		}
		// Flushed; a close error of a regular file loses nothing more.
		_ = s.w.Close()
		s.w = nil
	}
	if s.w == nil {
		if err := s.newSegmentLocked(); err != nil {
			return err
		}
	}
	if _, err := s.bw.Write(frame); err != nil {
		s.abandonLocked()
		return fmt.Errorf("log store: write: %w", err)
	}
	s.size += int64(len(frame))
	return nil
}

// abandonLocked gives up the current segment after a write error: what
// was committed stays readable, a torn tail is cut off (best effort), and
// the next append starts a new segment.
func (s *Store) abandonLocked() {
	if s.w == nil {
		return
	}
	cur := s.segs[len(s.segs)-1]
	_ = s.w.Close()
	_ = os.Truncate(s.segPath(cur), s.committed[cur])
	s.w = nil
	s.bw.Reset(io.Discard)
}

// flush makes everything appended so far visible to readers.
func (s *Store) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

func (s *Store) flushLocked() error {
	if !s.writing || s.w == nil {
		return nil
	}
	if err := s.bw.Flush(); err != nil {
		s.abandonLocked()
		return fmt.Errorf("log store: flush: %w", err)
	}
	cur := s.segs[len(s.segs)-1]
	if s.committed[cur] != s.size {
		s.committed[cur] = s.size
		s.broadcastLocked()
	}
	return nil
}

func (s *Store) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
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
	if s.w != nil {
		if cerr := s.w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("log store: close: %w", cerr)
		}
	}
	s.writing = false
	s.w = nil
	s.broadcastLocked()
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
	return s.changed, s.writing
}

// extent reports the readable length of segment n, the first segment after
// it (0 if none), and the oldest segment still present.
func (s *Store) extent(n int64) (length int64, next int64, oldest int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	length = s.committed[n]
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i] > n })
	if i < len(s.segs) {
		next = s.segs[i]
	}
	if len(s.segs) > 0 {
		oldest = s.segs[0]
	}
	return length, next, oldest
}

// First returns the position of the oldest frame.
func (s *Store) First() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) == 0 {
		return Position{Seg: 1}
	}
	return Position{Seg: s.segs[0]}
}

// End returns the position just past the newest committed frame.
func (s *Store) End() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) == 0 {
		return Position{Seg: 1}
	}
	n := s.segs[len(s.segs)-1]
	return Position{Seg: n, Off: s.committed[n]}
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
				f, err := os.Open(r.s.segPath(r.pos.Seg))
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
