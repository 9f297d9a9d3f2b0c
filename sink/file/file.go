// Package file implements the rotating, fsync'd, shared JSON-lines file used
// for audit.log and quarantine.log.
//
// # Lines
//
// Each Write appends p followed by "\n" as one unit, under the file's mutex:
// a line is never split across files nor interleaved with another writer's
// line, whatever its size (lines larger than the 64 KiB write buffer go out
// whole). A p containing a newline is rejected with ErrNewline, because it
// would corrupt the JSON-lines format.
//
// # Durability (fsync policy)
//
// The caller decides when events must be durable: Write only buffers (and
// writes to the page cache when the buffer fills), Sync flushes the buffer and
// fsyncs the file. The driver calls Sync when it has caught up with a
// container's output and at least every 1 MiB. In addition the sink fsyncs:
//   - the current file before it is renamed away by rotation, and the
//     directory after the renames and the creation of the fresh file;
//   - the directory whenever it creates the file;
//   - the file when the last reference is released (Close) and at
//     Registry.Close.
//
// After a failed flush or fsync the data already handed to the kernel may be
// lost and cannot be retried safely, so the file is marked failed: every later
// Write and Sync returns that error (sticky). Other errors (a failed rename
// or open during rotation, a failed reopen) are returned by the Write that hit
// them, that line is NOT written, and the next Write tries again.
//
// # Rotation
//
// With MaxSize > 0, a Write that would make the file exceed MaxSize bytes
// first rotates: flush + fsync the current file, close it, delete
// path.(MaxFiles-1), rename path.(MaxFiles-2)→path.(MaxFiles-1) …
// path.1→path.2, path→path.1, open a fresh path and fsync the directory
// (covering the renames and the new file). If some path.k is missing, only
// path.1 … path.(k-1) are shifted (the gap absorbs the shift) and nothing is
// deleted, so the cost is proportional to the files actually present. A
// file therefore never exceeds MaxSize, except when a single line (with its
// newline) is larger than MaxSize: such a line is written whole, alone, into
// a fresh file (rotating first if the current file is not empty), and the
// next line rotates again. The size of an existing file opened for appending
// counts towards MaxSize.
//
// # Crashes
//
// A file whose last line has no newline when it is opened was torn by a
// crash in the middle of a write; that line is cut off. It was written after
// the last Sync, and the driver writes everything after its last checkpoint
// (which follows a Sync) again, so the line comes back whole.
//
// # Sharing
//
// A Registry shares one open file per cleaned path between streams (several
// containers may log to the same audit file). Paths are compared after
// filepath.Clean only; two different paths that reach the same file through a
// symlink are not detected.
//
// # Tamper evidence
//
// A Registry made with NewSealedRegistry writes every file as a hash chain
// (package chain): each line carries its number and the hash linking it to
// the line before, across rotations, and seal lines mark where each file
// opens, resumes after a restart or crash, is rotated away and is closed,
// and appear at least every Sealing.Interval while lines are written
// (checked at each Write and Sync, and by SealIdle, which the caller runs
// periodically for files that went quiet). Seals are signed when Sealing.Key is
// set. On open the chain is recovered from the file's last complete line
// (after the torn tail is cut), or from path.1 when the file is empty, so
// restarts and crashes continue it. A file that cannot be continued (not
// chained, or its end damaged) starts a new chain after it: the break stays
// visible to a verifier. With sealing a file may exceed MaxSize by its
// seals (each under 500 bytes: the rotate seal, and interval, resume or
// close seals written after a line that filled it).
//
// With Sealing.StateDir set, the sink also keeps, per path, a record of
// the chain's head as of the last seal it knows reached the file (its N,
// hash and file number) as JSON, {"path":P,"n":N,"hash":"H","file":F},
// in StateDir/X.json, X being the first 16 bytes of the SHA-256 of the
// cleaned path P in hex; it is replaced atomically (a temporary file,
// fsync'd, renamed). It is written only after the buffer
// holding the seal was flushed and the file fsync'd (at Sync, at rotation
// and at close), never for a seal still buffered, so a crash never leaves
// the record ahead of the file; and only when there is a newer seal, so at
// most once per seal. On open, when the head recovered from the file (or
// from path.1) is behind that record, sealed records were cut off or the
// newest files deleted since: the resume or open seal then carries "lost"
// (chain.Head.SealChecked) and a verifier reports it. A record that cannot
// be written is tried again at the next flush; it never fails the file.
// A record that cannot be read or names another path counts as none.
//
// The package starts no goroutines: everything happens synchronously under
// the locks, so nothing is left running after Close.
package file

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/sink"
)

