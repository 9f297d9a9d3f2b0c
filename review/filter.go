package review

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Filter selects events. Every non-empty criterion must hold (AND); a list
// holds when any of its values matches (OR). The zero Filter selects every
// event.
type Filter struct {
	// Since (inclusive) and Until (exclusive) bound the event's time
	// (Event.Time). When either is set, an event without a time is not
	// selected.
	Since, Until time.Time
	// Users match the human name (Event.HumanUser), user.username or
	// user.uid, whole and case-insensitively.
	Users []string
	// Verbs match verb case-insensitively ("get" matches GET and get).
	Verbs []string
	// Paths are MatchPath patterns on the requestURI's path (no query
	// string, not unescaped): "*" does not cross "/", so
	// /api/v1/namespaces/*/secrets matches every namespace's secrets list,
	// and a "**" segment matches any number of segments:
	// /api/v1/namespaces/*/secrets/** also matches each secret.
	Paths []string
	// Kinds match the API family (kind) case-insensitively.
	Kinds []string
	// Codes match responseStatus.code; an event without one matches none.
	Codes []Code
	// Containers match a prefix of the container ID or the whole
	// container name (a leading "/" ignored).
	Containers []string
	// Hosts match the ucp-audit/host annotation case-insensitively.
	Hosts []string
	// Grep are case-insensitive substrings of the requestURI.
	Grep []string
	// AuditIDs match auditID, whole and case-insensitively.
	AuditIDs []string
	// SourceIPs hold an address of sourceIPs: an entry with a port
	// ("10.0.0.7:51234", "[::1]:8080") matches by its address, and an
	// IPv4-mapped IPv6 address as the IPv4 one. See ParseSourceIP.
	SourceIPs []netip.Prefix
	// Namespaces match the event's namespace (Event.Namespace), whole and
	// case-insensitively; None matches events without one.
	Namespaces []string
}

// Match reports whether the filter selects e.
func (f *Filter) Match(e *Event) bool {
	if !f.Since.IsZero() || !f.Until.IsZero() {
		if e.Time.IsZero() ||
			!f.Since.IsZero() && e.Time.Before(f.Since) ||
			!f.Until.IsZero() && !e.Time.Before(f.Until) {
			return false
		}
	}
	if len(f.Users) > 0 && !anyOf(f.Users, func(u string) bool {
		return strings.EqualFold(u, e.HumanUser()) || strings.EqualFold(u, e.User.Username) || strings.EqualFold(u, e.User.UID)
	}) {
		return false
	}
	if len(f.Verbs) > 0 && !anyOf(f.Verbs, func(v string) bool { return strings.EqualFold(v, e.Verb) }) {
		return false
	}
	if len(f.Paths) > 0 {
		p := e.Path()
		if !anyOf(f.Paths, func(pat string) bool { ok, _ := MatchPath(pat, p); return ok }) {
			return false
		}
	}
	if len(f.Kinds) > 0 && !anyOf(f.Kinds, func(k string) bool { return strings.EqualFold(k, e.Kind) }) {
		return false
	}
	if len(f.Codes) > 0 && !anyOf(f.Codes, func(c Code) bool { return c.Match(e.Code) }) {
		return false
	}
	if len(f.Containers) > 0 {
		id, name := e.ContainerID(), strings.TrimPrefix(e.ContainerName(), "/")
		if !anyOf(f.Containers, func(c string) bool {
			return c != "" && len(c) <= len(id) && strings.EqualFold(id[:len(c)], c) || strings.TrimPrefix(c, "/") == name && name != ""
		}) {
			return false
		}
	}
	if len(f.Hosts) > 0 && !anyOf(f.Hosts, func(h string) bool { return strings.EqualFold(h, e.Host()) }) {
		return false
	}
	if len(f.Grep) > 0 {
		uri := strings.ToLower(e.RequestURI)
		if !anyOf(f.Grep, func(g string) bool { return strings.Contains(uri, strings.ToLower(g)) }) {
			return false
		}
	}
	if len(f.AuditIDs) > 0 && !anyOf(f.AuditIDs, func(id string) bool { return strings.EqualFold(id, e.AuditID) }) {
		return false
	}
	if len(f.SourceIPs) > 0 && !anyOf(e.SourceIPs, func(ip string) bool {
		a, ok := sourceAddr(ip)
		return ok && anyOf(f.SourceIPs, func(p netip.Prefix) bool { return p.Contains(a) })
	}) {
		return false
	}
	if len(f.Namespaces) > 0 {
		ns := orNone(e.Namespace())
		if !anyOf(f.Namespaces, func(n string) bool { return strings.EqualFold(n, ns) }) {
			return false
		}
	}
	return true
}

