package driver

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/driver/ingest"
	"github.com/ucp-audit/ucp-audit/driver/pipeline"
	"github.com/ucp-audit/ucp-audit/sink"
)

// Hostile input (issue 4, item 6). Every case checks that the events
// written around the hostile input still reach audit.log with contiguous
// seq, and that docker logs still serves the lines.

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

// 1. A 1 MiB audit line is under the default max-line-size (4 MiB) and is
// forwarded whole. A 5 MiB one is quarantined: raw holds its first 4 MiB,
// size its real length, truncated is true. docker logs has both whole.
func TestHostileLongLines(t *testing.T) {
	h := newHarness(t, nil)
	mib1 := bigAuditLine("id-1mib", 1<<20)
	mib5 := bigAuditLine("id-5mib", 5<<20)
	h.write("stdout", auditLine("before", "/v1.41/nodes"))
	h.writeSplit("stdout", mib1, "p1", false)
	h.writeSplit("stdout", mib5, "p5", false)
	h.write("stdout", auditLine("after", "/v1.41/nodes"))
	h.stop()

	events := checkEvents(t, h, "before", "id-1mib", "after")
	if pad := events[1]["requestObject"].(map[string]any)["Pad"].(string); len(pad) != 1<<20 {
		t.Errorf("1 MiB event payload is %d bytes", len(pad))
	}
	q := quarantineOf(t, h, 1)[0]
	raw, _ := q["raw"].(string)
	if q["truncated"] != true || q["size"] != float64(len(mib5)) || len(raw) != 4<<20 || raw != mib5[:4<<20] ||
		!strings.Contains(q["reason"].(string), "max-line-size") {
		t.Errorf("quarantine record: %v", abbreviate(q))
	}
	logs := dockerLogs(t, h)
	if !hasLine(logs, mib1) || !hasLine(logs, mib5) || !hasLine(logs, auditLine("after", "/v1.41/nodes")) {
		t.Error("docker logs lacks a long line")
	}
}

// 2. 100 MB without a newline: dockerd sends 16 KiB partial chunks with one
// id and never a last one, until the container ends. The pipeline keeps at
// most max-line-size of it in memory; at the end the line is flushed as
// unfinished and, as its start looks like audit, quarantined with
// unfinished and truncated set and its real size. A line of the same kind
// that does not look like audit is only in docker logs.
func TestHostileEndlessLine(t *testing.T) {
	total := 100 << 20
	if testing.Short() {
		total = 40 << 20
	}
	h := newHarness(t, nil)
	h.write("stdout", auditLine("before", "/v1.41/nodes"))
	h.write("stderr", "plain stderr line")
	stop := heapWatch()
	head := `{"audit":{"auditID":"endless","level":"request","requestObject":{"Pad":"`
	chunk := bytes.Repeat([]byte("y"), 16<<10)
	enc := func(src, id string, ord int, b []byte) {
		e := &logdriver.LogEntry{Source: src, Line: b, TimeNano: time.Now().UnixNano(), Partial: true,
			PartialLogMetadata: &logdriver.PartialLogEntryMetadata{Id: id, Ordinal: int32(ord)}}
		if err := h.enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	enc("stdout", "endless", 1, []byte(head))
	written := len(head)
	for ord := 2; written < total; ord++ {
		enc("stdout", "endless", ord, chunk)
		written += len(chunk)
		if ord == 1000 {
			// While the line goes on, the other source still works.
			h.write("stderr", auditLine("during", "/v1.41/nodes"))
		}
	}
	h.stop()
	peak := stop()
	t.Logf("wrote %d MB of one unfinished line; heap peak %d MiB above baseline", written>>20, peak>>20)
	if peak > 64<<20 {
		t.Errorf("heap grew by %d MiB while one endless line was written", peak>>20)
	}
	checkEvents(t, h, "before", "during")
	q := quarantineOf(t, h, 1)[0]
	if q["unfinished"] != true || q["truncated"] != true || q["size"] != float64(written) ||
		len(q["raw"].(string)) != 4<<20 || !strings.HasPrefix(q["raw"].(string), head) {
		t.Errorf("quarantine record: %v", abbreviate(q))
	}
	var du int64
	filepath.Walk(h.d.containerDir(h.id), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			du += fi.Size()
		}
		return nil
	})
	t.Logf("docker-logs store after the endless line: %d MB (max-size 20m × max-file 5)", du>>20)

	// The container runs again: numbering continues, docker logs has all.
	h.start(nil)
	h.write("stdout", auditLine("next-run", "/v1.41/nodes"))
	h.writeSplit("stdout", strings.Repeat("z", 40<<10), "p2", true) // not audit: only docker logs
	h.stop()
	checkEvents(t, h, "before", "during", "next-run")
	quarantineOf(t, h, 1)
	logs := dockerLogs(t, h)
	// The first segments ("before", "during") are rotated out by max-file
	// as usual once the line has ended.
	// (docker logs prints the unfinished line without a newline, as
	// json-file does, so the next line follows it directly.)
	if !strings.Contains(strings.Join(logs, ""), auditLine("next-run", "/v1.41/nodes")+"\n") {
		t.Error("docker logs lacks lines")
	}
}

