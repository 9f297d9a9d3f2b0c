//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// The remote-destination tests run the emitter through the plugin with
// syslog and Logstash destinations pointing at real receivers the tests
// start on loopback (package peers); the plugin uses the host's network.
// What each destination must receive is what audit.log holds for the
// container: the same bytes, one message per forwarded event.

// stateDir is the plugin's state directory, bind-mounted into the plugin at
// the same path: files the plugin must read (a CA certificate) go below it.
const stateDir = "/var/lib/ucp-audit"

// certDir is where the files a log-opt names (TLS CAs, certificates and
// keys) must be, as the host and the plugin see it.
const certDir = stateDir + "/certs"

// remoteDir creates /var/lib/ucp-audit/certs/e2e-<test>-<random>/ (removed
// at the end of the test) for receivers whose files the plugin reads.
func remoteDir(t *testing.T) string {
	t.Helper()
	return tempUnder(t, certDir)
}

// trail is what audit.log holds for one container: its forwarded events by
// ucp-audit/seq, which runs 1..len.
type trail map[uint64]Record

// auditTrail waits for every forwarded event of em in audit.log, checks
// each is there exactly once with seq 1..N, and returns them by seq.
func auditTrail(t *testing.T, d Dir, c Container, em Emitted) trail {
	t.Helper()
	want := em.Forwarded()
	recs := waitRecords(t, d.Audit, c, len(want))
	if len(recs) != len(want) {
		t.Fatalf("audit.log has %d events of the container, want %d", len(recs), len(want))
	}
	checkExactlyOnce(t, recs, want)
	checkSequence(t, recs, want)
	return trailOf(t, recs)
}

func trailOf(t *testing.T, recs []Record) trail {
	t.Helper()
	tr := trail{}
	for _, r := range recs {
		seq, err := strconv.ParseUint(r.Annotation("ucp-audit/seq"), 10, 64)
		if err != nil {
			t.Fatalf("audit.log record without a seq: %.200s", r.Raw)
		}
		tr[seq] = r
	}
	if t.Failed() {
		t.FailNow()
	}
	return tr
}

// bytes is the total size of the trail's lines.
func (tr trail) bytes() int {
	n := 0
	for _, r := range tr {
		n += len(r.Raw)
	}
	return n
}

// missing returns the seqs of the trail not in got, at most 10.
func (tr trail) missing(got map[uint64]int) []uint64 {
	var out []uint64
	for s := uint64(1); s <= uint64(len(tr)); s++ {
		if got[s] == 0 {
			out = append(out, s)
			if len(out) == 10 {
				break
			}
		}
	}
	return out
}

// complete reports whether every seq of the trail is in got.
func (tr trail) complete(got map[uint64]int) bool {
	for s := uint64(1); s <= uint64(len(tr)); s++ {
		if got[s] == 0 {
			return false
		}
	}
	return true
}

// duplicates returns how many deliveries were repeats.
func duplicates(got map[uint64]int) int {
	n := 0
	for _, c := range got {
		n += c - 1
	}
	return n
}

// errLimit keeps a destination check from printing thousands of errors.
type errLimit struct {
	t *testing.T
	n int
}

func (e *errLimit) Errorf(format string, args ...any) {
	e.t.Helper()
	e.n++
	if e.n <= 5 {
		e.t.Errorf(format, args...)
	} else if e.n == 6 {
		e.t.Errorf("… more errors left out")
	}
}

// sameEvent says how a forwarded record differs from the audit.log line
// of the same seq, or "" when it is the same event: byte for byte the same
// record under a different chain field (the file's chain there, the
// container's here: n is the seq and the hash matches the record).
func sameEvent(seq uint64, remote, fileLine string) string {
	rp, rl, err := chain.ParseLine([]byte(remote))
	if err != nil {
		return fmt.Sprintf("seq %d: forwarded record without its link: %v: %.300q", seq, err, remote)
	}
	fp, _, err := chain.ParseLine([]byte(fileLine))
	if err != nil {
		return fmt.Sprintf("seq %d: audit.log line not chained: %v: %.300q", seq, err, fileLine)
	}
	if !bytes.Equal(rp, fp) {
		return fmt.Sprintf("seq %d (%d bytes) differs from its audit.log line (%d bytes); JSON-equal: %v\n got %.300q\nwant %.300q",
			seq, len(rp), len(fp), jsonEqual(string(rp), string(fp)), rp, fp)
	}
	if rl.N != seq || !rl.Valid(rp) {
		return fmt.Sprintf("seq %d: link n %d, valid %v", seq, rl.N, rl.Valid(rp))
	}
	return ""
}

