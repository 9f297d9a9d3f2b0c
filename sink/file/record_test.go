package file

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/chain"
)

// recordSetup returns a file path, its options (rotating when rotate) and
// a Sealing with a record in a state directory outside the log directory,
// its clock advancing 5 s per record written by writeRecords.
type recordSetup struct {
	path  string
	opts  Options
	seal  Sealing
	clk   *clock
	state string
}

func newRecordSetup(t *testing.T, rotate bool) *recordSetup {
	root := t.TempDir()
	s := &recordSetup{path: filepath.Join(root, "log", "audit.log"), clk: &clock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}}
	s.state = filepath.Join(root, "state", "chains")
	s.opts = Options{Path: s.path}
	if rotate {
		s.opts.MaxSize, s.opts.MaxFiles = 8<<10, 3
	}
	s.seal = Sealing{Interval: time.Minute, Now: s.clk.now, StateDir: s.state}
	return s
}

// run opens the file with a new Registry, writes records from to to-1 (an
// interval seal every 12), and returns the Registry without closing it.
func (s *recordSetup) run(t *testing.T, from, to int) *Registry {
	t.Helper()
	r := NewSealedRegistry(s.seal)
	w, err := r.Open(s.opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < to; i++ {
		s.clk.t = s.clk.t.Add(5 * time.Second)
		if err := w.Write(record(i)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// closed is run, then closes the Registry.
func (s *recordSetup) closed(t *testing.T, from, to int) {
	t.Helper()
	if err := s.run(t, from, to).Close(); err != nil {
		t.Fatal(err)
	}
}

// recorded returns the sealed head in the path's record, zero when none.
func (s *recordSetup) recorded() chain.Head {
	sealed, _ := readRecord(recordPath(s.state, s.path), s.path)
	return sealed
}

// sealLines returns the 1-based numbers of path's lines holding a seal of
// reason.
func sealLines(t *testing.T, path string, reason chain.Reason) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var at []int
	for i, l := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(l, []byte(`{"ucp-audit/seal":{"reason":"`+string(reason)+`"`)) {
			at = append(at, i+1)
		}
	}
	return at
}

// cutAfter cuts path back to its first n lines.
func cutAfter(t *testing.T, path string, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := 0
	for range n {
		end += bytes.IndexByte(b[end:], '\n') + 1
	}
	if err := os.WriteFile(path, b[:end], 0o600); err != nil {
		t.Fatal(err)
	}
}

func wantProblem(t *testing.T, path string, kind chain.Kind, file string, line int64, detail string) {
	t.Helper()
	var p *chain.Problem
	res := verifySet(t, path, nil)
	if !errors.As(res.Err, &p) {
		t.Fatalf("verify: %v, want %s at %s:%d", res.Err, kind, file, line)
	}
	if p.Kind != kind || filepath.Base(p.File) != file || p.Line != line || !strings.Contains(p.Detail, detail) {
		t.Errorf("verify: %v\nwant %s at %s:%d with %q", p, kind, file, line, detail)
	}
}

// wantNoLoss fails unless path's set verifies and no seal reports a loss.
func wantNoLoss(t *testing.T, path string) {
	t.Helper()
	mustVerify(t, path, nil)
	for _, name := range []string{path, path + ".1", path + ".2"} {
		if b, err := os.ReadFile(name); err == nil && bytes.Contains(b, []byte(`"lost":`)) {
			t.Errorf("%s reports a loss:\n%s", name, b)
		}
	}
}

// TestRecordCutAtSeal: the live file cut back to exactly the end of an
// interval seal verifies clean on its own; once the plugin re-opens it
// (a new Registry sharing the state directory) its resume seal carries
// the loss and verify reports it there.
func TestRecordCutAtSeal(t *testing.T) {
	s := newRecordSetup(t, false)
	s.closed(t, 0, 40)
	end := s.recorded()
	if end.N == 0 {
		t.Fatal("no record after close")
	}
	st, err := os.Stat(s.state)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("state directory: %v, %v; want mode 0700", st, err)
	}
	b, _ := os.ReadFile(recordPath(s.state, s.path))
	if !bytes.Contains(b, []byte(`"path":"`+s.path+`"`)) {
		t.Errorf("the record does not name its path: %s", b)
	}
	at := sealLines(t, s.path, chain.ReasonInterval)
	if len(at) < 2 {
		t.Fatalf("interval seals at lines %v, want 2 or more", at)
	}
	cutAfter(t, s.path, at[1])
	mustVerify(t, s.path, nil) // the files alone cannot show it

	s.closed(t, 40, 42)
	// Line at[1] is record at[1] (one file, from record 1).
	wantProblem(t, s.path, chain.KindTruncated, "audit.log", int64(at[1]+1),
		"when the plugin re-opened the file it ended at record "+strconv.Itoa(at[1])+", but the plugin had sealed up to record "+strconv.FormatUint(end.N, 10)+": records "+strconv.Itoa(at[1]+1)+" to "+strconv.FormatUint(end.N, 10)+" were cut off")
	// The loss is in the file now: the record follows it, and a further
	// restart raises nothing new.
	s.closed(t, 42, 43)
	wantProblem(t, s.path, chain.KindTruncated, "audit.log", int64(at[1]+1), "were cut off")
}

// TestRecordNewestFileDeleted: with rotation, emptying or deleting the
// newest file (and renaming the rotated ones into its place) is reported
// at the open seal of the file the plugin opens next.
func TestRecordNewestFileDeleted(t *testing.T) {
	for _, how := range []string{"emptied", "deleted", "renamed"} {
		t.Run(how, func(t *testing.T) {
			s := newRecordSetup(t, true)
			s.closed(t, 0, 150)
			end := s.recorded()
			switch how {
			case "emptied":
				if err := os.Truncate(s.path, 0); err != nil {
					t.Fatal(err)
				}
				mustVerify(t, s.path, nil) // the files alone cannot show it
			case "deleted":
				if err := os.Remove(s.path); err != nil {
					t.Fatal(err)
				}
			case "renamed":
				// audit.log.1 becomes audit.log, audit.log.2 audit.log.1.
				for _, mv := range [][2]string{{s.path + ".1", s.path}, {s.path + ".2", s.path + ".1"}} {
					if err := os.Rename(mv[0], mv[1]); err != nil {
						t.Fatal(err)
					}
				}
				mustVerify(t, s.path, nil)
			}
			s.closed(t, 150, 152)
			wantProblem(t, s.path, chain.KindFileMissing, "audit.log", 1,
				"but the plugin had sealed up to record "+strconv.FormatUint(end.N, 10)+" in file "+strconv.FormatUint(end.File, 10))
		})
	}
}

// TestRecordNoFalseAlarm: restarts, crashes after a Sync (with a torn
// tail), and a crash with the last seal only buffered never leave the
// record ahead of the file.
func TestRecordNoFalseAlarm(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		t.Run(map[bool]string{false: "one file", true: "rotating"}[rotate], func(t *testing.T) {
			s := newRecordSetup(t, rotate)
			// A clean restart.
			s.closed(t, 0, 30)
			s.closed(t, 30, 60)
			wantNoLoss(t, s.path)

			// A crash after a Sync, a torn line left.
			r := s.run(t, 60, 90)
			if err := r.files[s.path].sync(); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(`{"auditID":"torn","ucp-audit/chain":{"n":`)
			f.Close()
			s.closed(t, 90, 100)
			wantNoLoss(t, s.path)

			// A crash with the last seal only buffered: written lines
			// and an interval seal, not flushed, then nothing more.
			r = s.run(t, 100, 101)
			if err := r.files[s.path].sync(); err != nil {
				t.Fatal(err)
			}
			before := s.recorded()
			s.clk.t = s.clk.t.Add(time.Hour)
			w, err := r.Open(s.opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(record(101)); err != nil { // its interval seal follows it
				t.Fatal(err)
			}
			f2 := r.files[s.path]
			if f2.chain.sealed.N <= before.N || f2.w.Buffered() == 0 {
				t.Fatalf("no buffered seal after record %d: sealed %d, recorded %d", before.N, f2.chain.sealed.N, before.N)
			}
			if got := s.recorded(); got != before {
				t.Fatalf("a buffered seal was recorded: %+v, before %+v", got, before)
			}
			// The crash: r is abandoned, its buffer never flushed.
			s.closed(t, 102, 110)
			wantNoLoss(t, s.path)
		})
	}
}

// Not parallel: replaces fsync. The record is written once per new seal
// that reached the file: not at a Sync without one.
func TestRecordWrites(t *testing.T) {
	s := newRecordSetup(t, false)
	events := observeFsync(t, s.path, nil)
	records := func() (n int) {
		dirs := 0
		for _, e := range *events {
			if strings.HasSuffix(e.name, ".json.tmp") {
				n++
			}
			if e.isDir && e.name == s.state {
				dirs++
			}
		}
		if dirs != n {
			t.Errorf("%d records written, the state directory fsync'd %d times; want once after each rename", n, dirs)
		}
		*events = nil
		return n
	}
	r := NewSealedRegistry(s.seal)
	w, err := r.Open(s.opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := records(); n != 0 {
		t.Errorf("open: %d records written, want 0 (the open seal is only buffered)", n)
	}
	write(t, w, "{}")
	for range 3 {
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if n := records(); n != 1 {
		t.Errorf("three Syncs after the open seal: %d records written, want 1", n)
	}
	s.clk.t = s.clk.t.Add(time.Hour)
	write(t, w, "{}") // an interval seal
	write(t, w, "{}")
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := records(); n != 1 {
		t.Errorf("Sync after an interval seal: %d records written, want 1", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := records(); n != 1 {
		t.Errorf("close: %d records written, want 1", n)
	}
	if _, err := os.Stat(recordPath(s.state, s.path) + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary record left: %v", err)
	}
}

// TestRecordUnusable: a record that is malformed or names another path
// counts as none, and is replaced at the next flush.
func TestRecordUnusable(t *testing.T) {
	for name, content := range map[string]string{
		"malformed":    `{"path":`,
		"another path": `{"path":"/elsewhere/audit.log","n":99,"hash":"` + strings.Repeat("0", 64) + `","file":1}`,
		"bad hash":     `{"path":"PATH","n":99,"hash":"xyz","file":1}`,
	} {
		t.Run(name, func(t *testing.T) {
			s := newRecordSetup(t, false)
			s.closed(t, 0, 5)
			rec := recordPath(s.state, s.path)
			if err := os.WriteFile(rec, []byte(strings.ReplaceAll(content, "PATH", s.path)), 0o600); err != nil {
				t.Fatal(err)
			}
			s.closed(t, 5, 10)
			wantNoLoss(t, s.path)
			if got := s.recorded(); got.N == 0 {
				t.Errorf("the record was not replaced: %+v", got)
			}
		})
	}
}

// TestRecordFailureReported: a record that cannot be written is reported
// through Sealing.OnRecordError, and the file's writes go on.
func TestRecordFailureReported(t *testing.T) {
	s := newRecordSetup(t, false)
	blocker := filepath.Join(filepath.Dir(s.state), "file")
	if err := os.MkdirAll(filepath.Dir(blocker), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s.seal.StateDir = filepath.Join(blocker, "chains") // under a regular file: cannot be made
	var got []string
	s.seal.OnRecordError = func(path string, err error) { got = append(got, path) }
	s.closed(t, 0, 5)
	if len(got) == 0 || got[0] != s.path {
		t.Errorf("OnRecordError calls %q, want for %s", got, s.path)
	}
	wantNoLoss(t, s.path)
}
