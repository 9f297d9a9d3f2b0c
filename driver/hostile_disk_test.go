package driver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/driver/ingest"
	"github.com/ucp-audit/ucp-audit/driver/pipeline"
	"github.com/ucp-audit/ucp-audit/seglog"
	"github.com/ucp-audit/ucp-audit/sink"
)

// Failing disks: under the output files, the state directory, the
// docker-logs store. The container never blocks, and once the disk works
// again every event is there once.

// failSink fails every Write and Sync while fail is set, with ENOSPC: a
// full disk under the output directory.
type failSink struct {
	sink.Sink
	fail     *atomic.Bool
	failures *atomic.Int64
}

func (f *failSink) Write(p []byte) error {
	if f.fail.Load() {
		f.failures.Add(1)
		return fmt.Errorf("write audit file: %w", syscall.ENOSPC)
	}
	return f.Sink.Write(p)
}

func (f *failSink) Sync() error {
	if f.fail.Load() {
		f.failures.Add(1)
		return fmt.Errorf("sync audit file: %w", syscall.ENOSPC)
	}
	return f.Sink.Sync()
}

// A full disk under the output directory: the sinks fail. The
// container does not block (the FIFO is drained into the store), the
// pipeline retries, and once the disk has room every event arrives, in
// order, numbered without a gap or a repeat, and the quarantine too.
func TestHostileOutputDiskFull(t *testing.T) {
	var fail atomic.Bool
	var failures atomic.Int64
	fail.Store(true)
	h := newHarnessWith(t, func(o *Options, hk *hooks) {
		o.DrainTimeout = 60 * time.Second
		hk.wrapSink = func(s sink.Sink) sink.Sink { return &failSink{Sink: s, fail: &fail, failures: &failures} }
	}, nil)

	const n = 4000 // about 2 MB: 30 pipe buffers
	var want []string
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for i := range n {
			if i == n/2 {
				h.write("stdout", `{"audit":{"auditID":"broken"`)
			}
			h.write("stdout", auditLine(fmt.Sprintf("id-%d", i), "/v1.41/containers/json"))
		}
	}()
	for i := range n {
		want = append(want, fmt.Sprintf("id-%d", i))
	}
	select {
	case <-wrote:
	case <-time.After(20 * time.Second):
		fail.Store(false)
		t.Fatal("the container's writes blocked while the output disk was full")
	}
	deadline := time.Now().Add(5 * time.Second)
	for failures.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if failures.Load() < 2 {
		t.Fatal("the sink was never tried")
	}
	// /healthz says so while it lasts.
	if err := h.d.Healthy(); err == nil || !strings.Contains(err.Error(), "fail to write") {
		t.Errorf("Healthy while the output disk is full = %v", err)
	}
	fail.Store(false) // room again
	h.stop()
	checkEvents(t, h, want...)
	if err := h.d.Healthy(); err != nil {
		t.Errorf("Healthy once the disk has room = %v", err)
	}
	// The trail says it failed, once the disk takes it.
	h.waitFor("the sink-failing record", func() bool { return len(selfOf(h, "audit.log", auditlog.SelfSinkFailing)) == 1 })
	q := quarantineOf(t, h, 1)
	if q[0]["raw"] != `{"audit":{"auditID":"broken"` {
		t.Errorf("quarantine: %v", q[0])
	}
	if logs := dockerLogs(t, h); len(logs) < n+1 {
		t.Errorf("docker logs has %d lines", len(logs))
	}
}

// The state directory fails for the checkpoint (state.json cannot be
// written: simulated by a directory where its temporary file goes, which
// fails even for root). The container does not block, events are still
// written, and once the state directory works again the checkpoint is
// taken and every event is there once.
func TestHostileStateDirFails(t *testing.T) {
	h := newHarness(t, nil)
	h.write("stdout", auditLine("before", "/v1.41/nodes"))
	deadline := time.Now().Add(10 * time.Second)
	for len(h.file("audit.log")) < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	tmp := filepath.Join(h.d.containerDir(h.id), pipeline.StateFile+".tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	want := []string{"before"}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for i := range n {
			h.write("stdout", auditLine(fmt.Sprintf("id-%d", i), "/v1.41/nodes"))
		}
	}()
	for i := range n {
		want = append(want, fmt.Sprintf("id-%d", i))
	}
	select {
	case <-wrote:
	case <-time.After(20 * time.Second):
		os.RemoveAll(tmp)
		t.Fatal("the container's writes blocked while the state directory failed")
	}
	time.Sleep(300 * time.Millisecond) // a checkpoint or two fail
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	h.stop()
	checkEvents(t, h, want...)
	st, _, err := pipeline.Load(h.d.containerDir(h.id))
	if err != nil || st.Running || st.Seq != n+1 {
		t.Errorf("state after recovery: %+v, %v", st, err)
	}
}

// The docker-logs store cannot start a new segment (simulated by a
// directory where the next segment goes). The container does not block;
// the frames that cannot be stored are lost and said so in the plugin log.
// Once a segment can be made again, the store resumes: later events reach
// audit.log, numbered on from the earlier ones, and docker logs has them.
func TestHostileStoreRotationFails(t *testing.T) {
	h := newHarness(t, map[string]string{"max-size": "64k", "max-file": "100"})
	h.write("stdout", auditLine("before", "/v1.41/nodes"))
	next := h.d.containerDir(h.id) + "/" + seglog.Name(2, ingest.SegSuffix)
	if err := os.Mkdir(next, 0o700); err != nil {
		t.Fatal(err)
	}
	// Fill the first segment and go past it: the rotation fails.
	for i := range 200 {
		h.write("stdout", fmt.Sprintf("filler %d %s", i, strings.Repeat("f", 1000)))
	}
	time.Sleep(200 * time.Millisecond)
	if err := os.Remove(next); err != nil {
		t.Fatal(err)
	}
	h.write("stdout", auditLine("after", "/v1.41/nodes"))
	h.stop()
	checkEvents(t, h, "before", "after")
	if !hasLine(dockerLogs(t, h), auditLine("after", "/v1.41/nodes")) {
		t.Error("docker logs lost the line after the store recovered")
	}
	// The loss is on record, in quarantine.log and as a self-audit event.
	q := h.file("quarantine.log")
	if len(q) == 0 || !strings.Contains(q[0]["reason"].(string), "docker-logs store") {
		t.Errorf("quarantine.log does not record the lost lines: %v", q)
	}
	lost := false
	for _, ev := range h.file("self") {
		if ev["ucp-audit/self"].(map[string]any)["type"] == auditlog.SelfInputLost {
			lost = true
		}
	}
	if !lost {
		t.Error("no input-lost self-audit event")
	}
}