// With a small store, the endless line must not pin every segment: the
// docker-logs store keeps to about max-size × max-file on disk however long
// a line without a newline goes on.
func TestHostileEndlessLineStoreBounded(t *testing.T) {
	h := newHarness(t, map[string]string{"max-size": "1m", "max-file": "2", "max-line-size": "64k"})
	h.write("stdout", auditLine("before", "/v1.41/nodes"))
	line := `{"audit":{"auditID":"endless","Pad":"` + strings.Repeat("y", 40<<20)
	h.writeSplit("stdout", line[:20<<20], "endless", true)
	h.write("stderr", auditLine("during", "/v1.41/nodes"))
	h.writeSplit("stdout", line[20<<20:], "endless", true)
	time.Sleep(200 * time.Millisecond)
	var du int64
	filepath.Walk(h.d.containerDir(h.id), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			du += fi.Size()
		}
		return nil
	})
	h.stop()
	if du > 4<<20 {
		t.Errorf("store holds %d MB for max-size 1m × max-file 2", du>>20)
	}
	checkEvents(t, h, "before", "during")
	quarantineOf(t, h, 1)
}

// A line left unfinished on one source must be handled even when the
// entry just before the end (or before the entry that supersedes it) is a
// complete line of the other source: here the unfinished stdout line is
// audit and must be quarantined (unfinished), in both places.
func TestHostileUnfinishedLineThenOtherSource(t *testing.T) {
	h := newHarness(t, nil)
	frag := func(id, text string) {
		e := &logdriver.LogEntry{Source: "stdout", Line: []byte(text), TimeNano: time.Now().UnixNano(), Partial: true,
			PartialLogMetadata: &logdriver.PartialLogEntryMetadata{Id: id, Ordinal: 1}}
		if err := h.enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	h.write("stdout", auditLine("before", "/v1.41/nodes"))
	frag("a", `{"audit":{"auditID":"cut-1",`)
	h.write("stderr", auditLine("middle", "/v1.41/nodes"))
	frag("b", `{"audit":{"auditID":"cut-2",`) // supersedes a
	h.write("stderr", auditLine("last", "/v1.41/nodes"))
	h.stop() // ends b
	checkEvents(t, h, "before", "middle", "last")
	q := quarantineOf(t, h, 2)
	for i, r := range q {
		if r["unfinished"] != true || !strings.Contains(r["raw"].(string), fmt.Sprintf("cut-%d", i+1)) {
			t.Errorf("record %d: %v", i, r)
		}
	}
}

// 3. Invalid UTF-8 in an audit line: quarantined (audit.Parse refuses it),
// the raw bytes kept exactly in raw-base64. Nothing is repaired silently:
// audit.log never holds a U+FFFD the container did not write. docker logs
// still has the line as written.
func TestHostileInvalidUTF8(t *testing.T) {
	h := newHarness(t, nil)
	bad := strings.Replace(auditLine("bad-utf8", "/v1.41/nodes"), `"uid":"u1"`, `"uid":"u`+"\xff\xfe"+`"`, 1)
	h.write("stdout", auditLine("before", "/v1.41/nodes"))
	h.write("stdout", bad)
	bigBad := strings.Replace(bigAuditLine("big-bad", 40<<10), `"svc"`, `"sv`+"\xc3"+`c"`, 1)
	h.writeSplit("stdout", bigBad, "p1", false) // split over chunks too
	h.write("stdout", "not audit \xff either")
	h.write("stdout", auditLine("after", "/v1.41/nodes"))
	h.stop()
	checkEvents(t, h, "before", "after")
	q := quarantineOf(t, h, 2)
	for i, want := range []string{bad, bigBad} {
		got, err := base64.StdEncoding.DecodeString(q[i]["raw-base64"].(string))
		if err != nil || string(got) != want || q[i]["raw"] != nil || !strings.Contains(q[i]["reason"].(string), "UTF-8") {
			t.Errorf("record %d: %v", i, abbreviate(q[i]))
		}
	}
	logs := dockerLogs(t, h)
	if !hasLine(logs, bad) || !hasLine(logs, "not audit \xff either") {
		t.Error("docker logs altered or lost an invalid UTF-8 line")
	}
}

// 4. 10,000 levels of nesting in requestObject: encoding/json refuses
// nesting over 10,000 levels, so the line is quarantined with that reason;
// no crash and no stall. Just under the limit the event is forwarded.
func TestHostileDeepNesting(t *testing.T) {
	h := newHarness(t, nil)
	deep := func(id string, depth int) string {
		return strings.Replace(bigAuditLine(id, 0), `{"Name":"svc","Pad":""}`,
			strings.Repeat(`{"a":`, depth)+`{"password":"leak"}`+strings.Repeat(`}`, depth), 1)
	}
	tooDeep, deepest := deep("too-deep", 10000), deep("deepest", 9997)
	h.write("stdout", auditLine("before", "/v1.41/nodes"))
	h.writeSplit("stdout", tooDeep, "p1", false)
	h.writeSplit("stdout", deepest, "p2", false)
	h.write("stdout", auditLine("after", "/v1.41/nodes"))
	h.stop()
	events := checkEvents(t, h, "before", "deepest", "after")
	if a := annotations(events[1])["ucp-audit/redacted"]; !strings.HasSuffix(fmt.Sprint(a), ".a.password") {
		t.Errorf("redacted: %.100v", a)
	}
	q := quarantineOf(t, h, 1)[0]
	if !strings.Contains(q["reason"].(string), "exceeded max depth") || q["raw"] != tooDeep {
		t.Errorf("quarantine: %v", abbreviate(q))
	}
	logs := dockerLogs(t, h)
	if !hasLine(logs, tooDeep) || !hasLine(logs, deepest) {
		t.Error("docker logs lacks the nested lines")
	}
	// quarantine.log holds the refused line raw, secret included (by
	// design: raw is the whole line); audit.log must not.
	if b, _ := os.ReadFile(filepath.Join(h.logDir, "audit.log")); bytes.Contains(b, []byte("leak")) {
		t.Error("audit.log holds the nested secret")
	}
}

// 5. Duplicate keys: the last value wins (as in encoding/json) and the
// forwarded event is re-encoded from what was validated, so an earlier
// auditID, requestObject or password never reaches audit.log. docker logs
// keeps the line as written.
func TestHostileDuplicateKeys(t *testing.T) {
	h := newHarness(t, nil)
	dup := `{"audit":{"auditID":"first","auditID":"second","level":"request","requestObject":{"password":"leak1"},` +
		`"requestObject":{"Name":"svc","password":"leak2","password":"<redacted>"},"requestReceivedTimestamp":"2024-03-02T10:04:05Z",` +
		`"requestURI":"/v1.41/services/create","stage":"RequestReceived","user":{"username":"u1"},"verb":"POST"},"level":"info","msg":"audit"}`
	h.write("stdout", auditLine("before", "/v1.41/nodes"))
	h.write("stdout", dup)
	h.write("stdout", auditLine("after", "/v1.41/nodes"))
	h.stop()
	events := checkEvents(t, h, "before", "second", "after")
	if ro := fmt.Sprint(events[1]["requestObject"]); ro != "map[Name:svc password:<redacted>]" {
		t.Errorf("requestObject %s", ro)
	}
	b, _ := os.ReadFile(filepath.Join(h.logDir, "audit.log"))
	for _, bad := range []string{"first", "leak1", "leak2"} {
		if bytes.Contains(b, []byte(bad)) {
			t.Errorf("audit.log holds the earlier value %q", bad)
		}
	}
	quarantineOf(t, h, 0)
	if !hasLine(dockerLogs(t, h), dup) {
		t.Error("docker logs lacks the line")
	}
}

// 6. 10,000 partial-line ids never finished, interleaved on stdout and
// stderr. The reassembler holds one pending line per source: a chunk with
// a new id ends the pending one as unfinished, so memory stays bounded.
// Each unfinished fragment that looks like audit is quarantined (unfinished,
// reason "not JSON"); the others are only in docker logs.
func TestHostileManyUnfinishedPartials(t *testing.T) {
	h := newHarness(t, nil)
	h.write("stdout", auditLine("before", "/v1.41/nodes"))
	stop := heapWatch()
	const n = 10000
	wantQ := 0
	for i := range n {
		src := [2]string{"stdout", "stderr"}[i%2]
		frag := fmt.Sprintf("plain fragment %d ", i)
		if i%4 < 2 {
			frag = fmt.Sprintf(`{"audit":{"auditID":"frag-%d","verb":"GET",`, i)
			wantQ++
		}
		e := &logdriver.LogEntry{Source: src, Line: []byte(frag), TimeNano: time.Now().UnixNano(), Partial: true,
			PartialLogMetadata: &logdriver.PartialLogEntryMetadata{Id: fmt.Sprintf("id-%d", i), Ordinal: 1}}
		if err := h.enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	h.write("stdout", auditLine("after", "/v1.41/nodes"))
	h.stop()
	peak := stop()
	t.Logf("heap peak %d KiB above baseline", peak>>10)
	if peak > 64<<20 {
		t.Errorf("heap grew by %d MiB for %d unfinished partial lines", peak>>20, n)
	}
	h.d.mu.Lock()
	if len(h.d.streams) != 0 {
		t.Errorf("%d streams left", len(h.d.streams))
	}
	h.d.mu.Unlock()
	checkEvents(t, h, "before", "after")
	q := quarantineOf(t, h, wantQ)
	for i, r := range q {
		j := i/2*4 + i%2 // fragments 0, 1, 4, 5, 8, 9 …
		if r["unfinished"] != true || r["raw"] != fmt.Sprintf(`{"audit":{"auditID":"frag-%d","verb":"GET",`, j) ||
			!strings.Contains(r["reason"].(string), "not JSON") {
			t.Fatalf("record %d: %v", i, r)
		}
	}
	// docker logs prints unfinished chunks without a newline, as json-file
	// does: the fragments run together.
	logs := strings.Join(dockerLogs(t, h), "")
	if !strings.Contains(logs, "plain fragment 3 ") || !strings.Contains(logs, `{"audit":{"auditID":"frag-9997","verb":"GET",`) ||
		!strings.HasSuffix(logs, auditLine("after", "/v1.41/nodes")+"\n") {
		t.Error("docker logs lacks fragments")
	}
}

// 7. A corrupt frame length on the FIFO (0xFFFFFFFF): the stream is out of
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

// 8a. A full disk under the output directory: the sinks fail. The
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
	fail.Store(false) // room again
	h.stop()
	checkEvents(t, h, want...)
	q := quarantineOf(t, h, 1)
	if q[0]["raw"] != `{"audit":{"auditID":"broken"` {
		t.Errorf("quarantine: %v", q[0])
	}
	if logs := dockerLogs(t, h); len(logs) < n+1 {
		t.Errorf("docker logs has %d lines", len(logs))
	}
}

// 8b. The state directory fails for the checkpoint (state.json cannot be
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

// 8c. The docker-logs store cannot start a new segment (simulated by a
// directory where the next segment goes). The container does not block;
// the frames that cannot be stored are lost and said so in the plugin log.
// Once a segment can be made again, the store resumes: later events reach
// audit.log, numbered on from the earlier ones, and docker logs has them.
func TestHostileStoreRotationFails(t *testing.T) {
	h := newHarness(t, map[string]string{"max-size": "64k", "max-file": "100"})
	h.write("stdout", auditLine("before", "/v1.41/nodes"))
	next := h.d.containerDir(h.id) + "/" + fmt.Sprintf("%020d%s", 2, ingest.SegSuffix)
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

// syncBuffer is a bytes.Buffer safe for the driver's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The plugin's own log never carries payloads, license keys or secrets:
// not for forwarded events, not for quarantined ones (whose reasons can
// quote a value), not for lines that are not audit, and not for lost input.
func TestPluginLogHasNoPayloads(t *testing.T) {
	var logs syncBuffer
	h := newHarnessWith(t, func(o *Options, _ *hooks) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}, map[string]string{"max-line-size": "64k"})
	const secret = "S3CR3T-hunter2"
	h.write("stdout", strings.Replace(auditLine("ok", "/v1.41/nodes"), `"licenseKey":["k"]`, `"licenseKey":["`+secret+`"]`, 1))
	h.write("stdout", strings.Replace(bigAuditLine("req", 10), `"Name":"svc"`, `"password":"`+secret+`"`, 1))
	h.write("stdout", strings.Replace(auditLine("bad", "/v1.41/nodes"), `"verb":"GET"`, `"verb":"`+secret+`"`, 1))
	h.write("stdout", strings.Replace(auditLine("bad-time", "/v1.41/nodes"), `"2024-03-02T10:04:05.123456Z"`, `"`+secret+`"`, 1))
	h.write("stdout", `{"audit":{"auditID":"broken","token":"`+secret+`"`)
	h.write("stderr", "plain line with "+secret)
	h.writeSplit("stdout", `{"audit":{"auditID":"long","token":"`+secret+strings.Repeat("x", 70<<10), "p1", false)
	if _, err := h.w.Write([]byte("garbage " + secret)); err != nil {
		t.Fatal(err)
	}
	h.write("stdout", auditLine("after", "/v1.41/nodes"))
	h.stop()
	if n := len(h.file("quarantine.log")); n < 4 {
		t.Fatalf("quarantine.log has %d records: the hostile lines did not get through", n)
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), "hunter") {
		t.Errorf("the plugin log quotes container output:\n%s", logs.String())
	}
}

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

