package logstash

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/ucp-audit/ucp-audit/logopt"
)

// The schemes ParseAddress accepts.
const (
	SchemeBeats    = "beats"
	SchemeBeatsTLS = "beats+tls"
	SchemeHTTP     = "http"
	SchemeHTTPS    = "https"
	SchemeTCP      = "tcp"
	SchemeTLS      = "tls"
)

const allowedSchemes = "beats, beats+tls, http, https, tcp or tls"

// Address is a parsed Logstash destination.
type Address struct {
	// Scheme is one of beats, beats+tls, http, https, tcp, tls (lower case).
	Scheme string
	// Addr is host:port: always with a port for beats, beats+tls, tcp and
	// tls; for http and https the URL's host, with a port only if given.
	Addr string
	// URL is the full request URL for http and https (path "/" when none
	// was given); empty for the other schemes.
	URL string
}

// ParseAddress parses a destination: "beats://127.0.0.1:5044",
// "beats+tls://host:5044", "http://host:8080/path", "https://host/path",
// "tcp://host:5000" or "tls://host:5000". beats, beats+tls, tcp and tls need
// an explicit port (Logstash's inputs have no fixed port: the beats input
// usually listens on 5044) and take no path, query or user. http and https
// may carry a path, a query and user:password (sent as basic auth). Errors
// wrap ErrInvalidAddress. Whether the destination is reachable is not
// checked.
func ParseAddress(s string) (Address, error) {
	bad := func(format string, args ...any) (Address, error) {
		return Address{}, fmt.Errorf("logstash address %q: %w: %s", s, ErrInvalidAddress, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(s) != s || s == "" {
		return bad("empty or surrounded by spaces")
	}
	if !strings.Contains(s, "://") {
		return bad("want scheme://host:port with scheme %s", allowedSchemes)
	}
	u, err := url.Parse(s)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return bad("%v", err)
	}
	switch u.Scheme {
	case SchemeBeats, SchemeBeatsTLS, SchemeTCP, SchemeTLS:
		if u.User != nil {
			return bad("%s takes no user information", u.Scheme)
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			return bad("%s takes no path, query or fragment: want %s://host:port", u.Scheme, u.Scheme)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil {
			return bad("want %s://host:port with an explicit port (e.g. %s)", u.Scheme, examplePort(u.Scheme))
		}
		if host == "" {
			return bad("missing host: want %s://host:port", u.Scheme)
		}
		if err := checkPort(port); err != nil {
			return bad("%v", err)
		}
		return Address{Scheme: u.Scheme, Addr: u.Host}, nil
	case SchemeHTTP, SchemeHTTPS:
		if u.Host == "" || u.Hostname() == "" {
			return bad("missing host: want %s://host[:port][/path]", u.Scheme)
		}
		if u.Fragment != "" {
			return bad("%s takes no fragment", u.Scheme)
		}
		if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
			if err := checkPort(port); err != nil {
				return bad("%v", err)
			}
		}
		if u.Path == "" {
			u.Path = "/"
		}
		return Address{Scheme: u.Scheme, Addr: u.Host, URL: u.String()}, nil
	case "":
		return bad("missing scheme: want %s", allowedSchemes)
	default:
		return bad("unknown scheme %q: want %s", u.Scheme, allowedSchemes)
	}
}

func examplePort(scheme string) string {
	switch scheme {
	case SchemeBeats, SchemeBeatsTLS:
		return scheme + "://host:5044"
	default:
		return scheme + "://host:5000"
	}
}

func checkPort(port string) error {
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("invalid port %q (want 1-65535)", port)
	}
	return nil
}

// String returns the address as ParseAddress takes it: scheme://host:port,
// or the URL for http and https with its user information and query values
// masked (logopt.MaskAddress: a user name alone can be an API key, and
// tokens go in the query), so that it can name the destination in logs,
// errors, metric labels and the trail.
func (a Address) String() string {
	switch a.Scheme {
	case SchemeHTTP, SchemeHTTPS:
		return logopt.MaskAddress(a.URL)
	case "":
		return a.Addr
	default:
		return a.Scheme + "://" + a.Addr
	}
}

func (a Address) isTLS() bool {
	return a.Scheme == SchemeBeatsTLS || a.Scheme == SchemeHTTPS || a.Scheme == SchemeTLS
}
