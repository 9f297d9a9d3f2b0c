package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
)

func ev(seq uint64, size int) sink.Event {
	line := fmt.Sprintf(`{"seq":%d,"pad":"%s"}`, seq, strings.Repeat("x", max(0, size-20)))
	return sink.Event{Line: []byte(line), AuditID: fmt.Sprintf("id-%d", seq), Seq: seq, Time: time.Unix(int64(seq), 0)}
}

func mustOpen(t *testing.T, o Options, dests ...string) *Spool {
	t.Helper()
	s, err := Open(o, dests)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendN(t *testing.T, s *Spool, from, n uint64, size int) []Gap {
	t.Helper()
	var gaps []Gap
	for i := from; i < from+n; i++ {
		g, err := s.Append(context.Background(), ev(i, size))
		if err != nil {
			t.Fatal(err)
		}
		gaps = append(gaps, g...)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	return gaps
}

// drain reads and commits everything dest can see, returning the seqs.
func drain(t *testing.T, s *Spool, dest string) []uint64 {
	t.Helper()
	var seqs []uint64
	for {
		recs, err := s.Read(dest, 7, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return seqs
		}
		for _, r := range recs {
			seqs = append(seqs, r.Seq)
			if r.AuditID != fmt.Sprintf("id-%d", r.Seq) || !strings.Contains(string(r.Line), fmt.Sprintf(`"seq":%d,`, r.Seq)) || r.Time.Unix() != int64(r.Seq) {
				t.Fatalf("record %d garbled: %+v", r.Seq, r.Event)
			}
		}
		if err := s.Commit(dest, recs[len(recs)-1].End); err != nil {
			t.Fatal(err)
		}
	}
}

func seqRange(from, to uint64) string {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return fmt.Sprint(out)
}

func TestReadCommitAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, Options{Dir: dir, MaxSize: 1 << 20, SegmentSize: 1000}, "a", "b")
	if _, err := s.Append(context.Background(), ev(1, 100)); err != nil {
		t.Fatal(err)
	}
	if recs, _ := s.Read("a", 10, 1<<20); len(recs) != 0 {
		t.Fatal("an event is visible before Sync")
	}
	if !s.Pending("a") {
		t.Fatal("an appended event is not pending")
	}
	appendN(t, s, 2, 49, 100) // about 6 KB: several segments
	if got := fmt.Sprint(drain(t, s, "a")); got != seqRange(1, 50) {
		t.Fatalf("a got %s", got)
	}
	if s.Pending("a") || !s.Pending("b") {
		t.Fatal("pending is wrong")
	}
	segsBefore := countSegs(t, dir)
	if got := fmt.Sprint(drain(t, s, "b")); got != seqRange(1, 50) {
		t.Fatalf("b got %s", got)
	}
	if after := countSegs(t, dir); after >= segsBefore || after != 1 {
		t.Fatalf("segments not pruned once both destinations passed them: %d → %d", segsBefore, after)
	}
}

func countSegs(t *testing.T, dir string) int {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), segSuffix) {
			n++
		}
	}
	return n
}

// Cursors survive a reopen; a destination new to the spool starts at its
// end; a record torn by a crash is cut off.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, MaxSize: 1 << 20, SegmentSize: 1000}
	s, err := Open(o, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 1, 20, 100)
	recs, _ := s.Read("a", 5, 1<<20)
	if err := s.Commit("a", recs[4].End); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Tear the last record.
	last := s.log.Path(s.log.End().Seg)
	fi, _ := os.Stat(last)
	if err := os.Truncate(last, fi.Size()-3); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, o, "a", "new")
	appendN(t, s2, 21, 2, 100)
	if got := fmt.Sprint(drain(t, s2, "a")); got != fmt.Sprint(append(seqs(6, 19), 21, 22)) {
		t.Fatalf("a after reopen got %s", got)
	}
	if got := fmt.Sprint(drain(t, s2, "new")); got != "[21 22]" {
		t.Fatalf("new got %s", got)
	}
}

