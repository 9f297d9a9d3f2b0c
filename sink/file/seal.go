package file

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ucp-audit/ucp-audit/chain"
)

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

// Key returns the key that signs the seals now (nil: unsigned).
func (r *Registry) Key() ed25519.PrivateKey {
	if r.seal == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seal.Key
}

// SetKey changes the key that signs the seals (nil: unsigned from now on)
// and writes a "key" seal, signed with the new key and made durable, in
// every open file: from that seal on, the files verify with the new key,
// and the seal vouches for every record before it. Files opened later
// start with the new key. On an unsealed Registry it does nothing. A
// file's failure is returned and the others still change.
func (r *Registry) SetKey(key ed25519.PrivateKey) error {
	if r.seal == nil {
		return nil
	}
	r.mu.Lock()
	r.seal.Key = key
	files := make([]*file, 0, len(r.files))
	for _, f := range r.files {
		files = append(files, f)
	}
	r.mu.Unlock()
	var errs []error
	for _, f := range files {
		errs = append(errs, f.setKey(key))
	}
	return errors.Join(errs...)
}

func (f *file) setKey(key ed25519.PrivateKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.chain
	if c == nil {
		return nil
	}
	s := *c.sealer // Sealers are shared read-only: replace, never change
	s.Key = key
	c.sealer = &s
	if f.closed || f.err != nil || f.fd == nil {
		return nil // the next open seals with the new key
	}
	if err := f.sealLocked(chain.ReasonKey); err != nil {
		return err
	}
	return f.durableLocked("seal")
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
	recorded      chain.Head // the sealed head the record holds (N, Hash, File), as read or last written
	written       chain.Head // the written head the record held when the file was opened
	announced     chain.Head // the written head the record holds now (announceLocked)
	check         bool       // the next open or resume seal is checked against recorded and written
	sealed        chain.Head // the head after the last seal written, flushed or not
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
		c.recorded, c.written = readRecord(c.record, f.path)
		c.announced, c.check = c.written, c.record != ""
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
		line, err = c.head.SealChecked(c.buf[:0], reason, c.sealer, c.recorded, c.written)
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

// sealDueLocked writes an interval seal when lines were written since the
// last seal and the interval has passed.
func (f *file) sealDueLocked() error {
	if c := f.chain; c != nil && c.dirty && f.fd != nil && c.now().Sub(c.lastSeal) >= c.interval {
		return f.sealLocked(chain.ReasonInterval)
	}
	return nil
}
