package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/node"
)

func TestNodeConfigCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.json")
	run := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := hostEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
		code := runNodeConfig(context.Background(), append(args[:1:1], append([]string{"--file", path}, args[1:]...)...), env)
		return code, out.String(), errb.String()
	}
	doc := func() string {
		b, _ := os.ReadFile(path)
		return string(b)
	}
	for _, step := range []struct {
		name     string
		stdin    string
		args     []string
		code     int
		out, err string // substrings
		doc      string // substring of the document afterwards
	}{
		{name: "get default", args: []string{"get", "auditLevel"}, out: "request\n"},
		{name: "get size", args: []string{"get", "trail.maxSize"}, out: "100m\n"},
		{name: "get object", args: []string{"get", "producers"}, out: `"image": "ucp-controller"`},
		{name: "get unknown", args: []string{"get", "trail.size"}, code: 1, err: `"trail.size": unknown key`},
		{name: "apply the seed", stdin: `{"logLevel": "INFO", "auditLevel": "metadata", "supportDumpIncludeAuditLogs": false}`, args: []string{"apply", "-"},
			out: "wrote " + path, doc: `"auditLevel": "metadata"`},
		{name: "get after apply", args: []string{"get", "logLevel"}, out: "INFO\n"},
		{name: "set", args: []string{"set", "trail.maxFiles=30", "caps.maxLineSize=8m"}, doc: `"maxFiles": 30`},
		{name: "set keeps the rest", args: []string{"get", "auditLevel"}, out: "metadata\n"},
		{name: "set refused", args: []string{"set", "auditLevel=loud"}, code: 1, err: `ucp-audit: node configuration "auditLevel": invalid value "loud"`, doc: `"auditLevel": "metadata"`},
		{name: "set unknown", args: []string{"set", "trail.size=1"}, code: 1, err: `"trail.size": unknown key`},
		{name: "set null back to default", args: []string{"set", "trail=null"}, doc: `"auditLevel": "metadata"`},
		{name: "get after null", args: []string{"get", "trail.maxFiles"}, out: "20\n"},
		{name: "apply refused", stdin: `{"producers": [{}]}`, args: []string{"apply", "-"}, code: 1, err: `"producers[0]"`},
		{name: "usage", args: []string{"frob"}, code: 2, err: "want get [KEY]"},
		{name: "set without =", args: []string{"set", "auditLevel"}, code: 1, err: "want KEY=VALUE"},
		{name: "help", args: []string{"get", "-h"}, out: "usage: ucp-audit config get"},
	} {
		code, out, errs := run(step.stdin, step.args...)
		if code != step.code || !strings.Contains(out, step.out) || !strings.Contains(errs, step.err) {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q; want %d, %q, %q", step.name, code, out, errs, step.code, step.out, step.err)
		}
		if step.doc != "" && !strings.Contains(doc(), step.doc) {
			t.Fatalf("%s: document %s, want %s", step.name, doc(), step.doc)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("document mode: %v %v", fi.Mode(), err)
	}
	if _, err := node.Parse([]byte(doc()), node.Env{}); err != nil {
		t.Error(err)
	}
}
