package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func defaultOptions(seed int64) Options {
	return Options{Seed: seed, N: 5, Big: 2, Malformed: true, Stderr: true, Ignored: true, Ordinary: 10}
}

// render runs the generator in-process and returns what it prints.
func render(t *testing.T, opts Options) (stdout, stderr []byte, m Manifest) {
	t.Helper()
	out := Generate(opts)
	var o, e bytes.Buffer
	if err := out.Write(&o, &e, 0); err != nil {
		t.Fatal(err)
	}
	return o.Bytes(), e.Bytes(), out.Manifest
}

func splitLines(b []byte) []string {
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// lookup follows a dotted path through decoded JSON objects.
func lookup(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// objectKeys returns the keys of the JSON object b in the order written.
func objectKeys(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %v %v", tok, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestOutputMatchesManifest(t *testing.T) {
	for _, seed := range []int64{1, 2, 42} {
		stdout, stderr, m := render(t, defaultOptions(seed))
		lines := splitLines(stdout)
		if len(lines) != m.StdoutLines {
			t.Fatalf("seed %d: %d stdout lines, manifest says %d", seed, len(lines), m.StdoutLines)
		}
		if n := len(splitLines(stderr)); n != m.StderrLines || n != 4 {
			t.Fatalf("seed %d: %d stderr lines, manifest says %d", seed, n, m.StderrLines)
		}
		byLine := map[int]Event{}
		for _, e := range m.Events {
			if _, dup := byLine[e.Line]; dup {
				t.Fatalf("seed %d: two manifest events on line %d", seed, e.Line)
			}
			byLine[e.Line] = e
		}
		for i, l := range lines {
			e, isAudit := byLine[i+1]
			if !isAudit {
				if strings.Contains(l, "auditID") {
					t.Errorf("seed %d line %d: ordinary line contains auditID: %s", seed, i+1, l)
				}
				continue
			}
			if len(l) != e.Bytes {
				t.Errorf("seed %d line %d: %d bytes, manifest says %d", seed, i+1, len(l), e.Bytes)
			}
			if !strings.Contains(l, e.AuditID) {
				t.Errorf("seed %d line %d: auditID %s not in line", seed, i+1, e.AuditID)
			}
			if e.Malformed {
				checkMalformed(t, l, e)
				continue
			}
			checkWellFormed(t, l, e)
		}
	}
}

func checkWellFormed(t *testing.T, line string, e Event) {
	t.Helper()
	if !json.Valid([]byte(line)) {
		t.Fatalf("line %d is not valid JSON", e.Line)
	}
	if got, want := objectKeys(t, []byte(line)), []string{"audit", "level", "msg", "time"}; !reflect.DeepEqual(got, want) {
		t.Errorf("line %d: wrapper keys %v, want %v", e.Line, got, want)
	}
	var top struct {
		Audit json.RawMessage `json:"audit"`
		Level string          `json:"level"`
		Msg   string          `json:"msg"`
	}
	if err := json.Unmarshal([]byte(line), &top); err != nil {
		t.Fatal(err)
	}
	if top.Level != "info" || top.Msg != "audit" {
		t.Errorf("line %d: wrapper level/msg %q/%q", e.Line, top.Level, top.Msg)
	}
	keys := objectKeys(t, top.Audit)
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			t.Errorf("line %d: audit keys not sorted: %v", e.Line, keys)
			break
		}
	}
	var ev map[string]any
	if err := json.Unmarshal(top.Audit, &ev); err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]string{
		"auditID": e.AuditID, "stage": e.Stage, "level": e.Level, "requestURI": e.RequestURI,
		"verb": e.Verb, "kind": e.Kind, "requestReceivedTimestamp": e.RequestReceivedTimestamp,
	} {
		if got, _ := ev[field].(string); got != want {
			t.Errorf("line %d: %s = %q, manifest says %q", e.Line, field, got, want)
		}
	}
	if u, _ := lookup(ev, "user.username"); u == nil || u == "" {
		t.Errorf("line %d: no user.username", e.Line)
	}
	if v, _ := lookup(ev, "user.extra.username"); !reflect.DeepEqual(v, []any{e.Username}) {
		t.Errorf("line %d: user.extra.username %v, want [%s]", e.Line, v, e.Username)
	}
	if v, _ := lookup(ev, "user.extra.licenseKey"); !reflect.DeepEqual(v, []any{e.LicenseKey}) {
		t.Errorf("line %d: user.extra.licenseKey %v, want [%s]", e.Line, v, e.LicenseKey)
	}
	ips, _ := ev["sourceIPs"].([]any)
	if len(ips) == 0 || !strings.Contains(ips[0].(string), ":") {
		t.Errorf("line %d: sourceIPs %v has no port", e.Line, ips)
	}
	if e.Family == familyK8s {
		if ev["apiVersion"] != "audit.k8s.io/v1" || ev["kind"] != "Event" {
			t.Errorf("line %d: k8s event without apiVersion/kind", e.Line)
		}
	} else {
		for _, k := range []string{"metadata", "timestamp", "stageTimestamp"} {
			if _, ok := ev[k]; !ok {
				t.Errorf("line %d: v1beta1 event without %q", e.Line, k)
			}
		}
	}
	_, hasReq := ev["requestObject"]
	if hasReq != e.HasRequestObject {
		t.Errorf("line %d: requestObject present %v, manifest says %v", e.Line, hasReq, e.HasRequestObject)
	}
	if hasReq != strings.EqualFold(e.Level, "request") {
		t.Errorf("line %d: requestObject present %v at level %q", e.Line, hasReq, e.Level)
	}
	for _, p := range e.Redacted {
		v, ok := lookup(ev, p)
		if s, isStr := v.(string); !ok || !isStr || s == "" || s == "<redacted>" {
			t.Errorf("line %d: redaction path %s: got %v", e.Line, p, v)
		}
	}
	for _, s := range e.Secrets {
		if !strings.Contains(line, s) {
			t.Errorf("line %d: secret %q not in the line", e.Line, s)
		}
	}
	if e.Big {
		if len(line) <= 16*1024 {
			t.Errorf("line %d: big event is only %d bytes", e.Line, len(line))
		}
		blob, _ := lookup(ev, "requestObject.Labels.blob")
		if s, _ := blob.(string); len(s) != e.PayloadBytes {
			t.Errorf("line %d: payload %d bytes, want %d", e.Line, len(s), e.PayloadBytes)
		}
	} else if len(line) > 16*1024 {
		t.Errorf("line %d: unexpectedly big (%d bytes)", e.Line, len(line))
	}
}

