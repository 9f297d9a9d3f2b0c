package review

import (
	"errors"
	"path"
	"strings"
	"testing"
)

func TestMatchPath(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		// Without "**": path.Match.
		{"/api/v1/namespaces/*/secrets", "/api/v1/namespaces/default/secrets", true},
		{"/api/v1/namespaces/*/secrets", "/api/v1/namespaces/default/secrets/db", false},
		{"/v1.*/secrets*", "/v1.41/secrets/create", false},
		{"/v1.*/secrets*", "/v1.41/secretsx", true},
		{"/v1.**", "/v1.41", true}, // "**" inside a segment is "*"
		{"/v1.**", "/v1.41/x", false},
		{"/a[/]b", "/a/b", true}, // a class may match "/" in path.Match
		// "**" segments.
		{"/api/v1/namespaces/*/secrets/**", "/api/v1/namespaces/default/secrets/db", true},
		{"/api/v1/namespaces/*/secrets/**", "/api/v1/namespaces/default/secrets", true},
		{"/api/v1/namespaces/*/secrets/**", "/api/v1/namespaces/default/secretsx", false},
		{"/api/v1/namespaces/*/secrets/**", "/api/v1/namespaces/a/b/secrets/db", false},
		{"/**/secrets/**", "/v1.41/secrets/create", true},
		{"/**/secrets/**", "/api/v1/namespaces/kube-system/secrets", true},
		{"/**/secrets/**", "/secrets", true},
		{"/**/secrets/**", "/v1.41/configs", false},
		{"**/secrets", "/api/v1/namespaces/default/secrets", true},
		{"**", "/anything/at/all", true},
		{"**", "", true},
		{"/**", "/", true},
		{"/**/b/**/d", "/a/b/c/c/d", true},
		{"/**/b/**/d", "/a/b/c/c/d/e", false},
		{"/**/b/**/d", "/b/d", true},
		{"/**/b/**/d", "/a/c/d", false},
		{"/a/**/**/z", "/a/z", true},
		{"/a/**/?", "/a/x/y/z", true},
		{"/a/**/?", "/a/x/y/zz", false},
		{"/api/**/[ps]ods", "/api/v1/namespaces/x/pods", true},
	}
	for _, tt := range tests {
		got, err := MatchPath(tt.pattern, tt.name)
		if err != nil || got != tt.want {
			t.Errorf("MatchPath(%q, %q) = %v, %v; want %v", tt.pattern, tt.name, got, err, tt.want)
		}
	}
	for _, bad := range []string{"/api/[", "/api/**/[", "/**/a\\", "[]"} {
		if _, err := MatchPath(bad, "/api/x"); !errors.Is(err, path.ErrBadPattern) {
			t.Errorf("MatchPath(%q): error %v, want path.ErrBadPattern", bad, err)
		}
	}
}

// FuzzMatchPath checks that MatchPath is path.Match for patterns without
// "**" segments, reports bad patterns as path.ErrBadPattern, and that a "**"
// segment matches at least what "*" in its place matches.
func FuzzMatchPath(f *testing.F) {
	for _, s := range [][2]string{
		{"/api/v1/namespaces/*/secrets/**", "/api/v1/namespaces/default/secrets/db"},
		{"/**/secrets/**", "/v1.41/secrets/create"},
		{"**", ""},
		{"/a/**/b/**/c", "/a/x/b/y/z/c"},
		{"/a[/]b", "/a/b"},
		{"/api/[", "/api/x"},
		{"/**/\\*", "/x/*"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got, err := MatchPath(pattern, name)
		if err != nil {
			if !errors.Is(err, path.ErrBadPattern) || got {
				t.Fatalf("MatchPath(%q, %q) = %v, %v", pattern, name, got, err)
			}
			return
		}
		if !hasAnySegments(pattern) {
			want, werr := path.Match(pattern, name)
			if got != want || werr != nil {
				t.Fatalf("MatchPath(%q, %q) = %v; path.Match = %v, %v", pattern, name, got, want, werr)
			}
			return
		}
		if strings.ContainsAny(pattern, `\[`) {
			return // escapes and classes may match "/" only in path.Match
		}
		segs := strings.Split(pattern, "/")
		for i, s := range segs {
			if s == anySegments {
				segs[i] = "*"
			}
		}
		if one, _ := path.Match(strings.Join(segs, "/"), name); one && !got {
			t.Fatalf("MatchPath(%q, %q) = false, but %q matches", pattern, name, strings.Join(segs, "/"))
		}
	})
}
