package chain

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

// ErrEmpty is returned by Recover for a file without a complete line.
var ErrEmpty = errors.New("chain: no complete line")

// Recover returns the Head after the last complete line of a chained file
// of the given size read through r (an *os.File and its size), for a
// writer that re-opens the file after a restart or a crash. Bytes after the
// last newline (a line torn by a crash) are ignored: the writer cuts them
// off before appending.
//
// It reads the file backwards from its end, up to the last seal: N, Hash
// and Sealed come from the last line, File from that seal and Records from
// the seal's count plus the lines after it. The cost is that of the lines
// after the last seal, independent of the file's size; memory is two lines.
// A line longer than auditlog.MaxLine is malformed, not read into memory.
// Both lines must parse, their hashes must match their records and the
// last line's N must follow the seal's by the number of lines between
// them, or the error wraps ErrMalformed (or ErrNoChain when the last line
// has no chain field, e.g. a file written before chaining was enabled).
// A file without a complete line is ErrEmpty.
//
// The writer then appends Seal(ReasonResume) (which records whether the
// file was closed cleanly) unless Sealed is ReasonRotate: then the file was
// complete and about to be rotated, so it rotates first and opens the next
// file with Seal(ReasonOpen). A live file that is empty is a rotation that
// was interrupted before the open seal: Recover from the newest rotated
// file (which ends with its rotate seal) and write the open seal.
func Recover(r io.ReaderAt, size int64) (Head, error) {
	b := &backReader{r: r}
	nl, err := b.lastNewline(size)
	if err != nil {
		return Head{}, err
	}
	if nl < 0 {
		return Head{}, ErrEmpty
	}
	start, last, err := b.line(nl)
	if err != nil {
		return Head{}, err
	}
	body, l, err := parse(last)
	if err != nil {
		return Head{}, fmt.Errorf("last line: %w", err)
	}
	if sum(l.Prev, l.N, body, []byte("}")) != l.Hash {
		return Head{}, fmt.Errorf("%w: last line: hash does not match its record", ErrMalformed)
	}
	h := Head{N: l.N, Hash: l.Hash}
	after := uint64(0) // lines after the seal, the last one included
	for {
		if bytes.HasPrefix(body, []byte(sealStart)) {
			s, err := ParseSeal(append(body[:len(body):len(body)], '}'))
			if err != nil {
				return Head{}, err
			}
			if after == 0 {
				h.Sealed = s.Reason
			}
			h.File, h.Records = s.File, s.Records+after
			return h, nil
		}
		if start == 0 {
			return Head{}, fmt.Errorf("%w: no seal in the file", ErrMalformed)
		}
		after++
		end := start - 1
		if start, err = b.start(end); err != nil {
			return Head{}, err
		}
		if !b.hasPrefix(start, end, sealStart) {
			continue
		}
		var line []byte
		if _, line, err = b.line(end); err != nil {
			return Head{}, err
		}
		if body, l, err = parse(line); err != nil {
			return Head{}, fmt.Errorf("last seal: %w", err)
		}
		if sum(l.Prev, l.N, body, []byte("}")) != l.Hash || l.N+after != h.N {
			return Head{}, fmt.Errorf("%w: the last seal does not belong to the same chain as the last line", ErrMalformed)
		}
	}
}

// backReader reads a file backwards in chunks, keeping the last chunk.
type backReader struct {
	r   io.ReaderAt
	off int64  // offset of buf[0]
	buf []byte // file bytes [off, off+len(buf))
}

const backChunk = 64 << 10

// lastNewline returns the offset of the last '\n' before end, or -1.
func (b *backReader) lastNewline(end int64) (int64, error) {
	for end > 0 {
		if end > b.off && end <= b.off+int64(len(b.buf)) {
			if i := bytes.LastIndexByte(b.buf[:end-b.off], '\n'); i >= 0 {
				return b.off + int64(i), nil
			}
			end = b.off
			continue
		}
		off := max(0, end-backChunk)
		if cap(b.buf) < backChunk {
			b.buf = make([]byte, backChunk)
		}
		b.buf = b.buf[:end-off]
		if err := readAt(b.r, b.buf, off); err != nil {
			b.buf = b.buf[:0]
			return 0, err
		}
		b.off = off
	}
	return -1, nil
}

// start returns the offset of the line that ends at the newline at nl.
func (b *backReader) start(nl int64) (int64, error) {
	prev, err := b.lastNewline(nl)
	return prev + 1, err
}

// hasPrefix reports whether the bytes [start, end) begin with prefix.
func (b *backReader) hasPrefix(start, end int64, prefix string) bool {
	n := int64(len(prefix))
	if end-start < n {
		return false
	}
	if start >= b.off && start+n <= b.off+int64(len(b.buf)) {
		return string(b.buf[start-b.off:start-b.off+n]) == prefix
	}
	p := make([]byte, n)
	return readAt(b.r, p, start) == nil && string(p) == prefix
}

// readAt is r.ReadAt(p, off) that accepts io.EOF with p filled.
func readAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// line returns the line ending at the newline at offset nl and its start.
func (b *backReader) line(nl int64) (int64, []byte, error) {
	start, err := b.start(nl)
	if err != nil {
		return 0, nil, err
	}
	if nl-start > auditlog.MaxLine {
		return 0, nil, fmt.Errorf("%w: line at offset %d is longer than %d bytes", ErrMalformed, start, auditlog.MaxLine)
	}
	line := make([]byte, nl-start)
	if err := readAt(b.r, line, start); err != nil {
		return 0, nil, err
	}
	return start, line, nil
}
