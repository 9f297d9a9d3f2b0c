//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startRegistry runs Debian's docker-registry (distribution 2.8) on a free
// loopback port with a temporary storage directory and no auth. dockerd
// trusts 127.0.0.0/8 as an insecure registry by default.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		if required() {
			t.Fatal("docker-registry is not installed (.ci/run installs Debian's docker-registry)")
		}
		t.Skip("SKIPPING: docker-registry is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", conf)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatal("docker-registry did not listen")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func required() bool {
	return os.Getenv("UCP_AUDIT_E2E_REQUIRED") == "1" || os.Getenv("CI") == "true"
}

func mustMake(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-C", repoRoot}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestRegistryInstallAndUpgrade ships the plugin the way Docker plugins
// ship: make push to a registry, docker plugin install --alias with a
// setting, logging through it, then make push of a new version and docker
// plugin upgrade, with the state under /var/lib/ucp-audit surviving.
func TestRegistryInstallAndUpgrade(t *testing.T) {
	reg := startRegistry(t)
	// Whatever happens, leave the locally built plugin for the other tests.
	t.Cleanup(func() {
		docker(nil, "plugin", "disable", "-f", pluginName)
		docker(nil, "plugin", "rm", "-f", pluginName)
		mustMake(t, "install")
	})
	ref1 := reg + "/ucp-audit:e2e-1"
	mustMake(t, "push", "REGISTRY="+reg, "TAG=e2e-1")

	// Install from the registry under the usual name, with a setting.
	docker(nil, "plugin", "disable", "-f", pluginName)
	mustDocker(t, "plugin", "rm", "-f", pluginName)
	mustDocker(t, "plugin", "install", "--grant-all-permissions", "--disable", "--alias", pluginName, ref1, "LOG_LEVEL=debug")
	mustDocker(t, "plugin", "enable", "--timeout", "0", pluginName)
	if env := mustDocker(t, "plugin", "inspect", "-f", "{{.Settings.Env}}", pluginName); !strings.Contains(env, "LOG_LEVEL=debug") {
		t.Fatalf("install-time setting lost: %s", env)
	}
	if desc := mustDocker(t, "plugin", "inspect", "-f", "{{.Config.Description}}", pluginName); !strings.HasPrefix(desc, "ucp-audit ") {
		t.Errorf("description carries no version: %q", desc)
	}

	d := sharedTrail()
	args := []string{"-n", "2", "-big", "0", "-malformed=false", "-ignored=false", "-stderr=false", "-ordinary", "1"}
	want := len(emit(t, args...).Forwarded())
	c := runContainer(t, pluginName, nil, args...)
	if got := len(waitRecords(t, d.Audit, c, want)); got != want {
		t.Fatalf("before upgrade: %d events in audit.log, want %d", got, want)
	}

	// A second version, then the documented upgrade procedure.
	mustMake(t, "push", "REGISTRY="+reg, "TAG=e2e-2")
	mustDocker(t, "plugin", "disable", "-f", pluginName)
	mustDocker(t, "plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", pluginName, reg+"/ucp-audit:e2e-2")
	mustDocker(t, "plugin", "enable", "--timeout", "0", pluginName)
	if ref := mustDocker(t, "plugin", "inspect", "-f", "{{.PluginReference}}", pluginName); !strings.Contains(ref, "e2e-2") {
		t.Fatalf("not upgraded: %s", ref)
	}

	// The same container again: its state survived, so numbering goes on.
	mustDocker(t, "start", c.ID)
	waitExit(t, c)
	recs := waitRecords(t, d.Audit, c, 2*want)
	if len(recs) != 2*want {
		t.Fatalf("after upgrade: %d events, want %d", len(recs), 2*want)
	}
	if got := recs[len(recs)-1].Annotation("ucp-audit/seq"); got != fmt.Sprint(2*want) {
		t.Fatalf("seq after upgrade = %s, want %d (state lost?)", got, 2*want)
	}
}
