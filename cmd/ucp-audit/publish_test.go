package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The plugin leaves its binary for the host CLI, executable, and only
// rewrites it when it differs.
func TestPublishBinary(t *testing.T) {
	dir := t.TempDir()
	if err := publishBinary(dir); err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	want, _ := os.ReadFile(exe)
	dst := filepath.Join(dir, publishedBinary)
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("published binary: %v (%d bytes, want %d)", err, len(got), len(want))
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v", fi.Mode())
	}
	before, _ := os.Stat(dst)
	if err := publishBinary(dir); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(dst); !os.SameFile(before, after) {
		t.Error("an identical copy was written again")
	}
}
