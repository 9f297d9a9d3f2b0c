package audit

import (
	"strconv"
	"strings"
)

// root applies the rules that depend on the request to the top of a
// payload, then walks it. k8sSecret means objectRef.resource is "secrets".
func (r *redactor) root(n int32, k8sSecret bool) {
	path := r.path[:0]
	switch r.nodes[n].kind {
	case '{':
		if r.dockerSecret {
			// Docker decodes the body's keys case-insensitively.
			for _, c := range r.children(n) {
				if k := r.nodes[c].key; strings.EqualFold(k, "Data") {
					r.redactNode(c, path, k)
				}
			}
		}
	case '[':
		if k8sSecret { // a JSON patch: its values may be secret data
			for i, op := range r.children(n) {
				if r.nodes[op].kind == '{' {
					r.redactKey(op, "value", append(path, pseg{index: i}))
				}
			}
		}
	}
	r.walk(n, path, k8sSecret)
}

// walk applies the rules (rules.go) at any depth: secret keys, the data of
// any object that is a Kubernetes Secret (isSecret, or "kind":"Secret"),
// environment lists, the last-applied-configuration annotation, and URLs
// with user information. path is n's path, a scratch stack: walk may
// overwrite what lies beyond its length.
func (r *redactor) walk(n int32, path []pseg, isSecret bool) {
	nd := &r.nodes[n]
	switch nd.kind {
	case '{':
		kind := ""
		if k, ok := r.member(n, "kind"); ok {
			kind = r.stringOf(k)
		}
		if kind == "SecretList" {
			if items, ok := r.member(n, "items"); ok && r.nodes[items].kind == '[' {
				p := append(path, pseg{key: "items", index: -1})
				for i, it := range r.children(items) {
					r.walk(it, append(p, pseg{index: i}), true)
				}
			}
		} else if isSecret || kind == "Secret" {
			r.redactSecretData(n, path, "data")
			r.redactSecretData(n, path, "stringData")
		}
		for _, c := range r.children(n) {
			k := r.nodes[c].key
			switch secretKeyKind(k) {
			case secretAny:
				r.redactNode(c, path, k)
				continue
			case secretString:
				if r.isStrings(c) {
					r.redactNode(c, path, k)
					continue
				}
			}
			switch {
			case kind == "SecretList" && k == "items":
				continue
			case k == lastApplied:
				r.redactLastApplied(c, path, k)
				continue
			case isEnvKey(k):
				r.redactEnv(c, append(path, pseg{key: k, index: -1}))
			}
			r.walk(c, append(path, pseg{key: k, index: -1}), false)
		}
	case '[':
		if nd.raw != "" { // scalars only
			if strings.Contains(nd.raw, "@") {
				r.rewriteStrings(n, path, redactURL)
			}
			return
		}
		for i, c := range r.children(n) {
			r.walk(c, append(path, pseg{index: i}), false)
		}
	default:
		// Only a string with "@" (or an escape, which could spell one)
		// can be a URL with user information.
		if raw := nd.raw; len(raw) > 2 && raw[0] == '"' && strings.ContainsAny(raw, `@\`) {
			if out, ok := redactURL(r.stringOf(n)); ok {
				r.replace(n, string(appendString(nil, out)), path)
			}
		}
	}
}

// isStrings reports whether node n is a string or a list of strings.
func (r *redactor) isStrings(n int32) bool {
	nd := &r.nodes[n]
	switch {
	case nd.kind == 0:
		return len(nd.raw) > 0 && nd.raw[0] == '"'
	case nd.kind == '[' && nd.raw != "":
		elems, ok := r.elements(nd.raw)
		for _, e := range elems {
			ok = ok && (e[0] == '"' || e == "null") // as a []string takes them
		}
		return ok
	}
	return false
}

// elements returns the JSON text of each value of the array of scalars
// raw (valid JSON, as the payload tree keeps it), in r.elems, which the
// next call reuses. It scans the text instead of handing it to
// encoding/json: a container's environment is such an array, and this
// runs for every request event that carries one.
func (r *redactor) elements(raw string) ([]string, bool) {
	r.elems = r.elems[:0]
	d := scanner{s: raw}
	d.ws()
	if d.i >= len(raw) || raw[d.i] != '[' {
		return nil, false
	}
	d.i++
	d.ws()
	if d.i < len(raw) && raw[d.i] == ']' {
		return r.elems, true
	}
	for {
		start := d.i
		if !d.value() {
			return nil, false
		}
		r.elems = append(r.elems, raw[start:d.i])
		d.ws()
		if d.i >= len(raw) {
			return nil, false
		}
		switch raw[d.i] {
		case ',':
			d.i++
			d.ws()
		case ']':
			return r.elems, true
		default:
			return nil, false
		}
	}
}

// redactEnv redacts the secret entries of an environment list: Docker's
// "NAME=value" strings and Kubernetes' {"name", "value"} objects.
func (r *redactor) redactEnv(n int32, path []pseg) {
	nd := &r.nodes[n]
	if nd.kind != '[' {
		return
	}
	if nd.raw != "" {
		r.rewriteStrings(n, path, redactEnvEntry)
		return
	}
	for i, c := range r.children(n) {
		if r.nodes[c].kind != '{' {
			continue
		}
		if name, ok := r.member(c, "name"); ok && secretEnvName(r.stringOf(name)) {
			r.redactKey(c, "value", append(path, pseg{index: i}))
		}
	}
}

// rewriteStrings applies f to each string of an array of scalars (node n,
// at path) and writes the array again when f changed any.
func (r *redactor) rewriteStrings(n int32, path []pseg, f func(string) (string, bool)) {
	elems, ok := r.elements(r.nodes[n].raw)
	if !ok {
		return
	}
	changed := false
	for i, e := range elems {
		if e[0] != '"' {
			continue
		}
		d := scanner{s: e}
		escaped, _ := d.str()
		s, ok := decodeString(e, escaped)
		if !ok {
			continue
		}
		if out, ok := f(s); ok {
			elems[i] = string(appendString(nil, out))
			r.paths = append(r.paths, r.pathString(append(path, pseg{index: i}), ""))
			changed = true
		}
	}
	if !changed {
		return
	}
	b := []byte{'['}
	for i, e := range elems {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCompact(b, e)
	}
	r.nodes[n].raw = string(append(b, ']'))
	r.dirty = true
}

// redactLastApplied applies the rules to the object the annotation holds
// as JSON text, or withholds the annotation when it holds something else.
func (r *redactor) redactLastApplied(n int32, path []pseg, key string) {
	s := r.stringOf(n)
	if s == "" {
		if r.nodes[n].kind != 0 || r.nodes[n].raw != `""` {
			r.redactNode(n, path, key)
		}
		return
	}
	sub := getRedactor(false)
	defer sub.release()
	sub.paths = sub.paths[:0]
	out, changed := sub.payload(s, r.pathString(path, key), false)
	if sub.tooBig || !sub.parsed || !strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), "{") {
		r.redactNode(n, path, key)
		return
	}
	if changed {
		r.paths = append(r.paths, sub.paths...)
		r.nodes[n].raw = string(appendString(nil, out))
		r.dirty = true
	}
}

// redactSecretData redacts each value of the object obj[key]; if obj[key]
// is not an object it is redacted whole.
func (r *redactor) redactSecretData(obj int32, path []pseg, key string) {
	data, ok := r.member(obj, key)
	if !ok {
		return
	}
	if r.nodes[data].kind != '{' {
		r.redactNode(data, path, key)
		return
	}
	p := append(path, pseg{key: key, index: -1})
	for _, c := range r.children(data) {
		r.redactNode(c, p, r.nodes[c].key)
	}
}

// redactKey redacts obj[key], if there is one.
func (r *redactor) redactKey(obj int32, key string, path []pseg) {
	if c, ok := r.member(obj, key); ok {
		r.redactNode(c, path, key)
	}
}

// redactNode replaces node n, the member key of the object at path, with
// "<redacted>" unless it is null or already redacted.
func (r *redactor) redactNode(n int32, path []pseg, key string) {
	nd := &r.nodes[n]
	if nd.kind == 0 && (nd.raw == "null" || r.stringOf(n) == redactedValue) {
		return
	}
	*nd = rnode{key: nd.key, raw: redactedString}
	r.dirty = true
	r.paths = append(r.paths, r.pathString(path, key))
}

// replace sets the scalar node n, at path, to raw.
func (r *redactor) replace(n int32, raw string, path []pseg) {
	r.nodes[n].raw = raw
	r.dirty = true
	r.paths = append(r.paths, r.pathString(path, ""))
}

// pathString writes a path as name, then `.key`, or `["key"]` for keys
// that are not plain words, and `[3]` for indexes, ending with key (none
// when key is "").
func (r *redactor) pathString(path []pseg, key string) string {
	b := make([]byte, 0, 64)
	b = append(b, r.name...)
	for _, s := range path {
		if s.index >= 0 {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(s.index), 10)
			b = append(b, ']')
		} else {
			b = appendMember(b, s.key)
		}
	}
	if key == "" {
		return string(b)
	}
	return string(appendMember(b, key))
}

// appendMember appends an object key to a path: `.b`, or `["x.y"]` for
// keys that are not plain words.
func appendMember(b []byte, key string) []byte {
	plain := key != ""
	for _, c := range key {
		if !(c == '_' || c == '-' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return append(append(b, '.'), key...)
	}
	b = append(b, '[')
	b = strconv.AppendQuote(b, key)
	return append(b, ']')
}
