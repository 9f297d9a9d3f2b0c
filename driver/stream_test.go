package driver

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/plugins/logdriver"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/sink"
)

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

// The env and labels options: the events carry what they select, a secret
// variable redacted; the container's environment is never stored (the
// state keeps only the selected annotations), and a stream resumed after
// a crash goes on with them.
func TestLabelsAndEnvAnnotations(t *testing.T) {
	h := newHarness(t, nil)
	h.stop()
	h.env = []string{"MODE=prod", "DB_PASSWORD=hunter2", "OTHER_SECRET_TOKEN=zzz"}
	h.labels = map[string]string{"tier": "front"}
	h.start(map[string]string{"env": "MODE,DB_PASSWORD", "labels": "tier"})
	writeEvents(h, "a", 1)
	h.waitFor("1 event", func() bool { return len(h.file("audit.log")) == 1 })
	h.d.crash()
	h.reattach()
	writeEvents(h, "b", 1)
	h.waitFor("2 events", func() bool { return len(h.file("audit.log")) == 2 })
	h.stop()
	for _, ev := range h.file("audit.log") {
		a := annotations(ev)
		if a["ucp-audit/env/MODE"] != "prod" || a["ucp-audit/env/DB_PASSWORD"] != "<redacted>" || a["ucp-audit/label/tier"] != "front" {
			t.Errorf("%v: annotations %v", ev["auditID"], a)
		}
	}
	err := filepath.WalkDir(h.d.opts.StateDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte("hunter2")) || bytes.Contains(b, []byte("zzz")) {
			t.Errorf("%s holds a secret of the container's environment", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
