package review

import (
	"fmt"
	"path"
	"strings"
)

// anySegments is the path segment that matches any number of segments.
const anySegments = "**"

// MatchPath reports whether name matches the --path pattern, and returns
// path.ErrBadPattern (wrapped) for a malformed pattern, whatever name is.
//
// A pattern without a "**" segment is a path.Match pattern: "*" and "?"
// do not cross "/", "[a-z]" is a class and "\" escapes. A segment that is
// exactly "**" matches any number of whole segments, none included, so
// /api/v1/namespaces/*/secrets/** matches /api/v1/namespaces/default/secrets
// and everything below it. In a pattern with "**", every "/" separates
// segments and each other segment is a path.Match pattern of one segment.
// "**" inside a segment is two "*" ("/v1.**" is "/v1.*").
func MatchPath(pattern, name string) (bool, error) {
	if !hasAnySegments(pattern) {
		return path.Match(pattern, name)
	}
	pat := strings.Split(pattern, "/")
	for _, p := range pat {
		if p == anySegments {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return false, fmt.Errorf("segment %q: %w", p, err)
		}
	}
	return matchSegments(pat, strings.Split(name, "/")), nil
}

// hasAnySegments reports whether pattern has a "**" segment.
func hasAnySegments(pattern string) bool {
	for s := range strings.SplitSeq(pattern, "/") {
		if s == anySegments {
			return true
		}
	}
	return false
}

// matchSegments matches segments against a pattern whose "**" elements
// match any run of segments and whose other elements (valid path.Match
// patterns) match one segment each. It is the usual wildcard walk: on a
// mismatch it returns to the last "**" and lets it take one more segment,
// so it takes at most len(pat)*len(segs) steps.
func matchSegments(pat, segs []string) bool {
	p, s := 0, 0
	star, starS := -1, 0 // the last "**" seen, and where its run ends now
	for s < len(segs) {
		switch {
		case p < len(pat) && pat[p] == anySegments:
			star, starS = p, s
			p++
		case p < len(pat) && matchSegment(pat[p], segs[s]):
			p++
			s++
		case star >= 0:
			starS++
			p, s = star+1, starS
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == anySegments {
		p++
	}
	return p == len(pat)
}

func matchSegment(pattern, seg string) bool {
	ok, _ := path.Match(pattern, seg)
	return ok
}
