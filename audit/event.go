package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one audit event: the "audit" object of a ucp-controller line.
// Every field is kept as raw JSON so that it is written back as it came;
// the fields Parse validated are also held in typed form.
type Event struct {
	fields map[string]json.RawMessage // the audit object; user and annotations are rebuilt by Encode

	user        map[string]json.RawMessage // the "user" object
	extra       map[string][]string        // user.extra; nil if absent or null
	annotations map[string]string          // nil if absent or null; reserved keys removed

	auditID, stage, requestURI, verb, username string
	level                                      Level
	receivedAt                                 time.Time

	licenseHashed bool // Apply already hashed user.extra.licenseKey
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
	if u := e.extra["username"]; len(u) > 0 {
		return u[0]
	}
	return ""
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
	var top map[string]json.RawMessage
	if err := json.Unmarshal(line, &top); err != nil {
		if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return nil, &ValidationError{Reason: "not a JSON object"}
		}
		return nil, &ValidationError{Reason: "not JSON: " + err.Error()}
	}
	raw, ok := top["audit"]
	if !ok {
		return nil, &ValidationError{Reason: `no top-level "audit" object (line contains auditID)`}
	}
	if jsonKind(raw) != "object" {
		return nil, &ValidationError{Reason: `top-level "audit" is not an object`}
	}
	return parseEvent(raw)
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

// parseEvent validates the audit object itself (without the logrus wrapper).
func parseEvent(raw json.RawMessage) (*Event, error) {
	e := &Event{}
	if err := json.Unmarshal(raw, &e.fields); err != nil || e.fields == nil {
		return nil, &ValidationError{Reason: `top-level "audit" is not an object`}
	}
	f := e.fields
	if v, ok := f["apiVersion"]; ok && !isNull(v) {
		s, err := stringField(f, "apiVersion", "apiVersion")
		if err != nil {
			return nil, err
		}
		if s != "audit.k8s.io/v1" && s != "audit.k8s.io/v1beta1" {
			return nil, invalidValue("apiVersion", s, `want "audit.k8s.io/v1" or "audit.k8s.io/v1beta1"`)
		}
	}
	var err error
	if e.auditID, err = nonEmptyString(f, "auditID", "auditID"); err != nil {
		return nil, err
	}
	lvl, err := nonEmptyString(f, "level", "level")
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(lvl) {
	case "metadata":
		e.level = LevelMetadata
	case "request":
		e.level = LevelRequest
	default:
		return nil, invalidValue("level", lvl, `want "Metadata" or "Request"`)
	}
	stage, err := nonEmptyString(f, "stage", "stage")
	if err != nil {
		return nil, err
	}
	var ok bool
	if e.stage, ok = stages[strings.ToLower(stage)]; !ok {
		return nil, invalidValue("stage", stage, "want RequestReceived, ResponseStarted, ResponseComplete or Panic")
	}
	if e.requestURI, err = nonEmptyString(f, "requestURI", "requestURI"); err != nil {
		return nil, err
	}
	if e.verb, err = nonEmptyString(f, "verb", "verb"); err != nil {
		return nil, err
	}
	if err := e.parseUser(); err != nil {
		return nil, err
	}
	ts, err := nonEmptyString(f, "requestReceivedTimestamp", "requestReceivedTimestamp")
	if err != nil {
		return nil, err
	}
	if e.receivedAt, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return nil, invalidValue("requestReceivedTimestamp", ts, "not RFC 3339")
	}
	if err := e.parseAnnotations(); err != nil {
		return nil, err
	}
	return e, nil
}

// parseUser validates "user", "user.username" and "user.extra".
func (e *Event) parseUser() error {
	raw, ok := e.fields["user"]
	if !ok {
		return &ValidationError{Field: "user", Reason: "missing"}
	}
	if k := jsonKind(raw); k != "object" {
		return &ValidationError{Field: "user", Reason: "must be an object, got " + k}
	}
	if err := json.Unmarshal(raw, &e.user); err != nil {
		return &ValidationError{Field: "user", Reason: err.Error()}
	}
	var err error
	if e.username, err = nonEmptyString(e.user, "username", "user.username"); err != nil {
		return err
	}
	raw, ok = e.user["extra"]
	if !ok || isNull(raw) {
		return nil
	}
	if k := jsonKind(raw); k != "object" {
		return &ValidationError{Field: "user.extra", Reason: "must be an object, got " + k}
	}
	var extra map[string]json.RawMessage
	if err := json.Unmarshal(raw, &extra); err != nil {
		return &ValidationError{Field: "user.extra", Reason: err.Error()}
	}
	e.extra = make(map[string][]string, len(extra))
	for k, v := range extra {
		var list []string // null is accepted, as Kubernetes writes a nil list
		if err := json.Unmarshal(v, &list); err != nil {
			return &ValidationError{Field: "user.extra." + k, Reason: "must be an array of strings, got " + describe(v)}
		}
		e.extra[k] = list
	}
	return nil
}

// parseAnnotations validates "annotations" and drops reserved keys.
func (e *Event) parseAnnotations() error {
	raw, ok := e.fields["annotations"]
	if !ok || isNull(raw) {
		return nil
	}
	if k := jsonKind(raw); k != "object" {
		return &ValidationError{Field: "annotations", Reason: "must be an object, got " + k}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return &ValidationError{Field: "annotations", Reason: err.Error()}
	}
	e.annotations = make(map[string]string, len(m))
	for k := range m {
		s, err := stringField(m, k, "annotations."+k)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(k, reservedPrefix) {
			e.annotations[k] = s
		}
	}
	return nil
}

// stringField returns m[key] as a string; path names it in errors.
func stringField(m map[string]json.RawMessage, key, path string) (string, error) {
	raw, ok := m[key]
	if !ok {
		return "", &ValidationError{Field: path, Reason: "missing"}
	}
	if k := jsonKind(raw); k != "string" {
		return "", &ValidationError{Field: path, Reason: "must be a string, got " + k}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &ValidationError{Field: path, Reason: err.Error()}
	}
	return s, nil
}

// nonEmptyString is stringField that also rejects "".
func nonEmptyString(m map[string]json.RawMessage, key, path string) (string, error) {
	s, err := stringField(m, key, path)
	if err == nil && s == "" {
		err = &ValidationError{Field: path, Reason: "empty"}
	}
	return s, err
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
