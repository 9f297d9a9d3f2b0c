package spool

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"

	"github.com/ucp-audit/ucp-audit/sink"
)

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
		return nil, fmt.Errorf("%w: %d bytes", ErrLargerThanSpool, size)
	}
	if !s.log.Writing() { // the last write failed: start afresh
		if err := s.log.StartSegment(); err != nil {
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
	if w := s.log.Written(); w > 0 && w+size > s.o.SegmentSize {
		if err := s.rotateLocked(); err != nil {
			return gaps, s.failLocked(err, &ev)
		}
	}
	var hdr [hdrLen]byte
	binary.BigEndian.PutUint32(hdr[0:], uint32(size-4))
	binary.BigEndian.PutUint64(hdr[4:], ev.Seq)
	binary.BigEndian.PutUint64(hdr[12:], uint64(ev.Time.UnixNano()))
	binary.BigEndian.PutUint16(hdr[20:], uint16(len(ev.AuditID)))
	pre := s.log.Written()
	if err := s.log.Write(hdr[:], []byte(ev.AuditID), ev.Line); err != nil {
		s.total += s.log.Written() - pre // the part written, given up with the rest
		return gaps, s.failLocked(err, &ev)
	}
	s.total += size
	s.unsynced.count(ev.Seq)
	return gaps, nil
}

// waitLocked waits for a change with s.mu held on return.
func (s *Spool) waitLocked(ctx context.Context) error {
	s.waiting = true
	s.log.Broadcast() // a reader lingering for a fuller batch stops waiting (see Waiting)
	ch := s.log.Watch()
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

// dropOldestLocked removes the oldest segment and moves the cursors in it.
// The current segment is first closed off, so the writer never loses the
// file it writes.
func (s *Spool) dropOldestLocked() ([]Gap, error) {
	if s.log.Len() == 1 {
		if err := s.rotateLocked(); err != nil {
			return nil, err
		}
	}
	old, next := s.log.Segment(0), s.log.Segment(1).N
	var gaps []Gap
	for _, d := range s.sortedDestinations() {
		pos := s.cursors[d]
		if pos.Seg != old.N {
			continue
		}
		g, err := s.countFrom(old.N, pos.Off)
		if err != nil {
			return nil, err
		}
		if g.Lost > 0 {
			g.Destination = d
			gaps = append(gaps, g)
		}
		np := Position{Seg: next}
		s.cursors[d] = np
		if err := s.saveCursor(d, np); err != nil {
			return gaps, err
		}
	}
	if err := s.log.Remove(old.N); err != nil {
		return gaps, fmt.Errorf("spool: %w", err)
	}
	s.total -= old.Size
	s.log.Broadcast()
	return gaps, nil
}

// rotateLocked seals the current segment (durable, all of it visible) and
// starts a new one.
func (s *Spool) rotateLocked() error {
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("spool: fsync: %w", err)
	}
	s.log.Commit()
	s.unsynced = Gap{}
	s.log.Broadcast()
	return s.log.StartSegment()
}

// countFrom counts the records of segment n from off (all of them written,
// even those not yet synced) and their seq range.
func (s *Spool) countFrom(n, off int64) (Gap, error) {
	var g Gap
	f, err := os.Open(s.log.Path(n))
	if err != nil {
		return g, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return g, fmt.Errorf("spool: %w", err)
	}
	recs, _, err := readRecords(f, Position{Seg: n, Off: off}, fi.Size(), 1<<62, 1<<62, true)
	if err != nil {
		return g, err
	}
	for _, r := range recs {
		g.count(r.Seq)
	}
	return g, nil
}

// Sync makes every appended event durable and visible to readers.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.log.Writing() {
		return nil // nothing written since a failure gave it all up
	}
	if err := s.log.Sync(); err != nil {
		return s.failLocked(fmt.Errorf("spool: fsync: %w", err), nil)
	}
	s.unsynced = Gap{}
	s.log.Commit()
	return nil
}

// failLocked gives up what was not synced (and ev, if not nil, which was
// not appended) after err, and returns the WriteError saying so.
func (s *Spool) failLocked(err error, ev *sink.Event) error {
	lost := s.unsynced
	if ev != nil {
		lost.count(ev.Seq)
	}
	s.unsynced = Gap{}
	if s.log.Writing() {
		// Readers stop at the committed length anyway.
		committed, _ := s.log.Committed(s.log.End().Seg)
		s.total -= s.log.Written() - committed
		s.log.Abandon()
	}
	return &WriteError{Lost: lost, Err: err}
}

// count adds the event of seq to the gap. Seq 0 is not a container's event
// (a record of the plugin's own, forwarded): it is not counted.
func (g *Gap) count(seq uint64) {
	if seq == 0 {
		return
	}
	if g.Lost == 0 {
		g.FirstSeq = seq
	}
	g.LastSeq = seq
	g.Lost++
}
