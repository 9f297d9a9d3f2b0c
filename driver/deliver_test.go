package driver

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	lumbersrv "github.com/elastic/go-lumber/server/v2"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// beatsPeer is go-lumber's v2 server standing in for Logstash's beats input.
// It can be stopped and started again on the same port.
type beatsPeer struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	srv  *lumbersrv.Server
	got  map[string]int // auditID → times received
	seqs []string
	raw  [][]byte // every event as it came over the wire
	own  []string // the types of the records of the plugin's own received
}

// newBeatsPeer reserves a port; the peer is down until start.
func newBeatsPeer(t *testing.T) *beatsPeer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &beatsPeer{t: t, addr: l.Addr().String(), got: map[string]int{}}
	l.Close()
	t.Cleanup(p.stop)
	return p
}

func (p *beatsPeer) start() {
	p.t.Helper()
	var l net.Listener
	var err error
	for range 100 {
		if l, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	srv, err := lumbersrv.NewWithListener(l, lumbersrv.JSONDecoder(func(b []byte, v interface{}) error {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		m[rawKey] = append([]byte(nil), b...)
		*v.(*interface{}) = m
		return nil
	}))
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() {
		for b := range srv.ReceiveChan() {
			p.mu.Lock()
			for _, e := range b.Events {
				m := e.(map[string]any)
				p.raw = append(p.raw, m[rawKey].([]byte))
				delete(m, rawKey)
				if self, ok := m[auditlog.SelfKey].(map[string]any); ok {
					p.own = append(p.own, self["type"].(string))
					continue
				}
				if _, ok := m[auditlog.GapKey]; ok {
					p.own = append(p.own, "gap")
					continue
				}
				p.got[m["auditID"].(string)]++
				p.seqs = append(p.seqs, annotations(m)["ucp-audit/seq"].(string))
			}
			p.mu.Unlock()
			b.ACK()
		}
	}()
}

// rawKey carries an event's bytes from the peer's decoder to its receiver.
const rawKey = "\x00raw"

func (p *beatsPeer) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		p.srv.Close()
		p.srv = nil
	}
}

// waitFor waits until every ID has arrived at least once.
func (p *beatsPeer) waitFor(ids []string, within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		p.mu.Lock()
		missing := 0
		for _, id := range ids {
			if p.got[id] == 0 {
				missing++
			}
		}
		p.mu.Unlock()
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%d of %d events never arrived at the beats peer", missing, len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *beatsPeer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
}

func TestDeliveryBeats(t *testing.T) {
	peer := newBeatsPeer(t)
	peer.start()
	h := newHarness(t, map[string]string{"logstash-address": "beats://" + peer.addr})
	ids := writeEvents(h, "ok", 300)
	h.stop()
	peer.waitFor(ids, 10*time.Second)
	if got := strings.Join(peer.seqs[:3], ","); got != "1,2,3" {
		t.Errorf("seqs start %s", got)
	}
}

// A destination that is down when the container starts and stays down
// while it runs: the container starts, StopLogging answers at once, the
// audit file has everything, and once the destination is back every event
// arrives.
func TestDeliveryOutage(t *testing.T) {
	peer := newBeatsPeer(t)
	h := newHarness(t, map[string]string{"logstash-address": "beats://" + peer.addr})
	ids := writeEvents(h, "out", 200)
	start := time.Now()
	h.stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("StopLogging took %v with the destination down", d)
	}
	if got := len(h.file("audit.log")); got != 200 {
		t.Fatalf("audit.log has %d events", got)
	}
	time.Sleep(300 * time.Millisecond)
	peer.start()
	peer.waitFor(ids, 40*time.Second)
	// The outage reaches the destination too, as records of the plugin's
	// own (a SIEM sees it, not only a delay).
	h.waitFor("the destination-down record at the destination", func() bool {
		peer.mu.Lock()
		defer peer.mu.Unlock()
		return slices.Contains(peer.own, auditlog.SelfDestinationDown)
	})
}

