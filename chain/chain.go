package chain

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

// Errors returned by the writing side. Each is returned as is, or wrapped
// with details; test with errors.Is.
var (
	// ErrNotObject: Append's p does not start with '{' and end with '}', or
	// contains a newline.
	ErrNotObject = errors.New("chain: record is not a single-line JSON object")
	// ErrReserved: Append's p begins with a chain field or with a seal's
	// field (auditlog.ChainKey, auditlog.SealKey); only Seal writes those.
	ErrReserved = errors.New("chain: record uses a reserved " + auditlog.ChainKey + " or " + auditlog.SealKey + " field")
	// ErrReason: Seal was given an unknown Reason.
	ErrReason = errors.New("chain: unknown seal reason")
	// ErrKey: a key is not a usable Ed25519 key (a Sealer's key of the
	// wrong size, or a key file that cannot be used).
	ErrKey = errors.New("chain: unusable key")
)

// domain separates this hash from every other use of SHA-256.
const domain = "ucp-audit chain v1\x00"

// Sum returns hash_N, the chain hash of record number n with payload p
// whose predecessor's hash is prev (32 zero bytes for n == 1):
//
//	SHA-256("ucp-audit chain v1\x00" || prev || uint64 n, big-endian || p)
func Sum(prev [32]byte, n uint64, p []byte) [32]byte {
	return sum(prev, n, p, nil)
}

