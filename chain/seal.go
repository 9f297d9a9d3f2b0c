package chain

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

// ErrNotSeal is returned by ParseSeal for a record that is not a seal.
var ErrNotSeal = errors.New("chain: not a seal")

// Seal is the content of a seal record, whose p is
//
//	{"ucp-audit/seal":{"reason":R,"clean":B,"time":T,"file":F,"keep":K,"key":FP,"records":C,"lost":L,"unvouched":U}}
//
// with the fields in that order, "clean" only in resume seals, "key" only
// in signed ones, "lost" only in open and resume seals whose writer found
// sealed records missing (see Lost), and "unvouched" only in open and
// resume seals whose writer found records after the last one it wrote
// (see Unvouched).
type Seal struct {
	Reason  Reason
	Clean   bool      // resume seals: the file's last line before it was a close seal
	Time    time.Time // when it was written, UTC
	File    uint64    // the file's number in the chain: 1 for the first file, +1 per rotation
	Keep    int       // files rotation keeps, the current one included; 0: no rotation
	Key     string    // Fingerprint of the signing key; "" when unsigned
	Records uint64    // lines in this file so far, this seal included
	Lost    Lost      // open and resume seals: sealed records the files no longer hold; zero when none
	// Unvouched (open and resume seals): records the files hold after the
	// last one the writer wrote; zero when none.
	Unvouched Unvouched
}

// Unvouched is what a writer found after its own last record when it
// re-opened a file: records After+1 to Last, which it did not write (its
// own last record was After, of hash Hash). The seal after them chains to
// them, as every record does, but does not vouch for them: Verify reports
// them. Its JSON form is
//
//	"unvouched":{"after":A,"last":L,"hash":"HASH"}
//
// The zero Unvouched is none.
type Unvouched struct {
	After uint64   // N of the last record the writer wrote
	Last  uint64   // N of the last record in the files, the seal's N-1
	Hash  [32]byte // record After's hash_N
}

// IsZero reports whether u is none.
func (u Unvouched) IsZero() bool { return u == Unvouched{} }

type unvouchedWire struct {
	After uint64 `json:"after"`
	Last  uint64 `json:"last"`
	Hash  string `json:"hash"`
}

// Lost is what a writer found missing when it re-opened a file: the files
// ended at record After (the seal carrying Lost is record After+1), but by
// the record it keeps outside the files its last seal that had reached
// them was record Expected, of hash Hash, in file File. Its JSON form is
//
//	"lost":{"after":A,"expected":E,"file":F,"hash":"HASH"}
//
// with HASH 64 lowercase hex digits. Expected > After: records After+1 to
// Expected were cut off (a resume seal) or went with the newest files (an
// open seal). Expected == After with another hash: the file ending at
// record After is not the one the writer sealed. The zero Lost is none.
type Lost struct {
	After    uint64   // N of the last record in the files when the writer re-opened them
	Expected uint64   // N of the last seal the writer had recorded
	File     uint64   // the number of the file that seal was in
	Hash     [32]byte // that seal's hash_N
}

// IsZero reports whether l is none.
func (l Lost) IsZero() bool { return l == Lost{} }

type lostWire struct {
	After    uint64 `json:"after"`
	Expected uint64 `json:"expected"`
	File     uint64 `json:"file"`
	Hash     string `json:"hash"`
}

type sealWire struct {
	Reason    Reason         `json:"reason"`
	Clean     *bool          `json:"clean,omitempty"`
	Time      string         `json:"time"`
	File      uint64         `json:"file"`
	Keep      int            `json:"keep"`
	Key       string         `json:"key,omitempty"`
	Records   uint64         `json:"records"`
	Lost      *lostWire      `json:"lost,omitempty"`
	Unvouched *unvouchedWire `json:"unvouched,omitempty"`
}

// appendJSON appends the seal's record p, in its one canonical form.
func (s Seal) appendJSON(dst []byte) []byte {
	w := sealWire{Reason: s.Reason, Time: s.Time.UTC().Format(time.RFC3339Nano), File: s.File, Keep: s.Keep, Key: s.Key, Records: s.Records}
	if s.Reason == ReasonResume {
		w.Clean = &s.Clean
	}
	if !s.Lost.IsZero() {
		l := s.Lost
		w.Lost = &lostWire{After: l.After, Expected: l.Expected, File: l.File, Hash: hex.EncodeToString(l.Hash[:])}
	}
	if u := s.Unvouched; !u.IsZero() {
		w.Unvouched = &unvouchedWire{After: u.After, Last: u.Last, Hash: hex.EncodeToString(u.Hash[:])}
	}
	b, err := json.Marshal(map[string]sealWire{auditlog.SealKey: w})
	if err != nil {
		panic(err) // strings and numbers only: cannot fail
	}
	return append(dst, b...)
}