// fsync is (*os.File).Sync; tests replace it to observe and fail fsyncs.
var fsync = (*os.File).Sync

// BufferSize is the size of the write buffer of each open file.
const BufferSize = 64 << 10

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
	// ErrNewline is returned (wrapped, with the path and sink.ErrRefused)
	// by Write when p contains a newline; nothing is written.
	ErrNewline = errors.New("line contains a newline")
)

// Options configures one file.
type Options struct {
	Path     string // absolute path
	MaxSize  int64  // rotate before a write that would make the file exceed MaxSize bytes; <= 0 means never rotate
	MaxFiles int    // total files kept including the current one (path, path.1 … path.(MaxFiles-1)); must be >= 2 when MaxSize > 0
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
		o.MaxSize, o.MaxFiles = 0, 0
	}
	return o
}

// Registry shares one open file per path between streams (several containers
// may log to the same audit file). It is safe for concurrent use.
type Registry struct {
	mu     sync.Mutex // guards files, closed and every file's refs; taken before file.mu
	files  map[string]*file
	closed bool
	seal   *Sealing // nil: lines are written as given
}

// NewRegistry returns an empty Registry whose files hold the lines as given.
func NewRegistry() *Registry {
	return &Registry{files: make(map[string]*file)}
}

// DefaultSealInterval is Sealing.Interval's default.
const DefaultSealInterval = time.Minute

// Sealing configures the hash chain of a sealed Registry's files.
type Sealing struct {
	Key      ed25519.PrivateKey // signs the seals; nil: unsigned
	Interval time.Duration      // a seal at least this often while lines are written; <= 0: DefaultSealInterval
	Now      func() time.Time   // the seals' clock; nil: time.Now
	// StateDir, when set, holds the record of each file's last seal that
	// reached it (created with mode 0700), against which the chain is
	// checked when the file is opened (see Tamper evidence). It must be
	// outside the log directory. Empty: no record, no check.
	StateDir string
	// OnRecordError, when set, is called (with the file's lock held, so it
	// must not call back into the Registry) when a record cannot be
	// written: the check at the next open then uses an older record.
	OnRecordError func(path string, err error)
}

// NewSealedRegistry returns an empty Registry whose files are hash chains
// sealed as s says (see Tamper evidence).
func NewSealedRegistry(s Sealing) *Registry {
	if s.Interval <= 0 {
		s.Interval = DefaultSealInterval
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	return &Registry{files: make(map[string]*file), seal: &s}
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
			return nil, fmt.Errorf("audit file %q: open with max-size=%d max-files=%d, already open with max-size=%d max-files=%d: %w",
				opts.Path, opts.MaxSize, opts.MaxFiles, f.opts.MaxSize, f.opts.MaxFiles, ErrConflict)
		}
		f.refs++
		return &handle{r: r, f: f}, nil
	}
	f := &file{opts: opts, path: opts.Path}
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

// SealIdle seals every open file that has lines written since its last
// seal, older than Sealing.Interval, and makes the seal durable (flush and
// fsync): without it a file that goes quiet keeps its last lines unsealed
// until the next line or its close. The caller calls it periodically (the
// package starts no goroutines); it is safe for concurrent use with
// everything else. A file's failure is returned and the others are still
// sealed. On an unsealed Registry it does nothing.
func (r *Registry) SealIdle() error {
	if r.seal == nil {
		return nil
	}
	r.mu.Lock()
	files := make([]*file, 0, len(r.files))
	for _, f := range r.files {
		files = append(files, f)
	}
	r.mu.Unlock()
	var errs []error
	for _, f := range files {
		errs = append(errs, f.sealIdle())
	}
	return errors.Join(errs...)
}

