package seglog

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// frame is a test framing: a 2-byte length, then the body.
func frame(body string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(body))), body...)
}

func frames(r io.Reader) int64 {
	var off int64
	var hdr [2]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return off
		}
		n := int64(binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.CopyN(io.Discard, r, n); err != nil {
			return off
		}
		off += 2 + n
	}
}

func open(t *testing.T, dir string, checkAll bool) *Log {
	t.Helper()
	l, err := Open(Options{Dir: dir, Suffix: ".seg", Valid: frames, CheckAll: checkAll})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNamingAndListing(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"00000000000000000002.seg", "00000000000000000010.seg", "00000000000000000001.seg",
		"00000000000000000000.seg", "2.seg", "00000000000000000003.spool", "x.seg", "00000000000000000004.seg.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l := open(t, dir, false)
	var got []int64
	for _, s := range l.Segments() {
		got = append(got, s.N)
	}
	if !slices.Equal(got, []int64{1, 2, 10}) {
		t.Errorf("segments %v, want [1 2 10]", got)
	}
	if p := l.Path(7); filepath.Base(p) != "00000000000000000007.seg" {
		t.Errorf("Path(7) = %s", p)
	}
	if l.Next(2) != 10 || l.Next(10) != 0 || l.Next(0) != 1 {
		t.Errorf("Next: %d %d %d", l.Next(2), l.Next(10), l.Next(0))
	}
	if !Exists(dir, ".seg") || Exists(t.TempDir(), ".seg") {
		t.Error("Exists")
	}
}

// A torn record at the end of the newest segment is not committed, and is
// cut off when writing resumes; older segments are checked only when asked.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	whole := append(frame("one"), frame("two")...)
	torn := append(slices.Clone(whole), frame("three")[:4]...)
	os.WriteFile(filepath.Join(dir, "00000000000000000001.seg"), torn, 0o600)
	os.WriteFile(filepath.Join(dir, "00000000000000000002.seg"), torn, 0o600)
	l := open(t, dir, false)
	if s := l.Segments(); s[0].Size != int64(len(torn)) || s[1].Size != int64(len(whole)) {
		t.Errorf("sizes %+v: the older is taken as it is, the newest cut to %d", s, len(whole))
	}
	if l2 := open(t, dir, true); l2.Segment(0).Size != int64(len(whole)) {
		t.Errorf("CheckAll: %+v", l2.Segments())
	}
	if err := l.AppendNewest(); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(frame("four")); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Commit()
	b, _ := os.ReadFile(l.Path(2))
	if want := append(slices.Clone(whole), frame("four")...); !bytes.Equal(b, want) || l.End().Off != int64(len(want)) {
		t.Errorf("after resuming: %q (end %+v), want %q", b, l.End(), want)
	}
}

// Written bytes are not visible before Commit; a commit that changes
// something wakes the watchers.
func TestCommitAndWatch(t *testing.T) {
	l := open(t, t.TempDir(), false)
	if err := l.AppendNewest(); err != nil { // no segment: starts the first
		t.Fatal(err)
	}
	w := l.Watch()
	if err := l.Write(frame("a")); err != nil {
		t.Fatal(err)
	}
	if n, _ := l.Committed(1); n != 0 || l.Written() != 3 {
		t.Fatalf("before Commit: committed %d, written %d", n, l.Written())
	}
	l.Flush()
	l.Commit()
	select {
	case <-w:
	default:
		t.Fatal("Commit did not wake the watcher")
	}
	w = l.Watch()
	l.Commit() // nothing new
	select {
	case <-w:
		t.Fatal("an empty Commit woke the watcher")
	default:
	}
	if n, _ := l.Committed(1); n != 3 {
		t.Errorf("committed %d", n)
	}
}

func TestStartAndRemoveSegments(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, false)
	for i := range 3 {
		if err := l.StartSegment(); err != nil {
			t.Fatal(err)
		}
		if err := l.Write(frame("x")); err != nil {
			t.Fatal(err)
		}
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		l.Commit()
		if got := l.End(); got != (Position{Seg: int64(i + 1), Off: 3}) {
			t.Errorf("end %+v", got)
		}
	}
	if err := l.Remove(3); err == nil {
		t.Error("removed the segment being written")
	}
	if err := l.Remove(1); err != nil {
		t.Fatal(err)
	}
	if l.First() != (Position{Seg: 2}) || l.Len() != 2 {
		t.Errorf("after removing 1: first %+v, %d segments", l.First(), l.Len())
	}
	if _, err := os.Stat(l.Path(1)); !os.IsNotExist(err) {
		t.Errorf("segment 1 still there: %v", err)
	}
	// A segment that exists already is never overwritten.
	os.WriteFile(l.Path(4), []byte("keep"), 0o600)
	if err := l.StartSegment(); err == nil {
		t.Error("StartSegment overwrote an existing file")
	}
	if err := l.CloseWriter(); err != nil {
		t.Fatal(err)
	}
	if l.Writing() || l.Write(frame("y")) != ErrNoWriter {
		t.Error("still writing after CloseWriter")
	}
}

// Abandon keeps what was committed and cuts off the rest.
func TestAbandon(t *testing.T) {
	l := open(t, t.TempDir(), false)
	l.StartSegment()
	l.Write(frame("kept"))
	l.Flush()
	l.Commit()
	l.Write(frame("lost"))
	l.Flush()
	l.Abandon()
	b, _ := os.ReadFile(l.Path(1))
	if !bytes.Equal(b, frame("kept")) || l.Writing() || l.Written() != int64(len(frame("kept"))) {
		t.Errorf("after Abandon: %q, writing %v, written %d", b, l.Writing(), l.Written())
	}
}

func TestPositionBefore(t *testing.T) {
	for _, tc := range []struct {
		p, q Position
		want bool
	}{
		{Position{1, 5}, Position{1, 6}, true},
		{Position{1, 6}, Position{1, 6}, false},
		{Position{1, 9}, Position{2, 0}, true},
		{Position{2, 0}, Position{1, 9}, false},
	} {
		if got := tc.p.Before(tc.q); got != tc.want {
			t.Errorf("%+v.Before(%+v) = %v", tc.p, tc.q, got)
		}
	}
}
