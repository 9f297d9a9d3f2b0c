package file

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Not parallel: replaces fsync and recoverEvery.
//
// TestFsyncFailureRecovers: while fsync fails, Write and Sync return the
// failure (the pipeline retries, keeping its lines); once the disk is
// back, the file writes again: cut back to the last durable point, the
// lines written since written again, a resume seal, and the set verifies
// with every record once, in order. OnRecovered is told.
func TestFsyncFailureRecovers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	boom := errors.New("EIO")
	var failing bool
	observeFsync(t, path, func(name string) error {
		if failing && name == path {
			return boom
		}
		return nil
	})
	old := recoverEvery
	recoverEvery = 0
	t.Cleanup(func() { recoverEvery = old })

	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	r := NewSealedRegistry(Sealing{Key: key, Interval: time.Hour})
	var recovered []error
	r.OnRecovered = func(p string, failure error) { recovered = append(recovered, failure) }
	s, err := r.Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Write(record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := 3; i < 5; i++ {
		if err := s.Write(record(i)); err != nil {
			t.Fatal(err)
		}
	}
	failing = true
	if err := s.Sync(); !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), fmt.Sprintf("audit file %q: sync: fsync: ", path)) {
		t.Fatalf("Sync = %v", err)
	}
	// Still failing: every attempt fails, nothing is accepted.
	if err := s.Write(record(5)); !errors.Is(err, boom) {
		t.Fatalf("Write while failing = %v", err)
	}
	if err := s.Sync(); !errors.Is(err, boom) {
		t.Fatalf("Sync while failing = %v", err)
	}
	failing = false
	if err := s.Write(record(5)); err != nil {
		t.Fatalf("Write once the disk is back = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(recovered) != 1 || !errors.Is(recovered[0], boom) {
		t.Errorf("OnRecovered: %v", recovered)
	}
	mustVerify(t, path, key.Public().(ed25519.PublicKey))
	b, _ := os.ReadFile(path)
	for i := range 6 {
		if n := bytes.Count(b, []byte(fmt.Sprintf(`"auditID":"%04d"`, i))); n != 1 {
			t.Errorf("record %d is in the file %d times", i, n)
		}
	}
	if !bytes.Contains(b, []byte(`"resume"`)) {
		t.Error("no resume seal marks the break")
	}
}

// Not parallel: replaces fsync and recoverEvery.
//
// TestRecoverFindsFileCut: a file cut back below what was durable while it
// was failing is opened as at start: its resume seal tells of the sealed
// records that are gone, and writing goes on.
func TestRecoverFindsFileCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	var failing bool
	observeFsync(t, path, func(name string) error {
		if failing && name == path {
			return errors.New("EIO")
		}
		return nil
	})
	old := recoverEvery
	recoverEvery = 0
	t.Cleanup(func() { recoverEvery = old })
	r := NewSealedRegistry(Sealing{Interval: time.Hour, StateDir: t.TempDir()})
	s, err := r.Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := s.Write(record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	failing = true
	_ = s.Write(record(4))
	_ = s.Sync()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	failing = false
	if err := s.Write(record(5)); err != nil {
		t.Fatalf("Write after the cut = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if r := verifySet(t, path, nil); r.OK() {
		t.Error("verify does not see the records cut off")
	}
}
