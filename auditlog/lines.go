package auditlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// MaxLine is the longest line of a trail file, without its newline:
// 64 MiB. The writer makes no longer line (chain.Head.Append refuses the
// record, and the driver cuts a quarantine record's raw line to fit), and
// every reader (verify, query, report, the writer's own recovery) reads
// lines up to it. Events of several megabytes (a large requestObject) fit.
const MaxLine = 64 << 20

// ErrLineTooLong is a line longer than the limit: a record a writer
// refuses because its line would pass MaxLine (chain.Head.Append, wrapped
// with the size), and a line LineReader skips because it is longer than its
// maximum (wrapped with the length). It is one error because it is one
// fact, whichever side finds it.
var ErrLineTooLong = errors.New("line too long")

// LineReader reads newline-terminated lines of any length up to a maximum.
// At the end of its input it keeps an unfinished last line, so that it can
// go on reading a file that is still being written (Next again after more
// was appended); Rest returns it when nothing more will come.
type LineReader struct {
	br      *bufio.Reader
	max     int
	buf     []byte // the line so far
	skip    int    // > 0 while discarding a too-long line: its length so far
	line    int    // number of the line Next returned last
	offset  int64  // bytes consumed, up to the end of the last full line read
	pending int64  // bytes of the unfinished line (in buf or skipped)
}

// NewLineReader reads lines of r of up to max bytes (MaxLine when max <= 0).
func NewLineReader(r io.Reader, max int) *LineReader {
	if max <= 0 {
		max = MaxLine
	}
	return &LineReader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Next returns the next line without its "\n" (a "\r" before it is kept),
// valid until the next call. At the end of the input it returns io.EOF and
// keeps an unfinished line for the next call or Rest. A line longer than
// the maximum is consumed and reported as an error wrapping ErrLineTooLong;
// Line numbers it. Other errors are the reader's.
func (lr *LineReader) Next() ([]byte, error) {
	for {
		chunk, err := lr.br.ReadSlice('\n')
		lr.pending += int64(len(chunk))
		switch {
		case lr.skip > 0:
			lr.skip += len(chunk)
		case len(lr.buf)+len(chunk) > lr.max+1: // +1: the newline
			lr.skip = len(lr.buf) + len(chunk)
			lr.buf = lr.buf[:0]
		default:
			lr.buf = append(lr.buf, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, err
		}
		// A full line.
		lr.line++
		lr.offset += lr.pending
		lr.pending = 0
		if lr.skip > 0 {
			n := lr.skip - 1
			lr.skip = 0
			return nil, fmt.Errorf("%w (%d bytes, more than %d)", ErrLineTooLong, n, lr.max)
		}
		b := lr.buf[:len(lr.buf)-1]
		lr.buf = lr.buf[:0]
		return b, nil
	}
}

// Rest returns the unfinished last line, if any (ok false when there is
// none), and forgets it; for one longer than the maximum err wraps
// ErrLineTooLong. Call it when the input has ended for good.
func (lr *LineReader) Rest() (line []byte, ok bool, err error) {
	if lr.pending == 0 {
		return nil, false, nil
	}
	lr.line++
	lr.offset += lr.pending
	lr.pending = 0
	if lr.skip > 0 {
		n := lr.skip
		lr.skip = 0
		return nil, true, fmt.Errorf("%w (%d bytes, more than %d)", ErrLineTooLong, n, lr.max)
	}
	b := lr.buf
	lr.buf = lr.buf[:0]
	return b, true, nil
}

// Line is the number of the line Next or Rest returned last, from 1.
func (lr *LineReader) Line() int { return lr.line }

// Offset is the number of bytes of the input taken by the lines returned
// so far, unfinished line excluded.
func (lr *LineReader) Offset() int64 { return lr.offset }
