package audit

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// maxNesting is encoding/json's nesting limit: the outermost object or
// array counts as 1, and more than this many levels is a syntax error.
const maxNesting = 10000

// scanner is a validating one-pass JSON reader over a string. It accepts
// exactly the JSON text encoding/json accepts (the caller has already
// checked that the whole line is valid UTF-8), nesting included, but it
// builds nothing: the fast path of Parse uses it to find member spans, and
// falls back to encoding/json for anything it does not accept, so error
// messages stay those of encoding/json.
type scanner struct {
	s     string
	i     int
	depth int
	space bool // white space was skipped since it was last cleared
}

// span is one member of a JSON object: its decoded key and the span of
// its value in the scanned text.
type span struct {
	key        string
	start, end int
	space      bool // the value holds insignificant white space
	plain      bool // key is written back as it is between quotes (see plainKey)
}

// ws skips white space.
func (d *scanner) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
			d.space = true
		default:
			return
		}
	}
}

// value checks one JSON value starting at d.i (no leading white space) and
// moves past it (no trailing white space).
func (d *scanner) value() bool {
	if d.i >= len(d.s) {
		return false
	}
	switch d.s[d.i] {
	case '{':
		return d.object()
	case '[':
		return d.array()
	case '"':
		_, ok := d.str()
		return ok
	case 't':
		return d.lit("true")
	case 'f':
		return d.lit("false")
	case 'n':
		return d.lit("null")
	}
	return d.number()
}

func (d *scanner) lit(w string) bool {
	if !strings.HasPrefix(d.s[d.i:], w) {
		return false
	}
	d.i += len(w)
	return true
}

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *scanner) number() bool {
	s, i := d.s, d.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		}
	}
	d.i = i
	return true
}

// strSafe marks the bytes that may appear in a JSON string as they are
// and need no attention: everything but control characters, '"' and '\'.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str checks a JSON string starting at d.i (the opening quote) and moves
// past it. It reports whether the string holds escapes.
func (d *scanner) str() (escaped, ok bool) {
	s := d.s
	i := d.i + 1
	for {
		for i+8 <= len(s) && !strStop(load64(s, i)) { // eight bytes at a time
			i += 8
		}
		for i < len(s) && strSafe[s[i]] {
			i++
		}
		if i >= len(s) {
			return false, false
		}
		switch s[i] {
		case '"':
			d.i = i + 1
			return escaped, true
		case '\\':
			escaped = true
			if i+1 >= len(s) {
				return false, false
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s) {
					return false, false
				}
				for _, c := range []byte(s[i+2 : i+6]) {
					if !isHex(c) {
						return false, false
					}
				}
				i += 6
			default:
				return false, false
			}
		default: // a control character
			return false, false
		}
	}
}

// Bytes in words of eight, for the loops that look for the few bytes that
// need attention (as in "Bit Twiddling Hacks": a word has a zero byte if
// (x-lsb)&^x&msb != 0, and a byte below n <= 128 if (x-n*lsb)&^x&msb != 0;
// neither test reports a byte that is not there).
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// load64 returns the eight bytes of s from i as a little-endian word.
func load64[T ~string | ~[]byte](s T, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// strStop reports whether the word x holds a control character, '"' or
// '\\': a byte that str must look at.
func strStop(x uint64) bool {
	q := x ^ (lsb * '"')
	b := x ^ (lsb * '\\')
	return ((x-lsb*0x20)&^x|(q-lsb)&^q|(b-lsb)&^b)&msb != 0
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (d *scanner) array() bool {
	if d.depth++; d.depth > maxNesting {
		return false
	}
	d.i++
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		d.depth--
		return true
	}
	for {
		if !d.value() {
			return false
		}
		d.ws()
		if d.i >= len(d.s) {
			return false
		}
		switch d.s[d.i] {
		case ',':
			d.i++
			d.ws()
		case ']':
			d.i++
			d.depth--
			return true
		default:
			return false
		}
	}
}

func (d *scanner) object() bool {
	_, ok := d.members(nil, false)
	return ok
}

// members checks the object starting at d.i and moves past it. If keep,
// it appends the members to dst in document order, keys decoded.
func (d *scanner) members(dst []span, keep bool) ([]span, bool) {
	if d.depth++; d.depth > maxNesting {
		return dst, false
	}
	d.i++
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		d.depth--
		return dst, true
	}
	for {
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return dst, false
		}
		ks := d.i
		esc, ok := d.str()
		if !ok {
			return dst, false
		}
		ke := d.i
		d.ws()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return dst, false
		}
		d.i++
		d.ws()
		vs := d.i
		outer := d.space
		d.space = false
		if !d.value() {
			return dst, false
		}
		inner := d.space
		d.space = outer || inner
		if keep {
			key, ok := decodeString(d.s[ks:ke], esc)
			if !ok {
				return dst, false
			}
			dst = append(dst, span{key: key, start: vs, end: d.i, space: inner, plain: !esc && isASCII(key)})
		}
		d.ws()
		if d.i >= len(d.s) {
			return dst, false
		}
		switch d.s[d.i] {
		case ',':
			d.i++
			d.ws()
		case '}':
			d.i++
			d.depth--
			return dst, true
		default:
			return dst, false
		}
	}
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if load64(s, i)&msb != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// decodeString returns the value of a valid JSON string literal (quotes
// included). Without escapes it is a substring of raw; escapes are decoded
// by encoding/json, so lone surrogates become U+FFFD exactly as there.
func decodeString(raw string, escaped bool) (string, bool) {
	if !escaped {
		return raw[1 : len(raw)-1], true
	}
	var s string
	if json.Unmarshal([]byte(raw), &s) != nil {
		return "", false
	}
	return s, true
}
