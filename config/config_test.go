package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/audit"
)

var env = Env{LogDir: "/var/log/ucp-audit"}

func TestParseDefaults(t *testing.T) {
	c, err := Parse(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuditLevel != audit.LevelRequest || c.AuditFile != "/var/log/ucp-audit/audit.log" ||
		c.QuarantineFile != "/var/log/ucp-audit/quarantine.log" || c.MaxLineSize < 1<<20 ||
		!c.AuditIgnore.Match("/v1.41/_ping") || c.AuditIgnore.Match("/auth/login") {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestParseValues(t *testing.T) {
	c, err := Parse(map[string]string{
		"audit-level":          "Metadata",
		"audit-ignore":         "/v1.41/services*, /nodes",
		"audit-file":           "/var/log/ucp-audit/x/../a.log",
		"quarantine-file":      "/var/log/ucp-audit/q/q.log",
		"audit-file-max-size":  "10m",
		"audit-file-max-files": "3",
		"max-line-size":        "2m",
		"max-size":             "1m",
		"max-file":             "2",
		"mode":                 "non-blocking",
		"max-buffer-size":      "4m",
		"cache-disabled":       "true",
	}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuditLevel != audit.LevelMetadata || c.AuditFile != "/var/log/ucp-audit/a.log" ||
		c.AuditFileMaxSize != 10<<20 || c.AuditFileMaxFile != 3 || c.MaxLineSize != 2<<20 ||
		c.StoreMaxSize != 1<<20 || c.StoreMaxFile != 2 || c.AuditIgnore.Match("/_ping") || !c.AuditIgnore.Match("/v1.41/nodes") {
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
		{"audit-file", "/tmp/audit.log", ErrInvalidValue, `log-opt "audit-file": invalid value "/tmp/audit.log": not below the plugin's log directory`},
		{"audit-file", "relative.log", ErrInvalidValue, `not an absolute path`},
		{"audit-file", "/var/log/ucp-audit", ErrInvalidValue, `not below`},
		{"quarantine-file", "/var/log/ucp-audit/audit.log", ErrInvalidValue, `log-opt "quarantine-file": invalid value "/var/log/ucp-audit/audit.log" (want a path different from audit-file)`},
		{"audit-file-max-size", "lots", ErrInvalidValue, `log-opt "audit-file-max-size": invalid value "lots": not a size`},
		{"audit-file-max-files", "1", ErrInvalidValue, `log-opt "audit-file-max-files": invalid value "1": out of range (want a whole number from 2 to 1000)`},
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
		if !strings.HasPrefix(c.AuditFile, env.LogDir+"/") || !strings.HasPrefix(c.QuarantineFile, env.LogDir+"/") {
			t.Fatalf("output outside the log dir: %+v", c)
		}
	})
}
