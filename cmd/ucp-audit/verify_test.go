package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/sink/file"
)

// TestVerifyExitCodes checks the exit codes docs/auditors.md promises: 0 when
// every set verifies, 1 for a failing set or a missing path, 2 for a usage
// error or an unusable --key; and --part for rotated files without their
// live file.
func TestVerifyExitCodes(t *testing.T) {
	dir, live := closedTrail(t)
	copyDir := t.TempDir() // rotated files only, as copied off the node
	for _, n := range []string{"audit.log.2", "audit.log.1"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(copyDir, n), b, 0o600)
	}
	badKey := filepath.Join(dir, "key.pub")
	os.WriteFile(badKey, []byte("not a key"), 0o600)
	tampered := t.TempDir()
	b, _ := os.ReadFile(live)
	os.WriteFile(filepath.Join(tampered, "audit.log"), bytes.Replace(b, []byte(`"auditID":"a"`), []byte(`"auditID":"b"`), 1), 0o600)

	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{"clean", []string{dir}, 0, "OK   " + live},
		{"tampered", []string{tampered}, 1, ": modified: "},
		{"missing path", []string{filepath.Join(dir, "nope.log")}, 1, "nope.log"},
		{"rotated copies", []string{copyDir}, 1, "file-missing"},
		{"rotated copies, --part", []string{"--part", copyDir}, 0, "OK   "},
		{"bad key", []string{"--key", badKey, dir}, 2, "--key: "},
		{"bad flag", []string{"--nope", dir}, 2, "-nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runVerify(context.Background(), tc.args, testEnv(&out, &errb))
			if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.out) {
				t.Errorf("verify %q: exit %d, want %d and %q in:\n%s%s", tc.args, code, tc.code, tc.out, out.String(), errb.String())
			}
		})
	}
}

