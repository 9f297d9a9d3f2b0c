package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/sink/file"
)

// TestVerifyExitCodes checks the exit codes the README promises: 0 when
// every set verifies, 1 for a failing set or a missing path, 2 for a usage
// error or an unusable --key; and --part for rotated files without their
// live file.
func TestVerifyExitCodes(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "audit.log")
	r := file.NewSealedRegistry(file.Sealing{})
	s, err := r.Open(file.Options{Path: live, MaxSize: 2 << 10, MaxFiles: 5})
	if err != nil {
		t.Fatal(err)
	}
	for range 40 {
		if err := s.Write([]byte(`{"auditID":"a","pad":"` + strings.Repeat("x", 200) + `"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	copyDir := t.TempDir() // rotated files only, as copied off the node
	for _, n := range []string{"audit.log.2", "audit.log.1"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(copyDir, n), b, 0o600)
	}
	badKey := filepath.Join(dir, "key.pub")
	os.WriteFile(badKey, []byte("not a key"), 0o600)
	tampered := t.TempDir()
	b, _ := os.ReadFile(live)
	os.WriteFile(filepath.Join(tampered, "audit.log"), bytes.Replace(b, []byte(`"auditID":"a"`), []byte(`"auditID":"b"`), 1), 0o600)

	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{"clean", []string{dir}, 0, "OK   " + live},
		{"tampered", []string{tampered}, 1, ": modified: "},
		{"missing path", []string{filepath.Join(dir, "nope.log")}, 1, "nope.log"},
		{"rotated copies", []string{copyDir}, 1, "file-missing"},
		{"rotated copies, --part", []string{"--part", copyDir}, 0, "OK   "},
		{"bad key", []string{"--key", badKey, dir}, 2, "--key: "},
		{"bad flag", []string{"--nope", dir}, 2, "-nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runVerify(context.Background(), tc.args, testEnv(&out, &errb))
			if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.out) {
				t.Errorf("verify %q: exit %d, want %d and %q in:\n%s%s", tc.args, code, tc.code, tc.out, out.String(), errb.String())
			}
		})
	}
}
