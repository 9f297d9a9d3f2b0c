package ingest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/plugins/logdriver"
)

// MaxFrameSize bounds one LogEntry frame. dockerd splits lines at 16 KiB,
// so a frame is a little over that; anything far larger means the stream
// is corrupt, and reading it would let one bad length prefix allocate
// gigabytes.
const MaxFrameSize = 1 << 20

// ErrFrameTooLarge is returned by FrameReader.Next for a length prefix over
// MaxFrameSize.
var ErrFrameTooLarge = errors.New("log entry frame too large")

// FrameReader reads length-prefixed LogEntry frames: a big-endian uint32
// length followed by that many bytes of protobuf.
type FrameReader struct {
	r   *bufio.Reader
	buf []byte
}

// NewFrameReader returns a FrameReader of r with a buffer of size bytes.
func NewFrameReader(r io.Reader, size int) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, size), buf: make([]byte, 0, 4096)}
}

// Next returns the next whole frame, length prefix included. The slice is
// valid until the next call. At a clean end of input it returns io.EOF; a
// frame cut short returns io.ErrUnexpectedEOF.
func (f *FrameReader) Next() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(f.r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrameSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
	}
	total := 4 + int(n)
	if cap(f.buf) < total {
		f.buf = make([]byte, total)
	}
	f.buf = f.buf[:total]
	copy(f.buf, hdr[:])
	if _, err := io.ReadFull(f.r, f.buf[4:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return f.buf, nil
}

// NextInStep is Next for the FIFO, whose bytes may be out of step: a new
// plugin process re-attached after a crash may start reading in the middle
// of a frame, and a corrupt stream has no frames at all. It returns the
// next plausible frame (a length that fits the reader's buffer, and a body
// that is a LogEntry from stdout or stderr, as dockerd's are), and how many
// bytes it skipped to find it. Bytes left at the end of the input that make
// no frame are counted as skipped, except when the input was closed on
// purpose (io.ErrClosedPipe): they stay buffered, for the caller to keep.
func (f *FrameReader) NextInStep() (frame []byte, skipped int64, err error) {
	for {
		hdr, err := f.r.Peek(4)
		if err != nil {
			if len(hdr) > 0 && !errors.Is(err, io.ErrClosedPipe) {
				skipped += int64(len(hdr))
				_, _ = f.r.Discard(len(hdr))
			}
			return nil, skipped, err
		}
		n := int(binary.BigEndian.Uint32(hdr))
		// The body's start first: a wrong length must not make the
		// reader wait for bytes it does not need.
		head, err := f.r.Peek(12)
		if errors.Is(err, io.ErrClosedPipe) {
			return nil, skipped, err
		}
		if err == nil && n >= 8 && n <= f.r.Size()-4 && plausibleEntry(head[4:]) {
			b, err := f.r.Peek(4 + n)
			if err == nil {
				if cap(f.buf) < len(b) {
					f.buf = make([]byte, len(b))
				}
				f.buf = append(f.buf[:0], b...)
				_, _ = f.r.Discard(len(b))
				return f.buf, skipped, nil
			}
			if errors.Is(err, io.ErrClosedPipe) {
				return nil, skipped, err
			}
		}
		// Not a frame here (or the input ended inside it): step one
		// byte on.
		_, _ = f.r.Discard(1)
		skipped++
	}
}

// plausibleEntry reports whether body is a LogEntry as dockerd writes it:
// gogo/protobuf marshals the fields in order, so it starts with the source,
// "stdout" or "stderr".
func plausibleEntry(body []byte) bool {
	return len(body) >= 8 && body[0] == 0x0a && body[1] == 6 &&
		(string(body[2:8]) == "stdout" || string(body[2:8]) == "stderr")
}

// Buffered reports how many bytes are read but not yet returned.
func (f *FrameReader) Buffered() int { return f.r.Buffered() }

// DecodeFrame decodes a whole frame (length prefix included) into e. It
// reuses e.Line's buffer: what the previous frame left there is
// overwritten, so callers never keep e.Line past the next call (nor
// anything that points into it, such as a reassembled line's data).
func DecodeFrame(frame []byte, e *logdriver.LogEntry) error {
	if len(frame) < 4 {
		return io.ErrUnexpectedEOF
	}
	line := e.Line[:0]
	e.Reset()
	e.Line = line
	if err := e.Unmarshal(frame[4:]); err != nil {
		return fmt.Errorf("decode log entry: %w", err)
	}
	return nil
}

// AppendFrame appends e as a length-prefixed frame to dst.
func AppendFrame(dst []byte, e *logdriver.LogEntry) ([]byte, error) {
	n := e.Size()
	start := len(dst)
	dst = append(dst, make([]byte, 4+n)...)
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	if _, err := e.MarshalTo(dst[start+4:]); err != nil {
		return dst[:start], fmt.Errorf("encode log entry: %w", err)
	}
	return dst, nil
}

// lineEnds reports whether e ends a line, as dockerd's json-file driver
// decides when it appends "\n": not partial, or the last chunk.
func lineEnds(e *logdriver.LogEntry) bool {
	return !e.Partial || e.GetPartialLogMetadata().GetLast()
}
