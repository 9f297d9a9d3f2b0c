package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLoadSettings(t *testing.T) {
	tests := []struct {
		env     map[string]string
		want    settings
		wantErr string
	}{
		{env: nil, want: settings{level: slog.LevelInfo, drain: 20 * time.Second, retention: 168 * time.Hour, stateDir: "/var/lib/ucp-audit", logDir: "/var/log/ucp-audit", socket: socketPath, sealEvery: time.Minute}},
		{env: map[string]string{"LOG_LEVEL": "debug", "DRAIN_TIMEOUT": "5s"}, want: settings{level: slog.LevelDebug, drain: 5 * time.Second, retention: 168 * time.Hour, stateDir: "/var/lib/ucp-audit", logDir: "/var/log/ucp-audit", socket: socketPath, sealEvery: time.Minute}},
		{env: map[string]string{"LOG_LEVEL": "loud"}, wantErr: `setting LOG_LEVEL: invalid value "loud"`},
		{env: map[string]string{"DRAIN_TIMEOUT": "soon"}, wantErr: `setting DRAIN_TIMEOUT: invalid value "soon"`},
		{env: map[string]string{"STORE_RETENTION": "-1h"}, wantErr: `setting STORE_RETENTION: invalid value "-1h"`},
		{env: map[string]string{"SEAL_INTERVAL": "10ms"}, wantErr: `setting SEAL_INTERVAL: invalid value "10ms"`},
		{env: map[string]string{"SEAL_INTERVAL": "5m", "SEAL_KEY": "/var/lib/ucp-audit/seal.key"}, want: settings{level: slog.LevelInfo, drain: 20 * time.Second, retention: 168 * time.Hour, stateDir: "/var/lib/ucp-audit", logDir: "/var/log/ucp-audit", socket: socketPath, sealEvery: 5 * time.Minute, sealKey: "/var/lib/ucp-audit/seal.key"}},
		{env: map[string]string{"METRICS_ADDRESS": "9323"}, wantErr: `setting METRICS_ADDRESS: invalid value "9323"`},
		{env: map[string]string{"METRICS_ADDRESS": "127.0.0.1:9323"}, want: settings{level: slog.LevelInfo, drain: 20 * time.Second, retention: 168 * time.Hour, stateDir: "/var/lib/ucp-audit", logDir: "/var/log/ucp-audit", socket: socketPath, metrics: "127.0.0.1:9323", sealEvery: time.Minute}},
	}
	for _, tt := range tests {
		got, err := loadSettings(func(k string) string { return tt.env[k] })
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: error %v, want %q", tt.env, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%v: got %+v, %v; want %+v", tt.env, got, err, tt.want)
		}
	}
}

func TestLoadSettingsMetricsAddress(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"METRICS_ADDRESS": "127.0.0.1:9388"}, ""},
		{map[string]string{"METRICS_ADDRESS": "[::1]:9388"}, ""},
		{map[string]string{"METRICS_ADDRESS": "localhost:9388"}, ""},
		{map[string]string{"METRICS_ADDRESS": "0.0.0.0:9388"}, `setting METRICS_ADDRESS: invalid value "0.0.0.0:9388": not a loopback address`},
		{map[string]string{"METRICS_ADDRESS": ":9388"}, `not a loopback address`},
		{map[string]string{"METRICS_ADDRESS": "10.0.0.7:9388"}, `not a loopback address`},
		{map[string]string{"METRICS_ADDRESS": "10.0.0.7:9388", "METRICS_ALLOW_REMOTE": "true"}, ""},
		{map[string]string{"METRICS_ADDRESS": "10.0.0.7:9388", "METRICS_ALLOW_REMOTE": "yes please"}, `setting METRICS_ALLOW_REMOTE: invalid value "yes please"`},
	} {
		_, err := loadSettings(func(k string) string { return tc.env[k] })
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v, want %q", tc.env, err, tc.want)
		}
	}
}

func TestDispatchUsage(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		code      int
		out, errs string
	}{
		{nil, 2, "", "usage: ucp-audit COMMAND"},
		{[]string{"-h"}, 0, "usage: ucp-audit COMMAND", ""},
		{[]string{"--help"}, 0, "usage: ucp-audit COMMAND", ""},
		{[]string{"help"}, 0, "  serve", ""},
		{[]string{"frob"}, 2, "", `unknown command "frob"`},
	} {
		var out, errs strings.Builder
		code := dispatch(tc.args, &out, &errs)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errs.String(), tc.errs) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", tc.args, code, out.String(), errs.String())
		}
	}
	// Every command's -h works and exits 0 (status, for one, does not take
	// "-h" for an address).
	for _, c := range commands {
		if code := dispatch([]string{c.name, "-h"}, io.Discard, io.Discard); code != 0 {
			t.Errorf("ucp-audit %s -h: exit %d", c.name, code)
		}
	}
}

func TestLockState(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockState(dir); err == nil || !strings.Contains(err.Error(), "another ucp-audit process (pid ") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	unlock2, err := lockState(dir)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
}
