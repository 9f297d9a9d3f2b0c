package logstash

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/ucp-audit/ucp-audit/logopt"
	"github.com/ucp-audit/ucp-audit/sink"
)

// Destination is the Logstash destination: the log-opts logstash-address,
// logstash-compression-level and logstash-tls-*, and the Remote they
// configure.
var Destination = sink.Destination{
	Name:      "logstash",
	Keys:      options.Keys(),
	Check:     func(key, value string) error { return options.Set(&settings{}, key, value) },
	Configure: configure,
}

// Remote is the Logstash destination a container's log-opts configured.
type Remote struct {
	Options Options
}

// Name is "logstash " and the address, with any password masked.
func (r *Remote) Name() string { return "logstash " + r.Options.Address.String() }

// New returns the Forwarder; it is the same for every container.
func (r *Remote) New(sink.Container) (sink.Forwarder, error) { return New(r.Options) }

// settings is what the options say, until configure checks them together.
type settings struct {
	o     Options
	set   bool // logstash-address was given
	level *int // logstash-compression-level, when given
	tls   logopt.TLS
}

var options = logopt.Table[settings]{
	"logstash-address": func(s *settings, v string) (string, error) {
		a, err := ParseAddress(v)
		s.o.Address, s.set = a, err == nil
		return "", err
	},
	"logstash-compression-level": func(s *settings, v string) (string, error) {
		n, err := strconv.Atoi(v)
		if err == nil && (n < 0 || n > 9) {
			err = errors.New("out of range")
		}
		s.level = &n
		return "a zlib level from 0 (no compression) to 9, as Filebeat's compression_level", logopt.NotAllowed(err)
	},
	"logstash-max-message-size": func(s *settings, v string) (string, error) {
		n, err := logopt.Size(v, 1<<10, MaxMaxMessageSize)
		s.o.MaxMessageSize = int(n)
		return "a size from 1k to 64m, such as 4m", err
	},
}.With(logopt.TLSOptions("logstash", func(s *settings) *logopt.TLS { return &s.tls }))

// configure parses the Logstash options a container set; a nil Remote when
// logstash-address is not among them.
func configure(opts map[string]string, env sink.Env) (sink.Remote, error) {
	var s settings
	if err := options.SetAll(&s, opts); err != nil {
		return nil, err
	}
	isTLS := s.o.Address.isTLS()
	if err := logopt.RequireAddress("logstash", opts, s.set, isTLS); err != nil {
		return nil, err
	}
	if !s.set {
		return nil, nil
	}
	if isTLS {
		t, err := s.tls.Client("logstash", env.CertDir)
		if err != nil {
			return nil, err
		}
		s.o.TLS = t
	}
	if l := s.level; l != nil {
		if sc := s.o.Address.Scheme; sc != SchemeBeats && sc != SchemeBeatsTLS {
			return nil, logopt.Invalid("logstash-compression-level", opts["logstash-compression-level"], "",
				fmt.Errorf("%q is not a beats address: only the Beats protocol compresses", logopt.MaskAddress(opts["logstash-address"])))
		}
		s.o.CompressionLevel = *l
		if *l == 0 {
			s.o.CompressionLevel = NoCompression
		}
	}
	return &Remote{Options: s.o}, nil
}
