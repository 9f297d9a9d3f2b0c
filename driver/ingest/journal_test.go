package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/containerd/fifo"
	"github.com/docker/docker/api/types/plugins/logdriver"
	"golang.org/x/sys/unix"
)

// journalOnFIFO returns a directory with a FIFO, its two ends and a
// journal beside it (closed at the end of the test).
func journalOnFIFO(t *testing.T) (dir string, r, w io.ReadWriteCloser, j *journal) {
	t.Helper()
	dir = t.TempDir()
	path := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := fifo.OpenFifo(ctx, path, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	if w, err = fifo.OpenFifo(ctx, path, syscall.O_WRONLY, 0); err != nil {
		t.Fatal(err)
	}
	if j, err = openJournal(filepath.Join(dir, JournalFile)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.close() })
	return dir, r, w, j
}

// TestJournalSplicesTheFIFO: with a real FIFO the journal takes the bytes
// with splice(2), so everything the reader got is in the journal file
// before the reader sees it, and the end of the writers reads as io.EOF.
func TestJournalSplicesTheFIFO(t *testing.T) {
	dir, r, w, j := journalOnFIFO(t)
	defer r.Close()
	var closed atomic.Bool
	var paced int
	j.pace = func(n int) { paced += n }
	tee := j.tee(r, &closed)
	if tee.rc == nil {
		t.Fatal("the FIFO gives no syscall.RawConn: the journal cannot splice")
	}

	want := bytes.Repeat([]byte("0123456789abcdef"), 40<<10) // 640 KiB: several pipe buffers
	go func() {
		w.Write(want)
		w.Close()
	}()
	got, err := io.ReadAll(tee)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d", len(got), len(want))
	}
	if tee.rc == nil {
		t.Error("fell back from splice to read(2)")
	}
	if paced != len(want) {
		t.Errorf("paced %d bytes taken from the FIFO, want %d", paced, len(want))
	}
	journaled, err := os.ReadFile(filepath.Join(dir, JournalFile))
	if err != nil || !bytes.Equal(journaled, want) {
		t.Errorf("journal holds %d bytes (%v), want the %d read", len(journaled), err, len(want))
	}
}

// TestJournalClosedFIFO: closing the FIFO on purpose ends a reader waiting
// in splice with io.ErrClosedPipe, which the stream takes as its end.
func TestJournalClosedFIFO(t *testing.T) {
	_, r, w, j := journalOnFIFO(t)
	defer w.Close()
	var closed atomic.Bool
	tee := j.tee(r, &closed)
	done := make(chan error, 1)
	go func() {
		_, err := tee.Read(make([]byte, 4096))
		done <- err
	}()
	w.Write([]byte("x")) // the reader is in splice's wait or past it
	closed.Store(true)
	r.Close()
	for {
		err := <-done
		if err == nil { // it took "x" first
			go func() {
				_, err := tee.Read(make([]byte, 4096))
				done <- err
			}()
			continue
		}
		if !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("read after close: %v, want io.ErrClosedPipe", err)
		}
		return
	}
}

// TestJournalCompaction: consumed(rest) leaves exactly rest in the journal
// (renamed over it, so a kill finds the old or the new journal whole), and
// what is read next is appended after it.
func TestJournalCompaction(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(filepath.Join(dir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	var closed atomic.Bool
	tee := j.tee(bytes.NewReader([]byte("stored-then-rest|next")), &closed) // no FIFO: read(2) and write
	buf := make([]byte, 16)
	if n, err := io.ReadFull(tee, buf); n != 16 || err != nil {
		t.Fatal(n, err)
	}
	if err := j.consumed([]byte("rest")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, JournalFile)); string(b) != "rest" {
		t.Fatalf("journal after compaction: %q", b)
	}
	if _, err := io.ReadAll(tee); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, JournalFile)); string(b) != "rest|next" {
		t.Fatalf("journal after the next read: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, JournalFile+".new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary journal left: %v", err)
	}
	if err := j.consumed(nil); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, JournalFile)); fi.Size() != 0 {
		t.Errorf("journal not emptied: %d bytes", fi.Size())
	}
}

