//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// TestHostileOptions: each class of log-opt that once let a container
// purge, block, hang or crash the plugin is refused at docker run, with an
// error naming the option, and promptly (a hang would run into the docker
// command's timeout); meanwhile a controller container starting and
// logging is unaffected.
func TestHostileOptions(t *testing.T) {
	dir := remoteDir(t) // below /var/lib/ucp-audit/certs: where TLS files may be
	fifo := filepath.Join(dir, "ca-fifo.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "ca-huge.pem")
	if err := os.WriteFile(huge, []byte(strings.Repeat("A", 2<<20)), 0o600); err != nil {
		t.Fatal(err)
	}
	escape := filepath.Join(dir, "ca-link.pem")
	if err := os.Symlink(nodeFile, escape); err != nil {
		t.Fatal(err)
	}
	tls := fmt.Sprintf("syslog-address=tcp+tls://127.0.0.1:%d", peers.FreeTCPPort(t))
	cases := []struct {
		name string
		opts []string
		key  string // the option the error must name
		want string // and a part of the error
	}{
		// The shared trail: purge, rotation slots, planted directories.
		{"purge-by-rotation", []string{"audit-file-max-size=1k"}, "audit-file-max-size", "trail.maxSize"},
		{"purge-by-count", []string{"audit-file-max-files=2"}, "audit-file-max-files", "trail.maxFiles"},
		{"rotation-slot", []string{"audit-file=/var/log/ucp-audit/audit.log.1"}, "audit-file", "trail.auditFile"},
		{"planted-directory", []string{"audit-file=/var/log/ucp-audit/audit.log.3/x"}, "audit-file", "trail.auditFile"},
		{"quarantine-slot", []string{"quarantine-file=/var/log/ucp-audit/audit.log"}, "quarantine-file", "trail.quarantineFile"},
		// Files read without end, or outside the certificates' directory.
		{"ca-dev-zero", []string{tls, "syslog-tls-ca-cert=/dev/zero"}, "syslog-tls-ca-cert", "/var/lib/ucp-audit/certs"},
		{"ca-fifo", []string{tls, "syslog-tls-ca-cert=" + fifo}, "syslog-tls-ca-cert", "regular file"},
		{"ca-huge", []string{tls, "syslog-tls-ca-cert=" + huge}, "syslog-tls-ca-cert", ""},
		{"ca-symlink-out", []string{tls, "syslog-tls-ca-cert=" + escape}, "syslog-tls-ca-cert", "/var/lib/ucp-audit/certs"},
		{"ca-node-config", []string{tls, "syslog-tls-ca-cert=" + nodeFile}, "syslog-tls-ca-cert", "/var/lib/ucp-audit/certs"},
		// Templates that spin or grow without end.
		{"tag-range", []string{tls, "tag={{range 1000000000000}}{{end}}"}, "tag", "only text and the fields"},
		{"tag-long", []string{tls, "tag=" + strings.Repeat("{{.FullID}}", 40)}, "tag", ""},
		// Above the node's caps.
		{"line-above-cap", []string{"max-line-size=1g"}, "max-line-size", ""},
		{"store-above-cap", []string{"max-size=1g", "max-file=9"}, "max-file", "caps.storeSize"},
		{"spool-above-cap", []string{"logstash-address=beats://127.0.0.1:5044", "spool-max-size=1t"}, "spool-max-size", "caps.spoolSize"},
	}

	// The controller logs while the hostile containers come and go.
	args := []string{"-seed", "63", "-n", "40", "-big", "1", "-malformed=false", "-ignored=false", "-stderr=false", "-sleep", "5ms"}
	em := emit(t, args...)
	ctl, stderr, err := startContainer(t, pluginName, nil, args...)
	if err != nil {
		t.Fatalf("the controller: docker run: %v\n%s", err, stderr)
	}

	var wg sync.WaitGroup
	for _, tc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, stderr, err := startContainerFrom(t, otherImage, pluginName, tc.opts, "-n", "1", "-big", "0")
			if err == nil {
				t.Errorf("%s: --log-opt %q accepted (container %s)", tc.name, tc.opts, c.Name)
				return
			}
			if want := fmt.Sprintf("ucp-audit: log-opt %q", tc.key); !strings.Contains(stderr, want) || !strings.Contains(stderr, tc.want) {
				t.Errorf("%s: --log-opt %q: the error does not contain %s and %q:\n%s", tc.name, tc.opts, want, tc.want, stderr)
			}
		}()
	}
	wg.Wait()

	waitExit(t, ctl)
	recs := waitRecords(t, suite.Audit, ctl, len(em.Forwarded()))
	checkExactlyOnce(t, recs, em.Forwarded())
	checkSequence(t, recs, em.Forwarded())
}
