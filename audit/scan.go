package audit

import (
	"encoding/json"
	"strings"
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
			dst = append(dst, span{key: key, start: vs, end: d.i, space: inner})
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
