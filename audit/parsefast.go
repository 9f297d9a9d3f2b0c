package audit

import (
	"strings"
	"time"
)

// parseFast is Parse for the lines that need no error: one validating pass
// over a private copy of the line finds the members of the audit object,
// and only the fields validation needs are decoded. It reports false,
// leaving the line to parseSlow, for anything it would have to reject and
// for the rare spellings whose meaning encoding/json decides (a non-ASCII
// level or stage, for instance); it never accepts a line parseSlow would
// reject, and the event it builds is the one parseSlow would.
func parseFast(line []byte) (*Event, bool) {
	// One copy: the event's strings are substrings of it, so the event
	// does not depend on the caller's buffer.
	d := scanner{s: string(line)}
	d.ws()
	if d.i >= len(d.s) || d.s[d.i] != '{' {
		return nil, false
	}
	d.depth = 1
	d.i++
	d.ws()
	var (
		buf     [24]span
		members []span
		isObj   bool // the last "audit" member is an object
		seen    bool
	)
	if d.i < len(d.s) && d.s[d.i] == '}' {
		return nil, false
	}
	for {
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return nil, false
		}
		ks := d.i
		esc, ok := d.str()
		if !ok {
			return nil, false
		}
		key, ok := decodeString(d.s[ks:d.i], esc)
		if !ok {
			return nil, false
		}
		d.ws()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return nil, false
		}
		d.i++
		d.ws()
		if key == "audit" {
			seen = true
			isObj = d.i < len(d.s) && d.s[d.i] == '{'
		}
		if key == "audit" && isObj {
			if members, ok = d.members(buf[:0], true); !ok {
				return nil, false
			}
		} else if !d.value() {
			return nil, false
		}
		d.ws()
		if d.i >= len(d.s) {
			return nil, false
		}
		if d.s[d.i] == '}' {
			d.i++
			break
		}
		if d.s[d.i] != ',' {
			return nil, false
		}
		d.i++
		d.ws()
	}
	if d.ws(); d.i != len(d.s) || !seen || !isObj {
		return nil, false
	}

	e := &Event{fields: d.fields(members)}
	if !e.validate(&d) {
		return nil, false
	}
	return e, true
}

// fields turns members into a sorted field slice.
func (d *scanner) fields(ms []span) []field {
	fs := make([]field, len(ms))
	for i, m := range ms {
		fs[i] = field{key: m.key, raw: d.s[m.start:m.end], space: m.space}
	}
	return sortFields(fs)
}

// objectFields returns the members of the object raw (a substring of d.s).
func (d *scanner) objectFields(raw string) ([]field, bool) {
	var buf [16]span
	sub := scanner{s: raw}
	ms, ok := sub.members(buf[:0], true)
	if !ok {
		return nil, false
	}
	return sub.fields(ms), true
}

// stringValue returns the string f holds (false if it is not a string).
func (f field) stringValue() (string, bool) {
	if len(f.raw) == 0 || f.raw[0] != '"' {
		return "", false
	}
	return decodeString(f.raw, strings.IndexByte(f.raw, '\\') >= 0)
}

// nonEmpty returns the non-empty string f holds.
func (f field) nonEmpty() (string, bool) {
	s, ok := f.stringValue()
	return s, ok && s != ""
}

// asciiLower returns s lower-cased if it is all ASCII.
func asciiLower(s string) (string, bool) {
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return "", false
		}
		upper = upper || c >= 'A' && c <= 'Z'
	}
	if !upper {
		return s, true
	}
	return strings.ToLower(s), true
}

