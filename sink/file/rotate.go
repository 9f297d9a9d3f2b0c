package file

import (
	"errors"
	"os"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
)

// rotateLocked moves the current file to path.1 (shifting the older ones) and
// opens a fresh one. On error the line must not be written: either the file
// is failed (sticky) or fd is nil and the next write reopens and retries.
func (f *file) rotateLocked() error {
	if f.chain != nil && f.chain.head.Sealed != chain.ReasonRotate {
		if err := f.sealLocked(chain.ReasonRotate); err != nil {
			return err
		}
	}
	if err := f.durableLocked("rotate"); err != nil {
		return err
	}
	fd := f.fd
	f.fd = nil
	if err := fd.Close(); err != nil {
		// The data is durable (fsync succeeded); reopen on the next write.
		return f.errorf("rotate: close", err)
	}
	// Only the contiguous run path.1 … path.(k-1) moves up: a missing path.k
	// absorbs the shift. Without a gap, path.(MaxFiles-1) is deleted first.
	top := f.opts.MaxFiles - 1
	k := 1
	for ; k < top; k++ {
		if _, err := os.Lstat(f.rotated(k)); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				break
			}
			return f.errorf("rotate", err)
		}
	}
	if k == top {
		if err := os.Remove(f.rotated(top)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return f.errorf("rotate", err)
		}
	}
	for i := k - 1; i >= 1; i-- {
		if err := os.Rename(f.rotated(i), f.rotated(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return f.errorf("rotate", err)
		}
	}
	if err := os.Rename(f.path, f.rotated(1)); err != nil {
		return f.errorf("rotate", err)
	}
	// openLocked fsyncs the directory, covering the renames and the creation.
	if err := f.openLocked(); err != nil {
		return f.errorf("rotate: open", err)
	}
	return nil
}

// rotated returns the name of the i-th rotated file, path.i.
func (f *file) rotated(i int) string {
	return auditlog.Rotated(f.path, i)
}
