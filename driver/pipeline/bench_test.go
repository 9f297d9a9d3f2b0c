package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/plugins/logdriver"

	"github.com/ucp-audit/ucp-audit/audit"
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/driver/ingest"
)

// The per-line pipeline, in process: frames as dockerd writes them →
// decode → reassemble → detect → parse and validate → policy and
// redaction → enrich and encode for the file sink. Three inputs: a
// metadata event of about 0.6 KB, a request event of about 4 KB, and a
// request event of about 60 KB that dockerd splits into 16 KiB partial
// frames. BenchmarkJSONValid runs json.Valid over the same line bytes, so
// the ratio to one validating pass shows. Run with
//
//	go test -run '^$' -bench . -benchmem ./driver/pipeline
//
// and read ns/op (per event), MB/s and allocs/op.

// benchInput is one event as frames, and the line they carry.
type benchInput struct {
	name   string
	line   []byte
	frames [][]byte // each a whole frame, length prefix included
}

func benchInputs(b *testing.B) []benchInput {
	meta := auditLine("0a7e3f52-5c1d-4a8b-9d2e-1f6c3b8a9e01", "/v1.41/containers/json?all=1")
	req := requestLine("0a7e3f52-5c1d-4a8b-9d2e-1f6c3b8a9e02", 3<<10)
	huge := requestLine("0a7e3f52-5c1d-4a8b-9d2e-1f6c3b8a9e03", 59<<10)
	var out []benchInput
	for _, in := range []struct {
		name string
		line string
	}{{"metadata-0.6KB", meta}, {"request-4KB", req}, {"request-60KB-partial", huge}} {
		bi := benchInput{name: in.name, line: []byte(in.line)}
		for _, e := range split(in.line, "p1") {
			f, err := ingest.AppendFrame(nil, e)
			if err != nil {
				b.Fatal(err)
			}
			bi.frames = append(bi.frames, f)
		}
		out = append(out, bi)
	}
	return out
}

// auditLine returns a logrus-wrapped metadata-level audit event, the one
// the driver's tests write.
func auditLine(id, uri string) string {
	return fmt.Sprintf(`{"audit":{"auditID":%q,"kind":"docker-swarm","level":"metadata","metadata":{"creationTimestamp":null},"requestReceivedTimestamp":"2024-03-02T10:04:05.123456Z","requestURI":%q,"sourceIPs":["10.0.0.7:51234"],"stage":"RequestReceived","stageTimestamp":null,"timestamp":null,"user":{"extra":{"licenseKey":["k"],"username":["bob"]},"uid":"u1","username":"u1"},"verb":"GET"},"level":"info","msg":"audit","time":"2024-03-02T10:04:05Z"}`, id, uri)
}

// requestLine is a request-level event whose requestObject holds about n
// bytes, with a secret to redact.
func requestLine(id string, n int) string {
	var env strings.Builder
	for i := 0; env.Len() < n; i++ {
		fmt.Fprintf(&env, `"VAR_%d=value-%d-%s",`, i, i, strings.Repeat("v", 40))
	}
	return fmt.Sprintf(`{"audit":{"auditID":%q,"kind":"docker-swarm","level":"request","requestObject":{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"nginx:1.25","Env":[%s"LAST=1"],"Secrets":[{"SecretName":"db","password":"hunter2"}]}}},"requestReceivedTimestamp":"2024-03-02T10:04:05.123456Z","requestURI":"/v1.41/services/create","sourceIPs":["10.0.0.7:51234"],"stage":"ResponseComplete","responseStatus":{"code":201},"user":{"username":"alice","uid":"u-17","groups":["admins"]},"verb":"POST"},"level":"info","msg":"audit","time":"2024-03-02T10:04:05Z"}`, id, env.String())
}

// split cuts line into dockerd's 16 KiB partial entries (one entry if it
// fits).
func split(line, id string) []*logdriver.LogEntry {
	const chunk = 16 << 10
	now := time.Now().UnixNano()
	if len(line) <= chunk {
		return []*logdriver.LogEntry{{Source: "stdout", Line: []byte(line), TimeNano: now}}
	}
	var out []*logdriver.LogEntry
	for ord := 1; len(line) > 0; ord++ {
		n := min(chunk, len(line))
		out = append(out, &logdriver.LogEntry{Source: "stdout", Line: []byte(line[:n]), TimeNano: now, Partial: true,
			PartialLogMetadata: &logdriver.PartialLogEntryMetadata{Id: id, Ordinal: int32(ord), Last: n == len(line)}})
		line = line[n:]
	}
	return out
}

func BenchmarkPipeline(b *testing.B) {
	cfg, err := config.Parse(map[string]string{}, config.Env{})
	if err != nil {
		b.Fatal(err)
	}
	policy := audit.Policy{Level: cfg.AuditLevel, Ignore: cfg.AuditIgnore}
	for _, in := range benchInputs(b) {
		b.Run(in.name, func(b *testing.B) {
			r := newReassembler(cfg.MaxLineSize)
			var e logdriver.LogEntry
			var out []byte
			seq := uint64(0)
			handle := func(l *line) error {
				if !audit.LooksLikeAudit(l.Data) {
					b.Fatal("not audit")
				}
				ev, err := audit.Parse(l.Data)
				if err != nil {
					return err
				}
				if ok, _ := policy.Allows(ev); !ok {
					b.Fatal("ignored")
				}
				policy.Apply(ev)
				seq++
				out, err = ev.Encode(audit.Enrichment{
					ContainerID: "c0ffee", ContainerName: "ucp-controller", Image: "docker/ucp-controller:3.8",
					Host: "node-1", Stream: l.Source, ReceivedAt: time.Unix(0, l.TimeNano), Seq: seq,
				})
				return err
			}
			b.SetBytes(int64(len(in.line)))
			b.ReportAllocs()
			for b.Loop() {
				for _, f := range in.frames {
					if err := ingest.DecodeFrame(f, &e); err != nil {
						b.Fatal(err)
					}
					if err := r.add(&e, handle); err != nil {
						b.Fatal(err)
					}
				}
			}
			if bytes.Contains(out, []byte("hunter2")) {
				b.Fatal("secret not redacted")
			}
		})
	}
}

func BenchmarkJSONValid(b *testing.B) {
	for _, in := range benchInputs(b) {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.line)))
			b.ReportAllocs()
			for b.Loop() {
				if !json.Valid(in.line) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
