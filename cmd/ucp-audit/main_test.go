package main

import (
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
