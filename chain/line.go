package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
)

// Errors returned by the reading side.
var (
	// ErrNoChain: the line has no chain field.
	ErrNoChain = errors.New("chain: line has no chain field")
	// ErrMalformed: the line has a chain field (or a seal) that is not
	// exactly in the form this package writes.
	ErrMalformed = errors.New("chain: malformed chain field")
)

// Link is the chain field of one line.
type Link struct {
	N    uint64   // the line's number in the chain, from 1
	Prev [32]byte // hash of line N-1; zero for N == 1
	Hash [32]byte // this line's hash_N, as the line claims it
	Sig  []byte   // Ed25519 signature of Hash (seals of a signed chain); nil when absent
}

// Valid reports whether l.Hash is the hash of record p at l's position,
// i.e. Sum(l.Prev, l.N, p) == l.Hash. It does not check the signature.
func (l Link) Valid(p []byte) bool {
	return Sum(l.Prev, l.N, p) == l.Hash
}

// ParseLine splits a line (without its newline) into the record p that was
// given to Append or Seal and its chain field. It reads only the line's end:
// the chain field must be the last field of the line's top-level object, in
// exactly the form Append writes (lowercase hex, N in decimal without leading
// zeros, the signature in padded standard base64), so that p is recovered
// byte for byte. A line without the field is ErrNoChain; anything else
// that is not exactly that form wraps ErrMalformed. ParseLine does not check
// the hash (see Link.Valid). p is newly allocated; line is not kept.
func ParseLine(line []byte) (p []byte, l Link, err error) {
	body, l, err := parse(line)
	if err != nil {
		return nil, Link{}, err
	}
	return append(body[:len(body):len(body)], '}'), l, nil
}

// parse is ParseLine without copying the record: it is body + "}".
func parse(line []byte) (body []byte, l Link, err error) {
	i := bytes.LastIndex(line, []byte(marker))
	if i < 0 {
		return nil, Link{}, ErrNoChain
	}
	switch {
	case i == 1 && line[0] == '{':
		body = line[:1]
	case i > 2 && line[0] == '{' && line[i-1] == ',':
		body = line[:i-1]
	default:
		return nil, Link{}, fmt.Errorf("%w: not the last field of a JSON object", ErrMalformed)
	}
	s := line[i+len(marker):]
	j := 0
	for ; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
		d := uint64(s[j] - '0')
		if l.N > (math.MaxUint64-d)/10 {
			return nil, Link{}, fmt.Errorf("%w: n overflows", ErrMalformed)
		}
		l.N = l.N*10 + d
	}
	if j == 0 || s[0] == '0' {
		return nil, Link{}, fmt.Errorf("%w: n", ErrMalformed)
	}
	s = s[j:]
	if s, err = hexField(s, `,"prev":"`, "prev", l.Prev[:]); err != nil {
		return nil, Link{}, err
	}
	if s, err = hexField(s, `","hash":"`, "hash", l.Hash[:]); err != nil {
		return nil, Link{}, err
	}
	if bytes.HasPrefix(s, []byte(`","sig":"`)) {
		s = s[len(`","sig":"`):]
		const n = 88 // base64 of 64 bytes
		if len(s) < n {
			return nil, Link{}, fmt.Errorf("%w: sig", ErrMalformed)
		}
		l.Sig = make([]byte, base64.StdEncoding.DecodedLen(n)) // 66: unpadded text decodes longer
		if k, err := base64.StdEncoding.Strict().Decode(l.Sig, s[:n]); err != nil || k != ed25519.SignatureSize {
			return nil, Link{}, fmt.Errorf("%w: sig", ErrMalformed)
		}
		l.Sig = l.Sig[:ed25519.SignatureSize:ed25519.SignatureSize]
		s = s[n:]
	}
	if string(s) != `"}}` {
		return nil, Link{}, fmt.Errorf("%w: end of line", ErrMalformed)
	}
	return body, l, nil
}

// hexField reads prefix and then 64 lowercase hex digits into dst.
func hexField(s []byte, prefix, name string, dst []byte) ([]byte, error) {
	if !bytes.HasPrefix(s, []byte(prefix)) || len(s) < len(prefix)+64 {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, name)
	}
	s = s[len(prefix):]
	for _, c := range s[:64] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, fmt.Errorf("%w: %s: not lowercase hex", ErrMalformed, name)
		}
	}
	if _, err := hex.Decode(dst, s[:64]); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, name)
	}
	return s[64:], nil
}
