package audit

import "bytes"

var (
	auditIDBytes  = []byte("auditID")
	auditKeyBytes = []byte(`"audit"`)
)

// LooksLikeAudit reports whether a complete log line looks like audit: it
// contains the bytes "auditID" (the test UCP's support-dump filter uses), or
// it is a JSON object with a top-level "audit" key, or with a top-level key
// spelled with escapes (`"\u0061udit"` is "audit" to a JSON decoder): Parse
// then decides. It never decodes the line: a byte search, and for lines
// that contain `"audit"` or a backslash a shallow scan of the top-level
// keys.
func LooksLikeAudit(line []byte) bool {
	if bytes.Contains(line, auditIDBytes) {
		return true
	}
	if !bytes.Contains(line, auditKeyBytes) && bytes.IndexByte(line, '\\') < 0 {
		return false
	}
	found := false
	scanTopLevelKeys(line, func(key []byte) bool {
		found = string(key) == "audit" || bytes.IndexByte(key, '\\') >= 0
		return !found
	})
	return found
}

// scanTopLevelKeys calls fn with the raw bytes (between the quotes, escapes
// not decoded) of each key of the JSON object in data, until fn returns
// false. It skips nested values without decoding them and does not validate
// the JSON; on malformed input it may report fewer keys. It returns the
// number of keys reported.
func scanTopLevelKeys(data []byte, fn func(key []byte) bool) int {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 || data[0] != '{' {
		return 0
	}
	n := 0
	depth := 0
	expectKey := false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			// Find the closing quote, honouring backslash escapes.
			start := i + 1
			j := start
			for j < len(data) && data[j] != '"' {
				if data[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(data) {
				return n
			}
			if depth == 1 && expectKey {
				n++
				if fn != nil && !fn(data[start:j]) {
					return n
				}
				expectKey = false
			}
			i = j
		case '{', '[':
			depth++
			expectKey = depth == 1
		case '}', ']':
			depth--
			if depth <= 0 {
				return n
			}
		case ',':
			expectKey = depth == 1
		}
	}
	return n
}
