package sinktest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
)

// Peer is a real receiver on loopback that a Forwarder under test delivers
// to (tests/peers has one for each protocol).
type Peer interface {
	// Events returns what the peer has taken so far, one string per event
	// as Forwarder.Message renders it, in arrival order, duplicates
	// included. A peer that acknowledges takes an event before it
	// acknowledges it.
	Events() []string
	// Stop stops the peer and closes its connections; Start starts it
	// again on the same address. Events survive both.
	Stop()
	Start()
}

// Forwarder is the conformance suite of a sink.Forwarder, run against a
// real peer on loopback. Each destination runs it for each of its
// transports, as moby's log drivers run loggertest:
//
//	sinktest.Forwarder{Open: …}.Run(t)
//
// It checks what the Forwarder contract promises: Send returns nil only
// once the peer has every event (at once, for a Forwarder that reports
// Acknowledged); a batch sent while the peer is down fails and goes
// through once it is back, with nothing lost; Close makes a Send in
// progress return soon and leaves no goroutine behind; an event the
// transport can never carry is refused with a *sink.TooLargeError naming
// its Seq, and nothing of its batch is sent.
type Forwarder struct {
	// Open starts a peer and returns it with a Forwarder to it; t.Cleanup
	// stops both.
	Open func(t *testing.T) (sink.Forwarder, Peer)
	// Message renders an event as the peer records it; nil means its Line.
	Message func(ev sink.Event) string
	// Lossy says that the transport loses events without an error when
	// the peer is down (datagrams): the retry check is skipped.
	Lossy bool
	// Stalled returns a Forwarder to a peer that accepts connections and
	// never reads or answers (peers.Silent), and a batch whose Send to it
	// blocks (in the TLS handshake, waiting for an answer, or once the
	// socket buffers are full). nil when the transport never blocks
	// (datagrams): Close then races a Send to a live peer.
	Stalled func(t *testing.T) (sink.Forwarder, []sink.Event)
	// TooLarge returns an event with the given Seq that the transport can
	// never carry; nil when it can carry any.
	TooLarge func(seq uint64) sink.Event
}

// Run runs every check as a subtest.
func (s Forwarder) Run(t *testing.T) {
	t.Run("Ack", s.TestAck)
	t.Run("Retry", s.TestRetry)
	t.Run("CloseWhileSending", s.TestCloseWhileSending)
	t.Run("TooLarge", s.TestTooLarge)
}

// Events returns n events numbered from first: compact JSON lines of
// various lengths, up to about 4 KB, holding characters that a transport
// re-encoding them would change.
func Events(first uint64, n int) []sink.Event {
	evs := make([]sink.Event, n)
	for i := range evs {
		seq := first + uint64(i)
		id := fmt.Sprintf("conformance-%d", seq)
		line := fmt.Sprintf(`{"auditID":%q,"annotations":{"ucp-audit/seq":"%d"},"s":"é <&> \u2028","pad":"%s"}`,
			id, seq, strings.Repeat("x", int(seq*397%4000)))
		evs[i] = sink.Event{Line: []byte(line), AuditID: id, Seq: seq,
			Time: time.Date(2024, 5, 6, 7, 8, 9, int(seq)*1000, time.UTC)}
	}
	return evs
}

// TestAck checks that Send returns nil only once the peer has every event
// of the batch: at once when the Forwarder is Acknowledged, soon otherwise.
func (s Forwarder) TestAck(t *testing.T) {
	f, p := s.Open(t)
	acked := acknowledged(f)
	var want []string
	for _, b := range [][]sink.Event{Events(1, 20), Events(21, 3)} {
		send(t, f, b)
		want = append(want, s.messages(b)...)
		if acked {
			checkEvents(t, "when Send returned", p.Events(), want)
		}
	}
	checkEvents(t, "in the end", waitEvents(t, p, len(want)), want)
}

// TestRetry checks at-least-once delivery across an outage: a batch sent
// while the peer is down fails, and goes through once the peer is back,
// with nothing sent before or during the outage lost.
func (s Forwarder) TestRetry(t *testing.T) {
	if s.Lossy {
		t.Skip("the transport loses events without an error: no retry to check")
	}
	f, p := s.Open(t)
	b1, b2 := Events(1, 5), Events(6, 5)
	send(t, f, b1)
	waitEvents(t, p, len(b1))
	p.Stop()
	time.Sleep(50 * time.Millisecond) // let the peer's close reach the Forwarder
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err := f.Send(ctx, b2)
	cancel()
	if err == nil {
		t.Fatal("Send to a stopped peer returned nil: its events are lost")
	}
	p.Start()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = f.Send(ctx, b2)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Send still fails 20s after the peer came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	want := s.messages(append(b1, b2...))
	if acknowledged(f) {
		checkContains(t, p.Events(), want)
	}
	got, _ := waitFor(p, func(got []string) bool { return containsAll(got, want) })
	checkContains(t, got, want)
}

