//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	// pluginName is the log driver name `make install` creates.
	pluginName = "ucp-audit"
	// emitterImage is the fake ucp-controller, imported by TestMain. Its
	// repository's last path component is ucp-controller, so the node's
	// default producer rule trusts it, as it does docker/ucp-controller
	// and mirantis/ucp-controller.
	emitterImage = "ucp-audit-test/ucp-controller:test"
	// otherImage is the same binary under a repository that is not an
	// audit producer (docker tag of emitterImage): a container that is
	// not UCP's.
	otherImage = "ucp-audit-test/hostile-app:test"
	// logDir is the host directory the plugin writes audit files under.
	logDir = "/var/log/ucp-audit"
)

var (
	// repoRoot is the module root (two levels above this package).
	repoRoot string
	// emitterBin is the emitter built for the host; running it locally with
	// the same flags gives the expected output and the manifest.
	emitterBin string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	required := os.Getenv("UCP_AUDIT_E2E_REQUIRED") == "1" || os.Getenv("CI") == "true"
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		if required {
			fmt.Fprintf(os.Stderr, "FAIL: e2e tests are required (UCP_AUDIT_E2E_REQUIRED=1 or CI=true) but no dockerd answers `docker info`: %v\n%s\n", err, out)
			return 1
		}
		fmt.Fprintf(os.Stderr, "SKIPPING e2e: no dockerd (`docker info`: %v). Set UCP_AUDIT_E2E_REQUIRED=1 to make this a failure.\n", err)
		return 0
	}

	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))

	tmp, err := os.MkdirTemp("", "ucp-audit-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	emitterBin = filepath.Join(tmp, "emitter")
	if err := buildEmitter(emitterBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the emitter:", err)
		return 1
	}
	// Drop leftover tags first so re-imports do not leave dangling images.
	exec.Command("docker", "rmi", "-f", emitterImage, otherImage).Run()
	if err := importEmitterImage(emitterBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: importing the emitter image:", err)
		return 1
	}
	if out, err := exec.Command("docker", "tag", emitterImage, otherImage).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: docker tag %s %s: %v\n%s", emitterImage, otherImage, err, out)
		return 1
	}
	defer exec.Command("docker", "rmi", "-f", emitterImage, otherImage).Run()

	if os.Getenv("UCP_AUDIT_E2E_NO_INSTALL") != "1" {
		cmd := exec.Command("make", "-C", repoRoot, "install")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		fmt.Println("e2e: make -C", repoRoot, "install")
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: e2e: make install:", err)
			return 1
		}
	}
	if out, err := exec.Command("docker", "plugin", "inspect", "--format", "{{.Enabled}}", pluginName).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "true" {
		fmt.Fprintf(os.Stderr, "FAIL: e2e: plugin %s is not installed and enabled: %v %s\n", pluginName, err, out)
		return 1
	}
	restore, err := useSuiteTrail()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: e2e:", err)
		return 1
	}
	code := m.Run()
	if err := restore(code != 0); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
	}
	return code
}

// useSuiteTrail points the node configuration of the plugin at a trail of
// the suite's, under /var/log/ucp-audit, and returns what puts the node
// configuration back as it was (and removes the suite's trail, unless
// keep).
func useSuiteTrail() (restore func(keep bool) error, err error) {
	saved, err := os.ReadFile(nodeFile)
	had := err == nil
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	suite = trailIn(filepath.Join(logDir, "e2e-suite-"+randHex(4)))
	if err := os.MkdirAll(suite.Path, 0o700); err != nil {
		return nil, err
	}
	fmt.Println("e2e: the suite's trail is", suite.Path)
	if err := moveTrail(suite); err != nil {
		return nil, err
	}
	return func(keep bool) error {
		var err error
		if had {
			err = os.WriteFile(nodeFile, saved, 0o600)
		} else {
			err = os.Remove(nodeFile)
		}
		if keep && os.Getenv("UCP_AUDIT_E2E_KEEP") == "1" {
			fmt.Println("e2e: keeping", suite.Path)
			return err
		}
		// The plugin moves the trail back within its poll; the files it
		// still has open go when it closes them.
		return errors.Join(err, os.RemoveAll(suite.Path))
	}, nil
}

func buildEmitter(out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./tests/emitter")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v\n%s", err, b)
	}
	return nil
}

// importEmitterImage makes an image whose only file is /emitter; global
// are docker's global options (-H for another daemon).
func importEmitterImage(bin string, global ...string) error {
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: "emitter", Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append(global, "import", "--change", `CMD ["/emitter"]`, "-", emitterImage)...)
	cmd.Stdin = io.Reader(&buf)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v\n%s", err, b)
	}
	return nil
}
