package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrNotSeal is returned by ParseSeal for a record that is not a seal.
var ErrNotSeal = errors.New("chain: not a seal")

// Seal is the content of a seal record, whose p is
//
//	{"ucp-audit/seal":{"reason":R,"clean":B,"time":T,"file":F,"keep":K,"key":FP,"records":C}}
//
// with the fields in that order, "clean" only in resume seals and "key"
// only in signed ones.
type Seal struct {
	Reason  Reason
	Clean   bool      // resume seals: the file's last line before it was a close seal
	Time    time.Time // when it was written, UTC
	File    uint64    // the file's number in the chain: 1 for the first file, +1 per rotation
	Keep    int       // files rotation keeps, the current one included; 0: no rotation
	Key     string    // Fingerprint of the signing key; "" when unsigned
	Records uint64    // lines in this file so far, this seal included
}

type sealWire struct {
	Reason  Reason `json:"reason"`
	Clean   *bool  `json:"clean,omitempty"`
	Time    string `json:"time"`
	File    uint64 `json:"file"`
	Keep    int    `json:"keep"`
	Key     string `json:"key,omitempty"`
	Records uint64 `json:"records"`
}

type sealRecord struct {
	Seal sealWire `json:"ucp-audit/seal"`
}

// appendJSON appends the seal's record p, in its one canonical form.
func (s Seal) appendJSON(dst []byte) []byte {
	w := sealWire{Reason: s.Reason, Time: s.Time.UTC().Format(time.RFC3339Nano), File: s.File, Keep: s.Keep, Key: s.Key, Records: s.Records}
	if s.Reason == ReasonResume {
		w.Clean = &s.Clean
	}
	b, err := json.Marshal(sealRecord{w})
	if err != nil {
		panic(err) // strings and numbers only: cannot fail
	}
	return append(dst, b...)
}

// ParseSeal decodes the record p (as ParseLine returns it) as a seal. A
// record that does not begin with a "ucp-audit/seal" field is ErrNotSeal;
// one that does but is not exactly in the canonical form Seal writes
// (fields, order, spelling, valid reason) is an error wrapping ErrMalformed.
func ParseSeal(p []byte) (Seal, error) {
	if !bytes.HasPrefix(p, []byte(sealStart)) {
		return Seal{}, ErrNotSeal
	}
	var r sealRecord
	d := json.NewDecoder(bytes.NewReader(p))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		return Seal{}, fmt.Errorf("%w: seal: %v", ErrMalformed, err)
	}
	w := r.Seal
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
	if !bytes.Equal(s.appendJSON(nil), p) {
		return Seal{}, fmt.Errorf("%w: seal is not in canonical form", ErrMalformed)
	}
	return s, nil
}
