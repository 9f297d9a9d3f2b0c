package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"
)

// parseSlow is the encoding/json implementation of Parse: Parse uses it for
// every line parseFast (parse_fast.go) does not take, so it decides the
// errors, and it is the reference the fast path must agree with.

// slowEvent is what parseSlow decodes; toEvent converts it.
type slowEvent struct {
	fields      map[string]json.RawMessage
	user        map[string]json.RawMessage
	extra       map[string][]string
	annotations map[string]string

	auditID, stage, requestURI, verb, username string
	level                                      Level
	receivedAt                                 time.Time
}

// parseSlow is Parse after the UTF-8 check, with encoding/json.
func parseSlow(line []byte) (*Event, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(line, &top); err != nil {
		if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return nil, &ValidationError{Reason: "not a JSON object"}
		}
		return nil, &ValidationError{Reason: "not JSON: " + err.Error()}
	}
	raw, ok := top["audit"]
	if !ok {
		if !bytes.Contains(line, auditIDBytes) {
			// Only a top-level key spelled with escapes made it look
			// like audit, and it is not "audit".
			return nil, ErrNotAudit
		}
		return nil, &ValidationError{Reason: `no top-level "audit" object (line contains auditID)`}
	}
	if jsonKind(raw) != "object" {
		return nil, &ValidationError{Reason: `top-level "audit" is not an object`}
	}
	se, err := parseEvent(raw)
	if err != nil {
		return nil, err
	}
	return se.toEvent(), nil
}

// toEvent converts to the sorted representation.
func (se *slowEvent) toEvent() *Event {
	e := &Event{
		fields:     fieldsOf(se.fields),
		user:       fieldsOf(se.user),
		auditID:    se.auditID,
		stage:      se.stage,
		requestURI: se.requestURI,
		verb:       se.verb,
		username:   se.username,
		level:      se.level,
		receivedAt: se.receivedAt,
	}
	if se.extra != nil {
		e.extra = make([]extraEntry, 0, len(se.extra))
		for _, k := range slices.Sorted(maps.Keys(se.extra)) {
			e.extra = append(e.extra, extraEntry{key: k, list: se.extra[k]})
		}
	}
	if se.annotations != nil {
		e.annotations = make([]kv, 0, len(se.annotations))
		for _, k := range slices.Sorted(maps.Keys(se.annotations)) {
			e.annotations = append(e.annotations, kv{k, se.annotations[k]})
		}
	}
	return e
}

func fieldsOf(m map[string]json.RawMessage) []field {
	fs := make([]field, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fs = append(fs, field{key: k, raw: string(m[k]), space: true})
	}
	return fs
}

// parseEvent validates the audit object itself (without the logrus wrapper).
func parseEvent(raw json.RawMessage) (*slowEvent, error) {
	e := &slowEvent{}
	if err := json.Unmarshal(raw, &e.fields); err != nil || e.fields == nil {
		return nil, &ValidationError{Reason: `top-level "audit" is not an object`}
	}
	f := e.fields
	for _, k := range slices.Sorted(maps.Keys(f)) {
		// The plugin's own records and the chain use these keys; an event
		// holding one could pass for them.
		if strings.HasPrefix(k, reservedPrefix) {
			return nil, &ValidationError{Field: k, Reason: `the "` + reservedPrefix + `" prefix is reserved for the plugin's own fields`}
		}
	}
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
func (e *slowEvent) parseUser() error {
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
func (e *slowEvent) parseAnnotations() error {
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
