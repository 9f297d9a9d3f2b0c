package syslog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

var (
	_ sink.Forwarder    = (*forwarder)(nil)
	_ sink.Acknowledged = (*forwarder)(nil)
)

func batchOf(first uint64, n int) []sink.Event {
	b := make([]sink.Event, n)
	for i := range b {
		b[i] = testEvent(first + uint64(i))
	}
	return b
}

func mustNew(t *testing.T, addr string, mod ...func(*Options)) sink.Forwarder {
	t.Helper()
	a, err := ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	// A receiver that takes messages as long as the plugin's longest line:
	// the stall tests send 16 MiB. TestMaxMessageSize checks the default.
	o := Options{Address: a, Facility: DefaultFacility, Hostname: "node-1", AppName: "ucp-audit", MaxMessageSize: MaxMaxMessageSize}
	for _, m := range mod {
		m(&o)
	}
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func wantMessages(o Options, batch []sink.Event) []string {
	var out []string
	for _, ev := range batch {
		out = append(out, string(AppendMessage(nil, o, ev)))
	}
	return out
}

func defaultOpts() Options {
	return Options{Facility: DefaultFacility, Hostname: "node-1", AppName: "ucp-audit"}
}

func checkMessages(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("message %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}

// wait returns what p received once it holds at least n messages, or
// fails after 10s.
func wait(t *testing.T, p *peers.Recorder, n int) []string {
	t.Helper()
	return p.Wait(t, n, 10*time.Second)
}

func TestTCPOctetCounting(t *testing.T) {
	c := peers.StartStream(t, "tcp", peers.OctetCounted)
	f := mustNew(t, "tcp://"+c.Addr)
	if ack, ok := f.(sink.Acknowledged); !ok || ack.Acknowledged() {
		t.Errorf("tcp forwarder: Acknowledged() must be false")
	}
	b1 := batchOf(1, 10)
	big := testEvent(11)
	big.Line = []byte(`{"big":"` + strings.Repeat("x", 200<<10) + `"}`)
	b2 := append(batchOf(12, 3), big)
	for _, b := range [][]sink.Event{b1, b2} {
		if err := f.Send(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	want := append(wantMessages(defaultOpts(), b1), wantMessages(defaultOpts(), b2)...)
	checkMessages(t, wait(t, &c.Recorder, len(want)), want)
	if c.Accepted() != 1 {
		t.Errorf("%d connections, want 1", c.Accepted())
	}
}

// A receiver that closed the idle connection (restart) is noticed before
// writing: the next Send reconnects and delivers without losing the batch.
func TestTCPReconnectsAfterPeerClose(t *testing.T) {
	c := peers.NewStream(t, "tcp", peers.OctetCounted)
	c.CloseAfter = 2 // closes each connection after 2 messages
	c.Start()
	f := mustNew(t, "tcp://"+c.Addr)
	for i := range 3 {
		b := batchOf(uint64(1+2*i), 2)
		if err := f.Send(context.Background(), b); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		wait(t, &c.Recorder, 2*(i+1))
		time.Sleep(20 * time.Millisecond) // let the FIN arrive
	}
	if c.Accepted() != 3 {
		t.Errorf("%d connections, want 3", c.Accepted())
	}
}

func TestTLSOctetCounting(t *testing.T) {
	pki := peers.NewPKI(t, t.TempDir())
	c := peers.NewStream(t, "tcp", peers.OctetCounted)
	c.TLS = pki.ServerTLS()
	c.Start()
	f := mustNew(t, "tcp+tls://"+c.Addr, func(o *Options) { o.TLS = pki.ClientTLS() })
	b := batchOf(1, 5)
	if err := f.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	checkMessages(t, wait(t, &c.Recorder, 5), wantMessages(defaultOpts(), b))
	b2 := batchOf(6, 5)
	if err := f.Send(context.Background(), b2); err != nil {
		t.Fatal(err)
	}
	wait(t, &c.Recorder, 10)
	if c.Accepted() != 1 {
		t.Errorf("%d connections, want 1 (the idle check must not drop a healthy TLS connection)", c.Accepted())
	}

	// Untrusted server: the handshake fails and names the destination.
	f2 := mustNew(t, "tcp+tls://"+c.Addr)
	err := f2.Send(context.Background(), b)
	if err == nil || !strings.Contains(err.Error(), `syslog "tcp+tls://127.0.0.1:`) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Send to an untrusted server = %v", err)
	}
}

func TestUnixStream(t *testing.T) {
	c := peers.StartStream(t, "unix", peers.OctetCounted)
	f := mustNew(t, "unix://"+c.Addr, func(o *Options) { o.Format = FormatRFC3164 })
	b := batchOf(1, 20)
	if err := f.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	o := defaultOpts()
	o.Format = FormatRFC3164
	checkMessages(t, wait(t, &c.Recorder, 20), wantMessages(o, b))
}

func testDatagram(t *testing.T, network string) {
	c := peers.StartDatagram(t, network)
	addr := network + "://" + c.Addr
	f := mustNew(t, addr, func(o *Options) { o.MaxUDPSize = 2000; o.Format = FormatRFC5424Micro })
	o := defaultOpts()
	o.Format = FormatRFC5424Micro
	b := batchOf(1, 10)
	if err := f.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	checkMessages(t, wait(t, &c.Recorder, 10), wantMessages(o, b))

	// One event too large: nothing of the batch is sent.
	big := testEvent(12)
	big.Line = []byte(`{"x":"` + strings.Repeat("y", 2000) + `"}`)
	bad := []sink.Event{testEvent(11), big, testEvent(13)}
	err := f.Send(context.Background(), bad)
	var tl *sink.TooLargeError
	if !errors.Is(err, sink.ErrTooLarge) || !errors.As(err, &tl) {
		t.Fatalf("Send with a large event = %v, want a *sink.TooLargeError", err)
	}
	if tl.Seq != 12 || tl.Limit != 2000 || tl.Size <= 2000 || !strings.Contains(err.Error(), "seq 12") {
		t.Errorf("TooLargeError = %+v (%v)", tl, err)
	}
	if !strings.HasPrefix(err.Error(), fmt.Sprintf("syslog %q: ", addr)) {
		t.Errorf("error %q does not name the destination", err)
	}
	// The forwarder still works, and nothing of the bad batch arrived.
	b2 := batchOf(20, 1)
	if err := f.Send(context.Background(), b2); err != nil {
		t.Fatal(err)
	}
	got := wait(t, &c.Recorder, 11)
	time.Sleep(50 * time.Millisecond)
	got = wait(t, &c.Recorder, 11)
	checkMessages(t, got, append(wantMessages(o, b), wantMessages(o, b2)...))
}

func TestUDP(t *testing.T) { testDatagram(t, "udp") }

func TestUnixgram(t *testing.T) { testDatagram(t, "unixgram") }

func TestDefaultMaxUDPSize(t *testing.T) {
	c := peers.StartDatagram(t, "udp")
	f := mustNew(t, "udp://"+c.Addr, func(o *Options) { o.Hostname = "" })
	ev := testEvent(1)
	o := defaultOpts()
	o.Hostname = ""
	hdr := len(AppendMessage(nil, o, sink.Event{AuditID: ev.AuditID, Seq: 1, Time: ev.Time}))
	ev.Line = bytes.Repeat([]byte("x"), 65507-hdr) // exactly the limit
	if err := f.Send(context.Background(), []sink.Event{ev}); err != nil {
		t.Fatalf("Send of a 65507-byte datagram: %v", err)
	}
	if got := wait(t, &c.Recorder, 1); len(got[0]) != 65507 {
		t.Errorf("received %d bytes", len(got[0]))
	}
	ev.Line = append(ev.Line, 'x')
	if err := f.Send(context.Background(), []sink.Event{ev}); !errors.Is(err, sink.ErrTooLarge) {
		t.Errorf("Send of 65508 bytes = %v, want ErrTooLarge", err)
	}
}

func TestNewValidates(t *testing.T) {
	good, _ := ParseAddress("tcp://127.0.0.1:1") // nothing listens: not an error for New
	for _, tt := range []struct {
		o    Options
		want string
	}{
		{Options{}, "unknown address scheme"},
		{Options{Address: Address{Scheme: "tcp", Network: "udp", Addr: "h:1"}}, "does not match"},
		{Options{Address: Address{Scheme: "tcp"}}, "missing address"},
		{Options{Address: Address{Scheme: "tcp", Addr: "nohostport"}}, "missing port"},
		{Options{Address: good, Facility: 24}, "facility 24"},
		{Options{Address: good, Format: 7}, "unknown format"},
		{Options{Address: good, WriteTimeout: -1}, "negative"},
	} {
		if _, err := New(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want error containing %q", tt.o, err, tt.want)
		}
	}
	f, err := New(Options{Address: good})
	if err != nil {
		t.Fatalf("New with an unreachable destination: %v", err)
	}
	err = f.Send(context.Background(), batchOf(1, 1))
	if err == nil || !strings.HasPrefix(err.Error(), `syslog "tcp://127.0.0.1:1": `) {
		t.Errorf("Send to a closed port = %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := f.Send(context.Background(), batchOf(1, 1)); !errors.Is(err, errClosed) {
		t.Errorf("Send after Close = %v", err)
	}
}

// A receiver that never reads: Send gives up when ctx ends, and Close
// makes an in-flight Send return.
func TestTCPStalledReceiver(t *testing.T) {
	peer := peers.StartSilent(t, "tcp") // never reads
	f := mustNew(t, "tcp://"+peer.Addr)
	big := testEvent(1)
	big.Line = bytes.Repeat([]byte("x"), 16<<20) // more than the socket buffers
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := f.Send(ctx, []sink.Event{big})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("Send = %v after %v, want DeadlineExceeded after about 300ms", err, time.Since(start))
	}

	done := make(chan error, 1)
	go func() { done <- f.Send(context.Background(), []sink.Event{big}) }()
	time.Sleep(200 * time.Millisecond)
	f.Close()
	select {
	case err := <-done:
		if !errors.Is(err, errClosed) {
			t.Errorf("in-flight Send after Close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not make the in-flight Send return")
	}
}

// A message longer than MaxMessageSize is never sent to be cut by the
// receiver: Send refuses the batch, naming the event, and the caller
// records it as lost for this destination.
func TestMaxMessageSize(t *testing.T) {
	for _, tc := range []struct {
		max, size int
		refused   bool
	}{
		{0, DefaultMaxMessageSize - 1024, false},
		{0, DefaultMaxMessageSize + 1, true},
		{4 << 20, 1 << 20, false},
		{1 << 10, 2 << 10, true},
	} {
		p := peers.StartStream(t, "tcp", peers.OctetCounted)
		f := mustNew(t, "tcp://"+p.Addr, func(o *Options) { o.MaxMessageSize = tc.max })
		big := sink.Event{Line: []byte(`{"x":"` + strings.Repeat("a", tc.size) + `"}`), Seq: 7, Time: time.Now()}
		err := f.Send(context.Background(), []sink.Event{{Line: []byte(`{}`), Seq: 6, Time: time.Now()}, big})
		var tl *sink.TooLargeError
		if tc.refused != errors.As(err, &tl) || (tc.refused && (tl.Seq != 7 || !errors.Is(err, sink.ErrTooLarge))) {
			t.Errorf("max %d, event of %d bytes: %v", tc.max, tc.size, err)
		}
		if tc.refused && p.Count() != 0 {
			t.Errorf("max %d: %d messages sent from a refused batch", tc.max, p.Count())
		}
	}
}
