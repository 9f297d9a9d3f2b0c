package trail

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if strings.HasSuffix(name, ".gz") {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(content))
		zw.Close()
		content = b.String()
	}
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// collect runs r and describes each record: file base name, line, type.
func collect(t *testing.T, ctx context.Context, r *Reader) ([]string, error) {
	t.Helper()
	var got []string
	err := r.Run(ctx, func(rec *Record) error {
		s := fmt.Sprintf("%s:%d:%v", filepath.Base(rec.File), rec.Line, rec.Type)
		if rec.Event != nil {
			s += ":" + rec.Event.AuditID
		}
		got = append(got, s)
		return nil
	})
	return got, err
}

func TestReaderRun(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "audit.log.2.gz"), `{"ucp-audit/self":{}}`+"\n"+`{"auditID":"a"}`+"\n")
	writeFile(t, filepath.Join(dir, "audit.log.1"), `{"auditID":"b","ucp-audit/chain":{}}`+"\n\n"+`not json`+"\n"+`{"ucp-audit/seal":{}}`+"\n")
	writeFile(t, filepath.Join(dir, "audit.log"), `{"ucp-audit/gap":{}}`+"\n"+`{"auditID":"c"}`) // no final newline
	writeFile(t, filepath.Join(dir, "quarantine.log"), `{"reason":"x","raw":"y"}`+"\n")
	sets, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, context.Background(), &Reader{Sets: sets})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"audit.log.2.gz:1:self", "audit.log.2.gz:2:event:a",
		"audit.log.1:1:event:b", "audit.log.1:3:invalid", "audit.log.1:4:seal",
		"audit.log:1:gap", "audit.log:2:event:c",
		"quarantine.log:1:other",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestReaderErrors checks that a file that cannot be read is an error
// naming it, that the other files are still read, and that an error of
// the callback stops Run.
func TestReaderErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "audit.log.2.gz"), []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff garbage"), 0o600)
	writeFile(t, filepath.Join(dir, "audit.log.1"), `{"auditID":"b"}`+"\n")
	writeFile(t, filepath.Join(dir, "audit.log"), `{"auditID":"c"}`+"\n")
	sets, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, context.Background(), &Reader{Sets: sets})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "audit.log.2.gz")) {
		t.Errorf("error %v does not name the broken file", err)
	}
	if strings.Join(got, " ") != "audit.log.1:1:event:b audit.log:1:event:c" {
		t.Errorf("records %q", got)
	}

	stop := errors.New("stop")
	n := 0
	err = (&Reader{Sets: sets[:1]}).Run(context.Background(), func(*Record) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("Run = %v after %d records, want the callback's error after 1", err, n)
	}
}

// TestReaderFollow follows a live file through appends, a rotation with a
// late write to the renamed file, a time with no live file, and a
// truncation.
func TestReaderFollow(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "audit.log")
	appendTo := func(name, s string) {
		t.Helper()
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	appendTo(live, `{"auditID":"1"}`+"\n")
	sets, err := Files(live)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	ids := make(chan string, 100)
	done := make(chan error, 1)
	r := &Reader{Sets: sets, Follow: true, Poll: 2 * time.Millisecond}
	go func() {
		done <- r.Run(runCtx, func(rec *Record) error {
			if rec.Event != nil {
				ids <- rec.Event.AuditID
			}
			return nil
		})
	}()
	expect := func(want ...string) {
		t.Helper()
		for _, w := range want {
			select {
			case got := <-ids:
				if got != w {
					t.Fatalf("got event %s, want %s", got, w)
				}
			case <-ctx.Done():
				t.Fatalf("event %s did not come", w)
			}
		}
	}
	expect("1")
	appendTo(live, `{"auditID":"2"}`+"\n"+`{"audit`)
	expect("2")
	appendTo(live, `ID":"3"}`+"\n")
	expect("3")

	// Rotation, then a late write to the old file, then no live file for
	// a while, then a new one.
	if err := os.Rename(live, live+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(live+".1", `{"auditID":"4"}`+"\n")
	expect("4")
	appendTo(live, `{"auditID":"5","pad":"longer than what follows the truncation"}`+"\n")
	expect("5")

	// Truncated in place: read again from its start.
	if err := os.Truncate(live, 0); err != nil {
		t.Fatal(err)
	}
	appendTo(live, `{"auditID":"6"}`+"\n")
	expect("6")

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not stop when its context was cancelled")
	}
}
