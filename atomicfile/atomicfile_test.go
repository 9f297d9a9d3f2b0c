package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	var synced []string
	w := Writer{Sync: func(f *os.File) error { synced = append(synced, f.Name()); return f.Sync() }}
	for _, content := range []string{"one", "two, longer", "3"} {
		synced = nil
		if err := w.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != content {
			t.Fatalf("read back %q, %v; want %q", b, err, content)
		}
		// The file before its rename, then the directory after it.
		if len(synced) != 2 || synced[0] != p+".tmp" || synced[1] != dir {
			t.Errorf("fsyncs %q", synced)
		}
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v %v", fi.Mode(), err)
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
}

func TestWriteFileFailures(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.json")
	if err := WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	for name, tc := range map[string]struct {
		path string
		w    Writer
	}{
		"missing directory": {filepath.Join(dir, "nope", "x.json"), Writer{}},
		"fsync fails":       {p, Writer{Sync: func(*os.File) error { return boom }}},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.w.WriteFile(tc.path, []byte("new"), 0o600)
			if err == nil || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("got %v, want an error naming %s", err, tc.path)
			}
			if b, _ := os.ReadFile(p); string(b) != "old" {
				t.Errorf("the old file changed: %q", b)
			}
			if _, err := os.Stat(tc.path + ".tmp"); !os.IsNotExist(err) {
				t.Errorf("temporary file left: %v", err)
			}
		})
	}
	if err := SyncDir(filepath.Join(dir, "nope")); err == nil {
		t.Error("SyncDir of a missing directory succeeded")
	}
}
