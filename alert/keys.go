package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors of Parse and Compile, always inside a *KeyError naming the key;
// test with errors.Is.
var (
	// ErrUnknownKey: a key the section does not have (keys are matched
	// exactly: "Name" is not "name").
	ErrUnknownKey = errors.New("unknown key")
	// ErrInvalidValue: a value of the wrong type or out of range, a key
	// given twice, or a missing required key.
	ErrInvalidValue = errors.New("invalid value")
	// ErrInvalidRule: a rule's expression does not compile, is not
	// boolean, costs too much, or fails on every record of one kind.
	ErrInvalidRule = errors.New("invalid rule")
)

// KeyError names the offending key of the "alerts" section by its dotted
// path from the node configuration's top ("alerts.rules[2].when"). Values
// are never shown: a URL may hold a token.
type KeyError struct {
	Key    string // "alerts.outputs[0].url"
	Err    error  // ErrUnknownKey, ErrInvalidValue or ErrInvalidRule
	Reason string // why, when there is more to say
	Want   string // what is allowed, or the known keys
}

func (e *KeyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ucp-audit: node configuration %q: %v", e.Key, e.Err)
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	if e.Want != "" {
		if errors.Is(e.Err, ErrUnknownKey) {
			b.WriteString(" (known: " + e.Want + ")")
		} else {
			b.WriteString(" (want " + e.Want + ")")
		}
	}
	return b.String()
}

func (e *KeyError) Unwrap() error { return e.Err }

func invalid(key, reason, want string) *KeyError {
	return &KeyError{Key: key, Err: ErrInvalidValue, Reason: reason, Want: want}
}

// object is one JSON object of the section, read strictly: every key
// known, none given twice, nothing after it.
type object struct {
	at   string
	vals map[string]json.RawMessage
}

// readObject reads raw, the value at key at, as an object with the known
// keys. JSON null reads as an empty object.
func readObject(at string, raw json.RawMessage, known ...string) (object, error) {
	o := object{at: at, vals: map[string]json.RawMessage{}}
	if isNull(raw) {
		return o, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return o, invalid(at, "not a JSON object", "")
	}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return o, invalid(at, "not JSON", "")
		}
		k, _ := tok.(string)
		if !slices.Contains(known, k) {
			return o, &KeyError{Key: join(at, k), Err: ErrUnknownKey, Want: strings.Join(known, ", ")}
		}
		if _, dup := o.vals[k]; dup {
			return o, invalid(join(at, k), "given twice", "")
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return o, invalid(join(at, k), "not JSON", "")
		}
		o.vals[k] = v
	}
	if _, err := d.Token(); err != nil {
		return o, invalid(at, "not JSON", "")
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return o, invalid(at, "more follows the object", "")
	}
	return o, nil
}

func isNull(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	return len(s) == 0 || string(s) == "null"
}

func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

func index(at string, i int) string { return at + "[" + strconv.Itoa(i) + "]" }

// has reports whether key k is set (not absent, not null).
func (o object) has(k string) bool { return !isNull(o.vals[k]) }

// str reads the string at k; "" when absent.
func (o object) str(k, want string) (string, error) {
	if !o.has(k) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(o.vals[k], &s); err != nil {
		return "", invalid(join(o.at, k), "not a string", want)
	}
	return s, nil
}

// required reads the non-empty string at k.
func (o object) required(k, want string) (string, error) {
	s, err := o.str(k, want)
	if err == nil && strings.TrimSpace(s) == "" {
		err = invalid(join(o.at, k), "missing", want)
	}
	return s, err
}

// list reads the array at k as its raw elements; nil when absent.
func (o object) list(k, want string) ([]json.RawMessage, error) {
	if !o.has(k) {
		return nil, nil
	}
	var l []json.RawMessage
	if err := json.Unmarshal(o.vals[k], &l); err != nil {
		return nil, invalid(join(o.at, k), "not a list", want)
	}
	return l, nil
}

// stringList reads the array of strings at k; nil when absent.
func (o object) stringList(k, want string) ([]string, error) {
	l, err := o.list(k, want)
	if err != nil || l == nil {
		return nil, err
	}
	out := make([]string, 0, len(l))
	for i, raw := range l {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || s == "" {
			return nil, invalid(index(join(o.at, k), i), "not a non-empty string", want)
		}
		out = append(out, s)
	}
	return out, nil
}

// duration reads a Go duration string ("90s", "5m") at k, within [lo, hi];
// def when absent.
func (o object) duration(k string, def, lo, hi time.Duration) (time.Duration, error) {
	want := fmt.Sprintf("a duration from %v to %v, such as %q", lo, hi, "5m")
	s, err := o.str(k, want)
	if err != nil || !o.has(k) {
		return def, err
	}
	d, perr := time.ParseDuration(s)
	if perr != nil || d < lo || d > hi {
		return 0, invalid(join(o.at, k), fmt.Sprintf("%q", s), want)
	}
	return d, nil
}

// count reads a whole number at k within [lo, hi]; def when absent.
func (o object) count(k string, def, lo, hi int) (int, error) {
	if !o.has(k) {
		return def, nil
	}
	want := fmt.Sprintf("a whole number from %d to %d", lo, hi)
	var n int
	if err := json.Unmarshal(o.vals[k], &n); err != nil || n < lo || n > hi {
		return 0, invalid(join(o.at, k), "", want)
	}
	return n, nil
}

// boolean reads true or false at k; def when absent.
func (o object) boolean(k string, def bool) (bool, error) {
	if !o.has(k) {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(o.vals[k], &b); err != nil {
		return false, invalid(join(o.at, k), "", "true or false")
	}
	return b, nil
}

// statePath reads the path of a file below dir at k; "" when absent.
func (o object) statePath(k, dir string) (string, error) {
	want := "an absolute path of a file below " + dir
	s, err := o.str(k, want)
	if err != nil || s == "" {
		return "", err
	}
	p := filepath.Clean(s)
	rel, rerr := filepath.Rel(dir, p)
	if !filepath.IsAbs(s) || rerr != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", invalid(join(o.at, k), "not below "+dir, want)
	}
	return p, nil
}
