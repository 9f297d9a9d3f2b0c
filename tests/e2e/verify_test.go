//go:build e2e

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// verifyBin is the host binary `make install` builds.
func verifyBin() string { return filepath.Join(repoRoot, "bin", "ucp-audit") }

// runVerify runs `ucp-audit verify args...` and returns its output and
// exit code.
func runVerify(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(verifyBin(), append([]string{"verify"}, args...)...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	default:
		t.Fatalf("ucp-audit verify: %v\n%s", err, out)
		return "", -1
	}
}

// mustVerifyClean fails unless verify exits 0 for every set in paths. The
// trail's files are sealed to their end when the plugin closes them (the
// node configuration names other files, or the plugin stops); an open
// file's tail is sealed by the idle seal within about SEAL_INTERVAL (1m)
// and a quarter: it waits up to 100 s.
func mustVerifyClean(t *testing.T, args ...string) {
	t.Helper()
	deadline := time.Now().Add(100 * time.Second)
	for {
		out, code := runVerify(t, args...)
		if code == 0 && !strings.Contains(out, "FAIL") {
			t.Logf("verify: %s", strings.TrimSpace(out))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("verify %q: exit %d\n%s", args, code, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// rotatedTrail gives the test a trail of its own (with the node settings
// settings too), rotated at 256 KiB with 5 files kept, and runs a container
// that writes enough to rotate it a dozen times, so that older files are
// pruned as rotation intends. It then points the node back at the suite's
// trail, which closes and seals the files, checks they verify clean (with
// verifyArgs) and returns their directory.
func rotatedTrail(t *testing.T, settings []string, verifyArgs ...string) Dir {
	t.Helper()
	d, release := ownTrail(t, append([]string{"trail.maxSize=256k", "trail.maxFiles=5"}, settings...)...)
	args := []string{"-n", "600", "-big", "0", "-malformed=true", "-ignored=false", "-stderr=false"}
	runContainer(t, pluginName, nil, args...)
	release()
	mustVerifyClean(t, append(verifyArgs, d.Path)...)
	if _, err := os.Stat(d.Audit + ".4"); err != nil {
		t.Fatalf("the trail did not rotate 4 times: %v", err)
	}
	return d
}

// copyTrail copies the audit files of d into a fresh directory.
func copyTrail(t *testing.T, d Dir) string {
	t.Helper()
	dst := t.TempDir()
	files, _ := filepath.Glob(filepath.Join(d.Path, "audit.log*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dst, "audit.log")
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

// eventLine returns the number (1-based) of the first event line at or
// after line from in path: a line that is not a seal.
func eventLine(t *testing.T, path string, from int) int {
	t.Helper()
	lines := readLines(t, path)
	for i := from - 1; i < len(lines); i++ {
		if bytes.Contains(lines[i], []byte(`"auditID"`)) && !bytes.HasPrefix(lines[i], []byte(`{"ucp-audit/`)) {
			return i + 1
		}
	}
	t.Fatalf("%s: no event line after line %d", path, from)
	return 0
}

var failLine = regexp.MustCompile(`(?m)^FAIL \S+: (\S+?):(\d+): ([a-z-]+): `)

// TestVerifyTamper: a real trail, with rotations, verifies clean; each kind
// of tampering of a copy is reported as that kind, at that file and line.
func TestVerifyTamper(t *testing.T) {
	d := rotatedTrail(t, nil)
	other := rotatedTrail(t, nil) // a second chain, for a replaced file

	type tamper struct {
		name     string
		edit     func(live string) (file string, line int) // where verify must point
		wantKind string
	}
	lineEdit := func(rot string, f func(lines [][]byte, i int) ([][]byte, int)) func(string) (string, int) {
		return func(live string) (string, int) {
			p := live + rot
			i := eventLine(t, p, 10) - 1
			lines, at := f(readLines(t, p), i)
			writeLines(t, p, lines)
			return filepath.Base(p), at
		}
	}
	cases := []tamper{
		{"modified", lineEdit(".2", func(l [][]byte, i int) ([][]byte, int) {
			l[i] = bytes.Replace(l[i], []byte(`"auditID":"`), []byte(`"auditID":"x`), 1)
			return l, i + 1
		}), "modified"},
		{"deleted", lineEdit(".2", func(l [][]byte, i int) ([][]byte, int) {
			return slices.Delete(l, i, i+1), i + 1
		}), "deleted"},
		{"inserted", lineEdit(".2", func(l [][]byte, i int) ([][]byte, int) {
			return slices.Insert(l, i+1, []byte(`{"auditID":"forged","verb":"get"}`+"\n")), i + 2
		}), "inserted"},
		{"reordered", lineEdit(".2", func(l [][]byte, i int) ([][]byte, int) {
			l[i], l[i+1] = l[i+1], l[i]
			return l, i + 1
		}), "reordered"},
		{"duplicated", lineEdit(".2", func(l [][]byte, i int) ([][]byte, int) {
			return slices.Insert(l, i+1, l[i]), i + 2
		}), "duplicated"},
		{"truncated", func(live string) (string, int) {
			l := readLines(t, live)
			i := eventLine(t, live, len(l)/2)
			writeLines(t, live, l[:i])
			return "audit.log", i + 1
		}, "truncated"},
		{"torn", func(live string) (string, int) {
			b, _ := os.ReadFile(live)
			os.WriteFile(live, b[:len(b)-20], 0o600)
			return "audit.log", len(readLines(t, live)) + 1
		}, "truncated"},
		{"middle-file-deleted", func(live string) (string, int) {
			os.Remove(live + ".2")
			return "audit.log.1", 1
		}, "file-missing"},
		{"oldest-file-deleted", func(live string) (string, int) {
			os.Remove(live + ".4")
			return "audit.log.3", 1
		}, "file-missing"},
		{"file-replaced", func(live string) (string, int) {
			b, err := os.ReadFile(other.Audit + ".2")
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(live+".2", b, 0o600)
			return "audit.log.2", 1
		}, "file-replaced"},
		{"files-reordered", func(live string) (string, int) {
			os.Rename(live+".1", live+".tmp")
			os.Rename(live+".2", live+".1")
			os.Rename(live+".tmp", live+".2")
			return "audit.log.2", 1
		}, "files-reordered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			live := copyTrail(t, d)
			file, line := tc.edit(live)
			out, code := runVerify(t, filepath.Dir(live))
			m := failLine.FindStringSubmatch(out)
			if code != 1 || m == nil {
				t.Fatalf("verify: exit %d, want 1 and a FAIL line:\n%s", code, out)
			}
			if got := fmt.Sprintf("%s:%s: %s", filepath.Base(m[1]), m[2], m[3]); got != fmt.Sprintf("%s:%d: %s", file, line, tc.wantKind) {
				t.Errorf("verify reported %s, want %s:%d: %s\n%s", got, file, line, tc.wantKind, out)
			}
		})
	}
}

// TestVerifySigned: with the node configuration's sealKey set the seals
// are signed: the trail verifies with the public key, and not with another
// key.
func TestVerifySigned(t *testing.T) {
	dir := tempUnder(t, stateDir)
	priv, pub := filepath.Join(dir, "seal.key"), filepath.Join(dir, "seal.pub")
	if out, err := exec.Command(verifyBin(), "keygen", priv, pub).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	otherDir := t.TempDir()
	if out, err := exec.Command(verifyBin(), "keygen", filepath.Join(otherDir, "k"), filepath.Join(otherDir, "k.pub")).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	d := rotatedTrail(t, []string{"sealKey=" + priv}, "--key", pub)
	out, code := runVerify(t, "--key", filepath.Join(otherDir, "k.pub"), d.Path)
	if m := failLine.FindStringSubmatch(out); code != 1 || m == nil || m[3] != "bad-signature" {
		t.Errorf("verify with another key: exit %d, want 1 and bad-signature:\n%s", code, out)
	}
	out, code = runVerify(t, d.Path)
	if code != 1 || !strings.Contains(out, "--key") {
		t.Errorf("verify of a signed trail without a key: exit %d, want 1 and a hint at --key:\n%s", code, out)
	}
}

// TestVerifyCutAtSeal: the audit file cut back to exactly the end of a
// seal while the plugin is disabled leaves a valid chain, but the plugin
// keeps a record of its last seal outside the log directory: when it
// re-opens the file its resume seal says which records are missing, and
// verify reports the cut there.
func TestVerifyCutAtSeal(t *testing.T) {
	d, release := ownTrail(t)
	args := []string{"-n", "50", "-big", "0", "-malformed=false", "-ignored=false", "-stderr=false"}
	runContainer(t, pluginName, nil, args...)
	release() // closed
	mustVerifyClean(t, d.Path)
	d, release = ownTrailAt(t, d) // resumed
	runContainer(t, pluginName, nil, args...)
	release() // closed again
	mustVerifyClean(t, d.Path)

	enabled := true
	t.Cleanup(func() {
		if !enabled {
			docker(nil, "plugin", "enable", "--timeout", "0", pluginName)
		}
	})
	mustDocker(t, "plugin", "disable", "-f", pluginName)
	enabled = false
	lines := readLines(t, d.Audit)
	var seals []int
	for i, l := range lines {
		if bytes.HasPrefix(l, []byte(`{"`+auditlog.SealKey+`":`)) {
			seals = append(seals, i+1)
		}
	}
	if len(seals) < 2 {
		t.Fatalf("%d seals in %s, want 2 or more", len(seals), d.Audit)
	}
	keep := seals[len(seals)-2]
	writeLines(t, d.Audit, lines[:keep])
	mustVerifyClean(t, d.Path) // the files alone cannot show the cut
	mustDocker(t, "plugin", "enable", "--timeout", "0", pluginName)
	enabled = true

	_, release = ownTrailAt(t, d) // the plugin re-opens the file
	release()
	want := fmt.Sprintf("audit.log:%d: truncated", keep+1)
	out, code := runVerify(t, d.Path)
	m := failLine.FindStringSubmatch(out)
	if code != 1 || m == nil || fmt.Sprintf("%s:%s: %s", filepath.Base(m[1]), m[2], m[3]) != want {
		t.Fatalf("verify: exit %d, want 1 and %s:\n%s", code, want, out)
	}
	if !strings.Contains(out, "were cut off") {
		t.Errorf("verify does not say which records were cut off:\n%s", out)
	}
	t.Logf("verify: %s", strings.TrimSpace(out))
}

// TestForgedTailNotVouched: while the plugin does not hold the trail (it
// was moved away, as while the plugin is disabled), one record is appended
// to the audit file, correctly chained after the close seal: an admin
// creating a secret. When the plugin opens the file again, its resume seal
// does not vouch for it: verify reports it as not written by the plugin,
// with and without --key, and the chain goes on.
func TestForgedTailNotVouched(t *testing.T) {
	dir := tempUnder(t, stateDir)
	priv, pub := filepath.Join(dir, "seal.key"), filepath.Join(dir, "seal.pub")
	if out, err := exec.Command(verifyBin(), "keygen", priv, pub).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	d, release := ownTrail(t, "sealKey="+priv)
	args := []string{"-n", "5", "-big", "0", "-malformed=false", "-ignored=false", "-stderr=false"}
	runContainer(t, pluginName, nil, args...)
	release() // closed, and signed to its end
	mustVerifyClean(t, "--key", pub, d.Path)

	// The forgery: a record chained after the close seal.
	b, err := os.ReadFile(d.Audit)
	if err != nil {
		t.Fatal(err)
	}
	head, err := chain.Recover(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := head.Append(nil, []byte(`{"auditID":"forged-1","stage":"ResponseComplete","verb":"POST","requestURI":"/v1.41/secrets/create","user":{"username":"admin"},"level":"metadata"}`))
	if err != nil {
		t.Fatal(err)
	}
	forgedLine := len(readLines(t, d.Audit)) + 1
	f, err := os.OpenFile(d.Audit, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(append(forged, '\n')); err != nil {
		t.Fatal(err)
	}
	f.Close()

	_, release = ownTrailAt(t, d, "sealKey="+priv) // the plugin resumes the file
	runContainer(t, pluginName, nil, args...)
	release()
	// Reported at the resume seal that follows it, naming the record.
	want := fmt.Sprintf("audit.log:%d: unvouched", forgedLine+1)
	forgedN := fmt.Sprintf("record %d ", head.N) // Append moved head to the forged record
	for _, verifyArgs := range [][]string{{"--key", pub, d.Path}, {"--skip-signatures", d.Path}} {
		out, code := runVerify(t, verifyArgs...)
		m := failLine.FindStringSubmatch(out)
		if code != 1 || m == nil || fmt.Sprintf("%s:%s: %s", filepath.Base(m[1]), m[2], m[3]) != want || !strings.Contains(out, forgedN+"follows the last record the plugin wrote") {
			t.Errorf("verify %q: exit %d, want 1, %s and %q:\n%s", verifyArgs, code, want, forgedN, out)
		}
	}
}

// TestSigningHandOver follows docs/auditors.md: a trail written unsigned, then
// `ucp-audit config set sealKey=…` (no restart), later a new key. From the
// moment signing is on the trail verifies with the key (its first signed
// seal vouches for what came before); across the change it verifies with
// both keys, and not with the old one alone; without --key it does not
// pass.
func TestSigningHandOver(t *testing.T) {
	dir := tempUnder(t, stateDir)
	keys := func(name string) (string, string) {
		priv, pub := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
		if out, err := exec.Command(verifyBin(), "keygen", priv, pub).CombinedOutput(); err != nil {
			t.Fatalf("keygen: %v\n%s", err, out)
		}
		return priv, pub
	}
	oldPriv, oldPub := keys("old")
	newPriv, newPub := keys("new")
	// The release removes the key in the same change that moves the trail
	// back: the trail ends signed, and the suite's goes on unsigned.
	d, release := ownTrail(t, "sealKey=null")
	args := []string{"-n", "5", "-big", "0", "-malformed=false", "-ignored=false", "-stderr=false"}
	setKey := func(priv string) {
		t.Helper()
		n := configChanges(d.Audit)
		if err := configSet("sealKey=" + priv); err != nil {
			t.Fatal(err)
		}
		if !peers.WaitUntil(30*time.Second, func() bool { return configChanges(d.Audit) > n }) {
			t.Fatal("the plugin did not apply the new seal key")
		}
	}
	runContainer(t, pluginName, nil, args...) // unsigned
	setKey(oldPriv)
	runContainer(t, pluginName, nil, args...)
	setKey(newPriv)
	runContainer(t, pluginName, nil, args...)
	release() // closed under the new key
	mustVerifyClean(t, "--key", oldPub, "--key", newPub, d.Path)
	out, code := runVerify(t, "--key", oldPub, d.Path)
	if m := failLine.FindStringSubmatch(out); code != 1 || m == nil || m[3] != "bad-signature" {
		t.Errorf("verify with the old key alone: exit %d, want 1 and bad-signature:\n%s", code, out)
	}
	if out, code := runVerify(t, d.Path); code != 1 || !strings.Contains(out, "--key") {
		t.Errorf("verify of a signed trail without a key: exit %d, want 1 and a hint at --key:\n%s", code, out)
	}
}