// jsonArrivals checks that every event a Logstash peer received is, byte
// for byte, the audit.log line of the same seq (see sameEvent), and counts
// them by seq.
func jsonArrivals(t *testing.T, dest string, events []string, c Container, tr trail) map[uint64]int {
	t.Helper()
	el := &errLimit{t: t}
	got := map[uint64]int{}
	for _, raw := range events {
		var ev struct {
			Annotations map[string]string `json:"annotations"`
		}
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			el.Errorf("%s: event is not JSON (%v): %.200s", dest, err, raw)
			continue
		}
		if ownRecord(raw) != "" {
			continue // a record of the plugin's own (see ownRecords)
		}
		if id := ev.Annotations["ucp-audit/container-id"]; id != c.ID {
			el.Errorf("%s: event of container %q, want %s: %.200s", dest, id, c.ID, raw)
			continue
		}
		seq, _ := strconv.ParseUint(ev.Annotations["ucp-audit/seq"], 10, 64)
		rec, ok := tr[seq]
		if !ok {
			el.Errorf("%s: event with seq %d not in audit.log: %.200s", dest, seq, raw)
			continue
		}
		if msg := sameEvent(seq, raw, rec.Raw); msg != "" {
			el.Errorf("%s: %s", dest, msg)
		}
		got[seq]++
	}
	return got
}

// ownRecord returns the type of a record of the plugin's own that a
// destination received (a self record's type, or "gap"), or "" for an
// event.
func ownRecord(raw string) string {
	var r map[string]json.RawMessage
	if json.Unmarshal([]byte(raw), &r) != nil {
		return ""
	}
	if _, ok := r[auditlog.GapKey]; ok {
		return "gap"
	}
	var self struct {
		Type string `json:"type"`
	}
	if b, ok := r[auditlog.SelfKey]; ok && json.Unmarshal(b, &self) == nil {
		return self.Type
	}
	return ""
}

