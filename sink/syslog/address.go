package syslog

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
)

// Address is a syslog destination.
type Address struct {
	// Scheme is one of udp, tcp, tcp+tls, relp, unix, unixgram.
	Scheme string
	// Network is what net.Dial wants: udp, tcp, unix or unixgram.
	Network string
	// Addr is host:port, or the socket path for unix and unixgram.
	Addr string
}

// String returns the address in the form ParseAddress accepts.
func (a Address) String() string {
	return a.Scheme + "://" + a.Addr
}

// host returns the host part of Addr (for TLS ServerName).
func (a Address) host() string {
	h, _, err := net.SplitHostPort(a.Addr)
	if err != nil {
		return a.Addr
	}
	return h
}

type schemeInfo struct {
	network     string
	defaultPort string // "" for socket paths
}

// schemes are the accepted schemes. Default ports: 514 for udp and tcp (as
// Docker's syslog driver), 6514 for tcp+tls (RFC 5425), 2514 for relp (the
// port rsyslog's documentation uses; RELP has no assigned port).
var schemes = map[string]schemeInfo{
	"udp":      {"udp", "514"},
	"tcp":      {"tcp", "514"},
	"tcp+tls":  {"tcp", "6514"},
	"relp":     {"tcp", "2514"},
	"unix":     {"unix", ""},
	"unixgram": {"unixgram", ""},
}

const schemeList = "udp, tcp, tcp+tls, relp, unix, unixgram"

// ParseAddress parses a destination such as "tcp://127.0.0.1:10514",
// "udp://host" (default port 514), "tcp+tls://host" (6514),
// "relp://host:2514" (default 2514) or "unix:///dev/log". It only checks the
// syntax: an unreachable destination is not an error here.
func ParseAddress(s string) (Address, error) {
	bad := func(format string, a ...any) (Address, error) {
		return Address{}, fmt.Errorf("invalid syslog address %q: %s", s, fmt.Sprintf(format, a...))
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return bad("want SCHEME://HOST[:PORT] or SCHEME:///SOCKET-PATH with SCHEME one of %s", schemeList)
	}
	scheme = strings.ToLower(scheme)
	info, ok := schemes[scheme]
	if !ok {
		return bad("unknown scheme %q (want one of %s)", scheme, schemeList)
	}
	if info.defaultPort == "" { // socket path
		if rest == "" {
			return bad("missing socket path (want %s:///PATH)", scheme)
		}
		if !strings.HasPrefix(rest, "/") {
			return bad("socket path %q is not absolute (want %s:///PATH, with three slashes)", rest, scheme)
		}
		if strings.ContainsAny(rest, "\x00?#") {
			return bad("socket path %q contains '?', '#' or NUL", rest)
		}
		return Address{Scheme: scheme, Network: info.network, Addr: filepath.Clean(rest)}, nil
	}
	if rest == "" {
		return bad("missing host")
	}
	if i := strings.IndexAny(rest, "/?#@"); i >= 0 {
		return bad("unexpected %q after the host (want %s://HOST[:PORT], without path, query or user)", rest[i:], scheme)
	}
	var host, port string
	switch {
	case strings.HasPrefix(rest, "["): // [IPv6] or [IPv6]:port
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return bad("missing ']' after the IPv6 address")
		}
		host = rest[1:end]
		after := rest[end+1:]
		switch {
		case after == "":
			port = info.defaultPort
		case after[0] == ':':
			port = after[1:]
			if port == "" {
				return bad("empty port after ':'")
			}
		default:
			return bad("unexpected %q after ']'", after)
		}
		if ip, _, _ := strings.Cut(host, "%"); net.ParseIP(ip) == nil || !strings.Contains(ip, ":") {
			return bad("%q is not an IPv6 address", host)
		}
	case strings.Count(rest, ":") > 1:
		return bad("an IPv6 address must be in brackets, as in %s://[::1]:%s", scheme, info.defaultPort)
	default:
		var hasPort bool
		host, port, hasPort = strings.Cut(rest, ":")
		if !hasPort {
			port = info.defaultPort
		} else if port == "" {
			return bad("empty port after ':'")
		}
	}
	if host == "" {
		return bad("missing host")
	}
	for _, c := range []byte(host) {
		if c <= ' ' || c >= 0x7f || c == '%' && !strings.Contains(host, ":") {
			return bad("invalid character %q in host %q", c, host)
		}
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || strings.Trim(port, "0123456789") != "" {
		return bad("bad port %q (want a number from 1 to 65535)", port)
	}
	return Address{Scheme: scheme, Network: info.network, Addr: net.JoinHostPort(host, port)}, nil
}
