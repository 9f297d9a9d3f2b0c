package audit

import (
	"strings"
	"time"
)

// Parse has two implementations that give the same event: parseFast here,
// which takes the hot path (valid lines, decoded in one pass without
// encoding/json), and parseSlow in parse_slow.go, with encoding/json, which
// takes every other line and decides the errors. FuzzFastSameAsSlow
// (parse_diff_test.go) checks that they agree.

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

	e := &Event{}
	if !e.setFields(&d, members) || !e.validate() {
		return nil, false
	}
	return e, true
}

// setFields sets e.fields from members, the members of the audit object
// in d.s, and e.user from the members of its "user" object, if it is one.
// Both share the event's room for fields, or one allocation if they do not
// fit.
func (e *Event) setFields(d *scanner, members []span) bool {
	var (
		ubuf [16]span
		user scanner
		ums  []span
	)
	for i := len(members) - 1; i >= 0; i-- { // the last "user" wins
		if m := members[i]; m.key == "user" {
			if user.s = d.s[m.start:m.end]; user.s[0] != '{' {
				return false
			}
			var ok bool
			if ums, ok = user.members(ubuf[:0], true); !ok {
				return false
			}
			break
		}
	}
	fs := e.fieldBuf[:0]
	if n := len(members) + len(ums); n > len(e.fieldBuf) {
		fs = make([]field, 0, n)
	}
	fs = appendFields(fs, d.s, members)
	n := len(fs)
	e.fields = fs[:n:n] // full: inserting into it must not overwrite user
	e.user = appendFields(fs[n:], user.s, ums)
	return true
}

// appendFields appends the members ms of the object in s to dst, sorted by
// key with the last duplicate kept.
func appendFields(dst []field, s string, ms []span) []field {
	start := len(dst)
	sorted := true
	for i, m := range ms {
		sorted = sorted && (i == 0 || ms[i-1].key < m.key)
		dst = append(dst, field{key: m.key, raw: s[m.start:m.end], space: m.space, plainKey: m.plain})
	}
	if sorted { // the usual case: logrus and encoding/json write sorted keys
		return dst
	}
	return dst[:start+len(sortFields(dst[start:]))]
}

// objectMembers returns the members of the object raw, sorted by key with
// the last duplicate kept, as spans of raw; buf is scratch space for them.
func objectMembers(raw string, buf []span) ([]span, bool) {
	sub := scanner{s: raw}
	ms, ok := sub.members(buf[:0], true)
	if !ok {
		return nil, false
	}
	return sortByKey(ms, func(m span) string { return m.key }), true
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

// lowerASCII returns s lower-cased in buf, if s is all ASCII and fits.
func lowerASCII(buf []byte, s string) ([]byte, bool) {
	if len(s) > len(buf) {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return nil, false
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(s)], true
}

// validate is parseEvent on the sorted fields: it reports false where
// parseEvent returns an error (and for non-ASCII level or stage, whose
// lower-casing it leaves to parseEvent). Which check fails first does not
// matter here: parseEvent redoes them all in its order.
func (e *Event) validate() bool {
	var apiVersion, level, stage, ts, annotations field
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
			haveUser = true
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
	// Lower-cased without allocating; nothing longer than 16 bytes is
	// a level or a stage. parseEvent lower-cases non-ASCII too: leave
	// that to it.
	var lbuf [16]byte
	lvl, ok := level.nonEmpty()
	if !ok {
		return false
	}
	low, ok := lowerASCII(lbuf[:], lvl)
	if !ok {
		return false
	}
	switch string(low) {
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
	if low, ok = lowerASCII(lbuf[:], st); !ok {
		return false
	}
	if e.stage, ok = stages[string(low)]; !ok {
		return false
	}
	if !haveUser || !e.validateUser() {
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
	return e.validateAnnotations(annotations)
}

// validateUser is parseUser on the sorted fields of user (setFields has
// checked that it is an object).
func (e *Event) validateUser() bool {
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
	var buf [8]span
	xs, ok := objectMembers(x.raw, buf[:])
	if !ok {
		return false
	}
	// The usual few entries and strings fit in the event itself.
	e.extra = e.extraBuf[:0]
	if len(xs) > len(e.extraBuf) {
		e.extra = make([]extraEntry, 0, len(xs))
	}
	strs := e.strBuf[:0]
	for _, m := range xs {
		start := len(strs)
		var null bool
		if strs, null, ok = appendStringList(strs, x.raw[m.start:m.end]); !ok {
			return false
		}
		var list []string // null
		if !null {
			list = strs[start:len(strs):len(strs)]
		}
		e.extra = append(e.extra, extraEntry{key: m.key, list: list})
	}
	return true
}

// appendStringList decodes raw as json.Unmarshal decodes into a []string,
// appending the strings to dst: null is a nil list (null reports true) and
// a null element is "". It reports false for anything else that is not an
// array of strings.
func appendStringList(dst []string, raw string) (_ []string, null, ok bool) {
	if raw == "null" {
		return dst, true, true
	}
	if raw[0] != '[' {
		return dst, false, false
	}
	d := scanner{s: raw, i: 1}
	d.ws()
	if d.s[d.i] == ']' {
		return dst, false, true
	}
	for {
		switch d.s[d.i] {
		case '"':
			start := d.i
			esc, ok := d.str()
			if !ok {
				return dst, false, false
			}
			s, ok := decodeString(d.s[start:d.i], esc)
			if !ok {
				return dst, false, false
			}
			dst = append(dst, s)
		case 'n':
			if !d.lit("null") {
				return dst, false, false
			}
			dst = append(dst, "")
		default:
			return dst, false, false
		}
		d.ws()
		switch d.s[d.i] {
		case ',':
			d.i++
			d.ws()
		case ']':
			return dst, false, true
		default:
			return dst, false, false
		}
	}
}

// validateAnnotations is parseAnnotations on the sorted fields.
func (e *Event) validateAnnotations(a field) bool {
	if a.raw == "" || a.raw == "null" {
		return true
	}
	if a.raw[0] != '{' {
		return false
	}
	var buf [16]span
	as, ok := objectMembers(a.raw, buf[:])
	if !ok {
		return false
	}
	e.annotations = make([]kv, 0, len(as))
	for _, m := range as {
		s, ok := field{raw: a.raw[m.start:m.end]}.stringValue()
		if !ok {
			return false
		}
		if !strings.HasPrefix(m.key, reservedPrefix) {
			e.annotations = append(e.annotations, kv{m.key, s})
		}
	}
	return true
}
