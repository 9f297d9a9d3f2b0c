package file

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// rotationNames lists the files of path's rotation set in its directory.
func rotationNames(t *testing.T, path string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), filepath.Base(path)) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// TestCompress: with Compress, rotated files from .2 on are gzipped, .1
// stays plain, the set verifies as a chain across both kinds, and every
// record is there once.
func TestCompress(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	path := filepath.Join(t.TempDir(), "audit.log")
	r := NewSealedRegistry(Sealing{Key: key, Interval: time.Hour})
	s, err := r.Open(Options{Path: path, MaxSize: 4 << 10, MaxFiles: 5, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 120 { // about 14 KiB: four rotations
		if err := s.Write(record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"audit.log", "audit.log.1", "audit.log.2.gz", "audit.log.3.gz", "audit.log.4.gz"}
	if got := rotationNames(t, path); !slices.Equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	b, _ := os.ReadFile(path + ".2.gz")
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("audit.log.2.gz: %v", err)
	}
	if plain, err := io.ReadAll(zr); err != nil || !bytes.Contains(plain, []byte(`"auditID"`)) {
		t.Fatalf("audit.log.2.gz: %v", err)
	}
	res := mustVerify(t, path, key.Public().(ed25519.PublicKey))
	if res.Files != 5 {
		t.Errorf("verified %d files, want 5", res.Files)
	}
}

// TestCompressCrashLeftovers: a crash during compression leaves a
// temporary file, or both the plain and the compressed file; the next
// rotation keeps one of each, and the set verifies.
func TestCompressCrashLeftovers(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	path := filepath.Join(t.TempDir(), "audit.log")
	opts := Options{Path: path, MaxSize: 4 << 10, MaxFiles: 6, Compress: true}
	r := NewSealedRegistry(Sealing{Key: key, Interval: time.Hour})
	s, err := r.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	writeN := func(s interface{ Write([]byte) error }, n int) {
		for range n {
			if err := s.Write(record(i)); err != nil {
				t.Fatal(err)
			}
			i++
		}
	}
	writeN(s, 100) // three rotations: .1 plain, .2.gz, .3.gz
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// As if the plugin died compressing .2 once more: the plain file back
	// next to its compressed copy, and a torn temporary file.
	gz, _ := os.ReadFile(path + ".2.gz")
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if err := os.WriteFile(path+".2", plain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".2.gz.tmp", gz[:len(gz)/2], 0o600); err != nil {
		t.Fatal(err)
	}

	r2 := NewSealedRegistry(Sealing{Key: key, Interval: time.Hour})
	s2, err := r2.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	writeN(s2, 40) // one more rotation
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range rotationNames(t, path) {
		if strings.HasSuffix(name, ".tmp") {
			continue // overwritten at the next compression of that slot
		}
		if name != "audit.log" && name != "audit.log.1" && !strings.HasSuffix(name, ".gz") {
			t.Errorf("%s is plain", name)
		}
	}
	mustVerify(t, path, key.Public().(ed25519.PublicKey))
}
