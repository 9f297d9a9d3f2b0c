package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// Policy is what the plugin does with a valid event: the level ceiling and
// the ignore list.
type Policy struct {
	Level  Level  // ceiling: events are forwarded with at most this much detail
	Ignore Ignore // request paths that are not forwarded
}

// Allows reports whether the event is forwarded under the policy. When it
// is not, the reason is "audit-level none" or "ignored: <entry>".
func (p Policy) Allows(e *Event) (bool, string) {
	if p.Level <= LevelNone {
		return false, "audit-level none"
	}
	if entry, ok := p.Ignore.matchEntry(e.requestURI); ok {
		return false, "ignored: " + entry
	}
	return true, ""
}

// RedactedKeys lists the object keys whose values Apply replaces with
// "<redacted>" anywhere in requestObject and responseObject. A key matches
// when, lower-cased with "_" and "-" removed, it equals an entry. Treat it
// as read-only.
var RedactedKeys = []string{
	"password", "passwd",
	"token", "authtoken", "identitytoken", "registrytoken",
	"accesstoken", "refreshtoken", "idtoken",
	"jointoken", "jointokens", "unlockkey",
	"clientsecret", "privatekey", "secretkey",
}

// redactedValue replaces secret material.
const redactedValue = "<redacted>"

var redactedRaw = json.RawMessage(`"` + redactedValue + `"`)

// Apply enforces the level ceiling and redacts the event in place:
//
//   - below LevelRequest, requestObject and responseObject are removed
//     (annotation AnnotationLevelCeiling says so if anything was);
//   - every user.extra.licenseKey value becomes "sha256:" and the first 16
//     hex digits of its SHA-256 (once, however often Apply is called);
//   - secret material in requestObject and responseObject becomes
//     "<redacted>": the "Data" of a Docker secret create/update, the values
//     of "data" and "stringData" of a Kubernetes Secret (also each item of a
//     SecretList, and the "value" of each JSON-patch operation on a secret),
//     and the value of every key in RedactedKeys, at any depth. The sorted
//     paths go in annotation AnnotationRedacted.
//
// If a payload cannot be re-encoded it is replaced by "<redacted>" whole.
func (p Policy) Apply(e *Event) {
	if p.Level < LevelRequest {
		removed := false
		for _, k := range []string{"requestObject", "responseObject"} {
			if _, ok := e.fields[k]; ok {
				delete(e.fields, k)
				removed = true
			}
		}
		if removed {
			e.setAnnotation(AnnotationLevelCeiling, LevelMetadata.String())
		}
	}
	e.hashLicenseKeys()
	e.redact()
}

// hashLicenseKeys replaces user.extra.licenseKey values by a short hash.
func (e *Event) hashLicenseKeys() {
	keys := e.extra["licenseKey"]
	if e.licenseHashed || len(keys) == 0 {
		return
	}
	for i, k := range keys {
		sum := sha256.Sum256([]byte(k))
		keys[i] = "sha256:" + hex.EncodeToString(sum[:8])
	}
	raw, err := marshal(e.extra)
	if err != nil { // cannot happen for map[string][]string; fail closed
		raw = redactedRaw
	}
	e.user["extra"] = raw
	e.licenseHashed = true
}

// setAnnotation sets one of our annotations, creating the map if needed.
func (e *Event) setAnnotation(key, value string) {
	if e.annotations == nil {
		e.annotations = make(map[string]string)
	}
	e.annotations[key] = value
}

// redact applies the redaction rules to requestObject and responseObject.
func (e *Event) redact() {
	r := redactor{dockerSecret: isDockerSecretWrite(apiPath(e.requestURI))}
	var ref struct {
		Resource string `json:"resource"`
	}
	if raw, ok := e.fields["objectRef"]; ok && jsonKind(raw) == "object" {
		_ = json.Unmarshal(raw, &ref) // a malformed objectRef just gives no hint
	}
	for _, name := range []string{"requestObject", "responseObject"} {
		raw, ok := e.fields[name]
		if !ok || isNull(raw) {
			continue
		}
		r.dirty = false
		tree := r.decode(raw)
		tree = r.root(tree, name, ref.Resource == "secrets")
		if !r.dirty {
			continue
		}
		out, err := marshal(tree)
		if err != nil {
			out = redactedRaw
			r.paths = append(r.paths, name)
		}
		e.fields[name] = out
	}
	if len(r.paths) > 0 {
		slices.Sort(r.paths)
		e.setAnnotation(AnnotationRedacted, strings.Join(slices.Compact(r.paths), ","))
	}
}

