package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics, and that an event it accepts
// goes through Apply and Encode into valid JSON that keeps the auditID and
// that Parse accepts again once wrapped.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/golden/*.in.jsonl")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			f.Add(bytes.Clone(sc.Bytes()), uint8(LevelRequest))
		}
	}
	f.Add([]byte(`{"audit":{"auditID":"a","level":"request","stage":"Panic","requestURI":"/secrets/create","verb":"POST","user":{"username":"u"},"requestReceivedTimestamp":"2024-03-02T10:04:05Z","requestObject":{"Data":"x"}}}`), uint8(LevelMetadata))
	ig, err := NewIgnore(DefaultIgnoreList)
	if err != nil {
		f.Fatal(err)
	}
	en := Enrichment{ContainerID: "c", Stream: "stdout", ReceivedAt: time.Unix(0, 0), Seq: 1}

	f.Fuzz(func(t *testing.T, line []byte, lvl uint8) {
		e, err := Parse(line)
		if err != nil {
			return
		}
		p := Policy{Level: Level(lvl % 3), Ignore: ig}
		p.Allows(e)
		p.Apply(e)
		out, err := e.Encode(en)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		var got struct {
			AuditID string `json:"auditID"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		if got.AuditID != e.AuditID() {
			t.Fatalf("auditID %q, want %q", got.AuditID, e.AuditID())
		}
		again, err := Parse([]byte(`{"audit":` + string(out) + `}`))
		if err != nil {
			t.Fatalf("re-Parse: %v\n%s", err, out)
		}
		if again.AuditID() != e.AuditID() || again.Stage() != e.Stage() || again.Username() != e.Username() {
			t.Fatalf("re-Parse changed the event:\n%s", out)
		}
		if p.Level < LevelRequest && strings.Contains(string(out), `"requestObject"`) && !strings.Contains(string(line), `"requestObject"`) {
			t.Fatalf("requestObject appeared:\n%s", out)
		}
	})
}

// benchLines returns a ~1 KB metadata line and a ~20 KB request line.
func benchLines(b *testing.B) (meta, req []byte) {
	ev := baseEvent()
	ev["objectRef"] = map[string]any{"apiVersion": "v1", "namespace": "default", "resource": "services"}
	ev["userAgent"] = "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/5.15.0-91-generic os/linux arch/amd64 UpstreamClient(Docker-Client/24.0.7 \\(linux\\))"
	ev["annotations"] = map[string]any{"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding \"ucp-admin\""}
	meta = wrap(b, ev)

	env := make([]any, 0, 210)
	for i := range 210 {
		env = append(env, map[string]any{"name": "VAR_" + strings.Repeat("X", i%7), "value": strings.Repeat("v", 60)})
	}
	env = append(env, map[string]any{"name": "DB", "password": "secret"})
	ev = baseEvent()
	ev["level"] = "request"
	ev["stage"] = "ResponseComplete"
	ev["requestURI"] = "/v1.41/services/create"
	ev["verb"] = "POST"
	ev["requestObject"] = map[string]any{
		"Name":   "web",
		"Labels": map[string]any{"com.docker.ucp.access.label": "/Shared/Private/bob"},
		"TaskTemplate": map[string]any{
			"ContainerSpec": map[string]any{"Image": "nginx:1.25", "Env": env, "Args": []any{"-g", "daemon off;"}},
			"Resources":     map[string]any{"Limits": map[string]any{"MemoryBytes": 104857600}},
		},
		"Mode": map[string]any{"Replicated": map[string]any{"Replicas": 3}},
	}
	ev["responseObject"] = map[string]any{"ID": "ak7w3gjqoa3kuz8xcpnyy0pvl", "Warnings": nil}
	req = wrap(b, ev)
	return meta, req
}

func BenchmarkParseApplyEncode(b *testing.B) {
	meta, req := benchLines(b)
	en := Enrichment{ContainerID: "c", ContainerName: "ucp-controller", Stream: "stdout", ReceivedAt: time.Now(), Seq: 1}
	for _, bc := range []struct {
		name string
		line []byte
		p    Policy
	}{
		{"metadata-1KB", meta, Policy{Level: LevelMetadata}},
		{"request-20KB", req, Policy{Level: LevelRequest}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.line)))
			b.ReportAllocs()
			for b.Loop() {
				e, err := Parse(bc.line)
				if err != nil {
					b.Fatal(err)
				}
				bc.p.Apply(e)
				if _, err := e.Encode(en); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLooksLikeAudit(b *testing.B) {
	line := []byte(`{"level":"info","msg":"Handling request for /api/ucp/config/logging from 10.0.0.7 took 3ms","time":"2024-03-02T10:04:05Z"}`)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		LooksLikeAudit(line)
	}
}
