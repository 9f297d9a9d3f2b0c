package audit

import (
	"fmt"
	"strings"
)

// DefaultIgnoreList is the list of endpoints UCP itself does not audit
// (UCP docs, "API endpoints ignored").
var DefaultIgnoreList = []string{"/_ping", "/ca", "/auth", "/trustedregistryca", "/kubeauth", "/metrics", "/info", "/version*", "/debug", "/openid_keys", "/apidocs", "/kubernetesdocs", "/manage"}

// Ignore is the ignore list of request paths. The zero value ignores nothing.
//
// An entry ending in "*" matches every path with that prefix; any other
// entry matches exactly one path. Paths are compared as written in the
// event: they are not cleaned or unescaped, so "/auth/" and "/%61uth" do
// not match "/auth". Only the query, the fragment and one Docker API
// version prefix ("/v1.41") are removed first.
type Ignore struct {
	entries []string
}

// NewIgnore builds an Ignore from entries. Each entry is trimmed and empty
// entries are skipped. An entry must start with "/", may use "*" only as
// its last character and must not contain "?" or "#" (they could never
// match). Errors name the entry and wrap ErrBadIgnore.
func NewIgnore(entries []string) (Ignore, error) {
	var ig Ignore
	for _, raw := range entries {
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		var reason string
		switch {
		case !strings.HasPrefix(e, "/"):
			reason = `must start with "/"`
		case strings.Contains(e[:len(e)-1], "*"):
			reason = `"*" is only allowed as the last character`
		case strings.ContainsAny(e, "?#"):
			reason = `must not contain "?" or "#"`
		}
		if reason != "" {
			return Ignore{}, fmt.Errorf("%w: entry %q: %s", ErrBadIgnore, e, reason)
		}
		// Paths are matched without their Docker API version prefix, so an
		// entry written with one ("/v1.41/services*") drops it as well;
		// otherwise it could never match.
		if n := versionPrefixLen(strings.TrimSuffix(e, "*")); n > 0 {
			if e = e[n:]; e == "" || e == "*" {
				e = "/" + e
			}
		}
		ig.entries = append(ig.entries, e)
	}
	return ig, nil
}

// ParseIgnore splits a comma-separated list and calls NewIgnore.
// The empty string ignores nothing.
func ParseIgnore(commaList string) (Ignore, error) {
	return NewIgnore(strings.Split(commaList, ","))
}

// Match reports whether requestURI is ignored.
func (ig Ignore) Match(requestURI string) bool {
	_, ok := ig.matchEntry(requestURI)
	return ok
}

// String returns the entries joined with ",", as ParseIgnore reads them.
func (ig Ignore) String() string { return strings.Join(ig.entries, ",") }

// matchEntry returns the first entry that matches requestURI.
func (ig Ignore) matchEntry(requestURI string) (string, bool) {
	if len(ig.entries) == 0 {
		return "", false
	}
	p := apiPath(requestURI)
	for _, e := range ig.entries {
		if prefix, ok := strings.CutSuffix(e, "*"); ok {
			if strings.HasPrefix(p, prefix) {
				return e, true
			}
		} else if p == e {
			return e, true
		}
	}
	return "", false
}

// apiPath returns the path of requestURI without query, fragment and one
// Docker API version prefix: "/v1.41/_ping?x=1" → "/_ping", "/v1.41" → "/".
// Nothing else is changed.
func apiPath(requestURI string) string {
	p := requestURI
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if n := versionPrefixLen(p); n > 0 {
		p = p[n:]
		if p == "" {
			p = "/"
		}
	}
	return p
}

// versionPrefixLen returns the length of a leading `/v[0-9]+\.[0-9]+` that
// is followed by "/" or the end of p, or 0.
func versionPrefixLen(p string) int {
	if !strings.HasPrefix(p, "/v") {
		return 0
	}
	i := 2
	digits := func() bool {
		start := i
		for i < len(p) && p[i] >= '0' && p[i] <= '9' {
			i++
		}
		return i > start
	}
	if !digits() || i >= len(p) || p[i] != '.' {
		return 0
	}
	i++
	if !digits() || (i < len(p) && p[i] != '/') {
		return 0
	}
	return i
}
