package file

import (
	"fmt"
	"os"
	"time"

	"github.com/ucp-audit/ucp-audit/chain"
)

// Recovery from a failed flush or fsync (a full disk, an I/O error): the
// file stays failed (Write and Sync return the error) until an attempt to
// recover succeeds, at most one every recoverEvery, made by the next Write
// or Sync. Nothing the file accepted is dropped on the way:
//
//   - the file is opened again and cut back to its size at the last fsync
//     that succeeded (what was written since may or may not have reached
//     the disk: after a failed fsync, the kernel may have dropped it);
//   - everything written since, kept byte for byte (pending, at most
//     maxPending: a Write past it syncs), is written again, so the chain
//     goes on as if nothing happened;
//   - a resume seal marks the break, and the file is made durable.
//
// When the file turns out shorter than what was durable (someone cut or
// replaced it meanwhile), it is opened as at start instead: its resume
// seal says which sealed records are gone. OnRecovered is told either way.

// recoverEvery spaces the attempts to recover a failed file.
var recoverEvery = time.Second // tests make it 0

// maxPending bounds the bytes written since the last fsync, which recovery
// would write again.
const maxPending = 32 << 20

// recoverLocked tries to get a failed file writing again (see above). It
// returns nil once the file writes again, else the failure.
func (f *file) recoverLocked() error {
	now := time.Now()
	if now.Before(f.retryAt) {
		return f.err
	}
	f.retryAt = now.Add(recoverEvery)
	failure := f.err
	if f.fd != nil {
		_ = f.fd.Close()
		f.fd = nil
	}
	fd, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return f.err
	}
	st, err := fd.Stat()
	if err != nil || !st.Mode().IsRegular() {
		_ = fd.Close()
		return f.err
	}
	if st.Size() < f.durable {
		// What was durable is gone: open as at start, and let the resume
		// seal say so.
		_ = fd.Close()
		f.err, f.pending = nil, f.pending[:0]
		if f.chain != nil {
			f.chain.known = false // from the file, checked against the record
		}
		if err := f.openLocked(); err != nil {
			f.fd = nil
			return f.fail("recover", err)
		}
		f.recovered(failure)
		return nil
	}
	if err := fd.Truncate(f.durable); err != nil {
		_ = fd.Close()
		return f.err
	}
	pending := f.pending
	f.fd, f.size, f.err, f.pending = fd, f.durable, nil, nil
	f.w.Reset(announcer{f})
	if _, err := f.w.Write(pending); err != nil {
		f.pending = pending
		return f.fail("recover: write", err)
	}
	f.size += int64(len(pending))
	f.pending = pending
	if f.chain != nil {
		if err := f.sealLocked(chain.ReasonResume); err != nil {
			return err
		}
	}
	if err := f.durableLocked("recover"); err != nil {
		return err
	}
	f.recovered(failure)
	return nil
}

func (f *file) recovered(failure error) {
	if f.onRecovered != nil {
		f.onRecovered(f.path, fmt.Errorf("recovered after: %w", failure))
	}
}
