//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// TestAuditFile checks the default pipeline: every forwarded event exactly
// once, in order, enriched, hashed and redacted; ignored and malformed
// lines absent.
func TestAuditFile(t *testing.T) {
	d := sharedTrail()
	args := []string{"-seed", "11"}
	em := emit(t, args...)
	c := runContainer(t, pluginName, nil, args...)
	want := em.Forwarded()
	recs := waitRecords(t, d.Audit, c, len(want))

	checkExactlyOnce(t, recs, want)
	checkSequence(t, recs, want)

	raw, err := os.ReadFile(d.Audit)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[Key]ManifestEvent{}
	for _, e := range em.Manifest.Events {
		byKey[e.Key()] = e
		for _, s := range e.Secrets {
			if strings.Contains(string(raw), s) {
				t.Errorf("secret %q of %v is in audit.log", s, e.Key())
			}
		}
	}
	host := hostName(t)
	name := strings.TrimPrefix(c.Name, "/")
	for _, r := range recs {
		w, ok := byKey[r.Key()]
		if !ok {
			continue // reported by checkExactlyOnce
		}
		if _, wrapped := r.Event["audit"]; wrapped {
			t.Errorf("%v: still wrapped in the logrus record", r.Key())
		}
		for k, want := range map[string]string{
			"ucp-audit/container-id":   c.ID,
			"ucp-audit/container-name": name,
			"ucp-audit/image":          emitterImage,
			"ucp-audit/host":           host,
			"ucp-audit/stream":         "stdout",
			"ucp-audit/user":           w.Username,
		} {
			if got := r.Annotation(k); got != want {
				t.Errorf("%v: annotation %s = %q, want %q", r.Key(), k, got, want)
			}
		}
		if at := r.Annotation("ucp-audit/received-at"); at == "" {
			t.Errorf("%v: no ucp-audit/received-at", r.Key())
		} else if _, err := time.Parse(time.RFC3339Nano, at); err != nil {
			t.Errorf("%v: ucp-audit/received-at %q: %v", r.Key(), at, err)
		}
		for path, want := range map[string]string{
			"requestReceivedTimestamp": w.RequestReceivedTimestamp,
			"requestURI":               w.RequestURI,
			"verb":                     w.Verb,
			"kind":                     w.Kind,
		} {
			if got := r.Str(path); got != want {
				t.Errorf("%v: %s = %q, want %q (unchanged)", r.Key(), path, got, want)
			}
		}
		lk, _ := lookup(r.Event, "user.extra.licenseKey")
		if l, _ := lk.([]any); len(l) != 1 || l[0] != hashedLicense(w.LicenseKey) {
			t.Errorf("%v: user.extra.licenseKey = %v, want [%s]", r.Key(), lk, hashedLicense(w.LicenseKey))
		}
		_, hasReq := r.Event["requestObject"]
		if hasReq != w.HasRequestObject {
			t.Errorf("%v: requestObject present = %v, want %v", r.Key(), hasReq, w.HasRequestObject)
		}
		for _, p := range w.Redacted {
			if got := r.Str(p); got != "<redacted>" {
				t.Errorf("%v: %s = %q, want \"<redacted>\"", r.Key(), p, got)
			}
		}
	}
}