// closedTrail writes 40 events of about 220 bytes to a sealed trail that
// rotates every 2 KiB and keeps 5 files, closes it, and returns its
// directory and live file.
func closedTrail(t *testing.T) (dir, live string) {
	t.Helper()
	dir = t.TempDir()
	live = filepath.Join(dir, "audit.log")
	r := file.NewSealedRegistry(file.Sealing{})
	s, err := r.Open(file.Options{Path: live, MaxSize: 2 << 10, MaxFiles: 5})
	if err != nil {
		t.Fatal(err)
	}
	for range 40 {
		if err := s.Write([]byte(`{"auditID":"a","pad":"` + strings.Repeat("x", 200) + `"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, live
}

// TestVerifyJSON checks verify -o json: one object per set, with the
// counts, the seals' time span, the key, and the problem of a failing set;
// and the text line's time span.
func TestVerifyJSON(t *testing.T) {
	start := time.Now().UTC()
	dir, live := closedTrail(t)
	// A copy without the close seal, as of a file the plugin is writing:
	// the records after the live file's last seal are unsealed.
	writing := t.TempDir()
	if err := os.CopyFS(writing, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(live)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
	lines = lines[:len(lines)-1]
	unsealed := 0
	for unsealed < len(lines) && !strings.Contains(lines[len(lines)-1-unsealed], `"ucp-audit/seal"`) {
		unsealed++
	}
	if unsealed == 0 {
		t.Fatalf("the live file has no events after its last seal:\n%s", b)
	}
	os.WriteFile(filepath.Join(writing, "audit.log"), []byte(strings.Join(lines, "")), 0o600)
	end := time.Now().UTC()
	tampered := t.TempDir()
	os.WriteFile(filepath.Join(tampered, "audit.log"), bytes.Replace(b, []byte(`"auditID":"a"`), []byte(`"auditID":"b"`), 1), 0o600)
	priv, pub := filepath.Join(t.TempDir(), "k"), filepath.Join(t.TempDir(), "k.pub")
	if err := chain.GenerateKey(priv, pub); err != nil {
		t.Fatal(err)
	}
	key, err := chain.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (verifyReport, int, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := runVerify(context.Background(), args, testEnv(&out, &errb))
		var rep verifyReport
		dec := json.NewDecoder(&out)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rep); err != nil {
			t.Fatalf("verify %q: %v\n%s", args, err, errb.String())
		}
		if dec.More() {
			t.Fatalf("verify %q: more than one object for one set", args)
		}
		return rep, code, errb.String()
	}

	rep, code, _ := run("-o", "json", dir)
	if code != 0 || !rep.OK || rep.Base != live || rep.Files < 2 || rep.Seals < 3 || rep.First == 0 || rep.Last-rep.First+1 != rep.Records ||
		rep.Unsealed != 0 || rep.SignedBy != nil || rep.Problem != nil || rep.Error != nil {
		t.Errorf("clean set: exit %d, %+v", code, rep)
	}
	if rep.From == nil || rep.To == nil || rep.From.Before(start.Truncate(time.Second)) || rep.To.Before(*rep.From) || rep.To.After(end) {
		t.Errorf("clean set: span %v to %v, want within %v to %v", rep.From, rep.To, start, end)
	}

	rep, code, _ = run("--live", "--output=json", writing)
	if code != 0 || !rep.OK || rep.Unsealed != uint64(unsealed) {
		t.Errorf("a copy of a file being written, --live: exit %d, %+v; want %d records after the last seal", code, rep, unsealed)
	}

	for _, tc := range []struct {
		args []string
		want verifyProblem
		key  bool
	}{
		{[]string{"-o", "json", tampered}, verifyProblem{File: filepath.Join(tampered, "audit.log"), Line: 2, Kind: chain.KindModified}, false},
		{[]string{"-o", "json", "--key", pub, dir}, verifyProblem{File: filepath.Join(dir, "audit.log.4"), Line: 1, Kind: chain.KindUnsigned}, true},
	} {
		rep, code, _ = run(tc.args...)
		if code != 1 || rep.OK || rep.Problem == nil || rep.Problem.Detail == "" || rep.Problem.N == 0 || rep.Error != nil || (rep.SignedBy != nil) != tc.key {
			t.Fatalf("verify %q: exit %d, %+v", tc.args, code, rep)
		}
		if got := *rep.Problem; got.File != tc.want.File || got.Line != tc.want.Line || got.Kind != tc.want.Kind {
			t.Errorf("verify %q: problem %+v, want %+v", tc.args, got, tc.want)
		}
		if tc.key && (len(rep.SignedBy) != 1 || rep.SignedBy[0] != chain.Fingerprint(key)) {
			t.Errorf("verify %q: signedBy %q, want %q", tc.args, rep.SignedBy, chain.Fingerprint(key))
		}
	}

	var out, errb bytes.Buffer
	if code := runVerify(context.Background(), []string{"--live", writing}, testEnv(&out, &errb)); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	if !regexp.MustCompile(`^OK   \S+: \d+ files, \d+ records \(n \d+-\d+\), \d+ seals, sealed \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ to \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, \d+ records? after the last seal; signatures not checked \(no --key\)\n$`).MatchString(out.String()) {
		t.Errorf("OK line %q", out.String())
	}

	out.Reset()
	errb.Reset()
	if code := runVerify(context.Background(), []string{"-o", "yaml", dir}, testEnv(&out, &errb)); code != 2 || !strings.Contains(errb.String(), `-o "yaml": want text or json`) {
		t.Errorf("-o yaml: exit %d, stderr %q", code, errb.String())
	}
}

// TestVerifySignedTrail: a trail whose signing began midway and whose key
// then changed verifies with both keys; without --key it does not pass
// unless --skip-signatures says so; with the old key only it fails at the
// first seal of the new one.
func TestVerifySignedTrail(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "audit.log")
	var pubs []string
	var privs []ed25519.PrivateKey
	for i := range 2 {
		priv, pub := filepath.Join(dir, fmt.Sprintf("k%d", i)), filepath.Join(dir, fmt.Sprintf("k%d.pub", i))
		if err := chain.GenerateKey(priv, pub); err != nil {
			t.Fatal(err)
		}
		k, err := chain.LoadPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		pubs, privs = append(pubs, pub), append(privs, k)
	}
	r := file.NewSealedRegistry(file.Sealing{})
	s, err := r.Open(file.Options{Path: live})
	if err != nil {
		t.Fatal(err)
	}
	for i, key := range []ed25519.PrivateKey{nil, privs[0], privs[1]} {
		if i > 0 {
			if err := r.SetKey(key); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Write([]byte(fmt.Sprintf(`{"auditID":"%d"}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{live}, 1, "FAIL " + live + ": the seals are signed, and no --key was given"},
		{[]string{"--skip-signatures", live}, 0, "signatures not checked (--skip-signatures)"},
		{[]string{"--key", pubs[0], "--key", pubs[1], live}, 0, "every seal from n 3 on signed by"},
		{[]string{"--key", pubs[0], live}, 1, "bad-signature"},
		{[]string{"--key", pubs[0], "--skip-signatures", live}, 2, ""},
	} {
		var out, errb bytes.Buffer
		code := runVerify(context.Background(), tc.args, testEnv(&out, &errb))
		if code != tc.code || !strings.Contains(out.String(), tc.out) {
			t.Errorf("verify %q: exit %d, want %d with %q in:\n%s%s", tc.args, code, tc.code, tc.out, out.String(), errb.String())
		}
	}
}
