package driver

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// journalFile holds, in a container's store directory, the bytes the
// reader took from the FIFO and has not stored yet.
const journalFile = "fifo.journal"

// journalMax is the size past which the reader compacts the journal while
// the container never pauses.
const journalMax = 4 << 20

// journal is a write-ahead copy of what the reader takes from the FIFO.
// Reading a pipe consumes it, so between the read and the store's write a
// kill -9 would lose the bytes; the journal's write follows the read at
// once. When a new process attaches, it first parses what the journal
// holds, then the FIFO. Only the reader goroutine uses it.
type journal struct {
	f    *os.File
	size int64 // bytes in the file
	left int64 // bytes left by an earlier process, read first
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
	return &journal{f: f, size: fi.Size(), left: fi.Size()}, nil
}

// reader returns what the reader parses: the bytes left in the journal,
// then the FIFO, each read of which is appended to the journal first.
func (j *journal) reader(fifo io.Reader) io.Reader {
	return io.MultiReader(io.NewSectionReader(j.f, 0, j.left), &journalTee{j: j, r: fifo})
}

type journalTee struct {
	j *journal
	r io.Reader
}

func (t *journalTee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
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
		if _, err := j.f.WriteAt(rest, 0); err != nil {
			return fmt.Errorf("log journal: %w", err)
		}
	}
	j.size = int64(len(rest))
	if err := j.f.Truncate(j.size); err != nil {
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
