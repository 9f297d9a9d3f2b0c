//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// cmdTimeout bounds every docker command except `docker logs -f`.
const cmdTimeout = 3 * time.Minute

// Manifest mirrors the emitter's -manifest file (tests/emitter).
type Manifest struct {
	Seed        int64           `json:"seed"`
	StdoutLines int             `json:"stdoutLines"`
	StderrLines int             `json:"stderrLines"`
	Events      []ManifestEvent `json:"events"`
}

// ManifestEvent describes one audit line the emitter printed.
type ManifestEvent struct {
	AuditID                  string   `json:"auditID"`
	Stage                    string   `json:"stage"`
	Level                    string   `json:"level"`
	Kind                     string   `json:"kind"`
	Family                   string   `json:"family"`
	Verb                     string   `json:"verb"`
	RequestURI               string   `json:"requestURI"`
	Username                 string   `json:"username"`
	LicenseKey               string   `json:"licenseKey"`
	RequestReceivedTimestamp string   `json:"requestReceivedTimestamp"`
	Ignored                  bool     `json:"ignored"`
	Forwarded                bool     `json:"forwarded"`
	Malformed                bool     `json:"malformed"`
	Reason                   string   `json:"reason"`
	HasRequestObject         bool     `json:"hasRequestObject"`
	Redacted                 []string `json:"redacted"`
	Secrets                  []string `json:"secrets"`
	Big                      bool     `json:"big"`
	PayloadBytes             int      `json:"payloadBytes"`
	Bytes                    int      `json:"bytes"`
	Line                     int      `json:"line"`
	Unterminated             bool     `json:"unterminated"`
}

// Key identifies an audit event.
type Key struct{ AuditID, Stage string }

func (e ManifestEvent) Key() Key { return Key{e.AuditID, e.Stage} }

// Emitted is what the emitter prints for a set of flags, computed by
// running the host build of the emitter.
type Emitted struct {
	Args     []string
	Stdout   string
	Stderr   string
	Manifest Manifest
}

// StdoutLines returns the stdout lines (without newlines).
func (e Emitted) StdoutLines() []string { return splitLines(e.Stdout) }

// Forwarded returns the manifest events expected in audit.log with default
// options, in output order.
func (e Emitted) Forwarded() []ManifestEvent {
	var out []ManifestEvent
	for _, ev := range e.Manifest.Events {
		if ev.Forwarded {
			out = append(out, ev)
		}
	}
	return out
}

// emit runs the emitter locally with args and returns its output and manifest.
func emit(t *testing.T, args ...string) Emitted {
	t.Helper()
	mpath := filepath.Join(t.TempDir(), "manifest.json")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(emitterBin, append(append([]string{}, args...), "-manifest", mpath)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("emitter %v: %v\n%s", args, err, stderr.String())
	}
	b, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	e := Emitted{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	if err := json.Unmarshal(b, &e.Manifest); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return e
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// slug turns a test name into something usable in file and container names.
func slug(t *testing.T) string {
	s := strings.ToLower(unsafeChars.ReplaceAllString(t.Name(), "-"))
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Trim(s, "-")
}

// docker runs a docker command and returns stdout and stderr.
func docker(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	if ctx == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
	}
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("docker %s: %w\nstderr: %s", strings.Join(args, " "), err, e.String())
	}
	return o.String(), e.String(), err
}

// mustDocker is docker that fails the test on error.
func mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, _, err := docker(nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Dir is a directory under /var/log/ucp-audit holding a trail: the node
// configuration's trail.auditFile and trail.quarantineFile.
type Dir struct {
	Path       string
	Audit      string // <dir>/audit.log
	Quarantine string // <dir>/quarantine.log
}

func trailIn(path string) Dir {
	return Dir{Path: path, Audit: filepath.Join(path, "audit.log"), Quarantine: filepath.Join(path, "quarantine.log")}
}

// suite is the trail of the suite (TestMain points the node
// configuration at it): tests find their records by container ID.
var suite Dir

// sharedTrail returns the suite's trail.
func sharedTrail() Dir { return suite }

// tempUnder creates root/e2e-<test>-<random>/ and removes it at the end of
// the test, unless the test failed and UCP_AUDIT_E2E_KEEP=1.
func tempUnder(t *testing.T, root string) string {
	t.Helper()
	p := filepath.Join(root, "e2e-"+slug(t)+"-"+randHex(4))
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("UCP_AUDIT_E2E_KEEP") == "1" {
			t.Logf("keeping %s", p)
			return
		}
		os.RemoveAll(p)
	})
	return p
}

