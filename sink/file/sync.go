package file

import (
	"errors"
	"os"

	"github.com/ucp-audit/ucp-audit/atomicfile"
	"github.com/ucp-audit/ucp-audit/chain"
)

// fsync is (*os.File).Sync; tests replace it to observe and fail fsyncs.
var fsync = (*os.File).Sync

// durableLocked flushes the buffer and fsyncs the file (a failure is
// the file fails until it recovers, named after op), then records the last seal written.
func (f *file) durableLocked(op string) error {
	if err := f.w.Flush(); err != nil {
		return f.fail(op+": flush", err)
	}
	if err := fsync(f.fd); err != nil {
		return f.fail(op+": fsync", err)
	}
	f.durable, f.pending = f.size, f.pending[:0]
	f.recordLocked()
	return nil
}

func (f *file) sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.errorf("sync", ErrClosed)
	}
	if f.err != nil {
		if err := f.recoverLocked(); err != nil {
			return err
		}
	}
	if f.fd == nil {
		// Closed by a failed rotation after a successful flush and fsync:
		// nothing is pending.
		return nil
	}
	if err := f.sealDueLocked(); err != nil {
		return err
	}
	return f.durableLocked("sync")
}

// close flushes, fsyncs and closes the file. Later writes get ErrClosed.
func (f *file) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	if f.fd == nil {
		return f.err
	}
	var errs []error
	if f.err == nil && f.chain != nil {
		if err := f.sealLocked(chain.ReasonClose); err != nil && f.err == nil {
			errs = append(errs, f.errorf("close: seal", err))
		}
	}
	if f.err != nil {
		errs = append(errs, f.err)
	} else {
		if err := f.w.Flush(); err != nil {
			errs = append(errs, f.errorf("close: flush", err))
		} else if err := fsync(f.fd); err != nil {
			errs = append(errs, f.errorf("close: fsync", err))
		} else {
			f.recordLocked()
		}
	}
	if err := f.fd.Close(); err != nil {
		errs = append(errs, f.errorf("close", err))
	}
	f.fd = nil
	return errors.Join(errs...)
}

// syncDir fsyncs a directory so renames and creations in it are durable.
func syncDir(dir string) error {
	return atomicfile.Writer{Sync: fsync}.SyncDir(dir)
}