// TestQuarantine checks that each malformed audit line lands in
// quarantine.log, whole, with its reason and the full container ID.
func TestQuarantine(t *testing.T) {
	d := sharedTrail()
	args := []string{"-seed", "12", "-n", "1", "-big", "0"}
	em := emit(t, args...)
	c := runContainer(t, pluginName, nil, args...)
	lines := em.StdoutLines()

	var malformed []ManifestEvent
	for _, e := range em.Manifest.Events {
		if e.Malformed {
			malformed = append(malformed, e)
		}
	}
	if len(malformed) != 5 {
		t.Fatalf("emitter printed %d malformed lines, want 5", len(malformed))
	}
	qs := quarantineRecords(t, d.Quarantine, c, len(malformed))
	byRaw := map[string][]Quarantined{}
	for _, q := range qs {
		byRaw[q.Raw] = append(byRaw[q.Raw], q)
	}
	name := strings.TrimPrefix(c.Name, "/")
	for _, m := range malformed {
		raw := lines[m.Line-1]
		got := byRaw[raw]
		if len(got) != 1 {
			t.Errorf("malformed line %d (%s): %d quarantine records, want 1", m.Line, m.Reason, len(got))
			continue
		}
		q := got[0]
		if !strings.Contains(strings.ToLower(q.Reason), strings.ToLower(m.Reason)) {
			t.Errorf("line %d: reason %q does not contain %q", m.Line, q.Reason, m.Reason)
		}
		if q.ContainerName != name || q.Stream != "stdout" {
			t.Errorf("line %d: container-name %q stream %q, want %q stdout", m.Line, q.ContainerName, q.Stream, name)
		}
		if _, err := time.Parse(time.RFC3339Nano, q.Time); err != nil {
			t.Errorf("line %d: time %q: %v", m.Line, q.Time, err)
		}
		delete(byRaw, raw)
	}
	for raw := range byRaw {
		t.Errorf("unexpected quarantine record: %.300s", raw)
	}
	for _, r := range auditRecords(t, d.Audit, c) {
		for _, m := range malformed {
			if r.Str("auditID") == m.AuditID {
				t.Errorf("malformed %s (%s) reached audit.log", m.AuditID, m.Reason)
			}
		}
	}
}

// TestBigLines checks that events split by Docker into 16 KiB frames are
// reassembled: the 20 KiB and 40 KiB payloads arrive whole.
func TestBigLines(t *testing.T) {
	d := sharedTrail()
	args := []string{"-seed", "13", "-n", "0", "-big", "2", "-malformed=false", "-ignored=false", "-ordinary", "3"}
	em := emit(t, args...)
	c := runContainer(t, pluginName, nil, args...)
	want := em.Forwarded()
	if len(want) != 4 {
		t.Fatalf("emitter: %d forwarded events, want 4", len(want))
	}
	recs := waitRecords(t, d.Audit, c, len(want))
	checkExactlyOnce(t, recs, want)
	checkSequence(t, recs, want)

	lines := em.StdoutLines()
	sizes := map[int]bool{}
	for i, r := range recs {
		if i >= len(want) {
			break
		}
		w := want[i]
		var orig struct {
			Audit map[string]any `json:"audit"`
		}
		if err := json.Unmarshal([]byte(lines[w.Line-1]), &orig); err != nil {
			t.Fatal(err)
		}
		wantBlob, _ := lookup(orig.Audit, "requestObject.Labels.blob")
		gotBlob := r.Str("requestObject.Labels.blob")
		if gotBlob != wantBlob {
			t.Errorf("%v: payload of %d bytes arrived as %d bytes, or changed", r.Key(), w.PayloadBytes, len(gotBlob))
		}
		sizes[len(gotBlob)] = true
	}
	if !sizes[20*1024] || !sizes[40*1024] {
		t.Errorf("payload sizes seen: %v, want 20 KiB and 40 KiB", sizes)
	}
}

// TestAuditLevelMetadata checks that audit-level=metadata forwards every
// event without its payloads.
func TestAuditLevelMetadata(t *testing.T) {
	d := sharedTrail()
	args := []string{"-seed", "14", "-n", "5", "-big", "1"}
	em := emit(t, args...)
	c := runContainer(t, pluginName, []string{"audit-level=metadata"}, args...)
	want := em.Forwarded()
	recs := waitRecords(t, d.Audit, c, len(want))
	checkExactlyOnce(t, recs, want)
	checkSequence(t, recs, want)
	for _, r := range recs {
		for _, k := range []string{"requestObject", "responseObject"} {
			if _, ok := r.Event[k]; ok {
				t.Errorf("%v: %s present at audit-level metadata", r.Key(), k)
			}
		}
	}
	raw, _ := os.ReadFile(d.Audit)
	for _, e := range em.Manifest.Events {
		for _, s := range e.Secrets {
			if strings.Contains(string(raw), s) {
				t.Errorf("secret %q in audit.log", s)
			}
		}
	}
}