func checkMalformed(t *testing.T, line string, e Event) {
	t.Helper()
	if e.Forwarded || e.Reason == "" {
		t.Errorf("line %d: malformed event forwarded=%v reason=%q", e.Line, e.Forwarded, e.Reason)
	}
	switch e.Reason {
	case reasonNotJSON:
		if json.Valid([]byte(line)) {
			t.Errorf("line %d: truncated line is valid JSON", e.Line)
		}
		return
	}
	var top map[string]any
	if err := json.Unmarshal([]byte(line), &top); err != nil {
		t.Fatalf("line %d: %v", e.Line, err)
	}
	switch e.Reason {
	case reasonNotObject:
		if _, ok := top["audit"].(string); !ok {
			t.Errorf("line %d: audit is %T", e.Line, top["audit"])
		}
	case reasonNoUsername:
		if _, ok := lookup(top, "audit.user.username"); ok {
			t.Errorf("line %d: has user.username", e.Line)
		}
	case reasonBadReceived:
		v, _ := lookup(top, "audit.requestReceivedTimestamp")
		if s, _ := v.(string); strings.Contains(s, "T") {
			t.Errorf("line %d: requestReceivedTimestamp %q looks valid", e.Line, s)
		}
	case reasonBadLevel:
		if v, _ := lookup(top, "audit.level"); v != "bogus" {
			t.Errorf("line %d: level %v", e.Line, v)
		}
	default:
		t.Errorf("line %d: unknown reason %q", e.Line, e.Reason)
	}
}

