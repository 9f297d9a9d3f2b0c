package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/audit"
	"github.com/ucp-audit/ucp-audit/node"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/sink/logstash"
	"github.com/ucp-audit/ucp-audit/sink/syslog"
)

// remote returns c's remote destination of type T, or the zero T.
func remote[T sink.Remote](c Config) T {
	for _, r := range c.Remotes {
		if t, ok := r.(T); ok {
			return t
		}
	}
	var zero T
	return zero
}

var env = Env{}

func TestParseDefaults(t *testing.T) {
	c, err := Parse(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuditLevel != audit.LevelRequest || c.MaxLineSize != DefaultMaxLineSize || c.StoreMaxSize != DefaultStoreMaxSize ||
		c.StoreMaxFile != DefaultStoreMaxFile || c.SpoolMaxSize != DefaultSpoolMaxSize ||
		!c.AuditIgnore.Match("/v1.41/_ping") || c.AuditIgnore.Match("/auth/login") {
		t.Fatalf("defaults: %+v", c)
	}
	// Under small caps the defaults shrink to fit.
	small := node.Caps{MaxLineSize: 1 << 20, StoreSize: 10 << 20, StoreTotal: 1 << 30, SpoolSize: 8 << 20, SpoolTotal: 1 << 30}
	c, err = Parse(nil, Env{Caps: small})
	if err != nil || c.MaxLineSize != 1<<20 || c.StoreMaxSize*int64(c.StoreMaxFile) > 10<<20 || c.SpoolMaxSize != 8<<20 {
		t.Fatalf("defaults under small caps: %+v, %v", c, err)
	}
}

func TestParseValues(t *testing.T) {
	c, err := Parse(map[string]string{
		"audit-level":     "Metadata",
		"audit-ignore":    "/v1.41/services*, /nodes",
		"max-line-size":   "2m",
		"max-size":        "1m",
		"max-file":        "2",
		"mode":            "non-blocking",
		"max-buffer-size": "4m",
		"cache-disabled":  "true",
	}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuditLevel != audit.LevelMetadata || c.MaxLineSize != 2<<20 ||
		c.StoreMaxSize != 1_000_000 || c.StoreMaxFile != 2 || c.AuditIgnore.Match("/_ping") || !c.AuditIgnore.Match("/v1.41/nodes") {
		t.Fatalf("got %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		key, value string
		sentinel   error
		want       string
	}{
		{"bogus", "1", ErrUnknownOption, `ucp-audit: log-opt "bogus": unknown option (known: `},
		{"audit-level", "bogus", ErrInvalidValue, `ucp-audit: log-opt "audit-level": invalid value "bogus": unknown level (want none, metadata or request)`},
		{"audit-ignore", "foo", ErrInvalidValue, `log-opt "audit-ignore": invalid value "foo"`},
		// What reaches beyond the container belongs to the node.
		{"audit-file", "/var/log/ucp-audit/audit.log.1", ErrNodeSetting, `ucp-audit: log-opt "audit-file": invalid value "/var/log/ucp-audit/audit.log.1": the trail's files belong to the node, not to a container (want no audit-file log-opt: set trail.auditFile in the node configuration (ucp-audit config set trail.auditFile=…))`},
		{"quarantine-file", "/var/log/ucp-audit/q.log", ErrNodeSetting, `log-opt "quarantine-file": invalid value "/var/log/ucp-audit/q.log": the trail's files belong to the node, not to a container (want no quarantine-file log-opt: set trail.quarantineFile`},
		{"audit-file-max-size", "1k", ErrNodeSetting, `(want no audit-file-max-size log-opt: set trail.maxSize`},
		{"audit-file-max-files", "2", ErrNodeSetting, `(want no audit-file-max-files log-opt: set trail.maxFiles`},
		// Within the node's caps (the defaults here).
		{"max-line-size", "8m", ErrInvalidValue, `log-opt "max-line-size": invalid value "8m": above the node's cap (want a size from 16k, at most the node's caps.maxLineSize (4m))`},
		{"max-size", "1g", ErrInvalidValue, `log-opt "max-size": invalid value "1g": above the node's cap (want max-size × max-file, at most the node's caps.storeSize (1g))`},
		{"spool-max-size", "2g", ErrInvalidValue, `log-opt "spool-max-size": invalid value "2g": above the node's cap (want a size of at least 1m, at most the node's caps.spoolSize (1g))`},
		{"max-line-size", "1k", ErrInvalidValue, `log-opt "max-line-size": invalid value "1k": out of range (want a size from 16k to 64m)`},
		{"max-size", "x", ErrInvalidValue, `log-opt "max-size"`},
		{"max-file", "0", ErrInvalidValue, `log-opt "max-file"`},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			_, err := Parse(map[string]string{tt.key: tt.value}, env)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v does not wrap %v", err, tt.sentinel)
			}
			var oe *OptionError
			if !errors.As(err, &oe) || oe.Key != tt.key {
				t.Errorf("error does not name the key: %#v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, k := range Keys() {
		f.Add(k, "1m")
	}
	f.Fuzz(func(t *testing.T, k, v string) {
		c, err := Parse(map[string]string{k: v}, env)
		if err != nil {
			var oe *OptionError
			if !errors.As(err, &oe) || !strings.Contains(err.Error(), fmt.Sprintf("%q", oe.Key)) {
				t.Fatalf("error does not name %q: %v", k, err)
			}
			return
		}
		caps := env.caps()
		if int64(c.MaxLineSize) > caps.MaxLineSize || c.StoreMaxSize*int64(c.StoreMaxFile) > caps.StoreSize || c.SpoolMaxSize > caps.SpoolSize {
			t.Fatalf("past the node's caps: %+v", c)
		}
	})
}

func TestParseRemote(t *testing.T) {
	c, err := Parse(map[string]string{
		"syslog-address":   "relp://127.0.0.1:12514",
		"syslog-format":    "rfc5424micro",
		"syslog-facility":  "local3",
		"tag":              "{{.Name}}/{{.ID}}",
		"logstash-address": "beats://127.0.0.1:5044",
		"spool-max-size":   "64m",
		"spool-full":       "block",
	}, env)
	if err != nil {
		t.Fatal(err)
	}
	sl, ls := remote[*syslog.Remote](c), remote[*logstash.Remote](c)
	if sl == nil || sl.Options.Address.Scheme != "relp" || sl.Options.Facility != 19 ||
		sl.Options.Format.String() != "rfc5424micro" || ls == nil || c.SpoolMaxSize != 64<<20 || c.SpoolFull.String() != "block" {
		t.Fatalf("got %+v", c)
	}
	if got := sl.AppName(sink.Container{ID: "0123456789ab", Name: "ucp-controller"}); got != "ucp-controller/0123456789ab" {
		t.Errorf("AppName = %q", got)
	}
	for level, want := range map[string]int{"0": logstash.NoCompression, "1": 1, "9": 9} {
		c, err := Parse(map[string]string{"logstash-address": "beats+tls://h:1", "logstash-compression-level": level}, env)
		if err != nil || remote[*logstash.Remote](c).Options.CompressionLevel != want {
			t.Errorf("logstash-compression-level=%s: %v, %+v", level, err, c)
		}
	}
	d, _ := Parse(nil, env)
	if remote[*syslog.Remote](d) != nil || remote[*logstash.Remote](d) != nil || d.SpoolFull.String() != "drop" {
		t.Fatalf("defaults: %+v", d)
	}
	// The default tag is the short ID.
	dt, _ := Parse(map[string]string{"syslog-address": "udp://h"}, env)
	if remote[*syslog.Remote](dt).AppName(sink.Container{ID: "abc"}) != "abc" {
		t.Fatalf("default tag: %+v", dt)
	}
}

// labels, labels-regex, env and env-regex select the container's labels and
// environment as annotations, as Docker's drivers do; a variable whose name
// says secret has its value redacted; a regexp that does not compile is an
// error naming the option.
func TestAttributes(t *testing.T) {
	c, err := Parse(map[string]string{"labels": "com.example.team, tier", "labels-regex": "^io\\.k8s\\.", "env": "MODE,DB_PASSWORD", "env-regex": "^UCP_"}, env)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Attributes(
		map[string]string{"com.example.team": "blue", "tier": "front", "io.k8s.ns": "kube-system", "other": "x"},
		[]string{"MODE=prod", "DB_PASSWORD=hunter2", "UCP_API_TOKEN=abc", "UCP_VERSION=3.8", "PATH=/bin", "BROKEN"})
	want := "ucp-audit/env/DB_PASSWORD=<redacted> ucp-audit/env/MODE=prod ucp-audit/env/UCP_API_TOKEN=<redacted> ucp-audit/env/UCP_VERSION=3.8 " +
		"ucp-audit/label/com.example.team=blue ucp-audit/label/io.k8s.ns=kube-system ucp-audit/label/tier=front"
	var parts []string
	for _, a := range got {
		parts = append(parts, a.Key+"="+a.Value)
	}
	if strings.Join(parts, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(parts, " "), want)
	}
	if d, _ := Parse(nil, env); d.Attributes(map[string]string{"a": "b"}, []string{"A=b"}) == nil || len(d.Attributes(map[string]string{"a": "b"}, nil)) != 0 {
		t.Error("without the options: want an empty, non-nil list")
	}
	if _, err := Parse(map[string]string{"labels-regex": "("}, env); err == nil || !strings.Contains(err.Error(), `log-opt "labels-regex"`) {
		t.Errorf("bad regexp: %v", err)
	}
}

// mode=non-blocking lets dockerd drop lines before the plugin sees them:
// refused for an audit producer, accepted for any other container, and for
// a stream resumed as it runs.
func TestNonBlockingMode(t *testing.T) {
	opts := map[string]string{"mode": "non-blocking", "max-buffer-size": "4m"}
	prod := env
	prod.Producer = true
	_, err := Parse(opts, prod)
	if !errors.Is(err, ErrLossyMode) || !strings.Contains(err.Error(), `log-opt "mode": invalid value "non-blocking"`) {
		t.Errorf("producer: %v", err)
	}
	if _, err := Parse(map[string]string{"mode": "blocking"}, prod); err != nil {
		t.Errorf("producer, blocking: %v", err)
	}
	if _, err := Parse(opts, env); err != nil {
		t.Errorf("not a producer: %v", err)
	}
	if _, err := ParseStored(opts, prod); err != nil {
		t.Errorf("resumed: %v", err)
	}
}

// A destination's name goes into metric labels, gap and self records and
// logs: it never carries the address's credentials or query tokens.
func TestRemoteNameHasNoSecret(t *testing.T) {
	for _, addr := range []string{
		"https://apikey-user:pa55word@siem.example.com:8443/ingest?token=t0ken-value",
		"http://apikey-user@siem.example.com/ingest?x=1&token=t0ken-value",
	} {
		c, err := Parse(map[string]string{"logstash-address": addr}, env)
		if err != nil {
			t.Fatal(err)
		}
		name := c.Remotes[0].Name()
		for _, secret := range []string{"apikey-user", "pa55word", "t0ken-value"} {
			if strings.Contains(name, secret) {
				t.Errorf("%s: destination name %q holds %q", addr, name, secret)
			}
		}
		if !strings.Contains(name, "siem.example.com") {
			t.Errorf("%s: destination name %q does not name the host", addr, name)
		}
	}
}

func TestParseRemoteErrors(t *testing.T) {
	tests := []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{"syslog-address": "ftp://x"}, `log-opt "syslog-address": invalid value "ftp://x"`},
		{map[string]string{"syslog-address": "tcp://"}, `log-opt "syslog-address"`},
		{map[string]string{"logstash-address": "beats://host"}, `log-opt "logstash-address"`},
		{map[string]string{"syslog-format": "rfc5424"}, `log-opt "syslog-format": invalid value "rfc5424": set without "syslog-address"`},
		{map[string]string{"syslog-address": "tcp://127.0.0.1:1", "syslog-format": "json"}, `log-opt "syslog-format": invalid value "json": not allowed (want rfc5424, rfc5424micro or rfc3164)`},
		{map[string]string{"syslog-address": "tcp://127.0.0.1:1", "syslog-facility": "kitchen"}, `log-opt "syslog-facility"`},
		{map[string]string{"syslog-address": "tcp://127.0.0.1:1", "syslog-tls-ca-cert": "/x"}, `log-opt "syslog-tls-ca-cert": invalid value "/x": "tcp://127.0.0.1:1" is not a TLS address`},
		{map[string]string{"syslog-address": "tcp+tls://127.0.0.1:1", "syslog-tls-ca-cert": "/nonexistent/ca.pem"}, `log-opt "syslog-tls-ca-cert": invalid value "/nonexistent/ca.pem"`},
		{map[string]string{"logstash-address": "https://h:1", "logstash-tls-skip-verify": "maybe"}, `log-opt "logstash-tls-skip-verify": invalid value "maybe"`},
		{map[string]string{"logstash-address": "beats://h:1", "logstash-compression-level": "10"}, `log-opt "logstash-compression-level": invalid value "10": not allowed (want a zlib level from 0 (no compression) to 9`},
		{map[string]string{"logstash-address": "beats://h:1", "logstash-compression-level": "fast"}, `log-opt "logstash-compression-level": invalid value "fast"`},
		{map[string]string{"logstash-address": "https://h:1", "logstash-compression-level": "1"}, `log-opt "logstash-compression-level": invalid value "1": "https://h:1" is not a beats address`},
		{map[string]string{"logstash-compression-level": "1"}, `log-opt "logstash-compression-level": invalid value "1": set without "logstash-address"`},
		{map[string]string{"tag": "{{.Nope}}"}, `log-opt "tag": invalid value "{{.Nope}}"`},
		{map[string]string{"tag": "{{"}, `log-opt "tag"`},
		{map[string]string{"spool-full": "sometimes"}, `log-opt "spool-full": invalid value "sometimes": not allowed (want drop or block)`},
		{map[string]string{"spool-max-size": "1k"}, `log-opt "spool-max-size": invalid value "1k": out of range`},
	}
	for _, tt := range tests {
		_, err := Parse(tt.opts, env)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v\nwant it to contain %q", tt.opts, err, tt.want)
		}
	}
}
