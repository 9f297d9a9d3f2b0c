package auditlog

import (
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRotation(t *testing.T) {
	for _, tc := range []struct {
		name, base string
		k          int
		ok         bool
	}{
		{"audit.log", "audit.log", 0, true},
		{"audit.log.1", "audit.log", 1, true},
		{"audit.log.12.gz", "audit.log", 12, true},
		{"audit.log.gz", "audit.log", 0, true},
		{"audit.log.bak", "audit.log.bak", 0, false},
		{"audit.log.01", "audit.log.01", 0, false},
		{"audit.log.0", "audit.log.0", 0, false},
		{"x.json", "x.json", 0, false},
	} {
		b, k, ok := Rotation(tc.name)
		if b != tc.base || k != tc.k || ok != tc.ok {
			t.Errorf("Rotation(%q) = %q, %d, %v; want %q, %d, %v", tc.name, b, k, ok, tc.base, tc.k, tc.ok)
		}
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"audit.log", "audit.log.1", "audit.log.2.gz", "audit.log.3", "quarantine.log", "notes.txt", "audit.log.bak"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sets, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 2 {
		t.Fatalf("got %d sets, want 2: %+v", len(sets), sets)
	}
	got := sets[0].Files
	for i := range got {
		got[i] = filepath.Base(got[i])
	}
	if want := []string{"audit.log.3", "audit.log.2.gz", "audit.log.1", "audit.log"}; !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	if want := []int{3, 2, 1, 0}; !slices.Equal(sets[0].Index, want) {
		t.Errorf("index %v, want %v", sets[0].Index, want)
	}
	one, err := Files(filepath.Join(dir, "audit.log.1"))
	if err != nil || len(one) != 1 || len(one[0].Files) != 1 || one[0].Index[0] != 1 {
		t.Errorf("one rotated file: %+v, %v", one, err)
	}
	if _, err := Files(filepath.Join(dir, "missing.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	empty := t.TempDir()
	if _, err := Files(empty); !errors.Is(err, ErrNoFiles) {
		t.Errorf("empty dir: %v", err)
	}
}

func TestOpenGzip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "audit.log.1.gz")
	f, _ := os.Create(p)
	zw := gzip.NewWriter(f)
	zw.Write([]byte("{\"a\":1}\n"))
	zw.Close()
	f.Close()
	// The same content compressed under a plain name is recognised too.
	b, _ := os.ReadFile(p)
	os.WriteFile(filepath.Join(dir, "audit.log.2"), b, 0o600)
	os.WriteFile(filepath.Join(dir, "audit.log"), []byte("{\"b\":2}\n"), 0o600)
	for n, want := range map[string]string{"audit.log.1.gz": "{\"a\":1}\n", "audit.log.2": "{\"a\":1}\n", "audit.log": "{\"b\":2}\n"} {
		r, err := Open(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v", n, got, err)
		}
	}
}