// nodeFile is the suite plugin's node configuration, as the host sees it.
const nodeFile = stateDir + "/node.json"

// configSet runs `ucp-audit config set` on the suite plugin's node
// configuration.
func configSet(settings ...string) error {
	args := append([]string{"config", "set", "--file", nodeFile}, settings...)
	if out, err := exec.Command(verifyBin(), args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ucp-audit %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// configChanges counts the config-changed records in the audit file path.
func configChanges(path string) int {
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte(`{"`+auditlog.SelfKey+`":{"type":"`+auditlog.SelfConfigChanged+`"`))
}

// moveTrail points the node configuration at d (and sets settings too),
// and waits until the plugin has moved the trail there: its config-changed
// record is in d's audit file.
func moveTrail(d Dir, settings ...string) error {
	before := configChanges(d.Audit)
	if err := configSet(append([]string{"trail.auditFile=" + d.Audit, "trail.quarantineFile=" + d.Quarantine}, settings...)...); err != nil {
		return err
	}
	if !peers.WaitUntil(30*time.Second, func() bool { return configChanges(d.Audit) > before }) {
		return fmt.Errorf("the plugin did not move the trail to %s within 30 s of the node configuration change", d.Path)
	}
	return nil
}

// ownTrail gives the test a trail of its own (with the node settings
// settings, such as trail.maxSize=256k, too) and returns it with release,
// which points the node configuration back at the suite's trail and
// removes settings: the plugin then closes and seals the test's files.
// The test's end releases it too. Only tests that are not parallel may
// use it: while it is held, every container's records go there.
func ownTrail(t *testing.T, settings ...string) (d Dir, release func()) {
	t.Helper()
	return ownTrailAt(t, trailIn(tempUnder(t, logDir)), settings...)
}

// ownTrailAt is ownTrail with the trail in d, such as one the test held
// before: the plugin resumes its files.
func ownTrailAt(t *testing.T, d Dir, settings ...string) (Dir, func()) {
	t.Helper()
	if err := moveTrail(d, settings...); err != nil {
		t.Fatal(err)
	}
	var unset []string
	for _, s := range settings {
		k, _, _ := strings.Cut(s, "=")
		unset = append(unset, k+"=null")
	}
	released := false
	release := func() {
		t.Helper()
		if released {
			return
		}
		released = true
		if err := moveTrail(suite, unset...); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(release)
	return d, release
}

// Container is a started container.
type Container struct {
	ID   string
	Name string
}

// startContainer runs `docker run -d --network none --log-driver driver
// --log-opt ... emitterImage /emitter args...`. It returns the docker run
// error (with its stderr) instead of failing, so that option errors can be
// tested. The container is removed at the end of the test.
func startContainer(t *testing.T, driver string, opts []string, args ...string) (Container, string, error) {
	t.Helper()
	return startContainerFrom(t, emitterImage, driver, opts, args...)
}

// startContainerFrom is startContainer with the emitter under another
// image name, such as otherImage (not an audit producer).
func startContainerFrom(t *testing.T, image, driver string, opts []string, args ...string) (Container, string, error) {
	t.Helper()
	return startContainerWith(t, image, driver, nil, opts, args...)
}

// startContainerWith is startContainerFrom with more docker run flags
// (--label, -e …).
func startContainerWith(t *testing.T, image, driver string, flags, opts []string, args ...string) (Container, string, error) {
	t.Helper()
	name := "ucp-audit-e2e-" + slug(t) + "-" + randHex(4)
	run := append([]string{"run", "-d", "--network", "none", "--name", name, "--log-driver", driver}, flags...)
	for _, o := range opts {
		run = append(run, "--log-opt", o)
	}
	run = append(run, image, "/emitter")
	run = append(run, args...)
	t.Cleanup(func() {
		docker(nil, "rm", "-f", name)
	})
	stdout, stderr, err := docker(nil, run...)
	return Container{ID: strings.TrimSpace(stdout), Name: name}, stderr, err
}

// runContainer starts a container and waits for it to exit with status 0.
func runContainer(t *testing.T, driver string, opts []string, args ...string) Container {
	t.Helper()
	c, _, err := startContainer(t, driver, opts, args...)
	if err != nil {
		t.Fatal(err)
	}
	waitExit(t, c)
	return c
}

// waitExit waits for the container to exit and checks its status is 0.
func waitExit(t *testing.T, c Container) {
	t.Helper()
	out := mustDocker(t, "wait", c.ID)
	if code := strings.TrimSpace(out); code != "0" {
		t.Fatalf("container %s exited with %s", c.Name, code)
	}
}

// logs runs `docker logs args... id` and returns stdout and stderr.
func logs(t *testing.T, c Container, args ...string) (string, string) {
	t.Helper()
	stdout, stderr, err := docker(nil, append(append([]string{"logs"}, args...), c.ID)...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout, stderr
}

// Record is one line of audit.log: the event, decoded, with its raw bytes.
type Record struct {
	Raw   string
	Event map[string]any
}

func (r Record) Str(path string) string {
	v, _ := lookup(r.Event, path)
	s, _ := v.(string)
	return s
}

func (r Record) Annotation(k string) string {
	a, _ := r.Event["annotations"].(map[string]any)
	s, _ := a[k].(string)
	return s
}

func (r Record) Key() Key { return Key{r.Str("auditID"), r.Str("stage")} }

// readJSONLines reads a JSON-lines file. Every line it returns must be a
// whole JSON object; a missing file reads as empty, and a last line without
// its newline (still being written) is left out. Seal lines are records too.
// With match, only the lines containing every one of those strings are
// decoded and returned: the suite's trail holds every test's records.
func readJSONLines(t *testing.T, path string, match ...string) []Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	// The plugin may be writing: a last line without its newline is not
	// complete yet.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var recs []Record
	n := 0
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b[:i]
		b = b[i+1:]
		n++
		if !containsAll(line, match) {
			continue
		}
		var ev map[string]any
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&ev); err != nil || dec.More() {
			t.Fatalf("%s line %d is not one JSON object (%v): %.300s", path, n, err, line)
		}
		// Every line carries the file's chain (Raw keeps it); the record
		// is what the plugin chained.
		delete(ev, auditlog.ChainKey)
		recs = append(recs, Record{Raw: string(line), Event: ev})
	}
	return recs
}