// TestCloseWhileSending checks that Close makes a Send in progress return
// soon, with an error when the peer never took the batch, that Send after
// Close fails, and that no goroutine is left behind.
func (s Forwarder) TestCloseWhileSending(t *testing.T) {
	var f sink.Forwarder
	var batch []sink.Event
	if s.Stalled != nil {
		f, batch = s.Stalled(t)
	} else {
		f, _ = s.Open(t)
		batch = Events(1, 50)
	}
	before := runtime.NumGoroutine()
	errc := make(chan error, 1)
	go func() { errc <- f.Send(context.Background(), batch) }()
	if s.Stalled != nil {
		time.Sleep(300 * time.Millisecond)
		select {
		case err := <-errc:
			t.Fatalf("Send to a stalled peer returned before Close: %v", err)
		default:
		}
	}
	if err := f.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if s.Stalled != nil && err == nil {
			t.Fatal("Send ended by Close returned nil: the stalled peer took nothing")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Send still running 2s after Close")
	}
	if err := f.Send(context.Background(), Events(100, 1)); err == nil {
		t.Error("Send after Close returned nil")
	}
	var now int
	if !waitUntil(5*time.Second, func() bool { now = runtime.NumGoroutine(); return now <= before }) {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines 5s after Close, %d before Send: one leaked\n%s", now, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestTooLarge checks that an event the transport can never carry is
// refused with a *sink.TooLargeError naming its Seq, that nothing of its
// batch is sent, and that the Forwarder goes on working.
func (s Forwarder) TestTooLarge(t *testing.T) {
	if s.TooLarge == nil {
		t.Skip("the transport carries any event")
	}
	f, p := s.Open(t)
	bad := []sink.Event{Events(1, 1)[0], s.TooLarge(2), Events(3, 1)[0]}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := f.Send(ctx, bad)
	var tl *sink.TooLargeError
	if !errors.Is(err, sink.ErrTooLarge) || !errors.As(err, &tl) || tl.Seq != 2 || !strings.Contains(err.Error(), "seq 2") {
		t.Fatalf("Send with an event the transport cannot carry = %v, want a *sink.TooLargeError for seq 2", err)
	}
	good := Events(4, 1)
	send(t, f, good)
	waitEvents(t, p, 1)
	time.Sleep(50 * time.Millisecond) // anything of the refused batch would be here by now
	checkEvents(t, "after a refused batch", p.Events(), s.messages(good))
}

func (s Forwarder) messages(evs []sink.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		if s.Message != nil {
			out[i] = s.Message(ev)
		} else {
			out[i] = string(ev.Line)
		}
	}
	return out
}

func acknowledged(f sink.Forwarder) bool {
	a, ok := f.(sink.Acknowledged)
	return ok && a.Acknowledged()
}

func send(t *testing.T, f sink.Forwarder, batch []sink.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Send(ctx, batch); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// waitFor polls p's events until done holds or 10s pass.
func waitFor(p Peer, done func([]string) bool) ([]string, bool) {
	var got []string
	ok := waitUntil(10*time.Second, func() bool { got = p.Events(); return done(got) })
	return got, ok
}

func waitEvents(t *testing.T, p Peer, n int) []string {
	t.Helper()
	got, ok := waitFor(p, func(got []string) bool { return len(got) >= n })
	if !ok {
		t.Fatalf("the peer took %d events, want %d", len(got), n)
	}
	return got
}

func waitUntil(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// checkEvents checks that the peer took exactly want, in order.
func checkEvents(t *testing.T, when string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("the peer took %d events %s, want %d", len(got), when, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d %s:\n got %.200q\nwant %.200q", i, when, got[i], want[i])
		}
	}
}

func containsAll(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// checkContains checks that the peer took every event of want, at least
// once (at-least-once: duplicates are allowed).
func checkContains(t *testing.T, got, want []string) {
	t.Helper()
	for i, w := range want {
		if !slices.Contains(got, w) {
			t.Fatalf("event %d of %d never reached the peer (it took %d): %.200q", i, len(want), len(got), w)
		}
	}
}