// TestAuditLevelNone checks that audit-level=none forwards nothing while
// docker logs still works.
func TestAuditLevelNone(t *testing.T) {
	d := sharedTrail()
	args := []string{"-seed", "15", "-n", "2", "-big", "1"}
	em := emit(t, args...)
	c := runContainer(t, pluginName, []string{"audit-level=none"}, args...)
	if recs := waitRecords(t, d.Audit, c, 0); len(recs) != 0 {
		t.Errorf("%d events forwarded at audit-level none", len(recs))
	}
	stdout, stderr := logs(t, c)
	if stdout != em.Stdout || stderr != em.Stderr {
		t.Errorf("docker logs differs from the emitter's output: stdout %s; stderr %s",
			diffSummary(stdout, em.Stdout), diffSummary(stderr, em.Stderr))
	}
}

// ignoredBy reports whether uri matches the ignore list entries, following
// the documented rule: query and one /vX.Y prefix are removed; an entry
// ending in "*" is a prefix, any other entry an exact path.
func ignoredBy(entries []string, uri string) bool {
	p, _, _ := strings.Cut(uri, "?")
	if strings.HasPrefix(p, "/v") {
		rest := p[2:]
		i := strings.IndexByte(rest, '/')
		ver := rest
		if i >= 0 {
			ver = rest[:i]
		}
		if maj, min, ok := strings.Cut(ver, "."); ok && isDigits(maj) && isDigits(min) {
			p = strings.TrimPrefix(p, "/v"+ver)
			if p == "" {
				p = "/"
			}
		}
	}
	for _, e := range entries {
		if prefix, ok := strings.CutSuffix(e, "*"); ok {
			if strings.HasPrefix(p, prefix) {
				return true
			}
		} else if p == e {
			return true
		}
	}
	return false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// TestAuditIgnoreReplaces checks that audit-ignore replaces the default
// list: its entries are dropped, and the default entries (/_ping, /info,
// /version) are forwarded again.
func TestAuditIgnoreReplaces(t *testing.T) {
	cases := []struct {
		name   string
		ignore string
	}{
		{"services-prefix", "/services*,/enzi/v0/accounts"},
		{"empty-list", ""},
		{"auth-prefix", "/auth*,/_ping"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := sharedTrail()
			args := []string{"-seed", "16", "-n", "5", "-big", "1"}
			args[1] = []string{"16", "17", "18"}[i]
			em := emit(t, args...)
			c := runContainer(t, pluginName, []string{"audit-ignore=" + tc.ignore}, args...)
			entries := strings.Split(tc.ignore, ",")
			var want []ManifestEvent
			dropped := 0
			for _, e := range em.Manifest.Events {
				if e.Malformed {
					continue
				}
				if ignoredBy(entries, e.RequestURI) {
					dropped++
					continue
				}
				want = append(want, e)
			}
			if tc.ignore != "" && dropped == 0 {
				t.Fatalf("audit-ignore=%s drops nothing of the emitter's output", tc.ignore)
			}
			recs := waitRecords(t, d.Audit, c, len(want))
			checkExactlyOnce(t, recs, want)
			checkSequence(t, recs, want)
		})
	}
}

// TestUnterminatedTail checks that a final audit line without newline is
// not lost.
func TestUnterminatedTail(t *testing.T) {
	d := sharedTrail()
	args := []string{"-seed", "19", "-n", "1", "-big", "0", "-malformed=false", "-unterminated"}
	em := emit(t, args...)
	if strings.HasSuffix(em.Stdout, "\n") {
		t.Fatal("emitter output ends with a newline")
	}
	c := runContainer(t, pluginName, nil, args...)
	want := em.Forwarded()
	last := want[len(want)-1]
	if !last.Unterminated {
		t.Fatalf("last forwarded event is not the unterminated one: %+v", last)
	}
	recs := waitRecords(t, d.Audit, c, len(want))
	checkExactlyOnce(t, recs, want)
	checkSequence(t, recs, want)
	stdout, _ := logs(t, c, "--tail", "1")
	if got, want := strings.TrimSuffix(stdout, "\n"), em.StdoutLines()[last.Line-1]; got != want {
		t.Errorf("docker logs --tail 1: %s", diffSummary(got, want))
	}
}

