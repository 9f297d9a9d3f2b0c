package file

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/sink/sinktest"
)

// files returns the contents of path.(maxFiles-1) … path.1, path that exist,
// oldest first, with their names.
func files(t *testing.T, path string, maxFiles int) (names []string, contents [][]byte) {
	t.Helper()
	for i := max(maxFiles-1, 0); i >= 0; i-- {
		name := path
		if i > 0 {
			name += "." + strconv.Itoa(i)
		}
		b, err := os.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		contents = append(contents, b)
	}
	return names, contents
}

// lines returns every line of the kept files, oldest first, checking that
// every file ends with a newline.
func lines(t *testing.T, path string, maxFiles int) []string {
	t.Helper()
	names, contents := files(t, path, maxFiles)
	var out []string
	for i, b := range contents {
		if len(b) == 0 {
			continue
		}
		if b[len(b)-1] != '\n' {
			t.Fatalf("%s does not end with a newline", names[i])
		}
		out = append(out, strings.Split(string(b[:len(b)-1]), "\n")...)
	}
	return out
}

func open(t *testing.T, r *Registry, o Options) sink.Sink {
	t.Helper()
	s, err := r.Open(o)
	if err != nil {
		t.Fatalf("Open(%+v): %v", o, err)
	}
	return s
}

func write(t *testing.T, s sink.Sink, ls ...string) {
	t.Helper()
	for _, l := range ls {
		if err := s.Write([]byte(l)); err != nil {
			t.Fatalf("Write(%.40q): %v", l, err)
		}
	}
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxSize  int64
		maxFiles int
	}{
		{"NoRotation", 0, 0},
		{"Rotation", 64 << 10, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sinktest.Run(t, func(t *testing.T) (sink.Sink, func() []string) {
				r := NewRegistry()
				t.Cleanup(func() { _ = r.Close() })
				path := filepath.Join(t.TempDir(), "audit.log")
				s := open(t, r, Options{Path: path, MaxSize: tc.maxSize, MaxFiles: tc.maxFiles})
				return s, func() []string { return lines(t, path, tc.maxFiles) }
			})
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		ok   bool
	}{
		{Options{Path: "/var/log/a.log"}, true},
		{Options{Path: "/var/log/a.log", MaxSize: -1}, true},
		{Options{Path: "/var/log/a.log", MaxSize: 10, MaxFiles: 2}, true},
		{Options{Path: "/var/log/a.log", MaxSize: 10, MaxFiles: 1}, false},
		{Options{Path: "/var/log/a.log", MaxSize: 10}, false},
		{Options{Path: "relative/a.log"}, false},
		{Options{Path: ""}, false},
	} {
		err := tc.opts.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v, want ok=%v", tc.opts, err, tc.ok)
		}
		if !tc.ok {
			if _, oerr := NewRegistry().Open(tc.opts); oerr == nil {
				t.Errorf("Open(%+v) accepted invalid options", tc.opts)
			}
		}
	}
}

// Not parallel: it sets the process umask.
func TestModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "audit.log")
	r := NewRegistry()
	defer r.Close()
	s := open(t, r, Options{Path: path, MaxSize: 10, MaxFiles: 3})
	write(t, s, "12345678", "12345678") // second write rotates: the fresh file must be 0600 too
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".1"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, st.Mode().Perm())
		}
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", d, st.Mode().Perm())
		}
	}
}

func TestAppendsToExistingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte("old-1\nold-2\n"), 0o600); err != nil { // 12 bytes
		t.Fatal(err)
	}
	r := NewRegistry()
	s := open(t, r, Options{Path: path, MaxSize: 20, MaxFiles: 3})
	write(t, s, "new-1") // 12+6 = 18 <= 20: appended
	write(t, s, "new-2") // 18+6 > 20: rotates because the existing size counts
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, c := files(t, path, 3)
	got := make([]string, len(c))
	for i := range c {
		got[i] = string(c[i])
	}
	want := []string{"old-1\nold-2\nnew-1\n", "new-2\n"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
}

