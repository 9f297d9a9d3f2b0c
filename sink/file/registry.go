package file

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/sink"
)

var (
	// ErrConflict is returned (wrapped, with the path and both settings) by
	// Registry.Open when the path is already open with different MaxSize or
	// MaxFiles.
	ErrConflict = errors.New("conflicting settings for an already open file")
	// ErrClosed is returned (wrapped, with the path) by Write and Sync on a
	// Sink that was closed or whose Registry was closed, and by Open on a
	// closed Registry. Closing a Sink twice is harmless: the second Close
	// returns nil.
	ErrClosed = errors.New("file sink closed")
)

// Options configures one file.
type Options struct {
	Path     string // absolute path
	MaxSize  int64  // rotate before a write that would make the file exceed MaxSize bytes; <= 0 means never rotate
	MaxFiles int    // total files kept including the current one (path, path.1 … path.(MaxFiles-1)); must be >= 2 when MaxSize > 0
	// Compress gzips rotated files from path.2 on (path.2.gz …) at
	// rotation; path.1 stays plain, as logrotate's delaycompress leaves
	// it, so that the chain can be recovered from it and a reader that
	// follows the rotation finishes it. See Rotation.
	Compress bool
}

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	if o.Path == "" {
		return errors.New("audit file: empty path")
	}
	if !filepath.IsAbs(o.Path) {
		return fmt.Errorf("audit file %q: path is not absolute", o.Path)
	}
	if o.MaxSize > 0 && o.MaxFiles < 2 {
		return fmt.Errorf("audit file %q: max files %d: must be >= 2 when max size (%d) is set", o.Path, o.MaxFiles, o.MaxSize)
	}
	return nil
}

// normalized returns the settings that matter for comparison: when rotation
// is off MaxFiles is irrelevant.
func (o Options) normalized() Options {
	o.Path = filepath.Clean(o.Path)
	if o.MaxSize <= 0 {
		o.MaxSize, o.MaxFiles, o.Compress = 0, 0, false
	}
	return o
}

// Registry shares one open file per path between streams (several containers
// may log to the same audit file). It is safe for concurrent use.
type Registry struct {
	// OnCompressError, when set before the first Open, is called (with the
	// file's lock held, so it must not call back into the Registry) when a
	// rotated file could not be compressed: it stays plain, which every
	// reader accepts, and the next rotation tries again.
	OnCompressError func(path string, err error)
	// OnRecovered, when set before the first Open, is called (with the
	// file's lock held) when a file that failed writes again; failure
	// wraps the error it recovered from. See Recovery in recover.go.
	OnRecovered func(path string, failure error)

	mu     sync.Mutex // guards files, closed and every file's refs; taken before file.mu
	files  map[string]*file
	closed bool
	seal   *Sealing // nil: lines are written as given
}

// NewRegistry returns an empty Registry whose files hold the lines as given.
func NewRegistry() *Registry {
	return &Registry{files: make(map[string]*file)}
}

// Open returns a Sink for opts.Path, opening (creating with mode 0600, and
// its directory with 0700, if missing) the file on first use and sharing it
// afterwards. Check-and-insert happens under one lock.
//
// If the path is already open with different MaxSize/MaxFiles it returns an
// error wrapping ErrConflict that names the path and both settings (when
// MaxSize <= 0, MaxFiles is ignored). On a closed Registry it returns an
// error wrapping ErrClosed.
//
// Close on the returned Sink releases the reference; the file is flushed,
// fsync'd and closed when the last reference is released. Closing twice is
// harmless: the second Close returns nil and does not release another
// reference.
func (r *Registry) Open(opts Options) (sink.Sink, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.normalized()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("audit file %q: open: %w", opts.Path, ErrClosed)
	}
	if f, ok := r.files[opts.Path]; ok {
		if f.opts != opts {
			return nil, fmt.Errorf("audit file %q: open with max-size=%d max-files=%d compress=%v, already open with max-size=%d max-files=%d compress=%v: %w",
				opts.Path, opts.MaxSize, opts.MaxFiles, opts.Compress, f.opts.MaxSize, f.opts.MaxFiles, f.opts.Compress, ErrConflict)
		}
		f.refs++
		return &handle{r: r, f: f}, nil
	}
	f := &file{opts: opts, path: opts.Path, onCompressError: r.OnCompressError, onRecovered: r.OnRecovered}
	if r.seal != nil {
		f.chain = &chainState{
			sealer:   &chain.Sealer{Key: r.seal.Key, Keep: opts.MaxFiles, Now: r.seal.Now},
			interval: r.seal.Interval,
			now:      r.seal.Now,
		}
		if r.seal.StateDir != "" {
			f.chain.record = recordPath(r.seal.StateDir, opts.Path)
			f.chain.onRecordError = r.seal.OnRecordError
		}
	}
	f.mu.Lock()
	err := f.openLocked()
	f.mu.Unlock()
	if err != nil {
		return nil, f.errorf("open", err)
	}
	f.refs = 1
	r.files[opts.Path] = f
	return &handle{r: r, f: f}, nil
}

// Close flushes, fsyncs and closes every file still open (used at plugin
// shutdown). Afterwards Write and Sync on every Sink from r, and Open, return
// errors wrapping ErrClosed; Close on those Sinks returns nil. Calling Close
// again returns nil.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	var errs []error
	for p, f := range r.files {
		errs = append(errs, f.close())
		delete(r.files, p)
	}
	return errors.Join(errs...)
}

// release drops one reference to f, closing it when it was the last one.
func (r *Registry) release(f *file) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f.refs--
	if f.refs > 0 {
		return nil
	}
	if r.files[f.path] != f {
		return nil // already closed by Registry.Close
	}
	delete(r.files, f.path)
	return f.close()
}

// handle is one reference to a shared file.
type handle struct {
	r      *Registry
	f      *file
	closed atomic.Bool
}

var _ sink.Sink = (*handle)(nil)

// Write appends p and "\n" to the file as one unit.
func (h *handle) Write(p []byte) error {
	if h.closed.Load() {
		return h.f.errorf("write", ErrClosed)
	}
	return h.f.write(p)
}

// Sync flushes the buffer and fsyncs the file.
func (h *handle) Sync() error {
	if h.closed.Load() {
		return h.f.errorf("sync", ErrClosed)
	}
	return h.f.sync()
}

// Close releases the reference; the second and later calls return nil.
func (h *handle) Close() error {
	if !h.closed.CompareAndSwap(false, true) {
		return nil
	}
	return h.r.release(h.f)
}
