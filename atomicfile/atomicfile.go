// Package atomicfile owns the one way ucp-audit replaces a small file
// (stream state, spool cursors, seal records, the node configuration):
// a temporary file in the same directory, written and fsync'd, renamed
// over the old one, then the directory fsync'd, so that after a crash the
// file is either the old one or the new one, whole, and the rename itself
// is durable.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Writer replaces files. Sync fsyncs a file or a directory; nil is
// (*os.File).Sync. A caller whose tests observe or fail its fsyncs passes
// its own.
type Writer struct {
	Sync func(*os.File) error
}

// WriteFile replaces path with data, atomically and durably, with the
// default Writer.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Writer{}.WriteFile(path, data, perm)
}

// SyncDir fsyncs a directory with the default Writer.
func SyncDir(dir string) error { return Writer{}.SyncDir(dir) }

// WriteFile replaces path with data, atomically and durably; a new file
// gets perm.
func (w Writer) WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = w.sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return w.SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory, making the creation, removal or renaming of
// its entries durable.
func (w Writer) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	err = w.sync(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

func (w Writer) sync(f *os.File) error {
	if w.Sync != nil {
		return w.Sync(f)
	}
	return f.Sync()
}
