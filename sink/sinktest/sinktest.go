// Package sinktest checks the generic behaviour every sink.Sink (Run) and
// every sink.Forwarder (Forwarder, against a real loopback peer) must
// have. Implementations run it from their own tests.
package sinktest

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ucp-audit/ucp-audit/sink"
)

// Run checks generic Sink behaviour. open must return a fresh, empty sink
// (one per call; use t.TempDir) and a read function returning every line
// written to it so far and made durable, oldest first, without the trailing
// newlines. read is only called after Sync or Close.
func Run(t *testing.T, open func(t *testing.T) (s sink.Sink, read func() []string)) {
	t.Helper()

	t.Run("Order", func(t *testing.T) {
		s, read := open(t)
		var want []string
		for i := range 200 {
			line := fmt.Sprintf(`{"seq":%d,"msg":"%s"}`, i, strings.Repeat("x", i%37))
			want = append(want, line)
			if err := s.Write([]byte(line)); err != nil {
				t.Fatalf("Write(%d): %v", i, err)
			}
		}
		if err := s.Sync(); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		checkEqual(t, read(), want)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})

	t.Run("SyncShowsEverything", func(t *testing.T) {
		s, read := open(t)
		if err := s.Sync(); err != nil {
			t.Fatalf("Sync on empty sink: %v", err)
		}
		var want []string
		for round := range 3 {
			for i := range 10 {
				line := fmt.Sprintf(`{"round":%d,"i":%d}`, round, i)
				want = append(want, line)
				if err := s.Write([]byte(line)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Sync(); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			checkEqual(t, read(), want)
		}
		if err := s.Sync(); err != nil {
			t.Fatalf("second Sync: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		checkEqual(t, read(), want)
	})

	t.Run("CloseMakesDurable", func(t *testing.T) {
		s, read := open(t)
		want := []string{`{"a":1}`, `{"b":2}`}
		for _, l := range want {
			if err := s.Write([]byte(l)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		checkEqual(t, read(), want)
	})

	t.Run("DoesNotRetain", func(t *testing.T) {
		s, read := open(t)
		buf := []byte(`{"k":"original"}`)
		if err := s.Write(buf); err != nil {
			t.Fatal(err)
		}
		copy(buf, bytes.Repeat([]byte("Z"), len(buf)))
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		checkEqual(t, read(), []string{`{"k":"original"}`})
		_ = s.Close()
	})

	t.Run("LargeLines", func(t *testing.T) {
		s, read := open(t)
		var want []string
		for i, n := range []int{10, 100 << 10, 5, 300 << 10, 64 << 10, 64<<10 - 1, 64<<10 + 1} {
			line := fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("p", n))
			want = append(want, line)
			if err := s.Write([]byte(line)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		checkEqual(t, read(), want)
		_ = s.Close()
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		s, read := open(t)
		const writers, perWriter = 8, 300
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWriter {
					pad := strings.Repeat(string(rune('a'+w)), (i*7919)%(3<<10))
					if i%100 == 99 {
						pad = strings.Repeat(string(rune('a'+w)), 80<<10) // larger than typical buffers
					}
					line := fmt.Sprintf(`{"w":%d,"i":%d,"pad":"%s"}`, w, i, pad)
					if err := s.Write([]byte(line)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Write: %v", err)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		CheckWriters(t, read(), writers, perWriter)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("UseAfterClose", func(t *testing.T) {
		s, _ := open(t)
		if err := s.Write([]byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Write([]byte(`{}`)); err == nil {
			t.Error("Write after Close: got nil error")
		}
		if err := s.Sync(); err == nil {
			t.Error("Sync after Close: got nil error")
		}
		_ = s.Close() // must not panic; nil or an error are both allowed here
	})
}

// CheckWriters checks lines of the form {"w":W,"i":I,"pad":"ccc…"} written by
// writers goroutines perWriter times each: every line is present exactly
// once, whole (its padding is one repeated letter and intact JSON), and each
// writer's lines are in order.
func CheckWriters(t *testing.T, lines []string, writers, perWriter int) {
	t.Helper()
	next := make([]int, writers)
	for n, l := range lines {
		var w, i int
		var pad string
		rest, ok := strings.CutPrefix(l, `{"w":`)
		if ok {
			var ws, is string
			ws, rest, ok = strings.Cut(rest, `,"i":`)
			if ok {
				is, rest, ok = strings.Cut(rest, `,"pad":"`)
				if ok {
					pad, ok = strings.CutSuffix(rest, `"}`)
				}
				var e1, e2 error
				w, e1 = strconv.Atoi(ws)
				i, e2 = strconv.Atoi(is)
				ok = ok && e1 == nil && e2 == nil
			}
		}
		if !ok || w < 0 || w >= writers {
			t.Fatalf("line %d is not a whole line: %.120q", n, l)
		}
		if strings.Trim(pad, string(rune('a'+w))) != "" {
			t.Fatalf("line %d (writer %d, seq %d) has corrupted padding", n, w, i)
		}
		if i != next[w] {
			t.Fatalf("line %d: writer %d seq %d, want seq %d (lost, duplicated or reordered)", n, w, i, next[w])
		}
		next[w]++
	}
	for w, got := range next {
		if got != perWriter {
			t.Errorf("writer %d: %d lines, want %d", w, got, perWriter)
		}
	}
}

func checkEqual(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d: got %.80q, want %.80q", i, got[i], want[i])
		}
	}
}
