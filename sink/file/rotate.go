package file

import (
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
)

// gzSuffix is the suffix of a compressed rotated file.
const gzSuffix = ".gz"

// rotateLocked moves the current file to path.1 (shifting the older ones,
// plain or compressed) and opens a fresh one; with Compress, it then
// compresses the rotated files from path.2 on. On error the line must not
// be written: either the file is failed (until it recovers) or fd is nil and the next
// write reopens and retries.
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
		_, ok, err := f.rotatedFile(k)
		if err != nil {
			return f.errorf("rotate", err)
		}
		if !ok {
			break
		}
	}
	if k == top {
		for _, name := range []string{f.rotated(top), f.rotated(top) + gzSuffix} {
			if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				return f.errorf("rotate", err)
			}
		}
	}
	for i := k - 1; i >= 1; i-- {
		name, ok, err := f.rotatedFile(i)
		if err != nil {
			return f.errorf("rotate", err)
		}
		if !ok {
			continue
		}
		to := f.rotated(i + 1)
		if strings.HasSuffix(name, gzSuffix) {
			to += gzSuffix
		}
		if err := os.Rename(name, to); err != nil {
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
	if f.opts.Compress {
		f.compressRotatedLocked()
	}
	return nil
}

// rotated returns the name of the i-th rotated file, path.i.
func (f *file) rotated(i int) string {
	return auditlog.Rotated(f.path, i)
}

// rotatedFile returns the name of the i-th rotated file as it is on disk,
// path.i or path.i.gz, and whether there is one. When both are there (a
// crash after the compressed file was complete and before the plain one
// was removed), the plain one goes.
func (f *file) rotatedFile(i int) (string, bool, error) {
	plain := f.rotated(i)
	_, perr := os.Lstat(plain)
	_, zerr := os.Lstat(plain + gzSuffix)
	switch {
	case perr != nil && !errors.Is(perr, os.ErrNotExist):
		return "", false, perr
	case zerr != nil && !errors.Is(zerr, os.ErrNotExist):
		return "", false, zerr
	case zerr == nil && perr == nil:
		if err := os.Remove(plain); err != nil {
			return "", false, err
		}
		return plain + gzSuffix, true, nil
	case zerr == nil:
		return plain + gzSuffix, true, nil
	case perr == nil:
		return plain, true, nil
	}
	return "", false, nil
}

// compressRotatedLocked compresses every plain rotated file from path.2 on
// (normally only path.2, just shifted there; older ones when an earlier
// attempt failed). A failure leaves the file plain and is reported.
func (f *file) compressRotatedLocked() {
	for i := 2; i < f.opts.MaxFiles; i++ {
		name, ok, err := f.rotatedFile(i)
		if err == nil && (!ok || strings.HasSuffix(name, gzSuffix)) {
			continue
		}
		if err == nil {
			err = compressFile(name)
		}
		if err != nil && f.onCompressError != nil {
			f.onCompressError(f.rotated(i), err)
		}
	}
}

// compressFile replaces the file plain with plain.gz: written to a
// temporary name, made durable, renamed, and only then is plain removed.
func compressFile(plain string) (err error) {
	in, err := os.Open(plain)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := plain + gzSuffix + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = out.Close()
			_ = os.Remove(tmp)
		}
	}()
	// BestSpeed: the rotation holds the file's lock while it compresses,
	// and audit JSON compresses well at any level.
	zw, err := gzip.NewWriterLevel(out, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if _, err = io.Copy(zw, in); err != nil {
		return err
	}
	if err = zw.Close(); err != nil {
		return err
	}
	if err = out.Sync(); err != nil {
		return err
	}
	if err = out.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, plain+gzSuffix); err != nil {
		return err
	}
	if err = syncDir(filepath.Dir(plain)); err != nil {
		return err
	}
	return os.Remove(plain)
}