// validate is parseEvent on the sorted fields: it reports false where
// parseEvent returns an error (and for non-ASCII level or stage, whose
// lower-casing it leaves to parseEvent). Which check fails first does not
// matter here: parseEvent redoes them all in its order.
func (e *Event) validate(d *scanner) bool {
	var apiVersion, level, stage, ts, user, annotations field
	var haveUser bool
	for _, f := range e.fields {
		var ok bool
		switch f.key {
		case "apiVersion":
			apiVersion = f
		case "auditID":
			e.auditID, ok = f.nonEmpty()
		case "level":
			level = f
		case "stage":
			stage = f
		case "requestURI":
			e.requestURI, ok = f.nonEmpty()
		case "verb":
			e.verb, ok = f.nonEmpty()
		case "requestReceivedTimestamp":
			ts = f
		case "user":
			user, haveUser = f, true
		case "annotations":
			annotations = f
		default:
			if strings.HasPrefix(f.key, reservedPrefix) {
				return false
			}
			continue
		}
		if !ok && (f.key == "auditID" || f.key == "requestURI" || f.key == "verb") {
			return false
		}
	}
	if e.auditID == "" || e.requestURI == "" || e.verb == "" || !haveUser {
		return false // missing
	}
	if apiVersion.raw != "" && apiVersion.raw != "null" {
		s, ok := apiVersion.stringValue()
		if !ok || s != "audit.k8s.io/v1" && s != "audit.k8s.io/v1beta1" {
			return false
		}
	}
	lvl, ok := level.nonEmpty()
	if !ok {
		return false
	}
	if lvl, ok = asciiLower(lvl); !ok {
		return false
	}
	switch lvl {
	case "metadata":
		e.level = LevelMetadata
	case "request":
		e.level = LevelRequest
	default:
		return false
	}
	st, ok := stage.nonEmpty()
	if !ok {
		return false
	}
	if st, ok = asciiLower(st); !ok {
		return false
	}
	if e.stage, ok = stages[st]; !ok {
		return false
	}
	if !e.validateUser(d, user) {
		return false
	}
	t, ok := ts.nonEmpty()
	if !ok {
		return false
	}
	var err error
	if e.receivedAt, err = time.Parse(time.RFC3339Nano, t); err != nil {
		return false
	}
	return e.validateAnnotations(d, annotations)
}

// validateUser is parseUser on the sorted fields.
func (e *Event) validateUser(d *scanner, u field) bool {
	if u.raw[0] != '{' {
		return false
	}
	var ok bool
	if e.user, ok = d.objectFields(u.raw); !ok {
		return false
	}
	var x field
	for _, f := range e.user {
		switch f.key {
		case "username":
			e.username, _ = f.nonEmpty()
		case "extra":
			x = f
		}
	}
	if e.username == "" {
		return false
	}
	if x.raw == "" || x.raw == "null" {
		return true
	}
	if x.raw[0] != '{' {
		return false
	}
	xs, ok := d.objectFields(x.raw)
	if !ok {
		return false
	}
	e.extra = make([]extraEntry, len(xs))
	for i, f := range xs {
		e.extra[i].key = f.key
		if e.extra[i].list, ok = stringList(f.raw); !ok {
			return false
		}
	}
	return true
}

// stringList decodes raw as json.Unmarshal decodes into a []string: null
// is a nil list and a null element is "". It reports false for anything
// else that is not an array of strings.
func stringList(raw string) ([]string, bool) {
	if raw == "null" {
		return nil, true
	}
	if raw[0] != '[' {
		return nil, false
	}
	d := scanner{s: raw, i: 1}
	list := []string{}
	d.ws()
	if d.s[d.i] == ']' {
		return list, true
	}
	for {
		switch d.s[d.i] {
		case '"':
			start := d.i
			esc, ok := d.str()
			if !ok {
				return nil, false
			}
			s, ok := decodeString(d.s[start:d.i], esc)
			if !ok {
				return nil, false
			}
			list = append(list, s)
		case 'n':
			if !d.lit("null") {
				return nil, false
			}
			list = append(list, "")
		default:
			return nil, false
		}
		d.ws()
		switch d.s[d.i] {
		case ',':
			d.i++
			d.ws()
		case ']':
			return list, true
		default:
			return nil, false
		}
	}
}

// validateAnnotations is parseAnnotations on the sorted fields.
func (e *Event) validateAnnotations(d *scanner, a field) bool {
	if a.raw == "" || a.raw == "null" {
		return true
	}
	if a.raw[0] != '{' {
		return false
	}
	as, ok := d.objectFields(a.raw)
	if !ok {
		return false
	}
	e.annotations = make([]kv, 0, len(as))
	for _, f := range as {
		s, ok := f.stringValue()
		if !ok {
			return false
		}
		if !strings.HasPrefix(f.key, reservedPrefix) {
			e.annotations = append(e.annotations, kv{f.key, s})
		}
	}
	return true
}
