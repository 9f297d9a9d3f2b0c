package driver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/plugins/logdriver"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/dockerlog"
)

// The harness runs a Driver on temporary directories and plays dockerd's
// side of a FIFO; the checks below read what the driver wrote back.

// auditLine returns a logrus-wrapped metadata-level audit event.
func auditLine(id, uri string) string {
	return fmt.Sprintf(`{"audit":{"auditID":%q,"kind":"docker-swarm","level":"metadata","metadata":{"creationTimestamp":null},"requestReceivedTimestamp":"2024-03-02T10:04:05.123456Z","requestURI":%q,"sourceIPs":["10.0.0.7:51234"],"stage":"RequestReceived","stageTimestamp":null,"timestamp":null,"user":{"extra":{"licenseKey":["k"],"username":["bob"]},"uid":"u1","username":"u1"},"verb":"GET"},"level":"info","msg":"audit","time":"2024-03-02T10:04:05Z"}`, id, uri)
}

// bigAuditLine returns a request-level event of at least n bytes.
func bigAuditLine(id string, n int) string {
	pad := strings.Repeat("x", n)
	return fmt.Sprintf(`{"audit":{"auditID":%q,"level":"request","requestObject":{"Name":"svc","Pad":%q},"requestReceivedTimestamp":"2024-03-02T10:04:05Z","requestURI":"/v1.41/services/create","stage":"RequestReceived","user":{"username":"u1"},"verb":"POST"},"level":"info","msg":"audit","time":"2024-03-02T10:04:05Z"}`, id, pad)
}

// harness runs a Driver on temp dirs and plays dockerd's side of a FIFO.
type harness struct {
	t      testing.TB
	d      *Driver
	logDir string
	fifo   string
	w      *os.File
	enc    logdriver.LogEntryEncoder
	id     string
	image  string            // the container's image; "": docker/ucp-controller:3.8, an audit producer
	env    []string          // the container's environment, as dockerd tells it
	labels map[string]string // the container's labels
	seq    int
}

func newHarness(t testing.TB, opts map[string]string) *harness {
	t.Helper()
	return newHarnessWith(t, nil, opts)
}

// newHarnessWith is newHarness with the driver's options and test hooks
// changed by set.
func newHarnessWith(t testing.TB, set func(*Options, *hooks), opts map[string]string) *harness {
	t.Helper()
	root := t.TempDir()
	logDir := filepath.Join(root, "log")
	o := Options{StateDir: filepath.Join(root, "state"), LogDir: logDir, Host: "node-1", DrainTimeout: 10 * time.Second}
	var hk hooks
	if set != nil {
		set(&o, &hk)
	}
	d, err := newDriver(o, hk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	h := &harness{t: t, d: d, logDir: logDir, id: strings.Repeat("ab", 32)}
	h.start(opts)
	return h
}

// start makes a FIFO, opens it read-write as dockerd does, and calls
// StartLogging.
func (h *harness) start(opts map[string]string) {
	h.t.Helper()
	h.seq++
	h.fifo = filepath.Join(h.t.TempDir(), fmt.Sprintf("fifo-%d", h.seq))
	if err := syscall.Mkfifo(h.fifo, 0o600); err != nil {
		h.t.Fatal(err)
	}
	w, err := os.OpenFile(h.fifo, os.O_RDWR, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	h.w, h.enc = w, logdriver.NewLogEntryEncoder(w)
	if opts == nil {
		opts = map[string]string{}
	}
	image := h.image
	if image == "" {
		image = "docker/ucp-controller:3.8"
	}
	info := dockerlog.Info{ContainerID: h.id, ContainerName: "/ucp-controller", ContainerImageName: image, ContainerImageID: "sha256:" + strings.Repeat("1", 64), Config: opts,
		ContainerEnv: h.env, ContainerLabels: h.labels}
	if err := h.d.StartLogging(h.fifo, info); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) write(src, line string) {
	h.t.Helper()
	if err := h.enc.Encode(&logdriver.LogEntry{Source: src, Line: []byte(line), TimeNano: time.Now().UnixNano()}); err != nil {
		h.t.Fatal(err)
	}
}

// writeSplit writes line as dockerd does for long lines: 16 KiB chunks,
// all partial, the last one marked last (unless unfinished).
func (h *harness) writeSplit(src, line, id string, unfinished bool) {
	h.t.Helper()
	const chunk = 16 << 10
	for ord := 1; len(line) > 0; ord++ {
		n := min(chunk, len(line))
		part := line[:n]
		line = line[n:]
		last := len(line) == 0 && !unfinished
		e := &logdriver.LogEntry{Source: src, Line: []byte(part), TimeNano: time.Now().UnixNano(), Partial: true,
			PartialLogMetadata: &logdriver.PartialLogEntryMetadata{Id: id, Ordinal: int32(ord), Last: last}}
		if err := h.enc.Encode(e); err != nil {
			h.t.Fatal(err)
		}
	}
}

// waitFor polls cond until it holds; after 10 s the test fails, naming
// what it waited for.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reattach starts a new plugin process on the same directories, as dockerd
// does after the plugin crashed (h.d.crash), and waits until it has
// re-attached the container's stream.
func (h *harness) reattach() {
	h.t.Helper()
	d2, err := newDriver(h.d.opts, h.d.hooks)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { d2.Close() })
	h.d = d2
	h.waitFor("the new plugin process to re-attach", func() bool {
		d2.mu.Lock()
		defer d2.mu.Unlock()
		return d2.streams[h.fifo] != nil
	})
}

// stop calls StopLogging, then closes dockerd's end, as dockerd does.
func (h *harness) stop() {
	h.t.Helper()
	if err := h.d.StopLogging(h.fifo); err != nil {
		h.t.Fatal(err)
	}
	h.w.Close()
}

// file returns the records of a file in the log dir; for audit.log
// without the plugin's self-audit events, which file("self") returns.
func (h *harness) file(name string) []map[string]any {
	h.t.Helper()
	if name == "self" {
		return h.records("audit.log", true)
	}
	return h.records(name, false)
}

// records returns the records of the file name in the log dir: its
// self-audit events when self is set, the others otherwise.
func (h *harness) records(name string, self bool) []map[string]any {
	h.t.Helper()
	path := filepath.Join(h.logDir, name)
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	// Every file the driver writes is a hash chain: it verifies (an
	// unsealed tail is fine while streams run; a signed chain is checked
	// by the tests that sign), and its seals and chain fields are not the
	// driver's records.
	if sets, err := auditlog.Files(path); err != nil {
		h.t.Fatal(err)
	} else if r := chain.Verify(sets[0], chain.VerifyOptions{AllowUnsealedTail: true}); !r.OK() {
		h.t.Fatalf("%s: chain: %v", name, r.Err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			h.t.Fatalf("%s: line not JSON: %v", name, err)
		}
		if _, seal := m["ucp-audit/seal"]; seal {
			continue
		}
		delete(m, "ucp-audit/chain")
		if _, isSelf := m["ucp-audit/self"]; isSelf != self {
			continue
		}
		out = append(out, m)
	}
	return out
}

func annotations(m map[string]any) map[string]any {
	a, _ := m["annotations"].(map[string]any)
	return a
}

func hasSelf(recs []map[string]any, typ string) bool {
	for _, r := range recs {
		if r["ucp-audit/self"].(map[string]any)["type"] == typ {
			return true
		}
	}
	return false
}

func writeEvents(h *harness, prefix string, n int) []string {
	var ids []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		ids = append(ids, id)
		h.write("stdout", auditLine(id, "/v1.41/services"))
	}
	return ids
}

