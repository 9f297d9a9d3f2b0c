package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
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
//     "<redacted>", by the rules of rules.go (secret keys, environment
//     lists, Docker and Kubernetes secrets, the last-applied-configuration
//     annotation, URLs with credentials), at any depth. The sorted paths go
//     in annotation AnnotationRedacted.
//
// If a payload cannot be re-encoded it is replaced by "<redacted>" whole.
func (p Policy) Apply(e *Event) {
	if p.Level < LevelRequest {
		removed := false
		for _, k := range []string{"requestObject", "responseObject"} {
			if i, ok := lookup(e.fields, k); ok {
				e.fields = slices.Delete(e.fields, i, i+1)
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
// Encode then writes user.extra from e.extra.
func (e *Event) hashLicenseKeys() {
	keys := e.extraList("licenseKey")
	if e.licenseHashed || len(keys) == 0 {
		return
	}
	// All the hashes in one string.
	const n = len("sha256:") + 16
	var buf [2 * n]byte
	b := buf[:0]
	for _, k := range keys {
		sum := sha256.Sum256([]byte(k))
		b = append(b, "sha256:"...)
		b = hex.AppendEncode(b, sum[:8])
	}
	all := string(b)
	for i := range keys {
		keys[i] = all[i*n : (i+1)*n]
	}
	e.licenseHashed = true
}

// extraSize estimates the length of appendExtra's output.
func (e *Event) extraSize() int {
	size := 2
	for _, x := range e.extra {
		size += len(x.key) + 8
		for _, s := range x.list {
			size += len(s) + 3
		}
	}
	return size
}

// appendExtra appends user.extra as encoding/json encodes a
// map[string][]string: keys sorted, a nil list as null.
func appendExtra(b []byte, extra []extraEntry) []byte {
	b = append(b, '{')
	for i, x := range extra {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, x.key)
		b = append(b, ':')
		if x.list == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, s := range x.list {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// setAnnotation sets one of our annotations.
func (e *Event) setAnnotation(key, value string) {
	i, ok := slices.BinarySearchFunc(e.annotations, key, func(a kv, k string) int { return strings.Compare(a.key, k) })
	if ok {
		e.annotations[i].value = value
		return
	}
	e.annotations = slices.Insert(e.annotations, i, kv{key, value})
}

// annotation returns the annotation key, or "".
func (e *Event) annotation(key string) string {
	for _, a := range e.annotations {
		if a.key == key {
			return a.value
		}
	}
	return ""
}

// redact applies the redaction rules to requestObject and responseObject.
func (e *Event) redact() {
	var r *redactor
	resource := ""
	for _, name := range []string{"requestObject", "responseObject"} {
		i, ok := lookup(e.fields, name)
		if !ok || e.fields[i].raw == "null" {
			continue
		}
		if r == nil {
			r = getRedactor(isDockerSecretWrite(apiPath(e.requestURI)))
			defer r.release()
			resource = e.objectRefResource()
		}
		if out, dirty := r.payload(e.fields[i].raw, name, resource == "secrets"); dirty {
			e.fields[i] = field{key: name, raw: out}
		}
	}
	if r != nil && len(r.paths) > 0 {
		slices.Sort(r.paths)
		e.setAnnotation(AnnotationRedacted, strings.Join(slices.Compact(r.paths), ","))
	}
}

// objectRefResource returns objectRef.resource as encoding/json decodes it
// into a struct field tagged "resource" (case-insensitive key match, the
// last matching string wins, a value of another type is skipped), or "".
func (e *Event) objectRefResource() string {
	f, ok := get(e.fields, "objectRef")
	if !ok || f.raw[0] != '{' {
		return ""
	}
	var ref struct {
		Resource string `json:"resource"`
	}
	_ = json.Unmarshal([]byte(f.raw), &ref) // a malformed objectRef just gives no hint
	return ref.Resource
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
