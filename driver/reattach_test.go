package driver

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/plugins/logdriver"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/driver/ingest"
	"github.com/ucp-audit/ucp-audit/driver/pipeline"
	"github.com/ucp-audit/ucp-audit/sink"
)

// Re-attaching after a crash: dockerd restarts the plugin but never calls
// StartLogging again, so the new process finds the streams that were
// running in the state directory and carries on with each.

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
	info := dockerlog.Info{ContainerID: id, ContainerName: "/ucp-controller", ContainerImageName: "docker/ucp-controller:3.8", Config: map[string]string{}}
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

// A crash while lines of both sources are pending, one of them superseded
// by a new one: the new process replays the store from the checkpoint and
// handles every line exactly once, with seq continuing.
func TestReattachMidPartialExactlyOnce(t *testing.T) {
	h := newHarness(t, nil)
	part := func(id, text string, ord int32, last bool) {
		e := &logdriver.LogEntry{Source: "stdout", Line: []byte(text), TimeNano: time.Now().UnixNano(), Partial: true,
			PartialLogMetadata: &logdriver.PartialLogEntryMetadata{Id: id, Ordinal: ord, Last: last}}
		if err := h.enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	a := auditLine("split-a", "/v1.41/nodes")
	b := auditLine("split-b", "/v1.41/nodes")
	part("a", a[:40], 1, false)
	h.write("stderr", auditLine("e1", "/v1.41/nodes"))
	part("b", b[:40], 1, false) // supersedes a: quarantined unfinished
	h.write("stderr", auditLine("e2", "/v1.41/nodes"))
	h.waitFor("e1, e2 and the quarantined line", func() bool {
		return len(h.file("audit.log")) == 2 && len(h.file("quarantine.log")) == 1
	})
	time.Sleep(100 * time.Millisecond) // the checkpoint after catching up
	h.d.crash()
	part("b", b[40:], 2, true)
	h.write("stderr", auditLine("e3", "/v1.41/nodes"))
	h.reattach()
	h.stop()
	checkEvents(t, h, "e1", "e2", "split-b", "e3")
	q := quarantineOf(t, h, 1)
	if q[0]["unfinished"] != true || !strings.Contains(q[0]["raw"].(string), "split-a") {
		t.Errorf("quarantine: %v", q[0])
	}
}

// A crash while an audit line past max-line-size is still pending: its
// start no longer pins the store, so the new process cannot replay it, but
// the line is still quarantined (head lost, said so), and nothing else is
// affected.
func TestReattachMidOverlongLine(t *testing.T) {
	h := newHarness(t, map[string]string{"max-line-size": "64k"})
	line := `{"audit":{"auditID":"overlong","Pad":"` + strings.Repeat("y", 200<<10) + `"}}`
	h.write("stdout", auditLine("before", "/v1.41/nodes"))
	h.writeSplit("stdout", line[:100<<10], "long", true)
	h.waitFor("the state to note the over-long line", func() bool {
		st, _, _ := pipeline.Load(h.d.containerDir(h.id))
		return len(st.Overlong) == 1 && st.Seq == 1
	})
	h.d.crash()
	rest := line[100<<10:]
	wrote := make(chan error, 1)
	go func() { // more than the pipe holds while the plugin is down
		e := &logdriver.LogEntry{Source: "stdout", Line: []byte(rest), TimeNano: time.Now().UnixNano(), Partial: true,
			PartialLogMetadata: &logdriver.PartialLogEntryMetadata{Id: "long", Ordinal: 8, Last: true}}
		err := h.enc.Encode(e)
		if err == nil {
			err = h.enc.Encode(&logdriver.LogEntry{Source: "stdout", Line: []byte(auditLine("after", "/v1.41/nodes")), TimeNano: time.Now().UnixNano()})
		}
		wrote <- err
	}()
	h.reattach()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	h.stop()
	checkEvents(t, h, "before", "after")
	q := quarantineOf(t, h, 1)[0]
	if !strings.Contains(q["reason"].(string), "restart") || q["size"] != float64(len(rest)) {
		t.Errorf("quarantine record: %v", abbreviate(q))
	}
}

// A new process re-attaching after a crash starts the reader before the
// pipeline has caught up (here: its first write is stalled). The store must
// not prune segments the pipeline has not read, whatever max-file says:
// every event written meanwhile arrives.
func TestReattachPinsUnreadSegments(t *testing.T) {
	h := newHarness(t, map[string]string{"max-size": "64k", "max-file": "2"})
	ids := writeEvents(h, "before", 100)
	h.waitFor("the first events", func() bool { return len(h.file("audit.log")) == 100 })
	time.Sleep(100 * time.Millisecond) // the checkpoint after catching up
	h.d.crash()

	gate := make(chan struct{})
	hk := h.d.hooks
	hk.wrapSink = func(s sink.Sink) sink.Sink { return &reattachGate{Sink: s, gate: gate} }
	d2, err := newDriver(h.d.opts, hk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Close() })
	h.d = d2
	ids = append(ids, writeEvents(h, "after", 2000)...) // about 1 MB: 16 segments of 64 KiB
	close(gate)
	h.stop()
	checkEvents(t, h, ids...)
}

