package driver

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/plugins/logdriver"
)

// Hostile frames on the FIFO: a corrupt length, a body that does not
// decode. The stream goes on, and what was skipped is on record.

// A corrupt frame length on the FIFO (0xFFFFFFFF): the stream is out of
// step. Nothing is allocated for it; the reader skips to the next
// plausible frame, records the skipped bytes (a quarantine record saying
// the stream was out of step, and the plugin log) and goes on, so the
// container never blocks and every event around the garbage is delivered.
func TestHostileCorruptFrameLength(t *testing.T) {
	h := newHarness(t, nil)
	h.write("stdout", auditLine("before-1", "/v1.41/nodes"))
	h.write("stdout", auditLine("before-2", "/v1.41/nodes"))
	deadline := time.Now().Add(10 * time.Second)
	for len(h.file("audit.log")) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	heap := heapWatch()
	if _, err := h.w.Write([]byte{0xFF, 0xFF, 0xFF, 0xFF, 'g', 'a', 'r', 'b'}); err != nil {
		t.Fatal(err)
	}
	// The container goes on writing, far past a pipe buffer.
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for i := range 4000 {
			e := &logdriver.LogEntry{Source: "stdout", Line: []byte(auditLine(fmt.Sprintf("after-%d", i), "/v1.41/nodes")), TimeNano: time.Now().UnixNano()}
			if h.enc.Encode(e) != nil {
				return
			}
		}
	}()
	select {
	case <-wrote:
	case <-time.After(20 * time.Second):
		// Unblock the writer (the test holds the FIFO read-write) so the
		// test can end.
		go io.Copy(io.Discard, h.w)
		<-wrote
		t.Error("the container's writes blocked after a corrupt frame length")
	}
	if peak := heap(); peak > 64<<20 {
		t.Errorf("heap grew by %d MiB after a corrupt frame length", peak>>20)
	}
	start := time.Now()
	h.stop()
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("StopLogging took %v", el)
	}
	want := []string{"before-1", "before-2"}
	for i := range 4000 {
		want = append(want, fmt.Sprintf("after-%d", i))
	}
	checkEvents(t, h, want...)
	q := h.file("quarantine.log")
	if len(q) != 1 || !strings.Contains(q[0]["reason"].(string), "8 bytes") || !strings.Contains(q[0]["reason"].(string), "out of step") {
		t.Errorf("quarantine.log: %v", q)
	}
	logs := dockerLogs(t, h)
	if !hasLine(logs, auditLine("before-2", "/v1.41/nodes")) {
		t.Error("docker logs lost the lines before the corruption")
	}
}

// A frame whose length is plausible but whose body does not decode is
// skipped by the pipeline and by docker logs; the stream goes on.
func TestHostileUndecodableFrame(t *testing.T) {
	h := newHarness(t, nil)
	h.write("stdout", auditLine("before", "/v1.41/nodes"))
	body := []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01} // a varint that never ends
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := h.w.Write(append(frame, body...)); err != nil {
		t.Fatal(err)
	}
	h.write("stdout", auditLine("after", "/v1.41/nodes"))
	h.stop()
	checkEvents(t, h, "before", "after")
	if logs := dockerLogs(t, h); !hasLine(logs, auditLine("after", "/v1.41/nodes")) {
		t.Error("docker logs stopped at the undecodable frame")
	}
}