// isDockerSecretWrite reports whether path (version prefix dropped) is
// /secrets/create or /secrets/{id}/update.
func isDockerSecretWrite(path string) bool {
	rest, ok := strings.CutPrefix(path, "/secrets/")
	if !ok {
		return false
	}
	if rest == "create" {
		return true
	}
	id, ok := strings.CutSuffix(rest, "/update")
	return ok && id != "" && !strings.Contains(id, "/")
}

// secretKeys is RedactedKeys as a set.
var secretKeys = func() map[string]bool {
	m := make(map[string]bool, len(RedactedKeys))
	for _, k := range RedactedKeys {
		m[k] = true
	}
	return m
}()

// isSecretKey reports whether key names secret material.
func isSecretKey(key string) bool {
	k := strings.ToLower(key)
	k = strings.ReplaceAll(k, "_", "")
	k = strings.ReplaceAll(k, "-", "")
	return secretKeys[k]
}

// redactor walks a payload decoded as a tree whose nodes are
// map[string]any (objects), []any (arrays) and json.RawMessage (scalars).
type redactor struct {
	dockerSecret bool     // the request is a Docker secret create/update
	dirty        bool     // the current tree changed and must be re-encoded
	paths        []string // JSON paths redacted so far
}

// decode turns raw JSON into a tree. Objects with duplicate keys keep the
// last value (as encoding/json does) and mark the tree dirty, so the
// re-encoded payload is what was inspected. It makes one pass over raw:
// decoding level by level with json.Unmarshal would rescan each subtree
// once per enclosing level, which for a deeply nested payload (up to the
// 10,000 levels encoding/json accepts) around a large value costs depth ×
// size and stalls the pipeline for minutes on a single line.
func (r *redactor) decode(raw json.RawMessage) any {
	d := treeDecoder{data: raw}
	node, ok := d.value()
	if d.skipSpace(); !ok || d.i != len(d.data) {
		return raw // not valid JSON: cannot happen for a payload Parse accepted
	}
	if d.dup {
		r.dirty = true
	}
	return node
}

// treeDecoder builds the redactor's tree from valid JSON. Scalars are kept
// as their raw bytes (sub-slices of data).
type treeDecoder struct {
	data []byte
	i    int
	dup  bool // an object had a duplicate key
}

func (d *treeDecoder) skipSpace() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and consumes the byte c, reporting whether it
// was there.
func (d *treeDecoder) next(c byte) bool {
	d.skipSpace()
	if d.i < len(d.data) && d.data[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *treeDecoder) value() (any, bool) {
	d.skipSpace()
	if d.i >= len(d.data) {
		return nil, false
	}
	switch d.data[d.i] {
	case '{':
		d.i++
		m := map[string]any{}
		if d.next('}') {
			return m, true
		}
		for {
			d.skipSpace()
			raw, ok := d.str()
			if !ok {
				return nil, false
			}
			var key string
			if bytes.IndexByte(raw, '\\') < 0 {
				key = string(raw[1 : len(raw)-1])
			} else if json.Unmarshal(raw, &key) != nil {
				return nil, false
			}
			if !d.next(':') {
				return nil, false
			}
			v, ok := d.value()
			if !ok {
				return nil, false
			}
			if _, seen := m[key]; seen {
				d.dup = true
			}
			m[key] = v
			if d.next('}') {
				return m, true
			}
			if !d.next(',') {
				return nil, false
			}
		}
	case '[':
		d.i++
		a := []any{}
		if d.next(']') {
			return a, true
		}
		for {
			v, ok := d.value()
			if !ok {
				return nil, false
			}
			a = append(a, v)
			if d.next(']') {
				return a, true
			}
			if !d.next(',') {
				return nil, false
			}
		}
	case '"':
		raw, ok := d.str()
		return json.RawMessage(raw), ok
	}
	start := d.i
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return json.RawMessage(d.data[start:d.i]), d.i > start
		}
		d.i++
	}
	return json.RawMessage(d.data[start:d.i]), d.i > start
}