// reattachGate holds the stream-reattached self-audit event, the pipeline's
// first write after a re-attach, until gate is closed.
type reattachGate struct {
	sink.Sink
	gate chan struct{}
}

func (g *reattachGate) Write(p []byte) error {
	if bytes.Contains(p, []byte(auditlog.SelfStreamReattach)) {
		<-g.gate
	}
	return g.Sink.Write(p)
}

// A kill -9 between the reader's read of the FIFO (which consumes the
// bytes) and the store's write: the journal has them, and the new process
// takes them first. Simulated by writing the journal as the killed process
// left it: the last entries of its read, one of them cut in the middle and
// continued in the FIFO.
func TestReattachTakesTheJournal(t *testing.T) {
	h := newHarness(t, nil)
	ids := writeEvents(h, "before", 10)
	h.waitFor("the first events", func() bool { return len(h.file("audit.log")) == 10 })
	h.d.crash()
	var taken bytes.Buffer
	enc := logdriver.NewLogEntryEncoder(&taken)
	for i := range 5 {
		id := fmt.Sprintf("taken-%d", i)
		ids = append(ids, id)
		enc.Encode(&logdriver.LogEntry{Source: "stdout", Line: []byte(auditLine(id, "/v1.41/nodes")), TimeNano: time.Now().UnixNano()})
	}
	ids = append(ids, "cut")
	var cut bytes.Buffer
	logdriver.NewLogEntryEncoder(&cut).Encode(&logdriver.LogEntry{Source: "stdout", Line: []byte(auditLine("cut", "/v1.41/nodes")), TimeNano: time.Now().UnixNano()})
	taken.Write(cut.Bytes()[:100])
	if err := os.WriteFile(filepath.Join(h.d.containerDir(h.id), ingest.JournalFile), taken.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.w.Write(cut.Bytes()[100:]); err != nil { // the rest is still in the pipe
		t.Fatal(err)
	}
	h.reattach()
	ids = append(ids, writeEvents(h, "after", 5)...)
	h.stop()
	checkEvents(t, h, ids...)
	quarantineOf(t, h, 0)
	if fi, err := os.Stat(filepath.Join(h.d.containerDir(h.id), ingest.JournalFile)); err != nil || fi.Size() != 0 {
		t.Errorf("journal after the stream ended: %v, %v", fi, err)
	}
}

// A kill -9 after the store's write and before the journal was cut back:
// the journal's first entries are in the store too. The new process skips
// them, so they are not stored (and handled) twice.
func TestReattachSkipsStoredJournal(t *testing.T) {
	h := newHarness(t, nil)
	ids := writeEvents(h, "before", 10)
	h.waitFor("the first events", func() bool { return len(h.file("audit.log")) == 10 })
	h.d.crash()
	dir := h.d.containerDir(h.id)
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+ingest.SegSuffix))
	if len(segs) == 0 {
		t.Fatal("no store segment")
	}
	f, err := os.Open(segs[len(segs)-1])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var frames [][]byte
	for fr := ingest.NewFrameReader(f, 64<<10); ; {
		b, err := fr.Next()
		if err != nil {
			break
		}
		frames = append(frames, bytes.Clone(b))
	}
	if len(frames) < 3 {
		t.Fatalf("%d frames in the store", len(frames))
	}
	var journaled bytes.Buffer
	for _, b := range frames[len(frames)-3:] {
		journaled.Write(b)
	}
	enc := logdriver.NewLogEntryEncoder(&journaled)
	for i := range 2 {
		id := fmt.Sprintf("taken-%d", i)
		ids = append(ids, id)
		enc.Encode(&logdriver.LogEntry{Source: "stdout", Line: []byte(auditLine(id, "/v1.41/nodes")), TimeNano: time.Now().UnixNano()})
	}
	if err := os.WriteFile(filepath.Join(dir, ingest.JournalFile), journaled.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	h.reattach()
	ids = append(ids, writeEvents(h, "after", 5)...)
	h.stop()
	checkEvents(t, h, ids...)
	if got := strings.Count(strings.Join(dockerLogs(t, h), ""), "\n"); got != len(ids) {
		t.Errorf("docker logs shows %d lines, want %d (each once)", got, len(ids))
	}
}