func (f *file) sealIdle() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.chain
	if f.closed || f.err != nil || f.fd == nil || c == nil || !c.dirty || c.now().Sub(c.lastSeal) < c.interval {
		return nil
	}
	if err := f.sealLocked(chain.ReasonInterval); err != nil {
		return err
	}
	return f.durableLocked("seal")
}

// durableLocked flushes the buffer and fsyncs the file (a failure is
// sticky, named after op), then records the last seal written.
func (f *file) durableLocked(op string) error {
	if err := f.w.Flush(); err != nil {
		return f.fail(op+": flush", err)
	}
	if err := fsync(f.fd); err != nil {
		return f.fail(op+": fsync", err)
	}
	f.recordLocked()
	return nil
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

// file is one open, possibly shared, rotating file.
type file struct {
	opts Options // normalized; immutable
	path string  // == opts.Path, cleaned
	refs int     // guarded by Registry.mu

	mu     sync.Mutex
	fd     *os.File      // nil after a failed rotation or reopen: reopened by the next write
	w      *bufio.Writer // buffers writes to fd
	size   int64         // bytes in the current file, including buffered ones
	err    error         // sticky failure (flush or fsync): buffered data may be lost
	closed bool
	chain  *chainState // nil: lines are written as given
}

// chainState is a sealed file's chain; guarded by file.mu.
type chainState struct {
	head     chain.Head
	known    bool // head continues what the files hold; false until recovered
	sealer   *chain.Sealer
	interval time.Duration
	now      func() time.Time
	lastSeal time.Time // of the last seal this process wrote
	dirty    bool      // lines since the last seal
	buf      []byte

	record        string // path of the record of the last seal that reached the file; "": none kept
	onRecordError func(path string, err error)
	recorded      chain.Head // what the record holds (N, Hash, File), as read or last written
	check         bool       // the next open or resume seal is checked against recorded
	sealed        chain.Head // the head after the last seal written, flushed or not
}

func (f *file) errorf(op string, err error) error {
	return fmt.Errorf("audit file %q: %s: %w", f.path, op, err)
}

// refused is the error of a Write whose p can never be written as it is
// (a newline; for a chain, not one JSON object, a reserved field, too long).
func (f *file) refused(err error) error {
	return fmt.Errorf("audit file %q: write: %w: %w", f.path, sink.ErrRefused, err)
}

// fail records a sticky failure and returns it.
func (f *file) fail(op string, err error) error {
	f.err = f.errorf(op, err)
	return f.err
}

// openLocked opens (creating if missing) the file for appending, records its
// current size and fsyncs the directory so a newly created file's entry is
// durable. The error is not wrapped with the path: callers do it.
func (f *file) openLocked() error {
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fd, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	st, err := fd.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file (%s)", st.Mode())
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = fd.Close()
		return err
	}
	size := st.Size()
	if size > 0 {
		if size, err = cutTornTail(f.path, size); err != nil {
			_ = fd.Close()
			return err
		}
	}
	f.fd, f.size = fd, size
	if f.w == nil {
		f.w = bufio.NewWriterSize(fd, BufferSize)
	} else {
		f.w.Reset(fd)
	}
	if f.chain != nil {
		if err := f.startChainLocked(); err != nil {
			if f.fd != nil {
				_ = f.fd.Close()
				f.fd = nil
			}
			return err
		}
	}
	return nil
}