// sum is Sum over the payload body+tail (so that ParseLine's callers need
// not rebuild p in one piece).
func sum(prev [32]byte, n uint64, body, tail []byte) (out [32]byte) {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write(prev[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	h.Write(b[:])
	h.Write(body)
	h.Write(tail)
	h.Sum(out[:0])
	return out
}

// Head is the state of a chain after its last written line: what the next
// line chains to. The zero Head is a chain with no line yet; its first line
// must be an open seal (Seal with ReasonOpen).
//
// A Head is a plain value owned by its writer: it is not safe for
// concurrent use, and the writer must serialise Append and Seal with the
// writes of the lines they return, in the same order (the file sink does
// both under its file's mutex). A line that could not be written must not
// be followed by another line from the same Head: restore a copy of the
// Head taken before the call, or Recover from the file.
type Head struct {
	N       uint64   // number of the last line, 0 before the first
	Hash    [32]byte // its hash_N (zero before the first)
	File    uint64   // number of the current file in the chain: 1 for the first, +1 per rotation
	Records uint64   // lines in the current file, seals included
	Sealed  Reason   // reason of the seal that is the last line; "" when the last line is an ordinary record
}

// marker starts the chain field; chainStart starts a record that begins
// with one; sealStart starts every seal's record.
const (
	marker     = `"` + auditlog.ChainKey + `":{"n":`
	chainStart = `{"` + auditlog.ChainKey + `":`
	sealStart  = `{"` + auditlog.SealKey + `":`
)

// Append appends to dst the chained line for the record p (without a
// newline) and advances h to it. p must be one compact JSON object on one
// line, as encoding/json writes it: Append checks only that it starts with
// '{', ends with '}' and contains no newline (ErrNotObject), that the line
// stays within auditlog.MaxLine (auditlog.ErrLineTooLong), and that it
// does not begin with a chain or seal field (auditlog.ChainKey,
// auditlog.SealKey: ErrReserved); a top-level chain field elsewhere is the
// caller's to keep out. On error dst and h are unchanged.
//
// Append hashes p once and allocates only when dst lacks the capacity for
// the line (len(p) + at most 186 bytes). It does not keep p or dst.
func (h *Head) Append(dst, p []byte) ([]byte, error) {
	if err := checkRecord(p); err != nil {
		return dst, err
	}
	if bytes.HasPrefix(p, []byte(sealStart)) {
		return dst, ErrReserved
	}
	return h.append(dst, p, nil), nil
}

func checkRecord(p []byte) error {
	if len(p) < 2 || p[0] != '{' || p[len(p)-1] != '}' || bytes.IndexByte(p, '\n') >= 0 {
		return ErrNotObject
	}
	if len(p)+maxSuffix > auditlog.MaxLine {
		return fmt.Errorf("chain: record of %d bytes: %w", len(p), auditlog.ErrLineTooLong)
	}
	// Only a first field of that name is refused: finding a top-level one
	// anywhere would take a parse, and the reader anchors on the last
	// chain field, which Append puts after all of p, so a nested one (an
	// event's requestObject may carry any key) is harmless. Keeping
	// top-level ones out is the caller's part (package audit quarantines
	// events with top-level keys under auditlog.ReservedPrefix).
	if bytes.HasPrefix(p, []byte(chainStart)) {
		return ErrReserved
	}
	return nil
}

// maxSuffix is the longest chain field with its comma and closing brace:
// "," marker, 20 digits `,"prev":"` 64 `","hash":"` 64
// `","sig":"` 88 `"}}`.
const maxSuffix = 1 + len(marker) + 20 + 9 + 64 + 10 + 64 + 9 + 88 + 3

// append writes the line for p and advances h; key signs it when not nil.
func (h *Head) append(dst, p []byte, key ed25519.PrivateKey) []byte {
	n := h.N + 1
	hash := Sum(h.Hash, n, p)
	dst = slices.Grow(dst, len(p)+maxSuffix)
	dst = append(dst, p[:len(p)-1]...)
	if len(p) > 2 {
		dst = append(dst, ',')
	}
	dst = append(dst, marker...)
	dst = strconv.AppendUint(dst, n, 10)
	dst = append(dst, `,"prev":"`...)
	dst = hex.AppendEncode(dst, h.Hash[:])
	dst = append(dst, `","hash":"`...)
	dst = hex.AppendEncode(dst, hash[:])
	if key != nil {
		dst = append(dst, `","sig":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, ed25519.Sign(key, hash[:]))
	}
	dst = append(dst, `"}}`...)
	h.N, h.Hash = n, hash
	h.Records++
	h.Sealed = ""
	return dst
}

// Reason says why a seal was written.
type Reason string

// The seal reasons.
const (
	// ReasonOpen is the first line of every file: a new chain's first
	// file, or the fresh file after a rotation. Seal increments Head.File
	// and restarts Head.Records.
	ReasonOpen Reason = "open"
	// ReasonResume is the first line the writer adds to an existing file
	// after re-opening it (restart, crash, upgrade), chaining to the file's
	// last complete line. Its Clean field says whether that line was a
	// close seal.
	ReasonResume Reason = "resume"
	// ReasonInterval is written periodically, so that little is left
	// unsealed at any time.
	ReasonInterval Reason = "interval"
	// ReasonRotate is the last line of a file that is about to be rotated
	// away; the next line is the next file's open seal.
	ReasonRotate Reason = "rotate"
	// ReasonClose is written when the writer closes the file.
	ReasonClose Reason = "close"
	// ReasonKey is written when the writer's signing key changes: signed
	// with the new key (unsigned when signing was turned off), it makes
	// everything before it verify with that key from then on.
	ReasonKey Reason = "key"
)

func (r Reason) valid() bool {
	switch r {
	case ReasonOpen, ReasonResume, ReasonInterval, ReasonRotate, ReasonClose, ReasonKey:
		return true
	}
	return false
}

// Sealer holds what a writer puts into seals. A nil *Sealer seals unsigned,
// with Keep 0 and the current time. A Sealer is only read, so one may be
// shared by writers in several goroutines.
type Sealer struct {
	Key  ed25519.PrivateKey // signs seals when set; nil: seals are unsigned
	Keep int                // files rotation keeps, the current one included (sink/file's MaxFiles); 0: no rotation
	Now  func() time.Time   // the seals' clock; nil: time.Now
}

// Seal appends to dst a seal line for reason (without a newline) and
// advances h, like Append. ReasonOpen starts a new file: h.File is
// incremented (to 1 for a new chain) and h.Records restarts. A resume seal
// records Clean = (h.Sealed == ReasonClose). The seal is signed when s has
// a Key. Errors (dst and h unchanged): ErrReason, or ErrKey for a key that
// is not ed25519.PrivateKeySize bytes long.
func (h *Head) Seal(dst []byte, reason Reason, s *Sealer) ([]byte, error) {
	return h.seal(dst, reason, s, Lost{}, Unvouched{})
}

// SealChecked is Seal for the first seal a writer adds when it opens a file
// (reason ReasonOpen or ReasonResume, else ErrReason), with h recovered
// from the files, and two heads from a record the writer keeps outside
// them (the zero Head when it has none): sealed, as of its last seal that
// it knows reached the files, and written, as of the last record it
// wrote. When h is behind sealed (sealed.N > h.N, or the same N with
// another hash) sealed records were cut off or deleted since, and the seal
// says so in its Lost: After h.N, Expected sealed.N, File sealed.File,
// Hash sealed.Hash. When h is ahead of written, the files hold records the
// writer did not write (appended while it was stopped), and the seal says
// so in its Unvouched: After written.N, Last h.N, Hash written.Hash.
// Verify reports both. A sealed older than h is normal (lines were written
// after that seal) and, with h at written, the seal is a plain one.
func (h *Head) SealChecked(dst []byte, reason Reason, s *Sealer, sealed, written Head) ([]byte, error) {
	if reason != ReasonOpen && reason != ReasonResume {
		return dst, fmt.Errorf("%w %q: SealChecked writes open and resume seals only", ErrReason, reason)
	}
	var lost Lost
	var unv Unvouched
	switch {
	case sealed.N > h.N || sealed.N == h.N && sealed.N > 0 && sealed.Hash != h.Hash:
		lost = Lost{After: h.N, Expected: sealed.N, File: sealed.File, Hash: sealed.Hash}
	case written.N > 0 && h.N > written.N:
		unv = Unvouched{After: written.N, Last: h.N, Hash: written.Hash}
	}
	return h.seal(dst, reason, s, lost, unv)
}

func (h *Head) seal(dst []byte, reason Reason, s *Sealer, lost Lost, unv Unvouched) ([]byte, error) {
	if !reason.valid() {
		return dst, fmt.Errorf("%w %q", ErrReason, reason)
	}
	var (
		key  ed25519.PrivateKey
		keep int
		now  = time.Now
	)
	if s != nil {
		key, keep = s.Key, s.Keep
		if s.Now != nil {
			now = s.Now
		}
	}
	if key != nil && len(key) != ed25519.PrivateKeySize {
		return dst, fmt.Errorf("%w: private key is %d bytes, want %d", ErrKey, len(key), ed25519.PrivateKeySize)
	}
	next := *h
	if reason == ReasonOpen {
		next.File++
		next.Records = 0
	}
	seal := Seal{
		Reason:    reason,
		Clean:     reason == ReasonResume && h.Sealed == ReasonClose,
		Time:      now().UTC(),
		File:      next.File,
		Keep:      keep,
		Records:   next.Records + 1,
		Lost:      lost,
		Unvouched: unv,
	}
	if key != nil {
		seal.Key = Fingerprint(key.Public().(ed25519.PublicKey))
	}
	dst = next.append(dst, seal.appendJSON(nil), key)
	next.Sealed = reason
	*h = next
	return dst, nil
}