// TestJournalDiskFull: when the journal's disk fails (splice says
// ENOSPC), the FIFO is still drained, by read(2), and every byte reaches
// the reader; splice is tried again at the next read.
func TestJournalDiskFull(t *testing.T) {
	_, r, w, j := journalOnFIFO(t)
	defer r.Close()
	calls := 0
	splice = func(rfd int, roff *int64, wfd int, woff *int64, n int, flags int) (int64, error) {
		calls++
		return -1, syscall.ENOSPC
	}
	defer func() { splice = unix.Splice }()
	var closed atomic.Bool
	var paced int
	j.pace = func(n int) { paced += n }
	tee := j.tee(r, &closed)
	want := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	go func() {
		w.Write(want)
		w.Close()
	}()
	got, err := io.ReadAll(tee)
	if err != nil {
		t.Fatalf("read with the journal's disk full: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want the %d written", len(got), len(want))
	}
	if calls < 2 || tee.rc == nil {
		t.Errorf("splice tried %d times, still used: %v; want it tried at every read", calls, tee.rc != nil)
	}
	if paced != len(want) {
		t.Errorf("paced %d bytes taken from the FIFO, want %d", paced, len(want))
	}
}

// TestJournalPacesFIFOIntake: what an earlier process left in the journal
// is read first but not paced: only reads of the FIFO are (the
// spool-full=block pace slows dockerd, not the replay).
func TestJournalPacesFIFOIntake(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, JournalFile)
	if err := os.WriteFile(path, []byte("left|"), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	var paced int
	j.pace = func(n int) { paced += n }
	var closed atomic.Bool
	got, err := io.ReadAll(j.reader(bytes.NewReader([]byte("fifo")), &closed))
	if err != nil || string(got) != "left|fifo" {
		t.Fatalf("read %q, %v; want the leftovers, then the FIFO", got, err)
	}
	if paced != 4 {
		t.Errorf("paced %d bytes, want 4 (the FIFO's bytes only)", paced)
	}
}

// TestJournalSkipStored: the leftovers start after the longest run of
// whole frames from the journal's head that the store ends with.
func TestJournalSkipStored(t *testing.T) {
	frame := func(s string) []byte {
		b, err := AppendFrame(nil, &logdriver.LogEntry{Source: "stdout", Line: []byte(s), TimeNano: 1})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c, x := frame("a"), frame("b"), frame("c"), frame("x")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name           string
		journal, store []byte
		skip           int
	}{
		{"nothing stored", cat(a, b, c), cat(x), 0},
		{"empty store", cat(a, b, c), nil, 0},
		{"all stored", cat(a, b, c), cat(x, a, b, c), len(cat(a, b, c))},
		{"head stored", cat(a, b, c), cat(x, a, b), len(cat(a, b))},
		{"torn last frame", cat(a, b, c[:5]), cat(x, a, b), len(cat(a, b))},
		{"same bytes earlier only", cat(a, b), cat(a, b, x), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), JournalFile)
			if err := os.WriteFile(path, tc.journal, 0o600); err != nil {
				t.Fatal(err)
			}
			j, err := openJournal(path)
			if err != nil {
				t.Fatal(err)
			}
			defer j.close()
			n, err := j.skipStored(func(n int64) ([]byte, error) { return tc.store[max(0, int64(len(tc.store))-n):], nil })
			if err != nil || n != int64(tc.skip) {
				t.Fatalf("skipStored = %d, %v; want %d", n, err, tc.skip)
			}
			var closed atomic.Bool
			got, err := io.ReadAll(j.reader(bytes.NewReader(nil), &closed))
			if err != nil || !bytes.Equal(got, tc.journal[tc.skip:]) {
				t.Errorf("read %q, %v; want the journal after %d bytes", got, err, tc.skip)
			}
		})
	}
}