// startChainLocked continues the chain in the file just opened: a resume
// seal after an existing file's last line, or an open seal in a new file,
// chaining to the rotated file before it. A file that ends with its rotate
// seal (a rotation interrupted by a crash) is rotated first.
func (f *file) startChainLocked() error {
	c := f.chain
	reason := chain.ReasonOpen
	if f.size > 0 || !c.known {
		// The head is recovered from the files: check it against the
		// record when the next seal is written.
		c.recorded, c.check = readRecord(c.record, f.path), c.record != ""
	}
	if f.size > 0 {
		head, err := recoverFile(f.path)
		switch {
		case unchained(err):
			// Not chained, or its end is damaged: a new chain starts after
			// it, and the break stays visible to a verifier.
			c.head, c.known = chain.Head{}, true
		case err != nil:
			// Not the file's content (too many open files, say): a new
			// chain would look like tampering. The open fails; the next
			// write tries again.
			return fmt.Errorf("recover the hash chain: %w", err)
		case head.Sealed == chain.ReasonRotate && f.opts.MaxSize > 0:
			c.head, c.known = head, true
			return f.rotateLocked()
		default:
			c.head, c.known = head, true
			reason = chain.ReasonResume
		}
	} else if !c.known {
		// A new or empty file: the chain goes on from the newest rotated
		// file, if any.
		c.head = chain.Head{}
		head, err := recoverFile(f.rotated(1))
		switch {
		case err == nil:
			c.head = head
		case !errors.Is(err, os.ErrNotExist) && !unchained(err):
			return fmt.Errorf("recover the hash chain from %s: %w", f.rotated(1), err)
		}
		c.known = true
	}
	return f.sealLocked(reason)
}

// unchained reports whether err from recoverFile says the file holds no
// chain to continue (not chained, damaged at its end, or empty).
func unchained(err error) bool {
	return errors.Is(err, chain.ErrNoChain) || errors.Is(err, chain.ErrMalformed) || errors.Is(err, chain.ErrEmpty)
}

// recoverFile returns the chain's head after the last complete line of the
// file at path.
func recoverFile(path string) (chain.Head, error) {
	r, err := os.Open(path)
	if err != nil {
		return chain.Head{}, err
	}
	defer r.Close()
	fi, err := r.Stat()
	if err != nil {
		return chain.Head{}, err
	}
	return chain.Recover(r, fi.Size())
}

// sealLocked writes a seal line. The first open or resume seal after the
// head was recovered is checked against the record.
func (f *file) sealLocked(reason chain.Reason) error {
	c := f.chain
	head := c.head
	checked := c.check && (reason == chain.ReasonOpen || reason == chain.ReasonResume)
	var (
		line []byte
		err  error
	)
	if checked {
		line, err = c.head.SealChecked(c.buf[:0], reason, c.sealer, c.recorded)
	} else {
		line, err = c.head.Seal(c.buf[:0], reason, c.sealer)
	}
	if err != nil {
		return err
	}
	c.buf = line
	if err := f.writeLineLocked(line); err != nil {
		c.head = head
		return err
	}
	c.lastSeal, c.dirty, c.sealed = c.now(), false, c.head
	if checked {
		c.check = false
	}
	return nil
}

// recordLocked records the last seal written, once everything written was
// flushed and fsync'd; a failure leaves the record as it was, to be tried
// again at the next flush.
func (f *file) recordLocked() {
	c := f.chain
	if c == nil || c.record == "" || c.sealed.N == 0 || sameSeal(c.sealed, c.recorded) {
		return
	}
	if err := writeRecord(c.record, f.path, c.sealed); err != nil {
		if c.onRecordError != nil {
			c.onRecordError(f.path, err)
		}
		return
	}
	c.recorded = c.sealed
}

func sameSeal(a, b chain.Head) bool {
	return a.N == b.N && a.Hash == b.Hash && a.File == b.File
}

// recordPath returns the record's path for the audit file at path (clean).
func recordPath(dir, path string) string {
	sum := sha256.Sum256([]byte(path))
	return filepath.Join(dir, hex.EncodeToString(sum[:16])+".json")
}

// headRecord is a record's content: the chain's head as of the last seal
// that reached the file at Path.
type headRecord struct {
	Path string `json:"path"`
	N    uint64 `json:"n"`
	Hash string `json:"hash"` // 64 lowercase hex digits
	File uint64 `json:"file"`
}