// str consumes a JSON string at d.i and returns it with its quotes.
func (d *treeDecoder) str() ([]byte, bool) {
	if d.i >= len(d.data) || d.data[d.i] != '"' {
		return nil, false
	}
	for j := d.i + 1; j < len(d.data); j++ {
		switch d.data[j] {
		case '\\':
			j++
		case '"':
			s := d.data[d.i : j+1]
			d.i = j + 1
			return s, true
		}
	}
	return nil, false
}

// root applies the rules that depend on the request to the top of a
// payload, then walks it. k8sSecret means objectRef.resource is "secrets".
func (r *redactor) root(node any, path string, k8sSecret bool) any {
	switch t := node.(type) {
	case map[string]any:
		if r.dockerSecret {
			r.redactKey(t, "Data", path)
		}
	case []any:
		if k8sSecret { // a JSON patch: its values may be secret data
			for i, op := range t {
				if m, ok := op.(map[string]any); ok {
					r.redactKey(m, "value", index(path, i))
				}
			}
		}
	}
	return r.walk(node, path, k8sSecret)
}

// walk redacts secret keys at any depth, and the data of any object that is
// a Kubernetes Secret (isSecret, or "kind":"Secret").
func (r *redactor) walk(node any, path string, isSecret bool) any {
	switch t := node.(type) {
	case map[string]any:
		kind := stringValue(t["kind"])
		if kind == "SecretList" {
			if items, ok := t["items"].([]any); ok {
				for i, it := range items {
					items[i] = r.walk(it, index(member(path, "items"), i), true)
				}
			}
		} else if isSecret || kind == "Secret" {
			r.redactSecretData(t, path, "data")
			r.redactSecretData(t, path, "stringData")
		}
		for _, k := range sortedKeys(t) {
			if isSecretKey(k) {
				r.redactKey(t, k, path)
			} else if !(kind == "SecretList" && k == "items") {
				t[k] = r.walk(t[k], member(path, k), false)
			}
		}
	case []any:
		for i, v := range t {
			t[i] = r.walk(v, index(path, i), false)
		}
	}
	return node
}

// redactSecretData redacts each value of the object obj[key]; if obj[key]
// is not an object it is redacted whole.
func (r *redactor) redactSecretData(obj map[string]any, path, key string) {
	data, ok := obj[key]
	if !ok {
		return
	}
	m, ok := data.(map[string]any)
	if !ok {
		r.redactKey(obj, key, path)
		return
	}
	p := member(path, key)
	for _, k := range sortedKeys(m) {
		r.redactKey(m, k, p)
	}
}

// redactKey replaces obj[key] with "<redacted>" unless it is absent, null
// or already redacted.
func (r *redactor) redactKey(obj map[string]any, key, path string) {
	v, ok := obj[key]
	if !ok {
		return
	}
	if raw, ok := v.(json.RawMessage); ok && (isNull(raw) || stringValue(raw) == redactedValue) {
		return
	}
	obj[key] = redactedRaw
	r.dirty = true
	r.paths = append(r.paths, member(path, key))
}

// stringValue returns the string a scalar node holds, or "".
func stringValue(node any) string {
	raw, ok := node.(json.RawMessage)
	if !ok || jsonKind(raw) != "string" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// sortedKeys returns the keys of m in order, so paths come out stable.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// member appends an object key to a path: `a.b`, or `a["x.y"]` for keys
// that are not plain words.
func member(path, key string) string {
	plain := key != ""
	for _, c := range key {
		if !(c == '_' || c == '-' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

// index appends an array index to a path: `a[3]`.
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
