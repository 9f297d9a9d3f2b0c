package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSupportDump(t *testing.T) {
	root := t.TempDir()
	logDir := filepath.Join(root, "log")
	for _, sub := range []string{"sub", "other"} {
		if err := os.MkdirAll(filepath.Join(logDir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The trail in force: audit.log (rotated once) and sub/quarantine.log;
	// other/ is not part of it.
	for name, content := range map[string]string{"audit.log": "{}\n", "audit.log.1": "{}\n", "sub/quarantine.log": "{}\n", "other/audit.log": "{}\n"} {
		if err := os.WriteFile(filepath.Join(logDir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dockerLog := filepath.Join(root, "docker.log")
	if err := os.WriteFile(dockerLog, []byte("level=info msg=\"x\" plugin=abc\nlevel=info msg=\"other\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, include := range []bool{false, true} {
		nodeFile := filepath.Join(root, "node.json")
		doc := fmt.Sprintf(`{"supportDumpIncludeAuditLogs": %v, "trail": {"quarantineFile": "/var/log/ucp-audit/sub/quarantine.log"}}`, include)
		if err := os.WriteFile(nodeFile, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(root, "dump", map[bool]string{false: "without", true: "with"}[include])
		var out, errb bytes.Buffer
		code := runSupportDump(context.Background(), []string{"--file", nodeFile, "--log-dir", logDir, "--plugin", "no-such-plugin-for-tests", "--docker-log", dockerLog, dir},
			hostEnv{stdout: &out, stderr: &errb, now: time.Now})
		if code != 0 {
			t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
		}
		readme, err := os.ReadFile(filepath.Join(dir, "README.txt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"versions.txt", "node-config.json", "status.txt", "plugin.log", "verify.txt", "trail/"} {
			if !strings.Contains(string(readme), want) {
				t.Errorf("README.txt does not mention %s:\n%s", want, readme)
			}
		}
		for _, f := range []string{"versions.txt", "node-config.json", "verify.txt"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Error(err)
			}
		}
		cfg, _ := os.ReadFile(filepath.Join(dir, "node-config.json"))
		if !strings.Contains(string(cfg), `"supportDumpIncludeAuditLogs"`) {
			t.Errorf("node-config.json: %s", cfg)
		}
		for _, f := range []string{"audit.log", "audit.log.1", "quarantine.log"} {
			_, err = os.Stat(filepath.Join(dir, "trail", f))
			if include != (err == nil) {
				t.Errorf("supportDumpIncludeAuditLogs %v: trail/%s copied: %v", include, f, err)
			}
		}
		if entries, _ := os.ReadDir(filepath.Join(dir, "trail")); include && len(entries) != 3 {
			t.Errorf("trail/ holds %d files, want the trail's 3", len(entries))
		}
		if v, _ := os.ReadFile(filepath.Join(dir, "verify.txt")); !strings.Contains(string(v), filepath.Join(logDir, "sub", "quarantine.log")) {
			t.Errorf("verify.txt is not of the trail in force:\n%s", v)
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("dump directory mode: %v %v", fi.Mode(), err)
		}
	}
	// Never into a directory that holds something.
	var errb bytes.Buffer
	if code := runSupportDump(context.Background(), []string{filepath.Join(root, "dump", "with")}, hostEnv{stdout: &bytes.Buffer{}, stderr: &errb}); code != 1 || !strings.Contains(errb.String(), "not empty") {
		t.Errorf("non-empty directory: exit %d, %s", code, errb.String())
	}
}

func TestWithoutSecrets(t *testing.T) {
	got := withoutSecrets(map[string]any{"a": "x", "alerts": map[string]any{"outputs": []any{map[string]any{"url": "u", "secret": "s", "Token": "t"}}}})
	m := got.(map[string]any)["alerts"].(map[string]any)["outputs"].([]any)[0].(map[string]any)
	if m["secret"] != "<redacted>" || m["Token"] != "<redacted>" || m["url"] != "u" {
		t.Errorf("got %v", m)
	}
}
