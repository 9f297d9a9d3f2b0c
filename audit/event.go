package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one audit event: the "audit" object of a ucp-controller line.
// Every field is kept as raw JSON so that it is written back as it came;
// the fields Parse validated are also held in typed form.
type Event struct {
	fields []field // the audit object, sorted by key; user and annotations are rebuilt by Encode

	user        []field      // the "user" object, sorted by key
	extra       []extraEntry // user.extra, sorted by key; nil if absent or null
	annotations []kv         // sorted by key; nil if absent or null; reserved keys removed

	auditID, stage, requestURI, verb, username string
	level                                      Level
	receivedAt                                 time.Time

	licenseHashed bool // Apply already hashed user.extra.licenseKey

	// Room for the fields of the usual event and its small user.extra,
	// so that they need no allocation of their own.
	fieldBuf [16]field
	extraBuf [2]extraEntry
	strBuf   [4]string
}

// field is one member of a decoded JSON object: the key (decoded) and the
// value as raw JSON text. Objects are held as slices sorted by key, one
// field per key (the last duplicate wins, as encoding/json decodes into a
// map), which is the order Encode writes them in.
type field struct {
	key   string
	raw   string // the value as it came; a substring of the line's private copy
	space bool   // raw may hold insignificant white space: compact it on output
	// plainKey says that key needs no escaping in JSON: it came without
	// escapes and is all ASCII (and the line has no control characters in
	// strings, nor '"' or '\\' unescaped).
	plainKey bool
}

// extraEntry is one user.extra member. A nil list is JSON null.
type extraEntry struct {
	key  string
	list []string
}

// kv is one annotation.
type kv struct{ key, value string }

// sortFields sorts fs by key, keeping for each key only the last field in
// document order.
func sortFields(fs []field) []field {
	return sortByKey(fs, func(f field) string { return f.key })
}

// sortByKey sorts s by key, keeping for each key only the last element in
// the original order.
func sortByKey[E any](s []E, key func(E) string) []E {
	sorted := true
	for i := 1; i < len(s) && sorted; i++ {
		sorted = key(s[i-1]) < key(s[i])
	}
	if sorted { // the usual case: logrus and encoding/json write sorted keys
		return s
	}
	slices.SortStableFunc(s, func(a, b E) int { return strings.Compare(key(a), key(b)) })
	return dedupLast(s, key)
}

// dedupLast removes all but the last of each run of elements with equal
// keys from the sorted s.
func dedupLast[E any](s []E, key func(E) string) []E {
	if len(s) < 2 {
		return s
	}
	out := s[:0]
	for i := range s {
		if i+1 < len(s) && key(s[i]) == key(s[i+1]) {
			continue
		}
		out = append(out, s[i])
	}
	return out
}

// lookup returns the index of key in the sorted fs.
func lookup(fs []field, key string) (int, bool) {
	if len(fs) <= 16 {
		for i := range fs {
			if fs[i].key >= key {
				return i, fs[i].key == key
			}
		}
		return len(fs), false
	}
	return slices.BinarySearchFunc(fs, key, func(f field, k string) int { return strings.Compare(f.key, k) })
}

// get returns the field named key.
func get(fs []field, key string) (field, bool) {
	if i, ok := lookup(fs, key); ok {
		return fs[i], true
	}
	return field{}, false
}

// set sets or inserts the field named key in the sorted fs.
func set(fs []field, f field) []field {
	i, ok := slices.BinarySearchFunc(fs, f.key, func(f field, k string) int { return strings.Compare(f.key, k) })
	if ok {
		fs[i] = f
		return fs
	}
	return slices.Insert(fs, i, f)
}

// AuditID returns the event's auditID.
func (e *Event) AuditID() string { return e.auditID }

// Stage returns the stage in its canonical spelling, e.g. "ResponseComplete".
func (e *Event) Stage() string { return e.stage }

// Level returns the event's own audit level.
func (e *Event) Level() Level { return e.level }

// RequestURI returns the requestURI as written in the event.
func (e *Event) RequestURI() string { return e.requestURI }

// Verb returns the verb as written (an HTTP method or a Kubernetes verb).
func (e *Event) Verb() string { return e.verb }

// Username returns user.username (an account ID in UCP).
func (e *Event) Username() string { return e.username }

// HumanUser returns user.extra.username[0], the login name, or "".
func (e *Event) HumanUser() string {
	if u := e.extraList("username"); len(u) > 0 {
		return u[0]
	}
	return ""
}

// extraList returns user.extra[key].
func (e *Event) extraList(key string) []string {
	for _, x := range e.extra {
		if x.key == key {
			return x.list
		}
	}
	return nil
}

// ReceivedAt returns requestReceivedTimestamp.
func (e *Event) ReceivedAt() time.Time { return e.receivedAt }

// stages maps lower-cased stage names to their canonical spelling.
var stages = map[string]string{
	"requestreceived":  "RequestReceived",
	"responsestarted":  "ResponseStarted",
	"responsecomplete": "ResponseComplete",
	"panic":            "Panic",
}

// Parse decodes and validates one log line. It returns ErrNotAudit when
// LooksLikeAudit(line) is false, and a *ValidationError (matching
// ErrInvalid) naming the first bad field when the line looks like audit but
// cannot be used. Annotations under the reserved "ucp-audit/" prefix are
// dropped, so only this package can set them. A line that is not valid
// UTF-8 is rejected whole, never repaired.
func Parse(line []byte) (*Event, error) {
	if !LooksLikeAudit(line) {
		return nil, ErrNotAudit
	}
	// encoding/json would turn invalid UTF-8 into U+FFFD in the strings it
	// decodes but keep it as it came in the raw fields written back: the
	// validated auditID would differ from the forwarded one, and audit.log
	// would hold bytes that are not JSON text. An audit trail must not be
	// altered silently: such a line is quarantined (raw-base64) instead.
	if !utf8.Valid(line) {
		return nil, &ValidationError{Reason: fmt.Sprintf("not valid UTF-8 (first bad byte at offset %d)", invalidUTF8At(line))}
	}
	if e, ok := parseFast(line); ok {
		return e, nil
	}
	// Anything the fast path does not take (not JSON, a field to reject,
	// or a rare spelling it leaves to encoding/json) goes to parseSlow,
	// which gives the same event and decides the errors.
	return parseSlow(line)
}

// invalidUTF8At returns the offset of the first byte of b that is not part
// of a valid UTF-8 sequence, or -1.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// jsonKind names the JSON type of a valid raw value from its first byte.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// describe names the type of raw for an error, looking one level into arrays.
func describe(raw json.RawMessage) string {
	k := jsonKind(raw)
	if k == "array" {
		return "array with a non-string element"
	}
	return k
}

// isNull reports whether raw is the JSON null.
func isNull(raw json.RawMessage) bool { return jsonKind(raw) == "null" }
