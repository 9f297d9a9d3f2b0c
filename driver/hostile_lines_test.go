package driver

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/plugins/logdriver"
)

// Hostile lines: too long, endless, unfinished, not UTF-8, nested too
// deep, with duplicate or reserved keys. Every case checks that the events
// written around the hostile input still reach audit.log with contiguous
// seq, and that docker logs still serves the lines.

// A 1 MiB audit line is under the default max-line-size (4 MiB) and is
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

// 100 MB without a newline: dockerd sends 16 KiB partial chunks with one
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

// Invalid UTF-8 in an audit line: quarantined (audit.Parse refuses it),
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

// 10,000 levels of nesting in requestObject: encoding/json refuses
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

// Duplicate keys: the last value wins (as in encoding/json) and the
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

// 10,000 partial-line ids never finished, interleaved on stdout and
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
