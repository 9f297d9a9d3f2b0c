package logopt

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Masked replaces what may be a secret in an address.
const Masked = "xxxxx"

// MaskAddress returns an address with what may be a secret in it replaced
// by Masked: the user information (user and password: a user name alone
// can be an API key), the values of the query (tokens are passed there)
// and the fragment (no destination uses one, so whatever is there was put
// there by hand). Anything else, the scheme, host, port and path, stays,
// so the result still names the destination in errors, logs, metrics and
// the trail.
func MaskAddress(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Host == "" {
		for _, sec := range secrets(s) {
			s = strings.ReplaceAll(s, sec, Masked)
		}
		return s
	}
	if u.User == nil && u.RawQuery == "" && u.Fragment == "" && u.RawFragment == "" {
		return s // nothing to mask: as given
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = Masked, ""
	}
	if u.User != nil {
		u.User = url.User(Masked)
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{Masked}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// secrets returns the parts of an address that may be secret: the user
// information as a whole, and its user and password, each query value and
// the fragment, longest first. It works on text that need not parse as a
// URL.
func secrets(s string) []string {
	var out []string
	rest := s
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		frag := rest[i+1:]
		rest = rest[:i]
		out = append(out, frag)
		if u, err := url.PathUnescape(frag); err == nil {
			out = append(out, u)
		}
	}
	host := rest
	if i := strings.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if i := strings.LastIndex(host, "@"); i >= 0 {
		info := host[:i]
		out = append(out, info)
		user, pw, _ := strings.Cut(info, ":")
		out = append(out, user, pw)
		if u, err := url.PathUnescape(info); err == nil {
			out = append(out, u)
		}
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		q := rest[i+1:]
		for _, kv := range strings.Split(q, "&") {
			if _, v, ok := strings.Cut(kv, "="); ok {
				out = append(out, v)
				if u, err := url.QueryUnescape(v); err == nil {
					out = append(out, u)
				}
			}
		}
	}
	out = slices.DeleteFunc(out, func(x string) bool { return x == "" })
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// maskIn replaces in text every secret of the address addr, also as
// strconv.Quote writes it.
func maskIn(text, addr string) string {
	for _, sec := range secrets(addr) {
		text = strings.ReplaceAll(text, sec, Masked)
		if q := strconv.Quote(sec); q[1:len(q)-1] != sec {
			text = strings.ReplaceAll(text, q[1:len(q)-1], Masked)
		}
	}
	return text
}