// A last line without its newline was torn by a crash mid-write: it is cut
// off when the file is opened, so the next line does not run into it.
func TestCutsTornLastLine(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, existing, want string }{
		{"whole", "old-1\nold-2\n", "old-1\nold-2\nnew\n"},
		{"torn", "old-1\nold-2\n{\"audit", "old-1\nold-2\nnew\n"},
		{"only torn", "{\"audit", "new\n"},
		{"torn past a buffer", "old\n" + strings.Repeat("x", 200<<10), "old\nnew\n"},
		{"empty", "", "new\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			if err := os.WriteFile(path, []byte(tt.existing), 0o600); err != nil {
				t.Fatal(err)
			}
			r := NewRegistry()
			s := open(t, r, Options{Path: path})
			write(t, s, "new")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("file = %.80q, want %q", got, tt.want)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	line := func(i int) string { return fmt.Sprintf("line-%03d", i) } // 8 bytes + "\n"
	for _, tc := range []struct {
		name     string
		maxSize  int64
		maxFiles int
		n        int
		want     []string // oldest file first
	}{
		{"Exact", 18, 3, 5, []string{"line-000\nline-001\n", "line-002\nline-003\n", "line-004\n"}},
		{"DropsOldest", 18, 3, 9, []string{"line-004\nline-005\n", "line-006\nline-007\n", "line-008\n"}},
		{"TwoFiles", 20, 2, 7, []string{"line-004\nline-005\n", "line-006\n"}},
		{"OneLinePerFile", 9, 4, 6, []string{"line-002\n", "line-003\n", "line-004\n", "line-005\n"}},
		{"NoRotation", 0, 0, 4, []string{"line-000\nline-001\nline-002\nline-003\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "audit.log")
			r := NewRegistry()
			s := open(t, r, Options{Path: path, MaxSize: tc.maxSize, MaxFiles: tc.maxFiles})
			for i := range tc.n {
				write(t, s, line(i))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			_, c := files(t, path, tc.maxFiles+2) // also catches files beyond MaxFiles
			got := make([]string, len(c))
			for i := range c {
				got[i] = string(c[i])
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("files = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestOversizedLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	r := NewRegistry()
	s := open(t, r, Options{Path: path, MaxSize: 10, MaxFiles: 10})
	big := strings.Repeat("B", 25)
	write(t, s, big, "a", big, big, "b", "c")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, c := files(t, path, 10)
	got := make([]string, len(c))
	for i := range c {
		got[i] = string(c[i])
	}
	// The first big line goes into the empty file without a rotation (no
	// empty rotated file); each big line is alone in its file.
	want := []string{big + "\n", "a\n", big + "\n", big + "\n", "b\nc\n"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
}

// Many goroutines, tiny MaxSize: every line exactly once, whole, in order per
// goroutine, and no file above MaxSize unless it holds a single line.
func TestRotationConcurrent(t *testing.T) {
	t.Parallel()
	const writers, perWriter, maxSize, maxFiles = 8, 150, 1000, 1000
	path := filepath.Join(t.TempDir(), "audit.log")
	r := NewRegistry()
	// Each writer has its own handle on the shared file, as streams do.
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		s := open(t, r, Options{Path: path, MaxSize: maxSize, MaxFiles: maxFiles})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close()
			for i := range perWriter {
				n := (i * 31) % 200
				if i%50 == 7 {
					n = 1200 // bigger than MaxSize
				}
				line := fmt.Sprintf(`{"w":%d,"i":%d,"pad":"%s"}`, w, i, strings.Repeat(string(rune('a'+w)), n))
				if err := s.Write([]byte(line)); err != nil {
					errs <- err
					return
				}
				if i%40 == 0 {
					if err := s.Sync(); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	names, contents := files(t, path, maxFiles)
	if len(names) < 10 {
		t.Fatalf("only %d files: rotation did not happen enough", len(names))
	}
	for i, b := range contents {
		if int64(len(b)) > maxSize && bytes.Count(b, []byte("\n")) != 1 {
			t.Errorf("%s: %d bytes > MaxSize with %d lines", names[i], len(b), bytes.Count(b, []byte("\n")))
		}
		if len(b) == 0 && i != len(contents)-1 {
			t.Errorf("%s: empty rotated file", names[i])
		}
	}
	sinktest.CheckWriters(t, lines(t, path, maxFiles), writers, perWriter)
}

func TestSyncFlushes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	r := NewRegistry()
	defer r.Close()
	s := open(t, r, Options{Path: path})
	write(t, s, `{"a":1}`)
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("before Sync the line should still be buffered, file has %q", b)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{\"a\":1}\n" {
		t.Fatalf("after Sync file has %q", b)
	}
}

func TestRegistryShares(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	r := NewRegistry()
	a := open(t, r, Options{Path: path, MaxSize: 1000, MaxFiles: 2})
	b := open(t, r, Options{Path: dir + "/./sub/../audit.log", MaxSize: 1000, MaxFiles: 2}) // same cleaned path
	if a.(*handle).f != b.(*handle).f {
		t.Fatal("same path opened twice: not shared")
	}
	write(t, a, "a1")
	write(t, b, "b1")
	write(t, a, "a2")
	// Closing one reference keeps the file open for the other, and does not
	// flush it yet (the file is shared, nothing forced it).
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil { // harmless, and must not release b's reference
		t.Fatalf("second Close = %v, want nil", err)
	}
	if err := a.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v, want ErrClosed", err)
	}
	write(t, b, "b2")
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("file flushed before the last reference was released: %q", b)
	}
	// Releasing the last reference flushes and closes.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "a1\nb1\na2\nb2\n" {
		t.Fatalf("file = %q", got)
	}
	r.mu.Lock()
	n := len(r.files)
	r.mu.Unlock()
	if n != 0 {
		t.Fatalf("registry still holds %d files after the last Close", n)
	}
	// Reopening after the last release opens the file afresh, appending.
	c := open(t, r, Options{Path: path, MaxSize: 1000, MaxFiles: 2})
	write(t, c, "c1")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "a1\nb1\na2\nb2\nc1\n" {
		t.Fatalf("file = %q", got)
	}
}

func TestConflict(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	for _, tc := range []struct {
		name        string
		first, then Options
		conflict    bool
	}{
		{"SameSettings", Options{MaxSize: 100, MaxFiles: 3}, Options{MaxSize: 100, MaxFiles: 3}, false},
		{"MaxSize", Options{MaxSize: 100, MaxFiles: 3}, Options{MaxSize: 200, MaxFiles: 3}, true},
		{"MaxFiles", Options{MaxSize: 100, MaxFiles: 3}, Options{MaxSize: 100, MaxFiles: 4}, true},
		{"RotationOff", Options{MaxSize: 100, MaxFiles: 3}, Options{}, true},
		{"MaxFilesIgnoredWithoutRotation", Options{MaxFiles: 3}, Options{MaxSize: -1, MaxFiles: 7}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRegistry()
			defer r.Close()
			tc.first.Path, tc.then.Path = path, path
			open(t, r, tc.first)
			s, err := r.Open(tc.then)
			if !tc.conflict {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return
			}
			if s != nil || !errors.Is(err, ErrConflict) {
				t.Fatalf("Open = %v, %v; want ErrConflict", s, err)
			}
			for _, want := range []string{
				strconv.Quote(path),
				fmt.Sprintf("max-size=%d", tc.first.normalized().MaxSize),
				fmt.Sprintf("max-files=%d", tc.first.normalized().MaxFiles),
				fmt.Sprintf("max-size=%d", tc.then.normalized().MaxSize),
				fmt.Sprintf("max-files=%d", tc.then.normalized().MaxFiles),
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestRegistryClose(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := NewRegistry()
	a := open(t, r, Options{Path: filepath.Join(dir, "audit.log")})
	q := open(t, r, Options{Path: filepath.Join(dir, "quarantine.log")})
	write(t, a, "a")
	write(t, q, "q")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"audit.log": "a\n", "quarantine.log": "q\n"} {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); string(got) != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if err := a.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Registry.Close = %v, want ErrClosed", err)
	}
	if err := q.Sync(); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync after Registry.Close = %v, want ErrClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close after Registry.Close = %v, want nil", err)
	}
	if _, err := r.Open(Options{Path: filepath.Join(dir, "other.log")}); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Registry.Close = %v, want ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Registry.Close = %v", err)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	t.Run("OpenDirectory", func(t *testing.T) {
		_, err := NewRegistry().Open(Options{Path: dir})
		if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("audit file %q: open: ", dir)) {
			t.Fatalf("Open(directory) = %v", err)
		}
	})

	t.Run("Newline", func(t *testing.T) {
		path := filepath.Join(dir, "nl.log")
		r := NewRegistry()
		s := open(t, r, Options{Path: path})
		if err := s.Write([]byte("{\"a\":\n1}")); !errors.Is(err, ErrNewline) || !errors.Is(err, sink.ErrRefused) {
			t.Fatalf("Write with newline = %v, want ErrNewline and sink.ErrRefused", err)
		}
		write(t, s, `{"ok":1}`)
		_ = s.Close()
		if got, _ := os.ReadFile(path); string(got) != "{\"ok\":1}\n" {
			t.Fatalf("file = %q", got)
		}
	})

	t.Run("RotateFailsThenRecovers", func(t *testing.T) {
		path := filepath.Join(dir, "rot.log")
		// A non-empty directory where the oldest rotated file goes makes the
		// rotation fail.
		if err := os.MkdirAll(filepath.Join(path+".1", "x"), 0o700); err != nil {
			t.Fatal(err)
		}
		r := NewRegistry()
		s := open(t, r, Options{Path: path, MaxSize: 10, MaxFiles: 2})
		write(t, s, "first")
		err := s.Write([]byte("second"))
		prefix := fmt.Sprintf("audit file %q: rotate: ", path)
		if err == nil || !strings.HasPrefix(err.Error(), prefix) {
			t.Fatalf("Write needing a failing rotation = %v, want prefix %s", err, prefix)
		}
		var pe *fs.PathError
		if !errors.As(err, &pe) {
			t.Errorf("error %v does not wrap the underlying *fs.PathError", err)
		}
		if err := s.Sync(); err != nil { // "first" was flushed and fsync'd before the failure
			t.Fatalf("Sync after failed rotation: %v", err)
		}
		if err := os.RemoveAll(path + ".1"); err != nil {
			t.Fatal(err)
		}
		write(t, s, "third") // reopens, rotates
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		_, c := files(t, path, 2)
		if got := fmt.Sprintf("%q", c); got != `["first\n" "third\n"]` {
			t.Fatalf("files = %s (the failed line must not be written)", got)
		}
	})
}

// Not parallel: counts goroutines.
func TestNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	r := NewRegistry()
	path := filepath.Join(t.TempDir(), "audit.log")
	s := open(t, r, Options{Path: path, MaxSize: 50, MaxFiles: 3})
	for i := range 20 {
		write(t, s, fmt.Sprintf("line %d", i))
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// More would be the package's; fewer is an earlier test's goroutine
	// ending meanwhile (CI saw 13 before, 12 while open).
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("goroutines: %d before, %d while open", before, after)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkWrite(b *testing.B) {
	line := []byte(`{"msg":"` + strings.Repeat("x", 1024-10) + `"}`) // 1 KiB with the newline
	for _, bc := range []struct {
		name      string
		syncEvery int
		sealed    bool
	}{
		{"NoSync", 0, false},
		{"Sync256", 256, false},
		{"Sealed/NoSync", 0, true}, // the hash chain, as the plugin writes
		{"Sealed/Sync256", 256, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := NewRegistry()
			if bc.sealed {
				r = NewSealedRegistry(Sealing{})
			}
			defer r.Close()
			s, err := r.Open(Options{Path: filepath.Join(b.TempDir(), "audit.log"), MaxSize: 64 << 20, MaxFiles: 2})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(line) + 1))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := s.Write(line); err != nil {
					b.Fatal(err)
				}
				i++
				if bc.syncEvery > 0 && i%bc.syncEvery == 0 {
					if err := s.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// fsyncEvent is one observed fsync.
type fsyncEvent struct {
	name   string
	isDir  bool
	atPath bool // the fsync'd file was still the one named path
}

// observeFsync replaces fsync for the test (not parallel: package state).
func observeFsync(t *testing.T, path string, fail func(name string) error) *[]fsyncEvent {
	t.Helper()
	var mu sync.Mutex
	var events []fsyncEvent
	orig := fsync
	fsync = func(f *os.File) error {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		cur, cerr := os.Stat(path)
		mu.Lock()
		events = append(events, fsyncEvent{f.Name(), st.IsDir(), cerr == nil && os.SameFile(st, cur)})
		mu.Unlock()
		if fail != nil {
			if err := fail(f.Name()); err != nil {
				return err
			}
		}
		return orig(f)
	}
	t.Cleanup(func() { fsync = orig })
	return &events
}

// Not parallel: replaces fsync.
func TestFsyncPolicy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	events := observeFsync(t, path, nil)
	r := NewRegistry()
	s := open(t, r, Options{Path: path, MaxSize: 20, MaxFiles: 3})
	if got := *events; len(got) != 1 || !got[0].isDir || got[0].name != dir {
		t.Fatalf("creating the file: fsyncs %+v, want one of the directory", got)
	}
	*events = nil
	write(t, s, "0123456789") // 11 bytes: no fsync, the caller decides
	if len(*events) != 0 {
		t.Fatalf("Write fsync'd: %+v", *events)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := *events; len(got) != 1 || got[0].isDir || !got[0].atPath {
		t.Fatalf("Sync: fsyncs %+v, want one of the file", got)
	}
	*events = nil
	write(t, s, "0123456789") // rotates
	got := *events
	if len(got) != 2 || got[0].isDir || !got[0].atPath || !got[1].isDir {
		t.Fatalf("rotation: fsyncs %+v, want the old file while still at path (before the rename), then the directory", got)
	}
	*events = nil
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := *events; len(got) != 1 || got[0].isDir || !got[0].atPath {
		t.Fatalf("Close: fsyncs %+v, want one of the file", got)
	}
}

func TestRotationWithExistingFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		existing map[string]string // suffix → content
		want     []string          // oldest first after one rotation
	}{
		{"Full", map[string]string{"": "cur\n", ".1": "r1\n", ".2": "r2\n", ".3": "r3\n"},
			[]string{"r2\n", "r1\n", "cur\n", "new\n"}},
		{"Gap", map[string]string{"": "cur\n", ".1": "r1\n", ".3": "r3\n"},
			[]string{"r3\n", "r1\n", "cur\n", "new\n"}}, // path.3 kept: the gap at path.2 absorbs the shift
		{"OnlyCurrent", map[string]string{"": "cur\n"},
			[]string{"cur\n", "new\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "audit.log")
			for suffix, c := range tc.existing {
				if err := os.WriteFile(path+suffix, []byte(c), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := NewRegistry()
			s := open(t, r, Options{Path: path, MaxSize: 5, MaxFiles: 4})
			write(t, s, "new")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			_, c := files(t, path, 6)
			got := make([]string, len(c))
			for i := range c {
				got[i] = string(c[i])
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("files = %q, want %q", got, tc.want)
			}
		})
	}
}