// readRecord returns the head in the record at name for path; the zero
// Head when there is none or it is unusable (unreadable, malformed, or for
// another path).
func readRecord(name, path string) chain.Head {
	if name == "" {
		return chain.Head{}
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return chain.Head{}
	}
	var r headRecord
	var h chain.Head
	if json.Unmarshal(b, &r) != nil || r.Path != path || r.N == 0 || r.File == 0 || len(r.Hash) != 2*len(h.Hash) {
		return chain.Head{}
	}
	if _, err := hex.Decode(h.Hash[:], []byte(r.Hash)); err != nil {
		return chain.Head{}
	}
	h.N, h.File = r.N, r.File
	return h
}

// writeRecord replaces the record at name with head, for path: a
// temporary file, fsync'd, renamed over it, and the directory fsync'd.
func writeRecord(name, path string, head chain.Head) error {
	b, err := json.Marshal(headRecord{Path: path, N: head.N, Hash: hex.EncodeToString(head.Hash[:]), File: head.File})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	tmp := name + ".tmp"
	fd, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = fd.Write(append(b, '\n'))
	if err == nil {
		err = fsync(fd)
	}
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(name)) // the rename itself must survive a power loss
}

// writeLineLocked writes line and its newline to the buffer.
func (f *file) writeLineLocked(line []byte) error {
	if _, err := f.w.Write(line); err != nil {
		return f.fail("write", err)
	}
	if err := f.w.WriteByte('\n'); err != nil {
		return f.fail("write", err)
	}
	f.size += int64(len(line)) + 1
	return nil
}

// sealDueLocked writes an interval seal when lines were written since the
// last seal and the interval has passed.
func (f *file) sealDueLocked() error {
	if c := f.chain; c != nil && c.dirty && f.fd != nil && c.now().Sub(c.lastSeal) >= c.interval {
		return f.sealLocked(chain.ReasonInterval)
	}
	return nil
}

// cutTornTail cuts a last line without its newline off the file at path,
// of the given size, and returns the new size. Such a line was torn by a
// crash in the middle of a write: it came after the last Sync, so the
// writer (the driver, from its checkpoint) writes it again whole.
func cutTornTail(path string, size int64) (int64, error) {
	r, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		n := min(int64(len(buf)), end)
		if _, err := r.ReadAt(buf[:n], end-n); err != nil {
			return 0, err
		}
		if end == size && buf[n-1] == '\n' {
			return size, nil
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			keep := end - n + int64(i) + 1
			return keep, os.Truncate(path, keep)
		}
		end -= n
	}
	return 0, os.Truncate(path, 0)
}

func (f *file) write(p []byte) error {
	if bytes.IndexByte(p, '\n') >= 0 {
		return f.refused(ErrNewline)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.errorf("write", ErrClosed)
	}
	if f.err != nil {
		return f.err
	}
	if f.fd == nil {
		if err := f.openLocked(); err != nil {
			return f.errorf("reopen", err)
		}
	}
	line := p
	var head chain.Head
	if c := f.chain; c != nil {
		head = c.head
		var err error
		if line, err = c.head.Append(c.buf[:0], p); err != nil {
			return f.refused(err)
		}
		c.buf = line
	}
	n := int64(len(line)) + 1
	if f.opts.MaxSize > 0 && f.size > 0 && f.size+n > f.opts.MaxSize {
		if c := f.chain; c != nil {
			// The line was chained to the old head; the rotation's seals
			// come first.
			c.head = head
		}
		if err := f.rotateLocked(); err != nil {
			return err
		}
		if c := f.chain; c != nil {
			var err error
			if line, err = c.head.Append(c.buf[:0], p); err != nil {
				return f.refused(err)
			}
			c.buf = line
		}
	}
	if err := f.writeLineLocked(line); err != nil {
		if f.chain != nil {
			f.chain.head = head
		}
		return err
	}
	if f.chain != nil {
		f.chain.dirty = true
		return f.sealDueLocked()
	}
	return nil
}

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

func (f *file) sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.errorf("sync", ErrClosed)
	}
	if f.err != nil {
		return f.err
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
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = fsync(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %q: %w", dir, err)
	}
	return nil
}
