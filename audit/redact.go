package audit

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// redactor applies the redaction rules to a payload. It decodes the
// payload in one pass into a flat tree (nodes in an arena, scalars kept as
// their raw text, object members sorted by key with the last duplicate
// winning, as in a map), walks it, and re-encodes it only if something
// changed, with sorted keys as encoding/json encodes maps. One pass
// matters: decoding level by level would rescan each subtree once per
// enclosing level, which for a deeply nested payload (up to the 10,000
// levels encoding/json accepts) around a large value costs depth × size
// and stalls the pipeline for minutes on a single line.
type redactor struct {
	dockerSecret bool     // the request is a Docker secret create/update
	dirty        bool     // the current payload changed and must be re-encoded
	tooBig       bool     // the current payload has more than maxNodes values
	parsed       bool     // the current payload is JSON
	paths        []string // JSON paths redacted so far

	name  string   // the payload being walked: "requestObject" or "responseObject"
	nodes []rnode  // the payload's tree; node 0 is the root
	kids  []int32  // the children of every container, each run contiguous
	stack []int32  // children of the containers being decoded
	path  []pseg   // scratch for walk
	elems []string // scratch for elements
}

// rnode is one value of the payload tree.
type rnode struct {
	key  string // the decoded member key, if the node is an object member
	raw  string // a scalar's JSON text, or an array of scalars' (see value)
	kind byte   // '{', '[' or 0 for a scalar
	from int32  // children: kids[from : from+n]
	n    int32
}

// pseg is one step of a JSON path: an object key, or an array index.
type pseg struct {
	key   string
	index int // -1 for a key
}

var redactedString = string(redactedRaw)

// redactors keeps redactors, with their scratch slices, between events.
var redactors = sync.Pool{New: func() any { return new(redactor) }}

// maxKeptNodes bounds the scratch a released redactor keeps (a huge
// payload's tree is not held on to).
const maxKeptNodes = 1 << 14

// getRedactor returns a redactor for one event, from the pool.
func getRedactor(dockerSecret bool) *redactor {
	r := redactors.Get().(*redactor)
	r.dockerSecret = dockerSecret
	return r
}

// release returns r to the pool. The strings it holds (into the event's
// line, and the paths) are cleared so that the pool keeps none alive.
func (r *redactor) release() {
	if cap(r.nodes) > maxKeptNodes {
		return
	}
	clear(r.nodes[:cap(r.nodes)])
	clear(r.paths)
	clear(r.path[:cap(r.path)])
	*r = redactor{nodes: r.nodes[:0], kids: r.kids[:0], stack: r.stack[:0], path: r.path[:0], paths: r.paths[:0]}
	redactors.Put(r)
}

// payload applies the rules to the payload raw (valid JSON) named name,
// and returns it re-encoded if anything changed. k8sSecret means
// objectRef.resource is "secrets".
func (r *redactor) payload(raw, name string, k8sSecret bool) (string, bool) {
	r.dirty = false
	r.name = name
	if r.path == nil {
		r.path = make([]pseg, 0, 32)
	}
	if est := min(len(raw)/32+8, maxNodes); cap(r.nodes) < est { // about one value per 32 bytes
		r.nodes = make([]rnode, 0, est)
		r.kids = make([]int32, 0, est)
		r.stack = make([]int32, 0, est)
	}
	r.tooBig = false
	root, ok := r.tree(raw)
	r.parsed = ok
	if r.tooBig {
		// Too many values to inspect one by one within bounded memory:
		// the whole payload is withheld (docker logs keeps the line).
		r.paths = append(r.paths, name)
		return redactedString, true
	}
	if !ok {
		return "", false // not valid JSON: cannot happen for a payload Parse accepted
	}
	r.root(root, k8sSecret)
	if !r.dirty {
		return "", false
	}
	b := r.encode(make([]byte, 0, len(raw)+64), root)
	// b is new and never written again: the string can share it, as
	// strings.Builder does.
	return unsafe.String(unsafe.SliceData(b), len(b)), true
}

// decode builds the tree of raw and returns the root's index (an int32),
// or raw itself if it is not valid JSON. Objects with duplicate keys keep
// the last value (as encoding/json does) and mark the payload dirty, so
// the re-encoded payload is what was inspected.
func (r *redactor) decode(raw json.RawMessage) any {
	if root, ok := r.tree(string(raw)); ok {
		return root
	}
	return raw
}

// tree builds the tree of raw and returns the root's index.
func (r *redactor) tree(raw string) (int32, bool) {
	r.nodes, r.kids, r.stack = r.nodes[:0], r.kids[:0], r.stack[:0]
	d := scanner{s: raw}
	d.ws()
	root, ok := r.value(&d)
	if d.ws(); !ok || d.i != len(d.s) {
		return 0, false
	}
	return root, true
}

// maxNodes bounds a payload's tree: about 12 MiB of nodes. A payload with
// more values than that (a request body of millions of small elements) is
// not inspected value by value: it is redacted whole (see payload), so
// that memory stays bounded whatever a client of the API sends.
var maxNodes = 1 << 18

