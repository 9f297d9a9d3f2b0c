//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestBadOptions checks that an unknown or malformed log-opt makes
// `docker run` fail with an error naming the key, and that the keys dockerd
// handles itself are accepted.
func TestBadOptions(t *testing.T) {
	cases := []struct {
		name string
		opt  string // key=value; several separated by " "
		ok   bool
		want string // substring of docker run's stderr
	}{
		{"unknown-key", "bogus-key=1", false, `ucp-audit: log-opt "bogus-key": unknown option`},
		{"bad-level", "audit-level=bogus", false, `ucp-audit: log-opt "audit-level": invalid value "bogus"`},
		{"bad-ignore", "audit-ignore=services", false, `ucp-audit: log-opt "audit-ignore"`},
		{"bad-max-size", "max-size=12q", false, `ucp-audit: log-opt "max-size"`},
		{"bad-max-file", "max-file=-3", false, `ucp-audit: log-opt "max-file"`},
		// The trail's files are the node's: a container cannot name,
		// size or rotate them, whatever the value.
		{"audit-file", "audit-file=/var/log/ucp-audit/mine.log", false, `ucp-audit: log-opt "audit-file": invalid value "/var/log/ucp-audit/mine.log": the trail's files belong to the node, not to a container (want no audit-file log-opt: set trail.auditFile in the node configuration`},
		{"audit-file-outside", "audit-file=/tmp/audit.log", false, `ucp-audit: log-opt "audit-file"`},
		{"quarantine-file", "quarantine-file=/var/log/ucp-audit/q.log", false, `ucp-audit: log-opt "quarantine-file": invalid value "/var/log/ucp-audit/q.log": the trail's files belong to the node, not to a container (want no quarantine-file log-opt: set trail.quarantineFile`},
		{"audit-file-max-size", "audit-file-max-size=1k", false, `ucp-audit: log-opt "audit-file-max-size": invalid value "1k": the trail's files belong to the node, not to a container (want no audit-file-max-size log-opt: set trail.maxSize`},
		{"audit-file-max-files", "audit-file-max-files=2", false, `ucp-audit: log-opt "audit-file-max-files": invalid value "2": the trail's files belong to the node, not to a container (want no audit-file-max-files log-opt: set trail.maxFiles`},
		// Above the node's caps.
		{"max-line-size-above-cap", "max-line-size=128m", false, `ucp-audit: log-opt "max-line-size"`},
		{"max-line-size-too-small", "max-line-size=10", false, `ucp-audit: log-opt "max-line-size"`},
		{"max-line-size-garbage", "max-line-size=big", false, `ucp-audit: log-opt "max-line-size"`},
		// dockerd would drop an audit producer's lines before the
		// plugin sees them (TestNonBlockingMode: other containers may).
		{"mode-non-blocking-producer", "mode=non-blocking max-buffer-size=1m", false, `ucp-audit: log-opt "mode": invalid value "non-blocking": dockerd drops lines in non-blocking mode`},
		{"mode-blocking-accepted", "mode=blocking", true, ""},
		{"sizes-accepted", "max-size=10m", true, ""},
		{"level-case-insensitive", "audit-level=Metadata", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := strings.Fields(tc.opt)
			c, stderr, err := startContainer(t, pluginName, opts, "-n", "1", "-big", "0")
			if tc.ok {
				if err != nil {
					t.Fatalf("--log-opt %s rejected: %v", tc.opt, err)
				}
				waitExit(t, c)
				return
			}
			if err == nil {
				t.Fatalf("--log-opt %s accepted, want an error containing %q", tc.opt, tc.want)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("--log-opt %s: stderr does not contain %q:\n%s", tc.opt, tc.want, stderr)
			}
			key, _, _ := strings.Cut(tc.opt, "=")
			if !strings.Contains(stderr, fmt.Sprintf("%q", key)) {
				t.Errorf("--log-opt %s: error does not name the key:\n%s", tc.opt, stderr)
			}
		})
	}
}

// TestNonBlockingMode: a container that is not an audit producer may log
// in non-blocking mode (its lines are only its docker logs); an audit
// producer may not (TestBadOptions).
func TestNonBlockingMode(t *testing.T) {
	c, stderr, err := startContainerFrom(t, otherImage, pluginName, []string{"mode=non-blocking", "max-buffer-size=1m"}, "-n", "1", "-big", "0")
	if err != nil {
		t.Fatalf("a non-producer in non-blocking mode: %v\n%s", err, stderr)
	}
	waitExit(t, c)
}