// sourceAddr reads an entry of sourceIPs: an address, or an address and
// a port. Zones are dropped and IPv4-mapped addresses unmapped, so that a
// prefix of either family matches as one expects.
func sourceAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.WithZone("").Unmap(), true
}

// ErrSourceIP is returned (wrapped) by ParseSourceIP.
var ErrSourceIP = errors.New("want an IP address (10.0.0.7, fd00::7) or a CIDR prefix (10.0.0.0/8)")

// ParseSourceIP reads a --source-ip value: an address, which matches
// itself, or a CIDR prefix, which matches the addresses in it (its host
// bits are ignored). IPv4-mapped IPv6 values are read as IPv4.
func ParseSourceIP(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: %v", ErrSourceIP, err)
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%w: %s is wider than the IPv4-mapped range", ErrSourceIP, s)
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

func anyOf[T any](list []T, ok func(T) bool) bool {
	for _, x := range list {
		if ok(x) {
			return true
		}
	}
	return false
}

// Code matches response codes from Min to Max: 403 is {403, 403}, 4xx is
// {400, 499}.
type Code struct{ Min, Max int }

// Match reports whether code is in c's range; 0 (no code) never is.
func (c Code) Match(code int) bool { return code != 0 && code >= c.Min && code <= c.Max }

// ErrCode is returned (wrapped) by ParseCode.
var ErrCode = errors.New("want a status code (403) or a class (4xx)")

// ParseCode reads a response code (three digits, 100 to 599) or a class
// (1xx to 5xx, any case).
func ParseCode(s string) (Code, error) {
	if len(s) == 3 && s[0] >= '1' && s[0] <= '5' && strings.EqualFold(s[1:], "xx") {
		base := int(s[0]-'0') * 100
		return Code{base, base + 99}, nil
	}
	if n, err := strconv.Atoi(s); err == nil && len(s) == 3 && n >= 100 && n <= 599 {
		return Code{n, n}, nil
	}
	return Code{}, ErrCode
}

// ErrTimeSpec is returned (wrapped) by ParseTimeSpec.
var ErrTimeSpec = errors.New("want RFC 3339 time, a date (2006-01-02) or a duration before now (90m, 2h, 7d)")

// maxDays bounds the days of a relative time, so that it cannot overflow.
const maxDays = 100000

// ParseTimeSpec reads a --since or --until value: an RFC 3339 time
// ("2024-03-02T10:00:00Z", fractional seconds allowed), a date
// ("2024-03-02", midnight UTC at its start), or a duration before now: a
// Go duration ("90m", "2h30m") or a whole number of days, optionally
// followed by one ("7d", "1d12h").
func ParseTimeSpec(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := parseAgo(s)
	if err != nil {
		return time.Time{}, ErrTimeSpec
	}
	return now.Add(-d).UTC(), nil
}

// parseAgo reads a non-negative duration with an optional leading number
// of days.
func parseAgo(s string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > maxDays || s[0] == '+' || s[0] == '-' {
			return 0, ErrTimeSpec
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	if s == "" || s[0] == '-' || s[0] == '+' {
		return 0, ErrTimeSpec
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > time.Duration(1<<62)-days {
		return 0, fmt.Errorf("%w: %v", ErrTimeSpec, err)
	}
	return days + d, nil
}