func containsAll(line []byte, subs []string) bool {
	for _, s := range subs {
		if !bytes.Contains(line, []byte(s)) {
			return false
		}
	}
	return true
}

// auditRecords returns the audit.log records of container c, sorted by seq
// order as written.
func auditRecords(t *testing.T, path string, c Container) []Record {
	t.Helper()
	var out []Record
	for _, r := range readJSONLines(t, path, c.ID) {
		if r.Annotation("ucp-audit/container-id") == c.ID {
			out = append(out, r)
		}
	}
	return out
}

// waitRecords polls path until container c has at least want records, or
// 60 s pass, then waits a little longer to catch duplicates and returns
// what is there.
func waitRecords(t *testing.T, path string, c Container, want int) []Record {
	t.Helper()
	if want == 0 {
		time.Sleep(3 * time.Second)
		return auditRecords(t, path, c)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		recs := auditRecords(t, path, c)
		if len(recs) >= want {
			time.Sleep(500 * time.Millisecond)
			return auditRecords(t, path, c)
		}
		if time.Now().After(deadline) {
			return recs
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Quarantined is one line of quarantine.log.
type Quarantined struct {
	Reason        string `json:"reason"`
	ContainerID   string `json:"container-id"`
	ContainerName string `json:"container-name"`
	Stream        string `json:"stream"`
	Raw           string `json:"raw"`
	Time          string `json:"time"`
}

func quarantineRecords(t *testing.T, path string, c Container, want int) []Quarantined {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var out []Quarantined
		for _, r := range readJSONLines(t, path, c.ID) {
			var q Quarantined
			if err := json.Unmarshal([]byte(r.Raw), &q); err != nil {
				t.Fatalf("quarantine line: %v: %.300s", err, r.Raw)
			}
			if q.ContainerID == c.ID {
				out = append(out, q)
			}
		}
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(200 * time.Millisecond)
	}
}

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

// hashedLicense is what the plugin writes for a licenseKey.
func hashedLicense(k string) string {
	sum := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(sum[:])[:16]
}

// hostName is the node's hostname as the plugin reads it (/etc/hostname).
func hostName(t *testing.T) string {
	b, err := os.ReadFile("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// checkSequence checks that recs carry ucp-audit/seq 1..N in file order and
// that their (auditID, stage) follow want.
func checkSequence(t *testing.T, recs []Record, want []ManifestEvent) {
	t.Helper()
	if len(recs) != len(want) {
		t.Errorf("%d events in audit.log, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		if got := r.Annotation("ucp-audit/seq"); got != fmt.Sprint(i+1) {
			t.Errorf("record %d: ucp-audit/seq %q, want %d", i, got, i+1)
			break
		}
	}
	for i := 0; i < len(recs) && i < len(want); i++ {
		if recs[i].Key() != want[i].Key() {
			t.Errorf("record %d is %v, want %v (order of the lines)", i, recs[i].Key(), want[i].Key())
			break
		}
	}
}

// checkExactlyOnce checks that every wanted event is present exactly once
// and nothing else is.
func checkExactlyOnce(t *testing.T, recs []Record, want []ManifestEvent) {
	t.Helper()
	count := map[Key]int{}
	for _, r := range recs {
		count[r.Key()]++
	}
	for _, w := range want {
		switch n := count[w.Key()]; n {
		case 1:
		case 0:
			t.Errorf("missing from audit.log: %v %s %s", w.Key(), w.Verb, w.RequestURI)
		default:
			t.Errorf("%d copies in audit.log: %v", n, w.Key())
		}
		delete(count, w.Key())
	}
	for k, n := range count {
		t.Errorf("unexpected in audit.log (%d times): %v", n, k)
	}
}

// tsPrefix is the timestamp `docker logs --timestamps` writes before every
// message (RFC3339Nano with a fixed 9-digit fraction) and its space.
var tsPrefix = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}(Z|[+-]\d{2}:\d{2}) `)

// stripTimestamps removes the timestamps `docker logs --timestamps` adds,
// checking each line starts with one. Docker also writes one before every
// 16 KiB chunk of a long line (each partial message), so those are removed
// too; the emitter never prints anything looking like them.
func stripTimestamps(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for _, l := range splitLines(s) {
		loc := tsPrefix.FindStringIndex(l)
		if loc == nil || loc[0] != 0 {
			t.Fatalf("line without timestamp prefix: %.200q", l)
		}
		ts := strings.TrimSuffix(l[:loc[1]], " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Fatalf("bad timestamp prefix %q: %v", ts, err)
		}
		b.WriteString(tsPrefix.ReplaceAllString(l, ""))
		b.WriteByte('\n')
	}
	return b.String()
}

// tail returns the last n lines of s, each with its newline.
func tail(s string, n int) string {
	lines := splitLines(s)
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// diffSummary describes the first difference between two texts.
func diffSummary(a, b string) string {
	la, lb := splitLines(a), splitLines(b)
	for i := 0; i < len(la) || i < len(lb); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			return fmt.Sprintf("%d vs %d lines; first difference at line %d:\n  got:  %.300q\n  want: %.300q", len(la), len(lb), i+1, x, y)
		}
	}
	if a != b {
		return "same lines, different trailing bytes"
	}
	return "equal"
}