// A quarantined line whose record would be longer than the chain reads
// back (escaping makes control characters six times longer) keeps only the
// start of the line in raw, and says how much with raw-bytes.
func TestQuarantineRecordFitsTheChain(t *testing.T) {
	h := newHarnessWith(t, func(_ *Options, hk *hooks) { hk.maxQuarantineRecord = 64 << 10 }, map[string]string{"max-line-size": "1m"})
	line := `{"audit":{"auditID":"ctl","verb":"` + strings.Repeat("\x01", 100<<10) + `"}}`
	h.write("stdout", line)
	h.stop()
	q := quarantineOf(t, h, 1)
	raw, _ := q[0]["raw"].(string)
	n, _ := q[0]["raw-bytes"].(float64)
	if n == 0 || int(n) != len(raw) || !strings.HasPrefix(line, raw) || len(raw) >= len(line) {
		t.Errorf("raw holds %d bytes (raw-bytes %v) of the %d-byte line, want its start", len(raw), n, len(line))
	}
	if q[0]["size"] != float64(len(line)) {
		t.Errorf("size %v, want %d", q[0]["size"], len(line))
	}
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

// TestHostileReservedKeys: an event carrying "ucp-audit/chain" or
// "ucp-audit/seal" keys inside its payload (a label on a created
// container, say) is forwarded like any other, and the next events follow
// it; one with such a key at the top level is quarantined. Neither stalls
// the pipeline.
func TestHostileReservedKeys(t *testing.T) {
	h := newHarness(t, map[string]string{"audit-level": "request"})
	nested := strings.Replace(auditLine("nested", "/v1.41/containers/create"), `"level":"metadata"`,
		`"level":"request","requestObject":{"Labels":{"ucp-audit/chain":"x","ucp-audit/seal":"y"}}`, 1)
	top := strings.Replace(auditLine("top", "/v1.41/x"), `"verb":"GET"`, `"verb":"GET","ucp-audit/chain":{"n":1}`, 1)
	h.write("stdout", nested)
	h.write("stdout", top)
	h.write("stdout", auditLine("after", "/v1.41/y"))
	h.stop()
	var ids []string
	for _, r := range h.file("audit.log") {
		ids = append(ids, fmt.Sprint(r["auditID"]))
	}
	if got := strings.Join(ids, ","); got != "nested,after" {
		t.Errorf("audit.log events %s, want nested,after", got)
	}
	q := h.file("quarantine.log")
	if len(q) != 1 || !strings.Contains(fmt.Sprint(q[0]["reason"]), `"ucp-audit/chain"`) {
		t.Errorf("quarantine.log %v, want the top-level one", q)
	}
}