// checkEvents checks that audit.log holds exactly the auditIDs want, in
// order, numbered 1, 2, 3 … with no gap.
func checkEvents(t *testing.T, h *harness, want ...string) []map[string]any {
	t.Helper()
	events := h.file("audit.log")
	var ids []string
	for i, ev := range events {
		id, _ := ev["auditID"].(string)
		ids = append(ids, id)
		if seq := annotations(ev)["ucp-audit/seq"]; seq != fmt.Sprint(i+1) {
			t.Errorf("event %d (%s): seq %v, want %d", i, id, seq, i+1)
		}
	}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("audit.log has %v, want %v", ids, want)
	}
	return events
}

// dockerLogs returns the container's lines as docker logs prints them.
func dockerLogs(t *testing.T, h *harness) []string {
	t.Helper()
	rc, err := h.d.ReadLogs(dockerlog.Info{ContainerID: h.id}, dockerlog.ReadConfig{Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	dec := logdriver.NewLogEntryDecoder(rc)
	var all bytes.Buffer
	for {
		var e logdriver.LogEntry
		if err := dec.Decode(&e); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("docker logs: %v", err)
		}
		all.Write(e.Line)
	}
	return strings.SplitAfter(all.String(), "\n")
}

// hasLine reports whether docker logs printed line (with its newline).
func hasLine(lines []string, line string) bool {
	for _, l := range lines {
		if l == line+"\n" {
			return true
		}
	}
	return false
}

// heapWatch samples HeapInuse until stopped and returns the peak above the
// baseline taken when it started.
func heapWatch() (stop func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

func quarantineOf(t *testing.T, h *harness, n int) []map[string]any {
	t.Helper()
	q := h.file("quarantine.log")
	if len(q) != n {
		t.Fatalf("quarantine.log has %d records, want %d", len(q), n)
	}
	for i, r := range q {
		if r["quarantine-seq"] != float64(i+1) || r["container-id"] != h.id || r["reason"] == "" {
			t.Errorf("quarantine record %d: %v", i, abbreviate(r))
		}
	}
	return q
}

func abbreviate(r map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range r {
		if s, ok := v.(string); ok && len(s) > 200 {
			v = s[:200] + "…"
		}
		out[k] = v
	}
	return out
}
