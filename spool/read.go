package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
)

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
		limit, found := s.log.Committed(pos.Seg)
		next := s.log.Next(pos.Seg)
		path := s.log.Path(pos.Seg)
		s.mu.Unlock()
		if !found {
			// Cannot happen: dropping and pruning move cursors along.
			return nil, fmt.Errorf("spool: cursor of %q points at missing segment %d", dest, pos.Seg)
		}
		if pos.Off >= limit {
			if next == 0 {
				return nil, nil
			}
			// The segment is done: move on without committing; Commit
			// of the next batch carries the cursor over. Nothing synced
			// in the next one yet: none.
			return s.readFrom(Position{Seg: next}, maxEvents, maxBytes)
		}
		f, err := os.Open(path)
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
	limit, _ := s.log.Committed(pos.Seg)
	path := s.log.Path(pos.Seg)
	s.mu.Unlock()
	if limit <= 0 {
		return nil, nil
	}
	f, err := os.Open(path)
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
	if !cur.Before(pos) {
		return nil
	}
	if err := s.saveCursor(dest, pos); err != nil {
		return err
	}
	s.cursors[dest] = pos
	s.pruneLocked()
	s.log.Broadcast()
	return nil
}

// pruneLocked removes segments every cursor has left behind (never the
// one being written).
func (s *Spool) pruneLocked() {
	for s.log.Len() > 1 {
		old := s.log.Segment(0)
		for _, p := range s.cursors {
			if p.Seg < old.N || (p.Seg == old.N && p.Off < old.Size) {
				return
			}
		}
		if s.log.Remove(old.N) != nil {
			return
		}
		s.total -= old.Size
		// Cursors at the very end of the removed segment move on.
		first := s.log.First()
		for d, p := range s.cursors {
			if p.Seg == old.N {
				s.cursors[d] = first
			}
		}
	}
}

// size is the bytes of segment i, the newest one's written or buffered
// ones included.
func (s *Spool) size(i int) int64 {
	if i == s.log.Len()-1 && s.log.Writing() {
		return s.log.Written()
	}
	return s.log.Segment(i).Size
}

// Pending reports whether dest has events it has not committed, synced or
// not yet.
func (s *Spool) Pending(dest string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos := s.cursors[dest]
	for i := s.log.Len() - 1; i >= 0; i-- {
		if size := s.size(i); size > 0 {
			return pos.Before(Position{Seg: s.log.Segment(i).N, Off: size})
		}
	}
	return false
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
	for i := range s.log.Len() {
		switch n, size := s.log.Segment(i).N, s.size(i); {
		case n == pos.Seg:
			lag += max(0, size-pos.Off)
		case n > pos.Seg:
			lag += size
		}
	}
	return lag
}
