package driver

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/plugins/logdriver"
)

// maxFrameSize bounds one LogEntry frame. dockerd splits lines at 16 KiB,
// so a frame is a little over that; anything far larger means the stream
// is corrupt, and reading it would let one bad length prefix allocate
// gigabytes.
const maxFrameSize = 1 << 20

// ErrFrameTooLarge is returned by frameReader.Next for a length prefix over
// maxFrameSize.
var ErrFrameTooLarge = errors.New("log entry frame too large")

// frameReader reads length-prefixed LogEntry frames: a big-endian uint32
// length followed by that many bytes of protobuf.
type frameReader struct {
	r   *bufio.Reader
	buf []byte
}

func newFrameReader(r io.Reader, size int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, size), buf: make([]byte, 0, 4096)}
}

// Next returns the next whole frame, length prefix included. The slice is
// valid until the next call. At a clean end of input it returns io.EOF; a
// frame cut short returns io.ErrUnexpectedEOF.
func (f *frameReader) Next() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(f.r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrameSize {
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

// Buffered reports how many bytes are read but not yet returned.
func (f *frameReader) Buffered() int { return f.r.Buffered() }

// decodeFrame decodes a whole frame (length prefix included) into e.
func decodeFrame(frame []byte, e *logdriver.LogEntry) error {
	if len(frame) < 4 {
		return io.ErrUnexpectedEOF
	}
	e.Reset()
	if err := e.Unmarshal(frame[4:]); err != nil {
		return fmt.Errorf("decode log entry: %w", err)
	}
	return nil
}

// appendFrame appends e as a length-prefixed frame to dst.
func appendFrame(dst []byte, e *logdriver.LogEntry) ([]byte, error) {
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