// ownRecords returns the types of the records of the plugin's own among
// what a destination received (messages: syslog MSGs or JSON events).
func ownRecords(messages []string) []string {
	var out []string
	for _, m := range messages {
		if t := ownRecord(m); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// syslogHeader is the RFC 5424 header the plugin writes: PRI 30 (daemon,
// info), version 1, TIMESTAMP, HOSTNAME, APP-NAME, PROCID "-", MSGID
// "audit", and one SD-ELEMENT with auditID and seq.
var syslogHeader = regexp.MustCompile(`(?s)^<30>1 (\S+) (\S+) (\S+) - audit (\[ucp-audit@32473 auditID="((?:[^"\\\]]|\\["\\\]])*)" seq="([1-9][0-9]*)"\]) (.*)$`)

// syslogExpect is what a syslog message's header must carry.
type syslogExpect struct {
	host, appName string
}

// appName is the RFC 5424 APP-NAME the plugin makes of a tag: at most 48
// printable US-ASCII characters.
func appName(tag string) string {
	if len(tag) > 48 {
		return tag[:48]
	}
	return tag
}

// syslogArrivals checks every message rsyslog received: the raw message
// parses as the RFC 5424 header above followed by MSG, MSG is byte for byte
// the audit.log line of its seq, the header carries the event's own
// requestReceivedTimestamp (second precision, UTC), the host and the
// app-name, the SD-PARAMs its auditID and seq; and rsyslog's own parser
// read the same fields. It counts the messages by seq.
func syslogArrivals(t *testing.T, dest string, msgs []peers.SyslogMessage, tr trail, x syslogExpect) map[uint64]int {
	t.Helper()
	el := &errLimit{t: t}
	got := map[uint64]int{}
	for _, m := range msgs {
		if m.MsgID == "ucp-audit" {
			continue // a record of the plugin's own (see ownRecords)
		}
		h := syslogHeader.FindStringSubmatch(m.Raw)
		if h == nil {
			el.Errorf("%s: not the RFC 5424 header expected: %.300q", dest, m.Raw)
			continue
		}
		ts, host, app, sd, sdID, seqS, msg := h[1], h[2], h[3], h[4], h[5], h[6], h[7]
		seq, _ := strconv.ParseUint(seqS, 10, 64)
		rec, ok := tr[seq]
		if !ok {
			el.Errorf("%s: message with seq %d not in audit.log: %.300q", dest, seq, m.Raw)
			continue
		}
		got[seq]++
		if d := sameEvent(seq, msg, rec.Raw); d != "" {
			el.Errorf("%s: MSG: %s", dest, d)
		}
		evTime, err := time.Parse(time.RFC3339Nano, rec.Str("requestReceivedTimestamp"))
		if err != nil {
			el.Errorf("%s: seq %d: audit.log requestReceivedTimestamp: %v", dest, seq, err)
			continue
		}
		if want := evTime.UTC().Truncate(time.Second).Format(time.RFC3339); ts != want {
			el.Errorf("%s: seq %d: TIMESTAMP %q, want the event's requestReceivedTimestamp %q", dest, seq, ts, want)
		}
		if host != x.host {
			el.Errorf("%s: seq %d: HOSTNAME %q, want %q", dest, seq, host, x.host)
		}
		if app != x.appName {
			el.Errorf("%s: seq %d: APP-NAME %q, want %q (the tag)", dest, seq, app, x.appName)
		}
		if id := strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\]`, `]`).Replace(sdID); id != rec.Str("auditID") {
			el.Errorf("%s: seq %d: SD auditID %q, want %q", dest, seq, id, rec.Str("auditID"))
		}
		// rsyslog's parser must have read the header as RFC 5424.
		rt, err := time.Parse(time.RFC3339Nano, m.Time)
		if m.PRI != "30" || err != nil || !rt.Equal(evTime.Truncate(time.Second)) || m.Host != x.host ||
			m.AppName != x.appName || m.ProcID != "-" || m.MsgID != "audit" || m.SD != sd {
			el.Errorf("%s: seq %d: rsyslog parsed pri=%q time=%q host=%q app=%q procid=%q msgid=%q sd=%q; want 30, %s, %q, %q, -, audit, %q",
				dest, seq, m.PRI, m.Time, m.Host, m.AppName, m.ProcID, m.MsgID, m.SD, evTime.UTC().Truncate(time.Second).Format(time.RFC3339), x.host, x.appName, sd)
		}
	}
	return got
}

// waitSyslog waits (up to within) until rsyslog has every seq of the trail,
// then checks what arrived; it returns the counts by seq.
func waitSyslog(t *testing.T, r *peers.Rsyslog, dest string, tr trail, x syslogExpect, within time.Duration) map[uint64]int {
	t.Helper()
	var got map[uint64]int
	msgs, ok := r.WaitFor(within, func(m []peers.SyslogMessage) bool {
		// Count by the SD seq only, cheaply, while waiting.
		got = map[uint64]int{}
		for _, msg := range m {
			if h := syslogHeader.FindStringSubmatch(msg.Raw); h != nil {
				s, _ := strconv.ParseUint(h[6], 10, 64)
				got[s]++
			}
		}
		return tr.complete(got)
	})
	got = syslogArrivals(t, dest, msgs, tr, x)
	if !ok {
		t.Errorf("%s: after %v, %d of %d events arrived; missing seqs (first 10) %v\n%s", dest, within, len(got), len(tr), tr.missing(got), r.Diagnostics())
	}
	return got
}

// waitJSON waits (up to within) until a Logstash peer has every seq of the
// trail, then checks what arrived; it returns the counts by seq.
func waitJSON(t *testing.T, dest string, events func() []string, c Container, tr trail, within time.Duration) map[uint64]int {
	t.Helper()
	deadline := time.Now().Add(within)
	var evs []string
	for {
		evs = events()
		got := map[uint64]int{}
		for _, raw := range evs {
			var ev struct {
				Annotations map[string]string `json:"annotations"`
			}
			if json.Unmarshal([]byte(raw), &ev) == nil {
				s, _ := strconv.ParseUint(ev.Annotations["ucp-audit/seq"], 10, 64)
				got[s]++
			}
		}
		if tr.complete(got) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := jsonArrivals(t, dest, evs, c, tr)
	if !tr.complete(got) {
		t.Errorf("%s: after %v, %d of %d events arrived; missing seqs (first 10) %v", dest, within, len(got), len(tr), tr.missing(got))
	}
	return got
}

// checkAuditIDs checks that every forwarded auditID of the manifest is
// among the events a destination got (by way of the trail).
func checkAuditIDs(t *testing.T, dest string, em Emitted, tr trail, got map[uint64]int) {
	t.Helper()
	ids := map[Key]bool{}
	for s, n := range got {
		if n > 0 {
			if r, ok := tr[s]; ok {
				ids[r.Key()] = true
			}
		}
	}
	for _, ev := range em.Forwarded() {
		if !ids[ev.Key()] {
			t.Errorf("%s: auditID %s (%s) never arrived", dest, ev.AuditID, ev.Stage)
		}
	}
}

// bigArgs makes the emitter print four events over 16 KiB: payloads of
// 20, 40, 20 and 40 KiB (lines of about 21 and 42 KB). The emitter has no
// larger size.
var bigArgs = []string{"-n", "5", "-big", "4"}

func TestRemoteSyslog(t *testing.T) {
	host := hostName(t)
	em := emit(t, bigArgs...)
	for _, tc := range []struct {
		name string
		addr func(r *peers.Rsyslog) []string
	}{
		{"tcp", func(r *peers.Rsyslog) []string {
			return []string{fmt.Sprintf("syslog-address=tcp://127.0.0.1:%d", r.TCPPort)}
		}},
		{"tcp+tls", func(r *peers.Rsyslog) []string {
			return []string{fmt.Sprintf("syslog-address=tcp+tls://127.0.0.1:%d", r.TLSPort), "syslog-tls-ca-cert=" + r.PKI.CAFile}
		}},
		{"udp", func(r *peers.Rsyslog) []string {
			return []string{fmt.Sprintf("syslog-address=udp://127.0.0.1:%d", r.UDPPort)}
		}},
		{"relp", func(r *peers.Rsyslog) []string {
			return []string{fmt.Sprintf("syslog-address=relp://127.0.0.1:%d", r.RELPPort)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := peers.StartRsyslog(t, remoteDir(t))
			d := sharedTrail()
			opts := append([]string{"tag={{.Name}}"}, tc.addr(r)...)
			c := runContainer(t, pluginName, opts, em.Args...)
			tr := auditTrail(t, d, c, em)
			big := 0
			for _, rec := range tr {
				if len(rec.Raw) > 40<<10 {
					big++
				}
			}
			if big < 2 {
				t.Fatalf("%d events over 40 KiB in audit.log, want 2", big)
			}
			dest := "syslog " + tc.name
			got := waitSyslog(t, r, dest, tr, syslogExpect{host: host, appName: appName(c.Name)}, 30*time.Second)
			checkAuditIDs(t, dest, em, tr, got)
			if n := duplicates(got); n > 0 {
				t.Errorf("%s: %d duplicates with the destination up all along", dest, n)
			}
		})
	}
}

func TestRemoteLogstash(t *testing.T) {
	em := emit(t, bigArgs...)
	t.Run("beats", func(t *testing.T) {
		t.Parallel()
		p := peers.StartBeats(t)
		d := sharedTrail()
		c := runContainer(t, pluginName, []string{"logstash-address=beats://" + p.Addr}, em.Args...)
		tr := auditTrail(t, d, c, em)
		got := waitJSON(t, "beats", p.Events, c, tr, 30*time.Second)
		checkAuditIDs(t, "beats", em, tr, got)
		if n := duplicates(got); n > 0 {
			t.Errorf("beats: %d duplicates with the destination up all along", n)
		}
		t.Logf("beats: %d events in %d batches", len(p.Events()), p.Batches())
	})
	t.Run("http", func(t *testing.T) {
		t.Parallel()
		p := peers.StartHTTP(t)
		d := sharedTrail()
		c := runContainer(t, pluginName, []string{"logstash-address=" + p.URL()}, em.Args...)
		tr := auditTrail(t, d, c, em)
		got := waitJSON(t, "http", p.Events, c, tr, 30*time.Second)
		checkAuditIDs(t, "http", em, tr, got)
		if n := duplicates(got); n > 0 {
			t.Errorf("http: %d duplicates with the destination up all along", n)
		}
		for ct := range p.ContentTypes() {
			if ct != "application/x-ndjson" {
				t.Errorf("http: Content-Type %q, want application/x-ndjson", ct)
			}
		}
	})
}

func TestRemoteAllTogether(t *testing.T) {
	em := emit(t, bigArgs...)
	r := peers.StartRsyslog(t, remoteDir(t))
	p := peers.StartBeats(t)
	d := sharedTrail()
	opts := []string{"tag={{.Name}}",
		fmt.Sprintf("syslog-address=relp://127.0.0.1:%d", r.RELPPort),
		"logstash-address=beats://" + p.Addr}
	c := runContainer(t, pluginName, opts, em.Args...)
	tr := auditTrail(t, d, c, em)
	got := waitSyslog(t, r, "syslog relp", tr, syslogExpect{host: hostName(t), appName: appName(c.Name)}, 30*time.Second)
	checkAuditIDs(t, "syslog relp", em, tr, got)
	got = waitJSON(t, "beats", p.Events, c, tr, 30*time.Second)
	checkAuditIDs(t, "beats", em, tr, got)
}

// runTimed runs a container to its end and returns the wall time from
// `docker run` to the end of `docker wait`, and the container's own run
// time (State.StartedAt to FinishedAt).
func runTimed(t *testing.T, opts []string, args ...string) (Container, time.Duration, time.Duration) {
	t.Helper()
	start := time.Now()
	c := runContainer(t, pluginName, opts, args...)
	wall := time.Since(start)
	out := strings.Fields(mustDocker(t, "inspect", "--format", "{{.State.StartedAt}} {{.State.FinishedAt}}", c.ID))
	if len(out) != 2 {
		t.Fatalf("docker inspect: %q", out)
	}
	s, err1 := time.Parse(time.RFC3339Nano, out[0])
	f, err2 := time.Parse(time.RFC3339Nano, out[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("docker inspect: %q: %v %v", out, err1, err2)
	}
	return c, wall, f.Sub(s)
}

// TestRemoteOutage: RELP and beats are down when the container starts and
// while it runs. The controller runs as fast as with the file alone, the
// file has everything when the container has exited, and once the two
// receivers are up every event reaches them (at least once).
func TestRemoteOutage(t *testing.T) {
	args := []string{"-n", "8", "-big", "2", "-sleep", "40ms"}
	em := emit(t, args...)

	// Baseline: the same run with the file destination only.
	db := sharedTrail()
	cb, wallBase, runBase := runTimed(t, nil, args...)
	auditTrail(t, db, cb, em)

	r := peers.NewRsyslog(t, remoteDir(t)) // ports reserved, not listening
	p := peers.NewBeats(t)
	d := sharedTrail()
	opts := []string{"tag={{.Name}}",
		fmt.Sprintf("syslog-address=relp://127.0.0.1:%d", r.RELPPort),
		"logstash-address=beats://" + p.Addr}
	c, wall, run := runTimed(t, opts, args...)
	t.Logf("file only: docker run→wait %v, container ran %v; with RELP and beats down: %v, %v", wallBase, runBase, wall, run)
	if wall > wallBase+3*time.Second || run > runBase+3*time.Second {
		t.Errorf("with RELP and beats down the controller took %v (ran %v), with the file only %v (ran %v): a dead destination stalls it",
			wall, run, wallBase, runBase)
	}

	// The file has every event as soon as the container has exited.
	recs := auditRecords(t, d.Audit, c)
	if len(recs) != len(em.Forwarded()) {
		t.Errorf("audit.log has %d events when the container has exited, want %d", len(recs), len(em.Forwarded()))
	}
	tr := auditTrail(t, d, c, em)
	if got := len(r.Messages()) + len(p.Events()); got != 0 {
		t.Fatalf("%d events arrived at receivers that were down", got)
	}

	r.Start()
	p.Start()
	gotS := waitSyslog(t, r, "syslog relp", tr, syslogExpect{host: hostName(t), appName: appName(c.Name)}, 60*time.Second)
	checkAuditIDs(t, "syslog relp", em, tr, gotS)
	gotB := waitJSON(t, "beats", p.Events, c, tr, 60*time.Second)
	checkAuditIDs(t, "beats", em, tr, gotB)
	t.Logf("after the outage: relp %d duplicates, beats %d duplicates (at-least-once)", duplicates(gotS), duplicates(gotB))

	// The outage itself reaches them too, as records of the plugin's own:
	// a SIEM sees it, not only a delay.
	var msgs []string
	for _, m := range r.Messages() {
		if i := strings.Index(m.Raw, "{"); m.MsgID == "ucp-audit" && i >= 0 {
			msgs = append(msgs, m.Raw[i:]) // MSG: after the header, whose SD is "-"
		}
	}
	for dest, got := range map[string][]string{"syslog relp": ownRecords(msgs), "beats": ownRecords(p.Events())} {
		if !slices.Contains(got, auditlog.SelfDestinationDown) {
			t.Errorf("%s did not get the destination-down records (records of the plugin's own: %q)", dest, got)
		}
	}
}

// gapRecords returns the gap records of container c in audit.log and, with
// their summary, in quarantine.log.
func gapRecords(t *testing.T, d Dir, c Container) (audit, quarantine []auditlog.Gap) {
	t.Helper()
	for _, r := range readJSONLines(t, d.Audit, auditlog.GapKey, c.ID) {
		g, ok := r.Event[auditlog.GapKey]
		if !ok {
			continue
		}
		if len(r.Event) != 1 {
			t.Errorf("audit.log gap record with other keys: %.300s", r.Raw)
		}
		b, _ := json.Marshal(g)
		var x auditlog.Gap
		if err := json.Unmarshal(b, &x); err != nil {
			t.Fatalf("audit.log gap record: %v: %.300s", err, r.Raw)
		}
		if x.ContainerID == c.ID {
			audit = append(audit, x)
		}
	}
	for _, r := range readJSONLines(t, d.Quarantine, `"lost"`, c.ID) {
		if _, ok := r.Event["lost"]; !ok {
			continue
		}
		var x auditlog.QuarantineGap
		if err := json.Unmarshal([]byte(r.Raw), &x); err != nil {
			t.Fatalf("quarantine.log gap record: %v: %.300s", err, r.Raw)
		}
		if x.ContainerID != c.ID {
			continue
		}
		if x.Summary == "" || !strings.Contains(x.Summary, x.Destination) {
			t.Errorf("quarantine.log gap record without a summary naming the destination: %.300s", r.Raw)
		}
		quarantine = append(quarantine, x.Gap)
	}
	return audit, quarantine
}

// dropArgs prints 6 × 500 = 3000 forwarded events of about 1.05 KB, over
// 3 MB: the 1 MiB spool of a dead destination overflows.
var dropArgs = []string{"-n", "500", "-big", "0", "-malformed=false", "-ignored=false"}

// blockArgs prints 6 × 4000 = 24000 forwarded events, about 17 MB of
// output: far more than the reader takes in the test's first 6 s with
// spool-full=block and a dead destination (the 1 MiB spool, about 0.7 MB
// of output; the 4 MiB the reader may run ahead of the pipeline; dockerd's
// 1-2 MB buffer and the pipes: about 7 MB; then 1 MiB/s, 5 MB more).
var blockArgs = []string{"-n", "4000", "-big", "0", "-malformed=false", "-ignored=false"}

// blockExitArgs prints 6 × 2500 = 15000 forwarded events, about 11 MB:
// about 5 MB more than the reader takes at full speed while the
// destination is down (about 6 MB, as above), so the container ends while
// the reader is slowed to 1 MiB/s.
var blockExitArgs = []string{"-n", "2500", "-big", "0", "-malformed=false", "-ignored=false"}

func TestRemoteSpoolFull(t *testing.T) {
	t.Run("drop", func(t *testing.T) {
		t.Parallel()
		em := emit(t, dropArgs...)
		p := peers.NewBeats(t)
		d := sharedTrail()
		opts := []string{"logstash-address=beats://" + p.Addr, "spool-max-size=1m", "spool-full=drop"}
		c := runContainer(t, pluginName, opts, em.Args...)
		tr := auditTrail(t, d, c, em)
		if tr.bytes() <= 1<<20 {
			t.Fatalf("only %d bytes of forwarded events: the spool does not overflow", tr.bytes())
		}
		dest := "logstash beats://" + p.Addr
		var ag, qg []auditlog.Gap
		peers.WaitUntil(10*time.Second, func() bool {
			ag, qg = gapRecords(t, d, c)
			return len(ag) > 0
		})
		if len(ag) == 0 {
			t.Fatalf("no gap record in audit.log after %d bytes of events with a 1 MiB spool and a dead destination", tr.bytes())
		}
		// Each audit.log gap record has its twin in quarantine.log.
		key := func(g auditlog.Gap) string {
			return fmt.Sprintf("%s %d %d-%d %s", g.Destination, g.Lost, g.FirstSeq, g.LastSeq, g.Reason)
		}
		var ak, qk []string
		for _, g := range ag {
			ak = append(ak, key(g))
		}
		for _, g := range qg {
			qk = append(qk, key(g))
		}
		slices.Sort(ak)
		slices.Sort(qk)
		if !slices.Equal(ak, qk) {
			t.Errorf("gap records differ:\naudit.log:      %q\nquarantine.log: %q", ak, qk)
		}
		lost := map[uint64]bool{}
		var total uint64
		t.Logf("%d gap records; first %+v; last %+v", len(ag), ag[0], ag[len(ag)-1])
		for _, g := range ag {
			if g.Destination != dest {
				t.Errorf("gap destination %q, want %q", g.Destination, dest)
			}
			if g.ContainerName != c.Name {
				t.Errorf("gap container-name %q, want %q", g.ContainerName, c.Name)
			}
			if g.FirstSeq < 1 || g.LastSeq < g.FirstSeq || g.LastSeq > uint64(len(tr)) || g.Lost != g.LastSeq-g.FirstSeq+1 {
				t.Errorf("gap lost %d, seq %d-%d: not a range of the container's 1..%d", g.Lost, g.FirstSeq, g.LastSeq, len(tr))
			}
			for s := g.FirstSeq; s <= g.LastSeq && s <= uint64(len(tr)); s++ {
				if lost[s] {
					t.Errorf("seq %d in two gap records", s)
				}
				lost[s] = true
			}
			total += g.Lost
		}

		p.Start()
		// Wait until every seq is delivered or inside a gap.
		var got map[uint64]int
		ok := peers.WaitUntil(60*time.Second, func() bool {
			got = map[uint64]int{}
			for _, raw := range p.Events() {
				var ev struct {
					Annotations map[string]string `json:"annotations"`
				}
				if json.Unmarshal([]byte(raw), &ev) == nil {
					s, _ := strconv.ParseUint(ev.Annotations["ucp-audit/seq"], 10, 64)
					got[s]++
				}
			}
			for s := uint64(1); s <= uint64(len(tr)); s++ {
				if got[s] == 0 && !lost[s] {
					return false
				}
			}
			return true
		})
		time.Sleep(time.Second) // anything more would be a duplicate
		got = jsonArrivals(t, "beats", p.Events(), c, tr)
		var missing, both []uint64
		for s := uint64(1); s <= uint64(len(tr)); s++ {
			switch {
			case got[s] == 0 && !lost[s]:
				missing = append(missing, s)
			case got[s] > 0 && lost[s]:
				both = append(both, s)
			}
		}
		if !ok || len(missing) > 0 {
			t.Errorf("%d seqs neither delivered nor in a gap (first: %v)", len(missing), missing[:min(10, len(missing))])
		}
		if len(both) > 0 {
			t.Errorf("%d seqs both delivered and recorded lost (first: %v)", len(both), both[:min(10, len(both))])
		}
		if a, q := gapRecords(t, d, c); len(a) != len(ag) || len(q) != len(qg) {
			t.Errorf("gap records after the peer came up: %d in audit.log, %d in quarantine.log; before %d, %d", len(a), len(q), len(ag), len(qg))
		}
		t.Logf("%d events (%d bytes): %d lost in %d gaps, %d delivered, %d duplicates", len(tr), tr.bytes(), total, len(ag), len(got), duplicates(got))
	})
	t.Run("block", func(t *testing.T) {
		t.Parallel()
		b := startBlocked(t, blockArgs)
		// `docker ps` keeps saying "Up" while dockerd waits for the log
		// copier of an exited container, so also look at its processes.
		procs := func() string {
			raw, err := os.ReadFile("/sys/fs/cgroup/pids/docker/" + b.c.ID + "/cgroup.procs")
			if err != nil {
				return "no cgroup"
			}
			return fmt.Sprintf("%d procs", len(strings.Fields(string(raw))))
		}
		start := time.Now()
		var seen []string
		for time.Since(start) < 6*time.Second {
			seen = append(seen, fmt.Sprintf("%.1fs %s (%s)", time.Since(start).Seconds(), b.status(), procs()))
			time.Sleep(500 * time.Millisecond)
		}
		if st, pr := b.status(), procs(); !strings.HasPrefix(st, "Up") || pr == "no cgroup" || pr == "0 procs" {
			t.Errorf("with spool-full=block, a 1 MiB spool and a dead destination, the container is %q (%s) after 6 s, want running (stalled); seen: %q", st, pr, seen)
		}
		t.Logf("while the destination is down: %d of %d events in audit.log", countLines(t, b.d.Audit, b.c), len(b.em.Forwarded()))

		b.startPeer()
		if !peers.WaitUntil(90*time.Second, b.exited) {
			t.Fatalf("the container did not finish within 90 s of the destination coming up: %s", b.status())
		}
		b.check(t)
	})
	// The controller ends while the reader is throttled: once the process
	// has exited, dockerd gives the copy of its last output 2 s and drops
	// what has not moved (CI once lost 129 events so when the reader
	// paused for 5 s). Nothing may be lost.
	t.Run("block-exit", func(t *testing.T) {
		t.Parallel()
		b := startBlocked(t, blockExitArgs)
		if !peers.WaitUntil(120*time.Second, b.exited) {
			t.Fatalf("the container did not finish within 120 s with the destination down: %s", b.status())
		}
		n := countLines(t, b.d.Audit, b.c)
		if n >= len(b.em.Forwarded()) {
			t.Fatalf("all %d events were handled while the destination was down: the spool never filled, so the reader never paused", n)
		}
		t.Logf("the container ended with the destination down: %d of %d events in audit.log", n, len(b.em.Forwarded()))
		b.startPeer()
		b.check(t)
	})
}

// blocked is a container logging with spool-full=block, a 1 MiB spool and
// a Beats destination that is down until startPeer.
type blocked struct {
	em      Emitted
	p       *peers.Beats
	d       Dir
	c       Container
	status  func() string
	started bool
}

func startBlocked(t *testing.T, args []string) *blocked {
	t.Helper()
	b := &blocked{em: emit(t, args...), p: peers.NewBeats(t), d: sharedTrail()}
	opts := []string{"logstash-address=beats://" + b.p.Addr, "spool-max-size=1m", "spool-full=block"}
	c, _, err := startContainer(t, pluginName, opts, b.em.Args...)
	if err != nil {
		t.Fatal(err)
	}
	b.c = c
	// While the destination is down and the plugin stops reading,
	// dockerd holds the container's lock once its process has ended (it
	// waits for the log copier), so `docker inspect` and `docker rm` would
	// hang: bring the peer up before the container is removed, whatever
	// happens, and read the status with `docker ps`, which does not take
	// the lock.
	t.Cleanup(func() {
		if !b.started {
			b.p.Start()
		}
	})
	b.status = func() string {
		return strings.TrimSpace(mustDocker(t, "ps", "-a", "--no-trunc", "--filter", "id="+c.ID, "--format", "{{.Status}}"))
	}
	return b
}

func (b *blocked) exited() bool { return strings.HasPrefix(b.status(), "Exited") }

func (b *blocked) startPeer() {
	b.p.Start()
	b.started = true
}

// check waits for the container's exit, then checks that every event is
// in audit.log and at the peer, and that no gap was recorded.
func (b *blocked) check(t *testing.T) {
	t.Helper()
	waitExit(t, b.c)
	tr := auditTrail(t, b.d, b.c, b.em)
	got := waitJSON(t, "beats", b.p.Events, b.c, tr, 90*time.Second)
	checkAuditIDs(t, "beats", b.em, tr, got)
	if a, q := gapRecords(t, b.d, b.c); len(a)+len(q) > 0 {
		t.Errorf("spool-full=block wrote gap records: %+v %+v", a, q)
	}
	t.Logf("%d events, %d duplicates", len(tr), duplicates(got))
}

// countLines counts the complete lines of container c in an audit file
// that may be being written.
func countLines(t *testing.T, path string, c Container) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if i := strings.LastIndexByte(string(b), '\n'); i >= 0 {
		return strings.Count(string(b[:i]), `"ucp-audit/container-id":"`+c.ID+`"`)
	}
	return 0
}

func TestRemoteBadOptions(t *testing.T) {
	// Port 9 (discard): nothing listens there, and no test peer can be
	// given it (they take ephemeral ports), so the events the plugin keeps
	// retrying for the "unreachable" cases never reach a later test's
	// peer. (No case uses a host name: resolving one would query the
	// machine's DNS server, off loopback.)
	const dead = 9
	caDir := remoteDir(t)
	pki := peers.NewPKI(t, caDir)
	cases := []struct {
		name string
		opts []string
		ok   bool
		key  string // the key docker run's error must name
	}{
		{"syslog-no-scheme", []string{"syslog-address=127.0.0.1:514"}, false, "syslog-address"},
		{"syslog-bad-scheme", []string{"syslog-address=ftp://127.0.0.1:514"}, false, "syslog-address"},
		{"syslog-bad-port", []string{"syslog-address=tcp://127.0.0.1:99999"}, false, "syslog-address"},
		{"logstash-no-scheme", []string{"logstash-address=127.0.0.1:5044"}, false, "logstash-address"},
		{"logstash-bad-scheme", []string{"logstash-address=udp://127.0.0.1:5044"}, false, "logstash-address"},
		{"logstash-beats-no-port", []string{"logstash-address=beats://127.0.0.1"}, false, "logstash-address"},
		{"syslog-format-unknown", []string{fmt.Sprintf("syslog-address=tcp://127.0.0.1:%d", dead), "syslog-format=rfc9999"}, false, "syslog-format"},
		{"syslog-facility-unknown", []string{fmt.Sprintf("syslog-address=tcp://127.0.0.1:%d", dead), "syslog-facility=nope"}, false, "syslog-facility"},
		{"syslog-format-without-address", []string{"syslog-format=rfc5424"}, false, "syslog-format"},
		{"syslog-tls-on-tcp", []string{fmt.Sprintf("syslog-address=tcp://127.0.0.1:%d", dead), "syslog-tls-ca-cert=" + pki.CAFile}, false, "syslog-tls-ca-cert"},
		{"logstash-tls-on-beats", []string{fmt.Sprintf("logstash-address=beats://127.0.0.1:%d", dead), "logstash-tls-skip-verify=true"}, false, "logstash-tls-skip-verify"},
		{"syslog-ca-missing", []string{fmt.Sprintf("syslog-address=tcp+tls://127.0.0.1:%d", dead), "syslog-tls-ca-cert=" + filepath.Join(caDir, "missing.pem")}, false, "syslog-tls-ca-cert"},
		{"logstash-ca-missing", []string{fmt.Sprintf("logstash-address=beats+tls://127.0.0.1:%d", dead), "logstash-tls-ca-cert=" + filepath.Join(caDir, "missing.pem")}, false, "logstash-tls-ca-cert"},
		// A container cannot make the plugin read a file outside
		// /var/lib/ucp-audit/certs, such as the node configuration.
		{"syslog-ca-outside-certs", []string{fmt.Sprintf("syslog-address=tcp+tls://127.0.0.1:%d", dead), "syslog-tls-ca-cert=" + nodeFile}, false, "syslog-tls-ca-cert"},
		{"syslog-ca-not-pem", []string{fmt.Sprintf("syslog-address=tcp+tls://127.0.0.1:%d", dead), "syslog-tls-ca-cert=" + pki.KeyFile}, false, "syslog-tls-ca-cert"},
		{"spool-full-unknown", []string{"logstash-address=beats://127.0.0.1:5044", "spool-full=sometimes"}, false, "spool-full"},
		{"spool-max-size-too-small", []string{"logstash-address=beats://127.0.0.1:5044", "spool-max-size=10k"}, false, "spool-max-size"},
		{"tag-bad-template", []string{fmt.Sprintf("syslog-address=tcp://127.0.0.1:%d", dead), "tag={{.Nope}}"}, false, "tag"},
		// Well-formed but unreachable: the container starts (and ends).
		{"relp-unreachable", []string{fmt.Sprintf("syslog-address=relp://127.0.0.1:%d", dead)}, true, ""},
		{"tls-unreachable", []string{fmt.Sprintf("syslog-address=tcp+tls://127.0.0.1:%d", dead), "syslog-tls-ca-cert=" + pki.CAFile}, true, ""},
		{"beats-unreachable", []string{fmt.Sprintf("logstash-address=beats://127.0.0.1:%d", dead)}, true, ""},
		{"http-unreachable", []string{fmt.Sprintf("logstash-address=http://127.0.0.1:%d/", dead)}, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, stderr, err := startContainer(t, pluginName, tc.opts, "-n", "1", "-big", "0")
			if tc.ok {
				if err != nil {
					t.Fatalf("--log-opt %q rejected: %v", tc.opts, err)
				}
				waitExit(t, c)
				return
			}
			if err == nil {
				t.Fatalf("--log-opt %q accepted, want an error naming %q", tc.opts, tc.key)
			}
			if want := fmt.Sprintf("ucp-audit: log-opt %q", tc.key); !strings.Contains(stderr, want) {
				t.Errorf("--log-opt %q: stderr does not contain %s:\n%s", tc.opts, want, stderr)
			}
		})
	}
}
