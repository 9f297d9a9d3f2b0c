package driver

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/plugins/logdriver"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/driver/ingest"
	"github.com/ucp-audit/ucp-audit/driver/pipeline"
	"github.com/ucp-audit/ucp-audit/sink"
)

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
	t      *testing.T
	d      *Driver
	logDir string
	fifo   string
	w      *os.File
	enc    logdriver.LogEntryEncoder
	id     string
	seq    int
}

func newHarness(t *testing.T, opts map[string]string) *harness {
	t.Helper()
	return newHarnessWith(t, nil, opts)
}

// newHarnessWith is newHarness with the driver's options and test hooks
// changed by set.
func newHarnessWith(t *testing.T, set func(*Options, *hooks), opts map[string]string) *harness {
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
	info := dockerlog.Info{ContainerID: h.id, ContainerName: "/ucp-controller", ContainerImageName: "docker/ucp-controller:3.8", Config: opts}
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
	path := filepath.Join(h.logDir, name)
	if name == "self" {
		path = filepath.Join(h.logDir, "audit.log")
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	// Every file the driver writes is a hash chain: it verifies (an
	// unsealed tail is fine while streams run), and its seals and chain
	// fields are not the driver's records.
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
		if _, self := m["ucp-audit/self"]; self != (name == "self") {
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

func TestStreamAuditAndQuarantine(t *testing.T) {
	h := newHarness(t, nil)
	h.write("stdout", `{"level":"info","msg":"starting","time":"2024-03-02T10:04:05Z"}`)
	h.write("stdout", auditLine("id-1", "/v1.41/services"))
	h.write("stdout", "plain text")
	h.write("stdout", auditLine("id-ping", "/v1.41/_ping")) // ignored by default
	h.write("stderr", auditLine("id-2", "/auth/login"))     // exact match only: logged
	h.writeSplit("stdout", bigAuditLine("id-big", 40<<10), "p1", false)
	h.write("stdout", `{"audit":"notanobject","auditID":"x"}`)
	h.write("stdout", `{"audit":{"auditID":"id-trunc"`)
	h.stop()

	events := h.file("audit.log")
	var ids []string
	for i, ev := range events {
		ids = append(ids, ev["auditID"].(string))
		a := annotations(ev)
		if a["ucp-audit/seq"] != fmt.Sprint(i+1) {
			t.Errorf("event %d: seq %v", i, a["ucp-audit/seq"])
		}
		if a["ucp-audit/container-id"] != h.id || a["ucp-audit/container-name"] != "ucp-controller" || a["ucp-audit/host"] != "node-1" {
			t.Errorf("event %d: enrichment %v", i, a)
		}
	}
	if want := "[id-1 id-2 id-big]"; fmt.Sprint(ids) != want {
		t.Fatalf("audit.log has %v, want %s", ids, want)
	}
	if s := annotations(events[1])["ucp-audit/stream"]; s != "stderr" {
		t.Errorf("stream = %v", s)
	}
	pad := events[2]["requestObject"].(map[string]any)["Pad"].(string)
	if len(pad) != 40<<10 {
		t.Errorf("big event payload is %d bytes, want %d", len(pad), 40<<10)
	}
	q := h.file("quarantine.log")
	if len(q) != 2 {
		t.Fatalf("quarantine.log has %d records, want 2: %v", len(q), q)
	}
	for _, r := range q {
		if r["container-id"] != h.id || r["reason"] == "" || r["raw"] == "" {
			t.Errorf("quarantine record %v", r)
		}
	}
	for _, name := range []string{"audit.log", "quarantine.log"} {
		fi, err := os.Stat(filepath.Join(h.logDir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, err %v", name, fi.Mode(), err)
		}
	}
}

// A container that exits mid-line leaves no last chunk: the tail of the
// line is still handled when the stream stops.
func TestStreamUnfinishedTail(t *testing.T) {
	h := newHarness(t, nil)
	h.writeSplit("stdout", bigAuditLine("id-tail", 20<<10), "p9", true)
	h.stop()
	events := h.file("audit.log")
	if len(events) != 1 || events[0]["auditID"] != "id-tail" {
		t.Fatalf("got %v", events)
	}
}

// A line over max-line-size that looks like audit is quarantined, not lost.
func TestStreamLineTooLong(t *testing.T) {
	h := newHarness(t, map[string]string{"max-line-size": "32k"})
	h.writeSplit("stdout", bigAuditLine("id-huge", 64<<10), "p2", false)
	h.write("stdout", auditLine("id-after", "/v1.41/nodes"))
	h.stop()
	q := h.file("quarantine.log")
	if len(q) != 1 || !strings.Contains(q[0]["reason"].(string), "max-line-size") || q[0]["truncated"] != true {
		t.Fatalf("quarantine: %v", q)
	}
	if got := h.file("audit.log"); len(got) != 1 || got[0]["auditID"] != "id-after" {
		t.Fatalf("audit.log: %v", got)
	}
}

// StopLogging answers only once everything written before it is handled,
// even when far more than a pipe buffer was written.
func TestStreamStopDrains(t *testing.T) {
	h := newHarness(t, nil)
	const n = 3000 // about 1.5 MB: many pipe buffers
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			h.write("stdout", auditLine(fmt.Sprintf("id-%d", i), "/v1.41/containers/json"))
		}
	}()
	<-done
	h.stop()
	if got := len(h.file("audit.log")); got != n {
		t.Fatalf("audit.log has %d events, want %d", got, n)
	}
}

// A restarted container (same ID) continues the sequence numbers, and
// docker logs shows both runs.
func TestStreamRestartContinuesSeq(t *testing.T) {
	h := newHarness(t, nil)
	h.write("stdout", auditLine("run1", "/v1.41/nodes"))
	h.stop()
	h.start(nil)
	h.write("stdout", auditLine("run2", "/v1.41/nodes"))
	h.stop()
	ev := h.file("audit.log")
	if len(ev) != 2 || annotations(ev[1])["ucp-audit/seq"] != "2" {
		t.Fatalf("got %v", ev)
	}
	rc, err := h.d.ReadLogs(dockerlog.Info{ContainerID: h.id}, dockerlog.ReadConfig{Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	dec := logdriver.NewLogEntryDecoder(rc)
	n := 0
	for {
		var e logdriver.LogEntry
		if err := dec.Decode(&e); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("docker logs has %d lines, want 2", n)
	}
}

// docker logs --follow sees new lines as they come and ends when the
// container's stream stops.
func TestReadLogsFollow(t *testing.T) {
	h := newHarness(t, nil)
	h.write("stdout", "first")
	rc, err := h.d.ReadLogs(dockerlog.Info{ContainerID: h.id}, dockerlog.ReadConfig{Tail: -1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	dec := logdriver.NewLogEntryDecoder(rc)
	next := func() string {
		var e logdriver.LogEntry
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		return string(e.Line)
	}
	if got := next(); got != "first\n" {
		t.Fatalf("got %q", got)
	}
	h.write("stdout", "second")
	if got := next(); got != "second\n" {
		t.Fatalf("got %q", got)
	}
	h.stop()
	var e logdriver.LogEntry
	if err := dec.Decode(&e); err != io.EOF {
		t.Fatalf("after stop: %v", err)
	}
}

func TestStartLoggingErrors(t *testing.T) {
	h := newHarness(t, nil)
	err := h.d.StartLogging(h.fifo, dockerlog.Info{ContainerID: h.id})
	if err == nil {
		t.Fatal("second StartLogging on one FIFO succeeded")
	}
	err = h.d.StartLogging("/nonexistent", dockerlog.Info{ContainerID: "c2", Config: map[string]string{"audit-level": "bogus"}})
	if err == nil || !strings.Contains(err.Error(), `log-opt "audit-level": invalid value "bogus"`) {
		t.Fatalf("bad option: %v", err)
	}
	if err := h.d.StopLogging("/never-started"); err == nil {
		t.Fatal("StopLogging of an unknown FIFO succeeded")
	}
	if _, err := h.d.ReadLogs(dockerlog.Info{ContainerID: "unknown"}, dockerlog.ReadConfig{}); err == nil {
		t.Fatal("ReadLogs of an unknown container succeeded")
	}
}

// gateSink blocks every Write until the gate opens: a stalled destination.
type gateSink struct {
	sink.Sink
	gate chan struct{}
}

func (g *gateSink) Write(p []byte) error {
	<-g.gate
	return g.Sink.Write(p)
}

// A stalled sink must not stall the container: the FIFO keeps being
// drained (into the store), far past the pipe's 64 KiB, and once the sink
// moves again every event arrives.
func TestStreamStalledSinkDoesNotBlockFIFO(t *testing.T) {
	gate := make(chan struct{})
	root := t.TempDir()
	// The files the driver opens once it is up are stalled (not the one
	// New records the plugin's start in).
	var up atomic.Bool
	d, err := newDriver(Options{StateDir: filepath.Join(root, "state"), LogDir: filepath.Join(root, "log"), DrainTimeout: 30 * time.Second},
		hooks{wrapSink: func(s sink.Sink) sink.Sink {
			if !up.Load() {
				return s
			}
			return &gateSink{Sink: s, gate: gate}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	up.Store(true)
	h := &harness{t: t, d: d, logDir: filepath.Join(root, "log"), id: strings.Repeat("cd", 32)}
	h.start(nil)

	const n = 4000 // about 2 MB, 30 pipe buffers
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for i := 0; i < n; i++ {
			h.write("stdout", auditLine(fmt.Sprintf("id-%d", i), "/v1.41/containers/json"))
		}
	}()
	select {
	case <-wrote:
	case <-time.After(20 * time.Second):
		close(gate)
		t.Fatal("the container's writes blocked while the sink was stalled")
	}
	close(gate)
	h.stop()
	if got := len(h.file("audit.log")); got != n {
		t.Fatalf("audit.log has %d events, want %d", got, n)
	}
}

// After a crash dockerd restarts the plugin but never calls StartLogging
// again: the new process re-attaches to the FIFO, takes what waited in the
// pipe, and carries on with the same numbering.
func TestReattachAfterCrash(t *testing.T) {
	h := newHarness(t, nil)
	var ids []string
	write := func(n int) {
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("id-%d", len(ids))
			ids = append(ids, id)
			h.write("stdout", auditLine(id, "/v1.41/nodes"))
		}
	}
	write(10)
	deadline := time.Now().Add(10 * time.Second)
	for len(h.file("audit.log")) < 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	h.d.crash()
	write(5) // waits in the pipe while the plugin is down
	h.reattach()
	write(5)
	h.stop()
	seen := map[string]string{}
	for _, ev := range h.file("audit.log") {
		id, seq := ev["auditID"].(string), annotations(ev)["ucp-audit/seq"].(string)
		if prev, dup := seen[id]; dup && prev != seq {
			t.Errorf("%s delivered twice with different seq %s and %s", id, prev, seq)
		}
		seen[id] = seq
	}
	for i, id := range ids {
		if seen[id] != fmt.Sprint(i+1) {
			t.Errorf("%s: seq %q, want %d", id, seen[id], i+1)
		}
	}
}

// A FIFO nobody writes any more (the container stopped while the plugin
// was down) is not re-attached, and does not hold the plugin up.
func TestReattachStaleFIFO(t *testing.T) {
	h := newHarness(t, nil)
	h.write("stdout", auditLine("x", "/v1.41/nodes"))
	h.d.crash()
	h.w.Close() // dockerd's end is gone
	hk := h.d.hooks
	hk.fifoOpenTimeout = 200 * time.Millisecond
	d2, err := newDriver(h.d.opts, hk)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _, err := pipeline.Load(d2.containerDir(h.id))
		if err != nil {
			t.Fatal(err)
		}
		if !st.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stale stream still marked running")
		}
		time.Sleep(10 * time.Millisecond)
	}
	d2.mu.Lock()
	defer d2.mu.Unlock()
	if len(d2.streams) != 0 {
		t.Fatal("a stale FIFO was re-attached")
	}
}

// A stream whose FIFO is gone when the plugin comes back (dockerd restarted
// while the plugin was down) is still finished: the lines the plugin had
// taken (in the store past the checkpoint, and in the journal) are handled,
// a frame cut short at the journal's end is recorded as lost input, and
// the stream is marked detached.
func TestReattachGoneFIFOFinishes(t *testing.T) {
	root := t.TempDir()
	o := Options{StateDir: filepath.Join(root, "state"), LogDir: filepath.Join(root, "log"), Host: "node-1", DrainTimeout: 10 * time.Second}
	id := strings.Repeat("cd", 32)
	dir := filepath.Join(o.StateDir, "containers", id)
	frame := func(auditID string) []byte {
		b, err := ingest.AppendFrame(nil, &logdriver.LogEntry{Source: "stdout", Line: []byte(auditLine(auditID, "/v1.41/nodes")), TimeNano: time.Now().UnixNano()})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	st, err := ingest.OpenStore(dir, config.DefaultStoreMaxSize, config.DefaultStoreMaxFile)
	if err != nil {
		t.Fatal(err)
	}
	safe := st.End()
	if err := st.Attach(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 3 {
		want = append(want, fmt.Sprintf("stored-%d", i))
		if err := st.Append(frame(want[i])); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Detach(); err != nil {
		t.Fatal(err)
	}
	var journaled []byte
	for i := range 2 {
		want = append(want, fmt.Sprintf("journaled-%d", i))
		journaled = append(journaled, frame(want[len(want)-1])...)
	}
	torn := frame("torn")
	journaled = append(journaled, torn[:len(torn)/2]...)
	if err := os.WriteFile(filepath.Join(dir, ingest.JournalFile), journaled, 0o600); err != nil {
		t.Fatal(err)
	}
	info := dockerlog.Info{ContainerID: id, ContainerName: "/ucp-controller", Config: map[string]string{}}
	if err := pipeline.Save(dir, pipeline.State{Info: info, Safe: safe, Done: safe, Running: true, FIFO: filepath.Join(root, "gone-fifo")}); err != nil {
		t.Fatal(err)
	}

	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	h := &harness{t: t, d: d, logDir: o.LogDir, id: id}
	h.waitFor("the stream to be finished", func() bool {
		st, _, err := pipeline.Load(dir)
		return err == nil && !st.Running
	})
	checkEvents(t, h, want...)
	self := h.file("self")
	if !hasSelf(self, auditlog.SelfStreamReattach) || !hasSelf(self, auditlog.SelfStreamDetached) {
		t.Errorf("self-audit events %v, want stream-reattached and stream-detached", self)
	}
	if q := h.file("quarantine.log"); len(q) != 1 {
		t.Errorf("quarantine.log has %d records, want 1 for the frame cut short: %v", len(q), q)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ingest.JournalFile)); err != nil || len(b) != 0 {
		t.Errorf("journal after the stream ended: %d bytes (%v), want empty", len(b), err)
	}
}

// The plugin's own lifecycle is in the audit trail: start, stream attached
// and detached (with counts), destination down and back, a rejected
// configuration, stop.
func TestSelfAudit(t *testing.T) {
	peer := newBeatsPeer(t)
	h := newHarness(t, map[string]string{"logstash-address": "beats://" + peer.addr})
	h.write("stdout", auditLine("a", "/v1.41/nodes"))
	deadline := time.Now().Add(20 * time.Second)
	for !hasSelf(h.file("self"), auditlog.SelfDestinationDown) {
		if time.Now().After(deadline) {
			t.Fatal("no destination-down event")
		}
		time.Sleep(20 * time.Millisecond)
	}
	peer.start()
	for !hasSelf(h.file("self"), auditlog.SelfDestinationBack) {
		if time.Now().After(deadline) {
			t.Fatal("no destination-back event")
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.stop()
	if err := h.d.StartLogging("/x", dockerlog.Info{ContainerID: "c9", Config: map[string]string{"audit-level": "loud"}}); err == nil {
		t.Fatal("bad option accepted")
	}
	h.d.Close()
	var types []string
	for _, r := range h.file("self") {
		ev := r["ucp-audit/self"].(map[string]any)
		types = append(types, ev["type"].(string))
		if ev["time"] == "" || ev["host"] != "node-1" {
			t.Errorf("self event without time or host: %v", ev)
		}
		switch ev["type"] {
		case auditlog.SelfStreamAttached, auditlog.SelfStreamDetached, auditlog.SelfDestinationDown, auditlog.SelfDestinationBack:
			if ev["container-id"] != h.id {
				t.Errorf("%v: wrong container", ev)
			}
		case auditlog.SelfConfigRejected:
			if !strings.Contains(ev["detail"].(string), `log-opt "audit-level"`) {
				t.Errorf("rejection without the reason: %v", ev)
			}
		}
	}
	want := []string{auditlog.SelfPluginStarted, auditlog.SelfStreamAttached, auditlog.SelfDestinationDown, auditlog.SelfDestinationBack, auditlog.SelfStreamDetached, auditlog.SelfConfigRejected, auditlog.SelfPluginStopped}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("self events %v\nwant %v", types, want)
	}
	if n := len(h.file("audit.log")); n != 1 {
		t.Fatalf("audit.log has %d audit events besides the self events", n)
	}
}

func hasSelf(recs []map[string]any, typ string) bool {
	for _, r := range recs {
		if r["ucp-audit/self"].(map[string]any)["type"] == typ {
			return true
		}
	}
	return false
}