// Spooled events survive a plugin restart: a new Driver on the same state
// resumes delivery for a container that is gone.
func TestDeliveryResumesAfterRestart(t *testing.T) {
	peer := newBeatsPeer(t)
	h := newHarness(t, map[string]string{"logstash-address": "beats://" + peer.addr})
	ids := writeEvents(h, "rs", 50)
	h.stop()
	if err := h.d.Close(); err != nil {
		t.Fatal(err)
	}
	peer.start()
	d2, err := New(Options{StateDir: h.d.opts.StateDir, LogDir: h.logDir, DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	peer.waitFor(ids, 40*time.Second)
}

// spool-full=drop: with the destination down, a full spool discards the
// oldest undelivered events, and says so in audit.log and quarantine.log;
// lost + delivered = written.
func TestSpoolFullDrop(t *testing.T) {
	peer := newBeatsPeer(t)
	h := newHarness(t, map[string]string{"logstash-address": "beats://" + peer.addr, "spool-max-size": "1m"})
	const n = 5000 // about 3 MB of events
	ids := writeEvents(h, "drop", n)
	h.stop()
	var lost uint64
	for _, r := range h.file("audit.log") {
		if g, ok := r["ucp-audit/gap"].(map[string]any); ok {
			if !strings.HasPrefix(g["destination"].(string), "logstash beats://") || g["first-seq"].(float64) < 1 {
				t.Errorf("gap record %v", g)
			}
			lost += uint64(g["lost"].(float64))
		}
	}
	var qlost uint64
	for _, r := range h.file("quarantine.log") {
		if strings.Contains(r["summary"].(string), "not delivered to logstash") {
			qlost += uint64(r["lost"].(float64))
		}
	}
	if lost == 0 || lost != qlost {
		t.Fatalf("gaps: %d in audit.log, %d in quarantine.log", lost, qlost)
	}
	peer.start()
	deadline := time.Now().Add(40 * time.Second)
	for uint64(peer.count())+lost < n {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d + lost %d != %d", peer.count(), lost, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = ids
}

// spool-full=block: the reader slows to ingest.BlockRate, so the container's writes block
// until the destination takes events; nothing is lost.
func TestSpoolFullBlock(t *testing.T) {
	peer := newBeatsPeer(t)
	h := newHarness(t, map[string]string{"logstash-address": "beats://" + peer.addr, "spool-max-size": "1m", "spool-full": "block"})
	const n = 20000 // about 9.5 MB: past the spool, the reader's lead, the pipe and 2 s at ingest.BlockRate
	done := make(chan []string)
	go func() { done <- writeEvents(h, "blk", n) }()
	select {
	case <-done:
		t.Fatal("the container's writes did not block on a full spool")
	case <-time.After(2 * time.Second):
	}
	peer.start()
	var ids []string
	select {
	case ids = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("writes stayed blocked after the destination came back")
	}
	h.stop()
	peer.waitFor(ids, 40*time.Second)
	for _, r := range h.file("audit.log") {
		if _, ok := r["ucp-audit/gap"]; ok {
			t.Fatalf("gap with spool-full=block: %v", r)
		}
	}
	full := 0
	for _, r := range h.file("self") {
		if self := r["ucp-audit/self"].(map[string]any); self["type"] == auditlog.SelfSpoolFull {
			full++
			if d, _ := self["detail"].(string); !strings.Contains(d, "slowed to 1024 KiB/s") {
				t.Errorf("spool-full detail %q does not say how the container is slowed", d)
			}
		}
	}
	if full == 0 {
		t.Error("no spool-full self-audit event while the spool was full")
	}
}

var _ = filepath.Join

// A destination still down when a stopped container's store expires
// (STORE_RETENTION) is given up: its undelivered events are recorded as one
// gap, in audit.log and quarantine.log, and the delivery ends, so nothing
// retries forever and nothing is dropped unrecorded.
func TestDeliveryGivesUpAfterRetention(t *testing.T) {
	peer := newBeatsPeer(t) // never started
	h := newHarnessWith(t, func(o *Options, _ *hooks) { o.Retention = 300 * time.Millisecond },
		map[string]string{"logstash-address": "beats://" + peer.addr})
	const n = 10
	writeEvents(h, "gone", n)
	h.stop()
	gaps := func(name string) (out []map[string]any) {
		for _, r := range h.file(name) {
			if g, ok := r["ucp-audit/gap"].(map[string]any); ok {
				out = append(out, g)
			} else if _, ok := r["summary"]; ok {
				out = append(out, r)
			}
		}
		return out
	}
	// recordGap syncs audit.log, then quarantine.log: wait for both.
	h.waitFor("a gap record for the abandoned events in both files", func() bool {
		return len(gaps("audit.log")) > 0 && len(gaps("quarantine.log")) > 0
	})
	g := gaps("audit.log")
	if len(g) != 1 || g[0]["lost"] != float64(n) || g[0]["first-seq"] != 1.0 || g[0]["last-seq"] != float64(n) ||
		!strings.Contains(g[0]["reason"].(string), "STORE_RETENTION") {
		t.Errorf("gap records: %v", g)
	}
	if q := gaps("quarantine.log"); len(q) != 1 {
		t.Errorf("quarantine.log gap records: %v", q)
	}
	h.waitFor("the delivery to end", func() bool {
		h.d.mu.Lock()
		defer h.d.mu.Unlock()
		return len(h.d.deliveries) == 0
	})
}

// Events spooled for a stopped container whose options no longer parse
// (its TLS CA file is gone) wait undelivered, and the audit trail says so:
// a configuration-rejected event in the default audit file names the
// container and the cause.
func TestResumeWithOptionsThatNoLongerParse(t *testing.T) {
	var pki *peers.PKI
	opts := map[string]string{"syslog-address": "tcp+tls://127.0.0.1:9"}
	h := newHarnessWith(t, func(o *Options, _ *hooks) {
		// Files a log-opt names are below the state directory's certs/.
		certs := filepath.Join(o.StateDir, "certs")
		if err := os.MkdirAll(certs, 0o700); err != nil {
			t.Fatal(err)
		}
		pki = peers.NewPKI(t, certs)
		opts["syslog-tls-ca-cert"] = pki.CAFile
	}, opts)
	writeEvents(h, "waiting", 3)
	h.stop()
	h.d.Close()
	if err := os.Remove(pki.CAFile); err != nil {
		t.Fatal(err)
	}
	d2, err := New(h.d.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Close() })
	h.d = d2
	h.waitFor("a configuration-rejected event", func() bool {
		for _, r := range h.file("self") {
			ev := r["ucp-audit/self"].(map[string]any)
			if ev["type"] == auditlog.SelfConfigRejected && ev["container-id"] == h.id &&
				strings.Contains(ev["detail"].(string), "syslog-tls-ca-cert") && strings.Contains(ev["detail"].(string), "spooled events wait") {
				return true
			}
		}
		return false
	})
}

// TestForwardedRecordsAreLinked: every event a destination receives
// carries the container's chain (n = seq, prev = the hash of the previous
// event), which the receiver can check on the bytes it got and, as
// Logstash parses them, on the fields re-encoded with sorted keys.
// logstashFields are the top-level fields Logstash's inputs add to an
// event (beats, http, tcp; ECS or not), which a receiver drops before it
// checks the forwarded chain (docs/destinations.md lists the same). None is
// a field of an audit event.
var logstashFields = []string{"@timestamp", "@version", "agent", "ecs", "event", "headers", "host", "http", "input", "log", "port", "tags", "url", "user_agent"}

// logstashAdds is what Logstash adds to an event, as its json output shows.
var logstashAdds = map[string]any{
	"@timestamp": "2026-12-04T10:00:00.000Z", "@version": "1", "tags": []any{"beats_input_raw_event"},
	"host": map[string]any{"name": "node-1"}, "event": map[string]any{"original": "{…}"},
	"agent": map[string]any{"type": "ucp-audit"}, "ecs": map[string]any{"version": "8.0.0"}, "input": map[string]any{"type": "beats"},
	"http": map[string]any{"method": "POST"}, "url": map[string]any{"path": "/"}, "user_agent": map[string]any{"original": "Go-http-client/1.1"},
	"headers": map[string]any{"content_type": "application/x-ndjson"}, "log": map[string]any{"offset": 0}, "port": json.Number("5044"),
}

func TestForwardedRecordsAreLinked(t *testing.T) {
	peer := newBeatsPeer(t)
	peer.start()
	h := newHarness(t, map[string]string{"logstash-address": "beats://" + peer.addr})
	ids := writeEvents(h, "link", 50)
	h.write("stdout", auditLine("html-<&>", "/v1.41/x?a=1&b=<2>"))
	ids = append(ids, "html-<&>")
	h.stop()
	peer.waitFor(ids, 10*time.Second)
	peer.mu.Lock()
	defer peer.mu.Unlock()
	var prev [32]byte
	for i, raw := range peer.raw {
		p, l, err := chain.ParseLine(raw)
		if err != nil {
			t.Fatalf("record %d: %v: %s", i, err, raw)
		}
		if l.N != uint64(i+1) || l.Prev != prev || !l.Valid(p) {
			t.Fatalf("record %d: n %d, prev %x (want %x), valid %v", i, l.N, l.Prev, prev, l.Valid(p))
		}
		// As Logstash sees it: fields, with those its inputs add (beats,
		// http, tcp). Without those and the chain field, re-encoded
		// canonically, they are p: what docs/destinations.md tells a
		// receiver to do.
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		for k, v := range logstashAdds {
			m[k] = v
		}
		for _, k := range append(logstashFields, "ucp-audit/chain") {
			delete(m, k)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
		if got := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); chain.Sum(l.Prev, l.N, got) != l.Hash {
			t.Fatalf("record %d: the fields re-encoded do not hash to the link:\n%s\n%s", i, got, p)
		}
		prev = l.Hash
	}
}
