package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/docker/docker/api/types/plugins/logdriver"
)

// NextInStep finds the frames in a stream that starts in the middle of
// one (a plugin restarted mid-frame) or holds garbage, and counts what it
// skips; Peek-ahead never waits for the bytes a wrong length claims.
func TestFrameReaderInStep(t *testing.T) {
	var good bytes.Buffer
	enc := logdriver.NewLogEntryEncoder(&good)
	for i := range 3 {
		enc.Encode(&logdriver.LogEntry{Source: []string{"stdout", "stderr"}[i%2], Line: []byte(fmt.Sprintf("line %d", i)), TimeNano: int64(i + 1)})
	}
	frames := good.Bytes()
	first := 4 + int(binary.BigEndian.Uint32(frames))
	for _, tt := range []struct {
		name    string
		in      []byte
		lines   []string
		skipped int64
	}{
		{"in step", frames, []string{"line 0", "line 1", "line 2"}, 0},
		{"mid-frame", frames[5:], []string{"line 1", "line 2"}, int64(first - 5)},
		{"garbage first", append([]byte{0xff, 0xff, 0xff, 0xff, 'g', 'a', 'r', 'b'}, frames...), []string{"line 0", "line 1", "line 2"}, 8},
		{"plausible length, no entry", append([]byte{0, 0, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, frames...), []string{"line 0", "line 1", "line 2"}, 14},
		{"torn end", frames[:len(frames)-3], []string{"line 0", "line 1"}, int64(first - 3)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fr := NewFrameReader(bytes.NewReader(tt.in), 4096)
			var lines []string
			var skipped, framed int64
			for {
				frame, n, err := fr.NextInStep()
				skipped += n
				framed += int64(len(frame))
				if err != nil {
					if err != io.EOF {
						t.Fatal(err)
					}
					break
				}
				var e logdriver.LogEntry
				if err := DecodeFrame(frame, &e); err != nil {
					t.Fatal(err)
				}
				lines = append(lines, string(e.Line))
			}
			if fmt.Sprint(lines) != fmt.Sprint(tt.lines) {
				t.Errorf("lines %q, want %q", lines, tt.lines)
			}
			if skipped != tt.skipped || skipped+framed != int64(len(tt.in)) {
				t.Errorf("skipped %d and framed %d of %d bytes, want %d skipped", skipped, framed, len(tt.in), tt.skipped)
			}
		})
	}
}

// The frame reader never allocates what a corrupt length prefix claims.
func TestFrameReaderCorruptLength(t *testing.T) {
	for _, n := range []uint32{0xFFFFFFFF, MaxFrameSize + 1} {
		var b bytes.Buffer
		binary.Write(&b, binary.BigEndian, n)
		b.WriteString("garbage")
		fr := NewFrameReader(&b, 4096)
		_, err := fr.Next()
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("length %#x: %v", n, err)
		}
		if cap(fr.buf) > 4096 {
			t.Errorf("length %#x: buffer grew to %d", n, cap(fr.buf))
		}
	}
}
