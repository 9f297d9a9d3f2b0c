package driver

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/plugins/logdriver"

	"github.com/ucp-audit/ucp-audit/driver/pipeline"
)

// Stopping inside a stream: the plugin shut down while the container goes
// on (suspend), and a stream that ends inside a log entry.

// The plugin stopped while its container goes on (`docker plugin disable
// -f`, an upgrade): the stream is suspended, not ended. Everything dockerd
// wrote is handled, a line in the middle of its partial chunks is not cut
// into an "unfinished" one, and when the plugin starts again it re-attaches
// and carries on: every event once, seq without a gap.
func TestShutdownSuspendsRunningStreams(t *testing.T) {
	h := newHarness(t, nil)
	ids := writeEvents(h, "before", 50)
	split := bigAuditLine("split", 30<<10)
	part := func(text string, ord int32, last bool) {
		e := &logdriver.LogEntry{Source: "stdout", Line: []byte(text), TimeNano: time.Now().UnixNano(), Partial: true,
			PartialLogMetadata: &logdriver.PartialLogEntryMetadata{Id: "p", Ordinal: ord, Last: last}}
		if err := h.enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	part(split[:16<<10], 1, false)
	shutdownAndBack(t, h, ids, func() []string {
		st, _, err := pipeline.Load(h.d.containerDir(h.id))
		if err != nil || !st.Running || st.Seq != 50 {
			t.Fatalf("state after the shutdown: running %v, seq %d (%v); want running, 50", st.Running, st.Seq, err)
		}
		part(split[16<<10:], 2, true)
		return []string{"split"}
	})
}

// shutdownAndBack stops the plugin (SIGTERM) while the container goes on,
// lets down write while it is off (down returns the ids it completes),
// writes 10 more events, re-attaches, writes 10 and ends the stream; then
// every event must be in audit.log once, in order, and none quarantined.
func shutdownAndBack(t *testing.T, h *harness, ids []string, down func() []string) {
	t.Helper()
	if err := h.d.Close(); err != nil { // SIGTERM: takes what the FIFO holds first
		t.Fatal(err)
	}
	ids = append(ids, down()...)
	ids = append(ids, writeEvents(h, "down", 10)...)
	h.reattach()
	ids = append(ids, writeEvents(h, "after", 10)...)
	h.stop()
	checkEvents(t, h, ids...)
	quarantineOf(t, h, 0)
}

// The plugin stops while dockerd has written only the head of a log entry
// (disable -f or an upgrade in the middle of a write): the head stays in
// the journal, and the next process completes the entry with the rest from
// the FIFO. Nothing is lost or quarantined.
func TestShutdownKeepsEntryCutShort(t *testing.T) {
	h := newHarness(t, nil)
	ids := writeEvents(h, "before", 50)
	var cut bytes.Buffer
	logdriver.NewLogEntryEncoder(&cut).Encode(&logdriver.LogEntry{Source: "stdout", Line: []byte(auditLine("cut", "/v1.41/nodes")), TimeNano: time.Now().UnixNano()})
	h.waitFor("the first events", func() bool { return len(h.file("audit.log")) == 50 })
	if _, err := h.w.Write(cut.Bytes()[:100]); err != nil {
		t.Fatal(err)
	}
	shutdownAndBack(t, h, ids, func() []string {
		if _, err := h.w.Write(cut.Bytes()[100:]); err != nil {
			t.Fatal(err)
		}
		return []string{"cut"}
	})
}

// The stream ends (StopLogging) after dockerd wrote only the head of a log
// entry: nothing will complete it, so it is recorded as lost input with
// its size.
func TestStopInsideEntryRecordsLoss(t *testing.T) {
	h := newHarness(t, nil)
	ids := writeEvents(h, "before", 5)
	h.waitFor("the first events", func() bool { return len(h.file("audit.log")) == 5 })
	if _, err := h.w.Write([]byte{0, 0, 2, 0, 0x0a, 6, 's', 't', 'd', 'o', 'u', 't'}); err != nil {
		t.Fatal(err)
	}
	h.stop()
	checkEvents(t, h, ids...)
	q := quarantineOf(t, h, 1)
	if r, _ := q[0]["reason"].(string); !strings.Contains(r, "12 bytes") || !strings.Contains(r, "ended inside a log entry") {
		t.Errorf("quarantine record: %v", abbreviate(q[0]))
	}
}