// TestSharedFile runs two containers at once writing to the same
// audit-file: all events of both arrive, every line whole.
func TestSharedFile(t *testing.T) {
	d := sharedTrail()
	seeds := []string{"21", "22"}
	ems := make([]Emitted, len(seeds))
	for i, s := range seeds {
		ems[i] = emit(t, "-seed", s, "-n", "10", "-big", "2")
	}
	cs := make([]Container, len(seeds))
	for i, s := range seeds {
		c, _, err := startContainer(t, pluginName, nil, "-seed", s, "-n", "10", "-big", "2")
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			docker(nil, "wait", c.ID)
		}()
	}
	wg.Wait()
	for i, c := range cs {
		want := ems[i].Forwarded()
		recs := waitRecords(t, d.Audit, c, len(want)) // readJSONLines fails on a line cut in the middle
		checkExactlyOnce(t, recs, want)
		checkSequence(t, recs, want)
	}
	// readJSONLines leaves out a last line still being written; once the
	// plugin is done the file must end with a whole line.
	if !peers.WaitUntil(10*time.Second, func() bool {
		b, err := os.ReadFile(d.Audit)
		return err == nil && len(b) > 0 && b[len(b)-1] == '\n'
	}) {
		t.Errorf("%s does not end with a newline", d.Audit)
	}
}

// TestFileModes checks that audit.log and quarantine.log are 0600.
func TestFileModes(t *testing.T) {
	d := sharedTrail()
	args := []string{"-seed", "23", "-n", "1", "-big", "0"}
	em := emit(t, args...)
	c := runContainer(t, pluginName, nil, args...)
	waitRecords(t, d.Audit, c, len(em.Forwarded()))
	quarantineRecords(t, d.Quarantine, c, 5)
	for _, p := range []string{d.Audit, d.Quarantine} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Error(err)
			continue
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, m)
		}
	}
}

// TestLabelsAndEnv: Docker's labels and env log-opts put the container's
// labels and environment on its events, under the reserved prefix; a
// variable whose name says secret is redacted.
func TestLabelsAndEnv(t *testing.T) {
	d := sharedTrail()
	args := []string{"-seed", "91", "-n", "1", "-big", "0", "-malformed=false", "-ignored=false", "-stderr=false"}
	em := emit(t, args...)
	c, stderr, err := startContainerWith(t, emitterImage, pluginName,
		[]string{"--label", "com.example.team=blue", "--label", "tier=front", "-e", "MODE=prod", "-e", "DB_PASSWORD=hunter2"},
		[]string{"labels=tier", "labels-regex=^com\\.example\\.", "env=MODE,DB_PASSWORD"}, args...)
	if err != nil {
		t.Fatalf("docker run: %v\n%s", err, stderr)
	}
	waitExit(t, c)
	recs := waitRecords(t, d.Audit, c, len(em.Forwarded()))
	if len(recs) == 0 {
		t.Fatal("no events")
	}
	for _, r := range recs {
		for k, want := range map[string]string{"ucp-audit/label/tier": "front", "ucp-audit/label/com.example.team": "blue", "ucp-audit/env/MODE": "prod", "ucp-audit/env/DB_PASSWORD": "<redacted>"} {
			if got := r.Annotation(k); got != want {
				t.Fatalf("%v: annotation %s = %q, want %q", r.Key(), k, got, want)
			}
		}
		if strings.Contains(r.Raw, "hunter2") {
			t.Fatal("the secret variable's value is in the trail")
		}
	}
}
