package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ucp-audit/ucp-audit/atomicfile"
)

// publishedBinary is where, below the state directory, the plugin leaves a
// copy of its binary for the host: a node that installed the plugin from a
// registry gets the host CLI (query, report, verify, config …) with
// `install -m 0755 /var/lib/ucp-audit/bin/ucp-audit /usr/local/bin/`,
// without reaching into dockerd's plugin store.
const publishedBinary = "bin/ucp-audit"

// publishBinary copies the running binary to the state directory, unless
// the copy there is the same.
func publishBinary(stateDir string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		return err
	}
	dst := filepath.Join(stateDir, publishedBinary)
	old, err := os.ReadFile(dst)
	if err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(dst, b, 0o755)
}