// ParseSeal decodes the record p (as ParseLine returns it) as a seal. A
// record that does not begin with a seal field (auditlog.SealKey) is ErrNotSeal;
// one that does but is not exactly in the canonical form Seal writes
// (fields, order, spelling, valid reason, "lost" only in open and resume
// seals with Expected >= After, Expected and File > 0) is an error
// wrapping ErrMalformed. Seals written before "lost" existed parse as
// before, with a zero Lost.
func ParseSeal(p []byte) (Seal, error) {
	if !bytes.HasPrefix(p, []byte(sealStart)) {
		return Seal{}, ErrNotSeal
	}
	var r map[string]sealWire
	d := json.NewDecoder(bytes.NewReader(p))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		return Seal{}, fmt.Errorf("%w: seal: %v", ErrMalformed, err)
	}
	if len(r) != 1 {
		return Seal{}, fmt.Errorf("%w: seal: fields other than %s", ErrMalformed, auditlog.SealKey)
	}
	w := r[auditlog.SealKey]
	if !w.Reason.valid() {
		return Seal{}, fmt.Errorf("%w: seal: unknown reason %q", ErrMalformed, w.Reason)
	}
	if (w.Clean != nil) != (w.Reason == ReasonResume) {
		return Seal{}, fmt.Errorf("%w: seal: \"clean\" belongs to resume seals only", ErrMalformed)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return Seal{}, fmt.Errorf("%w: seal: time: %v", ErrMalformed, err)
	}
	s := Seal{Reason: w.Reason, Time: t.UTC(), File: w.File, Keep: w.Keep, Key: w.Key, Records: w.Records}
	if w.Clean != nil {
		s.Clean = *w.Clean
	}
	if s.Keep < 0 || s.File == 0 || s.Records == 0 {
		return Seal{}, fmt.Errorf("%w: seal: file, records must be > 0 and keep >= 0", ErrMalformed)
	}
	if l := w.Lost; l != nil {
		if w.Reason != ReasonOpen && w.Reason != ReasonResume {
			return Seal{}, fmt.Errorf("%w: seal: \"lost\" belongs to open and resume seals only", ErrMalformed)
		}
		if l.Expected == 0 || l.File == 0 || l.Expected < l.After {
			return Seal{}, fmt.Errorf("%w: seal: lost: expected and file must be > 0, expected >= after", ErrMalformed)
		}
		if len(l.Hash) != 64 {
			return Seal{}, fmt.Errorf("%w: seal: lost: hash is not 64 hex digits", ErrMalformed)
		}
		if _, err := hex.Decode(s.Lost.Hash[:], []byte(l.Hash)); err != nil {
			return Seal{}, fmt.Errorf("%w: seal: lost: hash: %v", ErrMalformed, err)
		}
		s.Lost.After, s.Lost.Expected, s.Lost.File = l.After, l.Expected, l.File
	}
	if u := w.Unvouched; u != nil {
		if w.Reason != ReasonOpen && w.Reason != ReasonResume {
			return Seal{}, fmt.Errorf("%w: seal: \"unvouched\" belongs to open and resume seals only", ErrMalformed)
		}
		if u.Last <= u.After || len(u.Hash) != 64 {
			return Seal{}, fmt.Errorf("%w: seal: unvouched: last must be > after, hash 64 hex digits", ErrMalformed)
		}
		if _, err := hex.Decode(s.Unvouched.Hash[:], []byte(u.Hash)); err != nil {
			return Seal{}, fmt.Errorf("%w: seal: unvouched: hash: %v", ErrMalformed, err)
		}
		s.Unvouched.After, s.Unvouched.Last = u.After, u.Last
	}
	if !bytes.Equal(s.appendJSON(nil), p) {
		return Seal{}, fmt.Errorf("%w: seal is not in canonical form", ErrMalformed)
	}
	return s, nil
}
