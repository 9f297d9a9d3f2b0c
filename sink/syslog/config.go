package syslog

import (
	"text/template"

	"github.com/ucp-audit/ucp-audit/logopt"
	"github.com/ucp-audit/ucp-audit/sink"
)

// Destination is the syslog destination: the log-opts syslog-address,
// syslog-format, syslog-facility, syslog-tls-* and tag, and the Remote they
// configure.
var Destination = sink.Destination{
	Name:      "syslog",
	Keys:      options.Keys(),
	Check:     func(key, value string) error { return options.Set(&settings{}, key, value) },
	Configure: configure,
}

// Remote is the syslog destination a container's log-opts configured.
type Remote struct {
	// Options are the Forwarder's, but for AppName and Hostname, which New
	// fills in per container.
	Options Options
	// Tag renders AppName (Docker's "tag" option); nil is Docker's
	// default tag, {{.ID}}: the first 12 characters of the container ID.
	Tag *template.Template
}

// Name is "syslog " and the address.
func (r *Remote) Name() string { return "syslog " + r.Options.Address.String() }

// New returns the Forwarder for container c: AppName is the rendered tag,
// Hostname the node's.
func (r *Remote) New(c sink.Container) (sink.Forwarder, error) {
	o := r.Options
	o.Hostname = c.Host
	o.AppName = r.AppName(c)
	return New(o)
}

// AppName renders the tag for container c; the short ID when the template
// fails on it.
func (r *Remote) AppName(c sink.Container) string { return renderTag(r.Tag, c) }

// settings is what the options say, until configure checks them together.
type settings struct {
	o   Options
	set bool // syslog-address was given
	tag *template.Template
	tls logopt.TLS
}

var options = logopt.Table[settings]{
	"syslog-address": func(s *settings, v string) (string, error) {
		a, err := ParseAddress(v)
		s.o.Address, s.set = a, err == nil
		return "", err
	},
	"syslog-format": func(s *settings, v string) (string, error) {
		f, err := ParseFormat(v)
		s.o.Format = f
		return "rfc5424, rfc5424micro or rfc3164", logopt.NotAllowed(err)
	},
	"syslog-facility": func(s *settings, v string) (string, error) {
		f, err := ParseFacility(v)
		s.o.Facility = f
		return "a facility name such as daemon or local0, or a number from 0 to 23", logopt.NotAllowed(err)
	},
	"syslog-max-message-size": func(s *settings, v string) (string, error) {
		n, err := logopt.Size(v, 1<<10, MaxMaxMessageSize)
		s.o.MaxMessageSize = int(n)
		return "a size from 1k to 64m, at most the receiver's maxMessageSize, such as 256k", err
	},
	"tag": func(s *settings, v string) (string, error) {
		t, err := parseTag(v)
		s.tag = t
		return "a Go template such as {{.Name}} or {{.ID}}", err
	},
}.With(logopt.TLSOptions("syslog", func(s *settings) *logopt.TLS { return &s.tls }))

// configure parses the syslog options a container set; a nil Remote when
// syslog-address is not among them.
func configure(opts map[string]string, env sink.Env) (sink.Remote, error) {
	s := settings{o: Options{Facility: DefaultFacility}}
	if err := options.SetAll(&s, opts); err != nil {
		return nil, err
	}
	isTLS := s.o.Address.Scheme == "tcp+tls"
	if err := logopt.RequireAddress("syslog", opts, s.set, isTLS); err != nil {
		return nil, err
	}
	if !s.set {
		return nil, nil
	}
	if isTLS {
		t, err := s.tls.Client("syslog", env.CertDir)
		if err != nil {
			return nil, err
		}
		s.o.TLS = t
	}
	return &Remote{Options: s.o, Tag: s.tag}, nil
}
