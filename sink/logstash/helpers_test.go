package logstash

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	golog "github.com/elastic/go-lumber/log"
	lumbersrv "github.com/elastic/go-lumber/server/v2"

	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

type quietLog struct{}

func (quietLog) Printf(string, ...interface{}) {}
func (quietLog) Println(...interface{})        {}
func (quietLog) Print(...interface{})          {}

func TestMain(m *testing.M) {
	golog.Logger = quietLog{} // go-lumber's server logs every connection
	os.Exit(m.Run())
}

// events returns n events; event 1 (when n > 1) is 60 KB. Lines hold
// characters json.Marshal would escape (<, >, &) and non-ASCII, so that a
// re-encoding transport would be caught.
func events(n int) []sink.Event {
	evs := make([]sink.Event, n)
	for i := range evs {
		pad := strings.Repeat("x", i%50)
		if i == 1 {
			pad = strings.Repeat("0123456789abcdef", 60*1024/16)
		}
		line := fmt.Sprintf(`{"annotations":{"ucp-audit/seq":"%d"},"auditID":"id-%d","requestObject":{"Data":"<redacted>","q":"a&b","u":"é✓"},"pad":"%s"}`, i+1, i, pad)
		evs[i] = sink.Event{Line: []byte(line), AuditID: fmt.Sprintf("id-%d", i), Seq: uint64(i + 1), Time: time.Unix(1700000000, 0)}
	}
	return evs
}

// sizedEvents returns n events of about size bytes each.
func sizedEvents(n, size int) []sink.Event {
	evs := make([]sink.Event, n)
	for i := range evs {
		head := fmt.Sprintf(`{"auditID":"id-%d","pad":"`, i)
		line := head + strings.Repeat("y", max(0, size-len(head)-2)) + `"}`
		evs[i] = sink.Event{Line: []byte(line), AuditID: fmt.Sprintf("id-%d", i), Seq: uint64(i + 1)}
	}
	return evs
}

func lines(evs []sink.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = string(ev.Line)
	}
	return out
}

func checkLinesEqual(t testing.TB, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d differs:\n got %.200q (%d bytes)\nwant %.200q (%d bytes)", i, got[i], len(got[i]), want[i], len(want[i]))
		}
	}
}

// startBeats starts a Beats peer (go-lumber's server) that records each
// data frame's bytes and acknowledges every batch; with serverTLS, over
// TLS.
func startBeats(t testing.TB, serverTLS *tls.Config) *peers.Beats {
	t.Helper()
	p := peers.NewBeats(t)
	p.TLS = serverTLS
	p.Start()
	return p
}

// startManualBeats starts a Beats peer that leaves every batch to the test
// (peer.Receive, b.ACK), with go-lumber server options.
func startManualBeats(t testing.TB, opts ...lumbersrv.Option) *peers.Beats {
	t.Helper()
	p := peers.NewBeats(t)
	p.Manual, p.Options = true, opts
	p.Start()
	return p
}

// startLines starts a Logstash tcp input (json_lines) stand-in; with
// serverTLS, over TLS.
func startLines(t testing.TB, serverTLS *tls.Config) *peers.Stream {
	t.Helper()
	p := peers.NewStream(t, "tcp", peers.Lines)
	p.TLS = serverTLS
	p.Start()
	return p
}

func mustNew(t testing.TB, addr string, o Options) sink.Forwarder {
	t.Helper()
	a, err := ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	o.Address = a
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func sendWithin(t testing.TB, f sink.Forwarder, ctx context.Context, batch []sink.Event, limit time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	err := f.Send(ctx, batch)
	took := time.Since(start)
	if took > limit {
		t.Fatalf("Send took %v, want under %v (err %v)", took, limit, err)
	}
	return took, err
}