func seqs(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// Drop: a destination that never commits loses the oldest events, and the
// loss is reported exactly; a destination that keeps up loses nothing.
func TestFullDrop(t *testing.T) {
	s := mustOpen(t, Options{Dir: t.TempDir(), MaxSize: 4000, SegmentSize: 1000, Full: Drop}, "dead", "live")
	var gaps []Gap
	var got []uint64
	for i := uint64(1); i <= 100; i++ {
		gaps = append(gaps, appendN(t, s, i, 1, 100)...)
		got = append(got, drain(t, s, "live")...)
	}
	if fmt.Sprint(got) != seqRange(1, 100) {
		t.Fatalf("live lost events: %v", got)
	}
	var lost uint64
	next := uint64(1)
	for _, g := range gaps {
		if g.Destination != "dead" {
			t.Fatalf("gap for %q", g.Destination)
		}
		if g.FirstSeq != next || g.LastSeq-g.FirstSeq+1 != g.Lost {
			t.Fatalf("gap %+v does not continue at %d", g, next)
		}
		next = g.LastSeq + 1
		lost += g.Lost
	}
	deadGot := drain(t, s, "dead")
	if lost == 0 || uint64(len(deadGot))+lost != 100 || deadGot[0] != next {
		t.Fatalf("dead: lost %d, then got %v", lost, deadGot)
	}
	if s.Size() > 4000 {
		t.Fatalf("spool holds %d bytes, over its bound", s.Size())
	}
}

// Block: Append waits for room, says so through Waiting, and goes on once a
// destination commits.
func TestFullBlock(t *testing.T) {
	s := mustOpen(t, Options{Dir: t.TempDir(), MaxSize: 3000, SegmentSize: 1000, Full: Block}, "d")
	appendN(t, s, 1, 15, 130) // nearly full
	// A reader lingering for a fuller batch learns that none can come
	// before it commits: an Append starting to wait wakes Watch.
	changed := s.Watch()
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(context.Background(), ev(21, 900))
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !s.Waiting() {
		if time.Now().After(deadline) {
			t.Fatal("Append did not block on a full spool")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-changed:
	default:
		t.Fatal("an Append waiting for room did not wake Watch")
	}
	select {
	case err := <-done:
		t.Fatalf("Append returned %v while full", err)
	case <-time.After(50 * time.Millisecond):
	}
	drain(t, s, "d")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s, "d"); fmt.Sprint(got) != "[21]" {
		t.Fatalf("got %v", got)
	}
	// A blocked Append gives up with its context.
	drain(t, s, "d")
	appendN(t, s, 22, 10, 130)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Append(ctx, ev(99, 2000)); err == nil {
		t.Fatal("blocked Append ignored its context")
	}
}

func TestErrors(t *testing.T) {
	s := mustOpen(t, Options{Dir: t.TempDir(), MaxSize: 500}, "d")
	if _, err := s.Append(context.Background(), ev(1, 600)); err == nil {
		t.Fatal("event larger than the spool accepted")
	}
	if _, err := s.Read("nope", 1, 1); err == nil {
		t.Fatal("unknown destination accepted")
	}
	s.Close()
	if _, err := s.Append(context.Background(), ev(1, 10)); err == nil {
		t.Fatal("Append after Close")
	}
	if _, err := ParseFullPolicy("sometimes"); err == nil {
		t.Fatal("bad policy accepted")
	}
}

// Whatever a crash or a disk leaves in a segment, Open and Read never panic
// and never return more than was written whole.
func FuzzSegment(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 'i', 'd', '{', '}', 'x', 'y', 'z', 'w', 'v', 'u', 't', 's'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(dir+"/00000000000000000001"+segSuffix, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(Options{Dir: dir, MaxSize: 1 << 20}, nil)
		if err != nil {
			return
		}
		defer s.Close()
		s.mu.Lock()
		s.cursors["d"] = Position{Seg: 1}
		s.mu.Unlock()
		for i := 0; i < 100; i++ {
			recs, err := s.Read("d", 10, 1<<20)
			if err != nil || len(recs) == 0 {
				return
			}
			if err := s.Commit("d", recs[len(recs)-1].End); err != nil {
				return
			}
		}
	})
}

// A disk failing under the spool (here: its file closed under it, so every
// write fails) loses only what was not synced yet, says exactly which seqs
// in a WriteError, and the spool goes on in a new segment: what was synced
// and what comes after are delivered, for every destination.
func TestWriteFailureRecovers(t *testing.T) {
	for _, at := range []string{"sync", "append"} {
		t.Run(at, func(t *testing.T) {
			s := mustOpen(t, Options{Dir: t.TempDir(), MaxSize: 1 << 20}, "a", "b")
			appendN(t, s, 1, 10, 100) // synced
			for i := uint64(11); i <= 15; i++ {
				if _, err := s.Append(context.Background(), ev(i, 100)); err != nil {
					t.Fatal(err)
				}
			}
			s.mu.Lock()
			s.log.File().Close() // the disk goes away
			s.mu.Unlock()
			var err error
			want := Gap{Lost: 5, FirstSeq: 11, LastSeq: 15}
			if at == "sync" {
				err = s.Sync()
			} else {
				_, err = s.Append(context.Background(), ev(16, 70<<10)) // past the write buffer
				want = Gap{Lost: 6, FirstSeq: 11, LastSeq: 16}
			}
			var we *WriteError
			if !errors.As(err, &we) || we.Lost != want {
				t.Fatalf("error %v, want a WriteError losing %+v", err, want)
			}
			if err := s.Sync(); err != nil {
				t.Fatalf("Sync after the failure: %v", err)
			}
			appendN(t, s, 17, 5, 100)
			for _, d := range []string{"a", "b"} {
				got := fmt.Sprint(drain(t, s, d))
				if want := "[1 2 3 4 5 6 7 8 9 10 17 18 19 20 21]"; got != want {
					t.Errorf("%s read %s, want %s", d, got, want)
				}
			}
		})
	}
}
