package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A field path names a value in a record, for group_by:
//
//	event.user.username
//	event.user.extra.username[0]
//	event.annotations["ucp-audit/user"]
//	self.container-id
//
// It starts with event or self; then ".key" (letters, digits, '_' and
// '-'), ["key"] or ['key'] (any key), or [N] (a list's element).
type path struct {
	root  string // "event" or "self"
	steps []step
}

type step struct {
	key   string
	index int // >= 0 for a list element; -1 for a key
}

var errPath = errors.New("not a field path")

func parsePath(s string) (path, error) {
	var p path
	i := strings.IndexAny(s, ".[")
	if i < 0 {
		i = len(s)
	}
	p.root = s[:i]
	if p.root != "event" && p.root != "self" {
		return p, fmt.Errorf("%w: it must start with event or self", errPath)
	}
	for i < len(s) {
		switch s[i] {
		case '.':
			j := i + 1
			for j < len(s) && isKeyByte(s[j]) {
				j++
			}
			if j == i+1 {
				return p, fmt.Errorf("%w: no key after '.' at %d", errPath, i+1)
			}
			p.steps = append(p.steps, step{key: s[i+1 : j], index: -1})
			i = j
		case '[':
			st, n, err := bracket(s[i+1:])
			if err != nil {
				return p, fmt.Errorf("%w: '[' at %d: %w", errPath, i+1, err)
			}
			p.steps = append(p.steps, st)
			i += 1 + n
		default:
			return p, fmt.Errorf("%w: unexpected %q at %d", errPath, s[i], i+1)
		}
	}
	return p, nil
}

func isKeyByte(c byte) bool {
	return c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// bracket reads what follows a '[': a quoted key or an index, then ']'.
// n is how many bytes it took, the ']' included.
func bracket(s string) (st step, n int, err error) {
	if len(s) > 0 && (s[0] == '"' || s[0] == '\'') {
		q := strings.IndexByte(s[1:], s[0])
		if q < 0 || 2+q >= len(s) || s[2+q] != ']' {
			return step{}, 0, errors.New("want a quoted key then ']'")
		}
		return step{key: s[1 : 1+q], index: -1}, 3 + q, nil
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return step{}, 0, errors.New("not closed")
	}
	k, err := strconv.Atoi(s[:end])
	if err != nil || k < 0 || s[:end] != strconv.Itoa(k) {
		return step{}, 0, errors.New("want a quoted key or an index")
	}
	return step{index: k}, end + 1, nil
}

// value returns the path's value in the record's variables as a string:
// "" when it is absent or null, JSON for an object or a list.
func (p path) value(event, self map[string]any) string {
	var v any
	switch p.root {
	case "event":
		v = mapOrNil(event)
	default:
		v = mapOrNil(self)
	}
	for _, st := range p.steps {
		switch x := v.(type) {
		case map[string]any:
			if st.index >= 0 {
				return ""
			}
			v = x[st.key]
		case []any:
			if st.index < 0 || st.index >= len(x) {
				return ""
			}
			v = x[st.index]
		default:
			return ""
		}
	}
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case map[string]any, []any:
		b, _ := json.Marshal(x)
		return string(b)
	default:
		return fmt.Sprint(x)
	}
}

// mapOrNil keeps a nil map an untyped nil.
func mapOrNil(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}
