package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"

	"github.com/ucp-audit/ucp-audit/logopt"
	"github.com/ucp-audit/ucp-audit/sink/logstash"
	"github.com/ucp-audit/ucp-audit/sink/syslog"
	"github.com/ucp-audit/ucp-audit/spool"
)

// DefaultSpoolMaxSize bounds one container's spool: 268435456 bytes.
const DefaultSpoolMaxSize = 256 << 20

// DefaultTag is Docker's default tag: the first 12 characters of the
// container ID.
const DefaultTag = "{{.ID}}"

// Syslog is the syslog destination, when syslog-address is set.
type Syslog struct {
	Options syslog.Options // AppName and Hostname are filled in per container
}

// Logstash is the Logstash destination, when logstash-address is set.
type Logstash struct {
	Options logstash.Options
}

// TagContext is what the tag template sees, as in Docker's log drivers.
type TagContext struct {
	ID, FullID, Name, ImageID, ImageFullID, ImageName, DaemonName string
}

// remote holds the raw TLS options and the Beats compression level until
// the cross-checks.
type remote struct {
	syslogTLS, logstashTLS tlsOpts
	beatsLevel             *int
}

type tlsOpts = logopt.TLS

var remoteOptions = map[string]option{
	"syslog-address": {func(c *Config, _ Env, v string) (string, error) {
		a, err := syslog.ParseAddress(v)
		if err != nil {
			return "", err
		}
		c.Syslog = &Syslog{Options: syslog.Options{Address: a, Facility: syslog.DefaultFacility}}
		return "", nil
	}},
	"syslog-format": {func(c *Config, _ Env, v string) (string, error) {
		f, err := syslog.ParseFormat(v)
		c.syslogFormat = f
		return "rfc5424, rfc5424micro or rfc3164", logopt.NotAllowed(err)
	}},
	"syslog-facility": {func(c *Config, _ Env, v string) (string, error) {
		f, err := syslog.ParseFacility(v)
		c.syslogFacility = &f
		return "a facility name such as daemon or local0, or a number from 0 to 23", logopt.NotAllowed(err)
	}},
	"tag": {func(c *Config, _ Env, v string) (string, error) {
		t, err := template.New("tag").Option("missingkey=error").Parse(v)
		if err == nil {
			err = t.Execute(discard{}, TagContext{})
		}
		c.Tag = t
		return "a Go template such as {{.Name}} or {{.ID}}", err
	}},
	"syslog-tls-ca-cert":     tlsOpt("syslog", func(t *tlsOpts, v string) { t.CAFile = v }),
	"syslog-tls-cert":        tlsOpt("syslog", func(t *tlsOpts, v string) { t.CertFile = v }),
	"syslog-tls-key":         tlsOpt("syslog", func(t *tlsOpts, v string) { t.KeyFile = v }),
	"syslog-tls-skip-verify": tlsOpt("syslog", func(t *tlsOpts, v string) { t.SkipVerify = v }),
	"logstash-address": {func(c *Config, _ Env, v string) (string, error) {
		a, err := logstash.ParseAddress(v)
		if err != nil {
			return "", err
		}
		c.Logstash = &Logstash{Options: logstash.Options{Address: a}}
		return "", nil
	}},
	"logstash-compression-level": {func(c *Config, _ Env, v string) (string, error) {
		n, err := strconv.Atoi(v)
		if err == nil && (n < 0 || n > 9) {
			err = errors.New("out of range")
		}
		c.remote.beatsLevel = &n
		return "a zlib level from 0 (no compression) to 9, as Filebeat's compression_level", logopt.NotAllowed(err)
	}},
	"logstash-tls-ca-cert":     tlsOpt("logstash", func(t *tlsOpts, v string) { t.CAFile = v }),
	"logstash-tls-cert":        tlsOpt("logstash", func(t *tlsOpts, v string) { t.CertFile = v }),
	"logstash-tls-key":         tlsOpt("logstash", func(t *tlsOpts, v string) { t.KeyFile = v }),
	"logstash-tls-skip-verify": tlsOpt("logstash", func(t *tlsOpts, v string) { t.SkipVerify = v }),
	"spool-max-size": {func(c *Config, _ Env, v string) (string, error) {
		n, err := logopt.Size(v, 1<<20, 1<<40)
		c.SpoolMaxSize = n
		return "a size of at least 1m, such as 256m", err
	}},
	"spool-full": {func(c *Config, _ Env, v string) (string, error) {
		p, err := spool.ParseFullPolicy(v)
		c.SpoolFull = p
		return "drop or block", logopt.NotAllowed(err)
	}},
}

func tlsOpt(dest string, set func(*tlsOpts, string)) option {
	return option{func(c *Config, _ Env, v string) (string, error) {
		if dest == "syslog" {
			set(&c.remote.syslogTLS, v)
		} else {
			set(&c.remote.logstashTLS, v)
		}
		return "", nil
	}}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// checkRemote runs the cross-field checks of the remote options and builds
// their TLS configurations.
func (c *Config) checkRemote(opts map[string]string) error {
	for _, d := range []struct {
		name    string
		enabled bool
		tls     tlsOpts
		tlsOK   func() bool
		setTLS  func(*tls.Config)
	}{
		{"syslog", c.Syslog != nil, c.remote.syslogTLS,
			func() bool { return c.Syslog.Options.Address.Scheme == "tcp+tls" },
			func(t *tls.Config) { c.Syslog.Options.TLS = t }},
		{"logstash", c.Logstash != nil, c.remote.logstashTLS,
			func() bool {
				s := c.Logstash.Options.Address.Scheme
				return s == "beats+tls" || s == "https" || s == "tls"
			},
			func(t *tls.Config) { c.Logstash.Options.TLS = t }},
	} {
		if err := logopt.RequireAddress(d.name, opts, d.enabled, d.enabled && d.tlsOK()); err != nil {
			return err
		}
		if !d.enabled || !d.tlsOK() {
			continue
		}
		t, err := d.tls.Client(d.name)
		if err != nil {
			return err
		}
		d.setTLS(t)
	}
	if l := c.remote.beatsLevel; l != nil {
		if s := c.Logstash.Options.Address.Scheme; s != "beats" && s != "beats+tls" {
			return invalid("logstash-compression-level", opts["logstash-compression-level"], "", fmt.Errorf("%q is not a beats address: only the Beats protocol compresses", opts["logstash-address"]))
		}
		c.Logstash.Options.CompressionLevel = *l
		if *l == 0 {
			c.Logstash.Options.CompressionLevel = logstash.NoCompression
		}
	}
	if c.Syslog != nil {
		c.Syslog.Options.Format = c.syslogFormat
		if c.syslogFacility != nil {
			c.Syslog.Options.Facility = *c.syslogFacility
		}
	}
	return nil
}

// AppName renders the tag for a container.
func (c Config) AppName(tc TagContext) string {
	var b strings.Builder
	if err := c.Tag.Execute(&b, tc); err != nil {
		return tc.ID
	}
	return b.String()
}