func TestManifestContents(t *testing.T) {
	_, _, m := render(t, defaultOptions(7))
	type key struct{ id, stage string }
	seen := map[key]bool{}
	stagesOf := map[string][]string{}
	var malformed, big, ignored, login, redacted int
	for _, e := range m.Events {
		k := key{e.AuditID, e.Stage}
		if seen[k] {
			t.Errorf("duplicate (auditID, stage) %v", k)
		}
		seen[k] = true
		if e.Malformed {
			malformed++
			continue
		}
		stagesOf[e.AuditID] = append(stagesOf[e.AuditID], e.Stage)
		if e.Big {
			big++
		}
		if e.Ignored {
			ignored++
			if e.Forwarded {
				t.Errorf("ignored %s is forwarded", e.RequestURI)
			}
		} else if !e.Forwarded {
			t.Errorf("%s not forwarded", e.RequestURI)
		}
		if e.RequestURI == "/auth/login" {
			login++
		}
		redacted += len(e.Redacted)
	}
	for id, st := range stagesOf {
		if !reflect.DeepEqual(st, []string{"RequestReceived", "ResponseComplete"}) {
			t.Errorf("auditID %s: stages %v", id, st)
		}
	}
	if malformed != 5 || big != 4 || ignored != 8 || login != 2 || redacted == 0 {
		t.Errorf("malformed=%d big=%d ignored=%d login=%d redacted=%d", malformed, big, ignored, login, redacted)
	}
	if got := len(stagesOf); got != 3*5+4+2 {
		t.Errorf("%d requests, want %d", got, 3*5+4+2)
	}
}

func TestDeterministic(t *testing.T) {
	o1, e1, m1 := render(t, defaultOptions(3))
	o2, e2, m2 := render(t, defaultOptions(3))
	if !bytes.Equal(o1, o2) || !bytes.Equal(e1, e2) || !reflect.DeepEqual(m1, m2) {
		t.Fatal("same seed, different output")
	}
	_, _, m3 := render(t, defaultOptions(4))
	ids := map[string]bool{}
	for _, e := range m1.Events {
		ids[e.AuditID] = true
	}
	for _, e := range m3.Events {
		if ids[e.AuditID] {
			t.Fatalf("seeds 3 and 4 share auditID %s", e.AuditID)
		}
	}
}

func TestUnterminated(t *testing.T) {
	opts := defaultOptions(1)
	opts.Unterminated = true
	stdout, _, m := render(t, opts)
	if bytes.HasSuffix(stdout, []byte("\n")) {
		t.Fatal("output ends with a newline")
	}
	last := m.Events[len(m.Events)-1]
	if !last.Unterminated || !last.Forwarded || last.Line != m.StdoutLines {
		t.Fatalf("last manifest event %+v", last)
	}
	lines := splitLines(stdout)
	if !strings.Contains(lines[len(lines)-1], last.AuditID) || !json.Valid([]byte(lines[len(lines)-1])) {
		t.Fatal("last line is not the unterminated audit event")
	}
}

func TestMinimal(t *testing.T) {
	stdout, stderr, m := render(t, Options{Seed: 1, Ordinary: 3})
	if len(m.Events) != 0 || len(stderr) != 0 || len(splitLines(stdout)) != 3 {
		t.Fatalf("events=%d stderr=%q stdout=%q", len(m.Events), stderr, stdout)
	}
}

func TestWriteManifest(t *testing.T) {
	_, _, m := render(t, defaultOptions(1))
	p := filepath.Join(t.TempDir(), "m.json")
	if err := writeManifest(p, m); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Manifest
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Fatal("manifest does not round-trip")
	}
}
