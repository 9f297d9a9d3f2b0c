package review

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

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
	sets, err := auditlog.Files(dir)
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
	sets, err := auditlog.Files(dir)
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
	sets, err := auditlog.Files(live)
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
