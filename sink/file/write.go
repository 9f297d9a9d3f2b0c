package file

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/sink"
)

// BufferSize is the size of the write buffer of each open file. Each time
// it fills, the head is announced first (see announcer), a small file
// replaced by a rename: at 64 KiB that was a fifth of the plugin's CPU
// under a fast producer; 256 KiB takes most of it back (make bench, issue
// 15), at 256 KiB per open file (all producers share the trail's two).
const BufferSize = 256 << 10

// ErrNewline is returned (wrapped, with the path and sink.ErrRefused) by
// Write when p contains a newline; nothing is written.
var ErrNewline = errors.New("line contains a newline")

// file is one open, possibly shared, rotating file.
type file struct {
	opts Options // normalized; immutable
	path string  // == opts.Path, cleaned
	refs int     // guarded by Registry.mu

	mu     sync.Mutex
	fd     *os.File      // nil after a failed rotation or reopen: reopened by the next write
	w      *bufio.Writer // buffers writes to fd
	size   int64         // bytes in the current file, including buffered ones
	err    error         // failure (flush or fsync) until recovered (see recover.go)
	closed bool
	chain  *chainState // nil: lines are written as given

	// durable is the file's size at the last fsync that succeeded, and
	// pending what was written after it, byte for byte: a failed file is
	// cut back to durable and pending written again (recover.go).
	durable int64
	pending []byte
	retryAt time.Time // the next attempt to recover

	onRecovered func(path string, failure error) // Registry.OnRecovered

	onCompressError func(path string, err error) // Registry.OnCompressError
}

func (f *file) errorf(op string, err error) error {
	return fmt.Errorf("audit file %q: %s: %w", f.path, op, err)
}

// refused is the error of a Write whose p can never be written as it is
// (a newline; for a chain, not one JSON object, a reserved field, too long).
func (f *file) refused(err error) error {
	return fmt.Errorf("audit file %q: write: %w: %w", f.path, sink.ErrRefused, err)
}

// fail marks the file failed (until recoverLocked) and returns the error.
func (f *file) fail(op string, err error) error {
	f.err = f.errorf(op, err)
	return f.err
}

// openLocked opens (creating if missing) the file for appending, records its
// current size and fsyncs the directory so a newly created file's entry is
// durable. The error is not wrapped with the path: callers do it.
func (f *file) openLocked() error {
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fd, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	st, err := fd.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file (%s)", st.Mode())
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = fd.Close()
		return err
	}
	size := st.Size()
	if size > 0 {
		if size, err = cutTornTail(f.path, size); err != nil {
			_ = fd.Close()
			return err
		}
	}
	f.fd, f.size = fd, size
	f.durable, f.pending = size, f.pending[:0]
	if f.w == nil {
		f.w = bufio.NewWriterSize(announcer{f}, BufferSize)
	} else {
		f.w.Reset(announcer{f})
	}
	if f.chain != nil {
		if err := f.startChainLocked(); err != nil {
			if f.fd != nil {
				_ = f.fd.Close()
				f.fd = nil
			}
			return err
		}
	}
	return nil
}

// writeLineLocked writes line and its newline to the buffer.
func (f *file) writeLineLocked(line []byte) error {
	if _, err := f.w.Write(line); err != nil {
		return f.fail("write", err)
	}
	if err := f.w.WriteByte('\n'); err != nil {
		return f.fail("write", err)
	}
	f.size += int64(len(line)) + 1
	f.pending = append(append(f.pending, line...), '\n')
	if len(f.pending) > maxPending {
		// Nobody synced for a while: bound what recovery would write
		// again, and the memory holding it.
		return f.durableLocked("write")
	}
	return nil
}

func (f *file) write(p []byte) error {
	if bytes.IndexByte(p, '\n') >= 0 {
		return f.refused(ErrNewline)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.errorf("write", ErrClosed)
	}
	if f.err != nil {
		if err := f.recoverLocked(); err != nil {
			return err
		}
	}
	if f.fd == nil {
		if err := f.openLocked(); err != nil {
			return f.errorf("reopen", err)
		}
	}
	line := p
	var head chain.Head
	if c := f.chain; c != nil {
		head = c.head
		var err error
		if line, err = c.head.Append(c.buf[:0], p); err != nil {
			return f.refused(err)
		}
		c.buf = line
	}
	n := int64(len(line)) + 1
	if f.opts.MaxSize > 0 && f.size > 0 && f.size+n > f.opts.MaxSize {
		if c := f.chain; c != nil {
			// The line was chained to the old head; the rotation's seals
			// come first.
			c.head = head
		}
		if err := f.rotateLocked(); err != nil {
			return err
		}
		if c := f.chain; c != nil {
			var err error
			if line, err = c.head.Append(c.buf[:0], p); err != nil {
				return f.refused(err)
			}
			c.buf = line
		}
	}
	if err := f.writeLineLocked(line); err != nil {
		if f.chain != nil {
			f.chain.head = head
		}
		return err
	}
	if f.chain != nil {
		f.chain.dirty = true
		return f.sealDueLocked()
	}
	return nil
}
