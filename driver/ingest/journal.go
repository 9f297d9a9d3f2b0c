package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// JournalFile holds, in a container's store directory, the bytes the
// reader took from the FIFO and has not stored yet.
const JournalFile = "fifo.journal"

// journalMax is the size past which the reader compacts the journal while
// the container never pauses.
const journalMax = 4 << 20

// journal is a write-ahead copy of what the reader takes from the FIFO.
// Reading a pipe consumes it, so a kill -9 between a read(2) and the
// store's write would lose the bytes. The journal therefore takes them with
// splice(2), which moves them from the pipe into the journal file inside
// the kernel: nothing leaves the pipe that is not in the file, and a kill
// at any point loses nothing. The reader then reads them back from the
// file (from the page cache: the same two copies as read(2) and write(2)).
// Where splice is not possible (not a pipe, or a file system without it)
// it falls back to read(2) followed at once by write(2), which a kill -9
// between the two can still lose.
//
// When a new process attaches, it first parses what the journal holds,
// then the FIFO. Only the reader goroutine uses it.
type journal struct {
	path  string
	f     *os.File
	size  int64 // bytes in the file
	left  int64 // bytes left by an earlier process, read first
	start int64 // where reading the leftovers starts (see skipStored)
	// pace, when set, is called on the reader goroutine with the size of
	// each read from the FIFO (not of the leftovers), after the bytes are
	// journaled and before they are returned; it may sleep, which slows
	// the FIFO's writer.
	pace func(n int)
}

func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log journal: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("log journal: %w", err)
	}
	return &journal{path: path, f: f, size: fi.Size(), left: fi.Size()}, nil
}

// reader returns what the reader parses: the bytes left in the journal,
// then the FIFO, each read of which is appended to the journal first.
// closed reports whether the FIFO was closed on purpose, which ends the
// reader with io.ErrClosedPipe.
func (j *journal) reader(fifo io.Reader, closed *atomic.Bool) io.Reader {
	return io.MultiReader(&leftovers{j: j, r: io.NewSectionReader(j.f, j.start, j.left-j.start)}, j.tee(fifo, closed))
}

// skipStored makes the leftovers start after the whole frames at their
// head that the store already holds: a kill after the store's write and
// before the journal was cut back leaves them in both. They are the
// longest run of frames from the journal's start that the store ends
// with (each frame carries dockerd's nanosecond timestamp, so equal bytes
// are the same entry). storeTail returns the last n bytes of the store's
// whole frames, or fewer. It returns how many bytes are skipped; call it
// before reader.
func (j *journal) skipStored(storeTail func(n int64) ([]byte, error)) (int64, error) {
	if j.left == 0 {
		return 0, nil
	}
	buf := make([]byte, j.left)
	if _, err := j.f.ReadAt(buf, 0); err != nil {
		return 0, fmt.Errorf("log journal: %w", err)
	}
	var ends []int
	for off := 0; off+4 <= len(buf); {
		n := int(binary.BigEndian.Uint32(buf[off:]))
		if n > MaxFrameSize || off+4+n > len(buf) {
			break
		}
		off += 4 + n
		ends = append(ends, off)
	}
	if len(ends) == 0 {
		return 0, nil
	}
	tail, err := storeTail(int64(ends[len(ends)-1]))
	if err != nil {
		return 0, err
	}
	for i := len(ends) - 1; i >= 0; i-- {
		if e := ends[i]; len(tail) >= e && bytes.Equal(tail[len(tail)-e:], buf[:e]) {
			j.start = int64(e)
			return j.start, nil
		}
	}
	return 0, nil
}

// leftovers reads what an earlier process left in the journal; once all
// is read, the journal may be cut back even if the FIFO gives nothing more.
type leftovers struct {
	j *journal
	r io.Reader
}

func (l *leftovers) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if errors.Is(err, io.EOF) {
		l.j.left = 0
	}
	return n, err
}

// tee returns the reader of fifo that journals what it reads.
func (j *journal) tee(fifo io.Reader, closed *atomic.Bool) *journalTee {
	t := &journalTee{j: j, r: fifo, closed: closed}
	if sc, ok := fifo.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			t.rc = rc
		}
	}
	return t
}

type journalTee struct {
	j      *journal
	r      io.Reader
	rc     syscall.RawConn // the FIFO's, for splice; nil once splice failed
	closed *atomic.Bool
}

