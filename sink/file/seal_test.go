package file

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/sink"
)

// clock is a settable clock for seals.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// verifySet runs chain.Verify over path's rotation set.
func verifySet(t *testing.T, path string, key ed25519.PublicKey) chain.Result {
	t.Helper()
	sets, err := auditlog.Files(path)
	if err != nil {
		t.Fatal(err)
	}
	return chain.Verify(sets[0], chain.VerifyOptions{Key: key})
}

func mustVerify(t *testing.T, path string, key ed25519.PublicKey) chain.Result {
	t.Helper()
	r := verifySet(t, path, key)
	if !r.OK() {
		t.Fatalf("verify: %v", r.Err)
	}
	return r
}

func record(i int) []byte {
	return fmt.Appendf(nil, `{"auditID":"%04d","pad":"%s"}`, i, strings.Repeat("x", 100))
}

// TestSealedLifecycle writes a sealed file through rotations, interval
// seals, a restart and a crash with a torn last line; the set verifies
// clean with the right key and not with another.
func TestSealedLifecycle(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := key.Public().(ed25519.PublicKey)
	clk := &clock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "audit.log")
	opts := Options{Path: path, MaxSize: 8 << 10, MaxFiles: 3}
	seal := Sealing{Key: key, Interval: time.Minute, Now: clk.now}

	r := NewSealedRegistry(seal)
	s, err := r.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		clk.t = clk.t.Add(5 * time.Second) // an interval seal every 12 lines
		if err := s.Write(record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if res := mustVerify(t, path, pub); res.Files != 3 {
		t.Errorf("verified %d files; want 3 (rotated, 3 kept)", res.Files)
	}
	if b, _ := os.ReadFile(path + ".1"); !strings.Contains(string(b), `"reason":"interval"`) {
		t.Errorf("no interval seal in %s:\n%s", path+".1", b)
	}

	// A restart: the chain resumes after the close seal.
	r = NewSealedRegistry(seal)
	if s, err = r.Open(opts); err != nil {
		t.Fatal(err)
	}
	for i := 100; i < 110; i++ {
		if err := s.Write(record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// A crash: the registry is never closed and a torn line is left.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"auditID":"torn","ucp-audit/chain":{"n":`)
	f.Close()
	if res := verifySet(t, path, pub); res.OK() {
		t.Fatal("a file torn by a crash verified clean before the restart sealed it")
	}
	r2 := NewSealedRegistry(seal)
	s2, err := r2.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Write(record(110)); err != nil {
		t.Fatal(err)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, path, pub)
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"reason":"resume"`) || !strings.Contains(string(b), `"clean":false`) {
		t.Errorf("no unclean resume seal after the crash:\n%s", b)
	}

	other := ed25519.NewKeyFromSeed([]byte(strings.Repeat("k", 32))).Public().(ed25519.PublicKey)
	var p *chain.Problem
	if res := verifySet(t, path, other); !errors.As(res.Err, &p) || p.Kind != chain.KindBadSignature {
		t.Errorf("verified against the wrong key: %v", res.Err)
	}
}

// TestSealedInterruptedRotation: a file that ends with its rotate seal (a
// crash between the seal and the rename) is rotated at the next open.
func TestSealedInterruptedRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	opts := Options{Path: path, MaxSize: 1 << 20, MaxFiles: 3}
	r := NewSealedRegistry(Sealing{})
	s, err := r.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Write(record(1))
	f := r.files[path]
	f.mu.Lock()
	if err := f.sealLocked(chain.ReasonRotate); err != nil {
		t.Fatal(err)
	}
	f.w.Flush()
	f.mu.Unlock() // the crash: nothing more happens to this registry

	r2 := NewSealedRegistry(Sealing{})
	s2, err := r2.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	s2.Write(record(2))
	r2.Close()
	if res := mustVerify(t, path, nil); res.Files != 2 {
		t.Errorf("%d files, want 2: the rotation completed", res.Files)
	}
}

// TestSealedUnchainedFile: a file written without chaining (an older
// version) is continued with a new chain; a verifier still reports the
// unchained lines before it.
func TestSealedUnchainedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte("{\"old\":1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := NewSealedRegistry(Sealing{})
	s, err := r.Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	s.Write(record(1))
	r.Close()
	var p *chain.Problem
	if res := verifySet(t, path, nil); !errors.As(res.Err, &p) || p.Kind != chain.KindInserted || p.Line != 1 {
		t.Errorf("unchained line: %v, want inserted at line 1", res.Err)
	}
	b, _ := os.ReadFile(path)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 4 || !strings.Contains(lines[1], `"reason":"open"`) {
		t.Errorf("want the old line, an open seal, the record and a close seal:\n%s", b)
	}
}

// TestSealedRefusesLines: a line the chain cannot take is refused with
// sink.ErrRefused (and the chain's reason), nothing is written, and the
// file goes on.
func TestSealedRefusesLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	r := NewSealedRegistry(Sealing{})
	s, err := r.Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p    string
		want error
	}{
		{`[1]`, chain.ErrNotObject},
		{`{"ucp-audit/chain":{}}`, chain.ErrReserved},
	} {
		if err := s.Write([]byte(tc.p)); !errors.Is(err, sink.ErrRefused) || !errors.Is(err, tc.want) {
			t.Errorf("Write(%s) = %v, want sink.ErrRefused and %v", tc.p, err, tc.want)
		}
	}
	if err := s.Write(record(1)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if res := verifySet(t, path, nil); res.Err != nil {
		t.Errorf("after refused lines: %v", res.Err)
	}
}

// TestSealIdle: a file that went quiet with unsealed lines is sealed, and
// the seal is on disk, once the interval has passed; not before, and not
// again without new lines.
func TestSealIdle(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "audit.log")
	r := NewSealedRegistry(Sealing{Interval: time.Minute, Now: clk.now})
	defer r.Close()
	s, err := r.Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(record(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	seals := func() int {
		b, _ := os.ReadFile(path)
		return strings.Count(string(b), `"ucp-audit/seal"`)
	}
	clk.t = clk.t.Add(30 * time.Second)
	if err := r.SealIdle(); err != nil || seals() != 1 {
		t.Fatalf("before the interval: %v, %d seals, want the open seal only", err, seals())
	}
	if res := verifySet(t, path, nil); res.OK() {
		t.Fatal("an unsealed tail verified clean")
	}
	clk.t = clk.t.Add(31 * time.Second)
	if err := r.SealIdle(); err != nil || seals() != 2 {
		t.Fatalf("after the interval: %v, %d seals, want 2", err, seals())
	}
	mustVerify(t, path, nil) // on disk, without a Sync or Close
	clk.t = clk.t.Add(2 * time.Minute)
	if err := r.SealIdle(); err != nil || seals() != 2 {
		t.Fatalf("nothing new written: %v, %d seals, want still 2", err, seals())
	}
}

// Turning signing on, or changing the key, while files are open writes a
// "key" seal signed with the new key at once: from then on the files
// verify with it (both keys across a change), and the key seal vouches
// for the unsigned records before it.
func TestSetKey(t *testing.T) {
	priv1 := ed25519.NewKeyFromSeed(append(make([]byte, 31), 21))
	priv2 := ed25519.NewKeyFromSeed(append(make([]byte, 31), 22))
	pub1, pub2 := priv1.Public().(ed25519.PublicKey), priv2.Public().(ed25519.PublicKey)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	r := NewSealedRegistry(Sealing{})
	s, err := r.Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, `{"a":1}`)
	if err := r.SetKey(priv1); err != nil {
		t.Fatal(err)
	}
	// Right after the change, before any other seal, the file verifies
	// with the key (the live file's tail is the key seal).
	mustVerify(t, path, pub1)
	write(t, s, `{"a":2}`)
	if err := r.SetKey(priv2); err != nil {
		t.Fatal(err)
	}
	write(t, s, `{"a":3}`)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sets, err := auditlog.Files(path)
	if err != nil {
		t.Fatal(err)
	}
	if res := chain.Verify(sets[0], chain.VerifyOptions{Keys: []ed25519.PublicKey{pub1, pub2}}); !res.OK() {
		t.Fatalf("across the key change: %v", res.Err)
	}
	var p *chain.Problem
	if res := verifySet(t, path, pub1); !errors.As(res.Err, &p) || p.Kind != chain.KindBadSignature {
		t.Fatalf("old key only: %v", res.Err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"reason":"key"`); n != 2 {
		t.Errorf("%d key seals, want 2:\n%s", n, b)
	}
}
