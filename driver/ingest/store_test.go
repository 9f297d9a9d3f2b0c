package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/docker/docker/api/types/plugins/logdriver"

	"github.com/ucp-audit/ucp-audit/dockerlog"
)

func entry(src, line string, ts int64) *logdriver.LogEntry {
	return &logdriver.LogEntry{Source: src, Line: []byte(line), TimeNano: ts}
}

func mustFrame(t testing.TB, e *logdriver.LogEntry) []byte {
	t.Helper()
	b, err := AppendFrame(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fillStore writes n lines "line i" with times i seconds after epoch.
func fillStore(t *testing.T, st *Store, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := st.Append(mustFrame(t, entry("stdout", fmt.Sprintf("line %d", i), int64(i)*int64(time.Second)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.flush(); err != nil {
		t.Fatal(err)
	}
}

// readAll serves logs and returns the lines, decoded.
func readAll(t *testing.T, st *Store, cfg dockerlog.ReadConfig) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := Serve(context.Background(), st, cfg, &buf); err != nil {
		t.Fatal(err)
	}
	dec := logdriver.NewLogEntryDecoder(&buf)
	var out []string
	for {
		var e logdriver.LogEntry
		if err := dec.Decode(&e); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(e.Line))
	}
}

func TestStoreReadLogs(t *testing.T) {
	st, err := OpenStore(t.TempDir(), 200, 100) // tiny segments: many of them
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Attach(); err != nil {
		t.Fatal(err)
	}
	fillStore(t, st, 0, 10)
	if err := st.Detach(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  dockerlog.ReadConfig
		want []string
	}{
		{"all", dockerlog.ReadConfig{Tail: -1}, lines(0, 10)},
		{"tail 3", dockerlog.ReadConfig{Tail: 3}, lines(7, 10)},
		{"tail 0", dockerlog.ReadConfig{Tail: 0}, nil},
		{"tail more than all", dockerlog.ReadConfig{Tail: 50}, lines(0, 10)},
		{"since", dockerlog.ReadConfig{Tail: -1, Since: time.Unix(5, 0)}, lines(5, 10)},
		{"until", dockerlog.ReadConfig{Tail: -1, Until: time.Unix(2, 0)}, lines(0, 3)},
		{"since tail", dockerlog.ReadConfig{Tail: 2, Since: time.Unix(5, 0), Until: time.Unix(8, 0)}, lines(7, 9)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, st, tt.cfg)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func lines(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("line %d\n", i))
	}
	return out
}

// dockerd starts a logger for every `docker logs` of a stopped container:
// attaching again and again must not push the real lines out.
func TestStoreReattachKeepsLines(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 10; i++ {
		st, err := OpenStore(dir, 1<<20, 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Attach(); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			fillStore(t, st, 0, 3)
		}
		if err := st.Detach(); err != nil {
			t.Fatal(err)
		}
	}
	st, err := OpenStore(dir, 1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, st, dockerlog.ReadConfig{Tail: -1}); fmt.Sprint(got) != fmt.Sprint(lines(0, 3)) {
		t.Errorf("got %q", got)
	}
}

// A crash can leave half a frame at the end: readers stop before it, and
// the next attach cuts it off so new frames follow whole ones.
func TestStoreTornTail(t *testing.T) {
	dir := t.TempDir()
	st, _ := OpenStore(dir, 1<<20, 2)
	if err := st.Attach(); err != nil {
		t.Fatal(err)
	}
	fillStore(t, st, 0, 2)
	half := mustFrame(t, entry("stdout", "torn", 0))
	if err := st.Append(half[:len(half)/2]); err != nil {
		t.Fatal(err)
	}
	_ = st.Detach()
	st, err := OpenStore(dir, 1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, st, dockerlog.ReadConfig{Tail: -1}); fmt.Sprint(got) != fmt.Sprint(lines(0, 2)) {
		t.Fatalf("before reattach: got %q", got)
	}
	if err := st.Attach(); err != nil {
		t.Fatal(err)
	}
	fillStore(t, st, 2, 1)
	_ = st.Detach()
	if got := readAll(t, st, dockerlog.ReadConfig{Tail: -1}); fmt.Sprint(got) != fmt.Sprint(lines(0, 3)) {
		t.Fatalf("after reattach: got %q", got)
	}
}

// TestStoreTail: tail returns the last bytes of the store's frames across
// segment boundaries, or all of them.
func TestStoreTail(t *testing.T) {
	st, err := OpenStore(t.TempDir(), 256, 100) // a few frames per segment
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Attach(); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for i := range 40 {
		f := mustFrame(t, entry("stdout", fmt.Sprintf("line %d", i), int64(i)))
		all = append(all, f...)
		if err := st.Append(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Detach(); err != nil {
		t.Fatal(err)
	}
	if st.log.Len() < 3 {
		t.Fatalf("%d segments, want several", st.log.Len())
	}
	for _, n := range []int64{0, 10, 300, 700, int64(len(all)), int64(len(all)) + 100} {
		got, err := st.tail(n)
		want := all[max(0, int64(len(all))-n):]
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("tail(%d) = %d bytes, %v; want the last %d", n, len(got), err, len(want))
		}
	}
}