func (t *journalTee) Read(p []byte) (int, error) {
	n, err := t.read(p)
	if n > 0 && t.j.pace != nil {
		t.j.pace(n)
	}
	return n, err
}

func (t *journalTee) read(p []byte) (int, error) {
	if t.rc != nil {
		n, err := t.splice(p)
		switch {
		case errors.Is(err, errNoSplice):
			t.rc = nil
		case errors.Is(err, errJournalWrite):
			// The journal's disk failed (full, say): this read goes
			// without it, as below; the FIFO is drained whatever happens.
		default:
			return n, err
		}
	}
	n, err := t.r.Read(p)
	if err != nil && t.closed.Load() {
		err = io.ErrClosedPipe
	}
	if n > 0 {
		t.j.left = 0 // the leftovers were all read before the FIFO
		if _, werr := t.j.f.WriteAt(p[:n], t.j.size); werr == nil {
			t.j.size += int64(n)
		}
		// A failed write only loses crash safety for these bytes; the
		// next compaction starts the journal afresh.
	}
	return n, err
}

// splice is unix.Splice; tests replace it to fail as a full disk would.
var splice = unix.Splice

// errNoSplice says splice(2) cannot move the FIFO into the journal here;
// errJournalWrite that it could not this time (the journal's disk failed).
var (
	errNoSplice     = errors.New("splice not supported")
	errJournalWrite = errors.New("journal write failed")
)

// splice moves up to len(p) bytes from the FIFO to the journal's end, then
// reads them back into p.
func (t *journalTee) splice(p []byte) (int, error) {
	var n int64
	var serr error
	err := t.rc.Read(func(fd uintptr) bool {
		for {
			off := t.j.size
			n, serr = splice(int(fd), nil, int(t.j.f.Fd()), &off, len(p), unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
			if !errors.Is(serr, unix.EINTR) {
				return !errors.Is(serr, unix.EAGAIN)
			}
		}
	})
	switch {
	case err != nil:
		if t.closed.Load() {
			return 0, io.ErrClosedPipe
		}
		return 0, fmt.Errorf("log fifo: %w", err)
	case errors.Is(serr, unix.EINVAL) || errors.Is(serr, unix.ENOSYS) || errors.Is(serr, unix.EBADF):
		return 0, errNoSplice
	case serr != nil:
		// Nothing moved (splice reports either bytes or an error).
		return 0, fmt.Errorf("%w: %w", errJournalWrite, serr)
	case n == 0:
		return 0, io.EOF // every writer closed the FIFO
	}
	t.j.left = 0 // the leftovers were all read before the FIFO
	got, err := t.j.f.ReadAt(p[:n], t.j.size)
	if err != nil && got < int(n) {
		got, err = t.j.f.ReadAt(p[:n], t.j.size) // once more
	}
	// The n bytes are in the journal whatever: a crash replays them. What
	// could not be read back is passed on as zeros, which the frame reader
	// skips as out of step and records as lost input (never an error that
	// would stop the reader, and with it the draining of the FIFO).
	t.j.size += n
	if err != nil && got < int(n) {
		clear(p[got:n])
	}
	return int(n), nil
}

// big reports whether the journal should be compacted.
func (j *journal) big() bool { return j.size > journalMax }

// consumed says everything taken so far is stored except rest, the bytes
// read but not yet parsed (the journal's tail). Call it after the store
// flushed. The journal keeps only rest.
func (j *journal) consumed(rest []byte) error {
	if j.left > 0 || int64(len(rest)) > j.size {
		return nil // still reading the leftovers: they stay until done
	}
	if len(rest) == 0 && j.size == 0 {
		return nil
	}
	if len(rest) > 0 {
		// Written beside and renamed over: a kill must find either the
		// old journal or the new one, never rest over the old bytes.
		tmp := j.path + ".new"
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("log journal: %w", err)
		}
		if _, err := f.Write(rest); err != nil {
			f.Close()
			return fmt.Errorf("log journal: %w", err)
		}
		if err := os.Rename(tmp, j.path); err != nil {
			f.Close()
			return fmt.Errorf("log journal: %w", err)
		}
		j.f.Close()
		j.f = f
		j.size = int64(len(rest))
		return nil
	}
	j.size = 0
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("log journal: %w", err)
	}
	return nil
}

func (j *journal) close() error {
	if err := j.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("log journal: %w", err)
	}
	return nil
}
