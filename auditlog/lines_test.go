package auditlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// lines reads r to its end with a LineReader of maximum max and describes
// each line or error, Rest included.
func lines(r io.Reader, max int) []string {
	lr := NewLineReader(r, max)
	var out []string
	for {
		b, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			out = append(out, fmt.Sprintf("%d:error %v", lr.Line(), errors.Is(err, ErrLineTooLong)))
			continue
		}
		out = append(out, fmt.Sprintf("%d:%s", lr.Line(), b))
	}
	if b, ok, err := lr.Rest(); ok {
		if err != nil {
			out = append(out, fmt.Sprintf("%d:rest error %v", lr.Line(), errors.Is(err, ErrLineTooLong)))
		} else {
			out = append(out, fmt.Sprintf("%d:rest %s", lr.Line(), b))
		}
	}
	return out
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", 200<<10) // longer than the bufio buffer
	tests := []struct {
		name, in string
		max      int
		want     []string
	}{
		{"empty", "", 0, nil},
		{"lines", "a\nb\n", 0, []string{"1:a", "2:b"}},
		{"unfinished last", "a\nb", 0, []string{"1:a", "2:rest b"}},
		{"blank and CR kept", "\r\n\n", 0, []string{"1:\r", "2:"}},
		{"long line", long + "\nz\n", 0, []string{"1:" + long, "2:z"}},
		{"at the maximum", "abcd\nabcde\nz", 4, []string{"1:abcd", "2:error true", "3:rest z"}},
		{"too long, longer than the buffer", "a\n" + long + "\nb\n", 1 << 10, []string{"1:a", "2:error true", "3:b"}},
		{"too long and unfinished", "a\n" + long, 1 << 10, []string{"1:a", "2:rest error true"}},
	}
	for _, tt := range tests {
		got := lines(strings.NewReader(tt.in), tt.max)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			if len(tt.want) > 0 && len(tt.want[0]) > 100 {
				t.Errorf("%s: %d lines, want %d", tt.name, len(got), len(tt.want))
				continue
			}
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestLineReaderResumes checks that an unfinished line is kept at the end
// of the input and completed by what is appended later, as when following
// a file.
func TestLineReaderResumes(t *testing.T) {
	var buf bytes.Buffer
	lr := NewLineReader(&buf, 0)
	buf.WriteString("one\ntw")
	if b, err := lr.Next(); err != nil || string(b) != "one" {
		t.Fatalf("Next = %q, %v", b, err)
	}
	if _, err := lr.Next(); err != io.EOF {
		t.Fatalf("Next on an unfinished line: %v, want io.EOF", err)
	}
	if lr.Offset() != 4 {
		t.Errorf("Offset = %d, want 4", lr.Offset())
	}
	buf.WriteString("o\n")
	if b, err := lr.Next(); err != nil || string(b) != "two" || lr.Line() != 2 || lr.Offset() != 8 {
		t.Fatalf("Next = %q, %v, line %d, offset %d", b, err, lr.Line(), lr.Offset())
	}
	if _, ok, _ := lr.Rest(); ok {
		t.Error("Rest found a line after the last newline")
	}
}

func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nbb\n\nccc"), 2)
	f.Add([]byte("\r\n"), 0)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		max = max%64 + 1
		if max <= 0 {
			max += 64
		}
		lr := NewLineReader(bytes.NewReader(in), max)
		total := 0
		for {
			b, err := lr.Next()
			if err == io.EOF {
				break
			}
			if err != nil && !errors.Is(err, ErrLineTooLong) {
				t.Fatal(err)
			}
			if len(b) > max || bytes.IndexByte(b, '\n') >= 0 {
				t.Fatalf("line %q, max %d", b, max)
			}
			total++
		}
		if _, ok, _ := lr.Rest(); ok {
			total++
		}
		if want := bytes.Count(in, []byte("\n")); total != want && total != want+1 {
			t.Errorf("%d lines of %q", total, in)
		}
		if lr.Offset() != int64(len(in)) {
			t.Errorf("Offset %d, want %d", lr.Offset(), len(in))
		}
	})
}