// value decodes the value at d.i into a new node. An array whose elements
// are all scalars gets no nodes for them: no rule looks inside it, and an
// array of millions of numbers would otherwise cost a node each.
func (r *redactor) value(d *scanner) (int32, bool) {
	if d.i >= len(d.s) {
		return 0, false
	}
	if len(r.nodes) >= maxNodes {
		r.tooBig = true
		return 0, false
	}
	n := int32(len(r.nodes))
	r.nodes = append(r.nodes, rnode{})
	switch c := d.s[d.i]; c {
	case '{', '[':
		if d.depth++; d.depth > maxNesting {
			return 0, false
		}
		start := d.i
		d.i++
		d.ws()
		base := len(r.stack)
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		// In an array, scalars before the first container are only
		// checked; nodes are made for them once a container shows up.
		opaque := c == '['
		if d.i < len(d.s) && d.s[d.i] == end {
			d.i++
		} else {
			for {
				key := ""
				if c == '{' {
					if d.i >= len(d.s) || d.s[d.i] != '"' {
						return 0, false
					}
					ks := d.i
					esc, ok := d.str()
					if !ok {
						return 0, false
					}
					if key, ok = decodeString(d.s[ks:d.i], esc); !ok {
						return 0, false
					}
					d.ws()
					if d.i >= len(d.s) || d.s[d.i] != ':' {
						return 0, false
					}
					d.i++
					d.ws()
				}
				if opaque && d.i < len(d.s) && d.s[d.i] != '{' && d.s[d.i] != '[' {
					if !d.value() {
						return 0, false
					}
				} else {
					if opaque {
						opaque = false
						if !r.scalarNodes(d.s, start+1, d.i, d.depth) {
							return 0, false
						}
					}
					k, ok := r.value(d)
					if !ok {
						return 0, false
					}
					r.nodes[k].key = key
					r.stack = append(r.stack, k)
				}
				d.ws()
				if d.i >= len(d.s) {
					return 0, false
				}
				if d.s[d.i] == end {
					d.i++
					break
				}
				if d.s[d.i] != ',' {
					return 0, false
				}
				d.i++
				d.ws()
			}
		}
		d.depth--
		if opaque {
			r.nodes[n] = rnode{kind: '[', raw: d.s[start:d.i], key: r.nodes[n].key}
			return n, true
		}
		kids := r.stack[base:]
		if c == '{' {
			kids = r.sortMembers(kids)
		}
		r.nodes[n] = rnode{kind: c, from: int32(len(r.kids)), n: int32(len(kids)), key: r.nodes[n].key}
		r.kids = append(r.kids, kids...)
		r.stack = r.stack[:base]
		return n, true
	}
	start := d.i
	if !d.value() {
		return 0, false
	}
	r.nodes[n].raw = d.s[start:d.i]
	return n, true
}

// scalarNodes makes the nodes of the scalar elements in s[from:to], the
// elements an array held before its first container (already checked),
// and pushes them on the stack.
func (r *redactor) scalarNodes(s string, from, to, depth int) bool {
	d := scanner{s: s[:to], i: from, depth: depth}
	for d.ws(); d.i < to; d.ws() {
		if d.s[d.i] == ',' {
			d.i++
			continue
		}
		k, ok := r.value(&d)
		if !ok {
			return false
		}
		r.stack = append(r.stack, k)
	}
	return true
}

// sortMembers sorts an object's members by key and keeps only the last of
// each key, marking the payload dirty if there was a duplicate.
func (r *redactor) sortMembers(kids []int32) []int32 {
	sorted := true
	for i := 1; i < len(kids) && sorted; i++ {
		sorted = r.nodes[kids[i-1]].key < r.nodes[kids[i]].key
	}
	if sorted {
		return kids
	}
	slices.SortStableFunc(kids, func(a, b int32) int { return strings.Compare(r.nodes[a].key, r.nodes[b].key) })
	out := dedupLast(kids, func(k int32) string { return r.nodes[k].key })
	if len(out) < len(kids) {
		r.dirty = true
	}
	return out
}

// children returns the children of node n (none for an array of scalars,
// which is kept as its text).
func (r *redactor) children(n int32) []int32 {
	nd := &r.nodes[n]
	return r.kids[nd.from : nd.from+nd.n]
}

// member returns the child of object n named key.
func (r *redactor) member(n int32, key string) (int32, bool) {
	kids := r.children(n)
	i, ok := slices.BinarySearchFunc(kids, key, func(k int32, key string) int { return strings.Compare(r.nodes[k].key, key) })
	if !ok {
		return 0, false
	}
	return kids[i], true
}

// stringOf returns the string a scalar node holds, or "".
func (r *redactor) stringOf(n int32) string {
	nd := &r.nodes[n]
	if nd.kind != 0 || len(nd.raw) == 0 || nd.raw[0] != '"' {
		return ""
	}
	s, _ := decodeString(nd.raw, strings.IndexByte(nd.raw, '\\') >= 0)
	return s
}

// encode appends node n as encoding/json encodes the map[string]any /
// []any / json.RawMessage tree it stands for.
func (r *redactor) encode(b []byte, n int32) []byte {
	nd := &r.nodes[n]
	switch nd.kind {
	case '{':
		b = append(b, '{')
		for i, c := range r.children(n) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, r.nodes[c].key)
			b = append(b, ':')
			b = r.encode(b, c)
		}
		return append(b, '}')
	case '[':
		if nd.raw != "" { // an array of scalars, as it came
			return appendCompact(b, nd.raw)
		}
		b = append(b, '[')
		for i, c := range r.children(n) {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.encode(b, c)
		}
		return append(b, ']')
	}
	return append(b, nd.raw...)
}
