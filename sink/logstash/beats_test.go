package logstash

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	lumbersrv "github.com/elastic/go-lumber/server/v2"

	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

func TestBeatsDeliversByteExact(t *testing.T) {
	pki := peers.NewPKI(t, t.TempDir())
	for _, tc := range []struct {
		name   string
		scheme string
		level  int
	}{
		{"beats", "beats", 0},
		{"beats-uncompressed", "beats", NoCompression},
		{"beats-level9", "beats", 9},
		{"beats+tls", "beats+tls", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var serverTLS, clientTLS = pki.ServerTLS(), pki.ClientTLS()
			if tc.scheme == "beats" {
				serverTLS, clientTLS = nil, nil
			}
			peer := startBeats(t, serverTLS)
			f := mustNew(t, tc.scheme+"://"+peer.Addr, Options{TLS: clientTLS, CompressionLevel: tc.level, Timeout: 5 * time.Second})
			batch := events(20)
			if err := f.Send(context.Background(), batch); err != nil {
				t.Fatalf("Send: %v", err)
			}
			// Send returned nil: every event was ACKed, so the peer has them.
			checkLinesEqual(t, peer.Events(), lines(batch))
			// A second batch reuses the connection.
			batch2 := events(3)
			if err := f.Send(context.Background(), batch2); err != nil {
				t.Fatalf("second Send: %v", err)
			}
			checkLinesEqual(t, peer.Events(), append(lines(batch), lines(batch2)...))
		})
	}
}

// With go-lumber's own JSON decoding, as Logstash does, the decoded objects
// equal the sent ones.
func TestBeatsDecodedObjects(t *testing.T) {
	peer := startManualBeats(t, lumbersrv.JSONDecoder(json.Unmarshal))
	got := make(chan []any, 1)
	go func() {
		b := peer.Receive(5 * time.Second)
		got <- b.Events
		b.ACK()
	}()
	f := mustNew(t, "beats://"+peer.Addr, Options{Timeout: 5 * time.Second})
	batch := events(10)
	if err := f.Send(context.Background(), batch); err != nil {
		t.Fatalf("Send: %v", err)
	}
	evs := <-got
	if len(evs) != len(batch) {
		t.Fatalf("got %d events, want %d", len(evs), len(batch))
	}
	for i, ev := range batch {
		var want any
		if err := json.Unmarshal(ev.Line, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(evs[i], want) {
			t.Fatalf("event %d: got %.200v, want %.200v", i, evs[i], want)
		}
	}
}

// A Logstash that takes its time but sends keep-alive ACKs meanwhile (as
// Logstash does while its pipeline is blocked) must not fail the batch,
// even when that takes several times Timeout.
func TestBeatsLateAckWithKeepalive(t *testing.T) {
	peer := startManualBeats(t, lumbersrv.Keepalive(50*time.Millisecond))
	f := mustNew(t, "beats://"+peer.Addr, Options{Timeout: 400 * time.Millisecond})
	const delay = 1500 * time.Millisecond
	go func() {
		b := peer.Receive(5 * time.Second)
		time.Sleep(delay)
		b.ACK()
	}()
	took, err := sendWithin(t, f, context.Background(), events(5), 10*time.Second)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if took < delay {
		t.Fatalf("Send returned after %v, before the ACK (%v)", took, delay)
	}
}

// An ACK that comes late but within Timeout, without keep-alives.
func TestBeatsLateAckWithinTimeout(t *testing.T) {
	peer := startManualBeats(t, lumbersrv.Keepalive(0))
	f := mustNew(t, "beats://"+peer.Addr, Options{Timeout: 5 * time.Second})
	const delay = 500 * time.Millisecond
	go func() {
		b := peer.Receive(5 * time.Second)
		time.Sleep(delay)
		b.ACK()
	}()
	took, err := sendWithin(t, f, context.Background(), events(5), 5*time.Second)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if took < delay {
		t.Fatalf("Send returned after %v, before the ACK (%v)", took, delay)
	}
}

func TestBeatsNeverAcks(t *testing.T) {
	t.Run("silent peer fails by Timeout", func(t *testing.T) {
		peer := startManualBeats(t, lumbersrv.Keepalive(0))
		go func() { peer.Receive(5 * time.Second) }() // take it, never ACK
		f := mustNew(t, "beats://"+peer.Addr, Options{Timeout: 300 * time.Millisecond})
		took, err := sendWithin(t, f, context.Background(), events(5), 3*time.Second)
		if err == nil {
			t.Fatal("Send succeeded without an ACK")
		}
		if !errors.Is(err, ErrNotAcknowledged) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("error %v: want ErrNotAcknowledged and a deadline error", err)
		}
		if !strings.Contains(err.Error(), `logstash "beats://`+peer.Addr+`"`) || !strings.Contains(err.Error(), "0 of 5 events acknowledged") {
			t.Fatalf("error %q does not name the destination and the count", err)
		}
		if took < 300*time.Millisecond {
			t.Fatalf("failed after %v, before Timeout", took)
		}
	})
	t.Run("keep-alive peer fails by ctx", func(t *testing.T) {
		peer := startManualBeats(t, lumbersrv.Keepalive(50*time.Millisecond))
		go func() { peer.Receive(5 * time.Second) }()
		f := mustNew(t, "beats://"+peer.Addr, Options{Timeout: 300 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
		defer cancel()
		took, err := sendWithin(t, f, ctx, events(5), 3*time.Second)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrNotAcknowledged) {
			t.Fatalf("error %v: want context.DeadlineExceeded and ErrNotAcknowledged", err)
		}
		if took < 700*time.Millisecond { // well past Timeout (300ms)
			t.Fatalf("failed after %v: keep-alives should have held it until ctx ended", took)
		}
	})
}

func TestBeatsReconnects(t *testing.T) {
	pki := peers.NewPKI(t, t.TempDir())
	t.Run("beats", func(t *testing.T) { testBeatsReconnects(t, "beats", nil, nil) })
	t.Run("beats+tls", func(t *testing.T) { testBeatsReconnects(t, "beats+tls", pki.ServerTLS(), pki.ClientTLS()) })
}

func testBeatsReconnects(t *testing.T, scheme string, serverTLS, clientTLS *tls.Config) {
	peer := startBeats(t, serverTLS)
	// since returns what the peer received after it had n events.
	since := func(n int) []string { return peer.Events()[n:] }
	f := mustNew(t, scheme+"://"+peer.Addr, Options{Timeout: 2 * time.Second, TLS: clientTLS})
	b1 := events(3)
	if err := f.Send(context.Background(), b1); err != nil {
		t.Fatalf("Send: %v", err)
	}
	peer.Stop()

	// Server down: fails fast (connection refused), not after Timeout.
	_, err := sendWithin(t, f, context.Background(), events(2), time.Second)
	if err == nil {
		t.Fatal("Send to a stopped server succeeded")
	}
	t.Logf("server down: %v", err)

	// Up again: the next Send redials and succeeds.
	peer.Start()
	n := peer.Count()
	b2 := events(4)
	if err := f.Send(context.Background(), b2); err != nil {
		t.Fatalf("Send after restart: %v", err)
	}
	checkLinesEqual(t, since(n), lines(b2))

	// Restarted between two batches: the connection the server closed is
	// noticed before writing, so the batch goes through at the first try.
	if runtime.GOOS == "linux" {
		peer.Stop()
		peer.Start()
		n := peer.Count()
		time.Sleep(50 * time.Millisecond) // let the close reach us
		b3 := events(2)
		if err := f.Send(context.Background(), b3); err != nil {
			t.Fatalf("Send after a restart between batches: %v", err)
		}
		checkLinesEqual(t, since(n), lines(b3))
	}
}

func TestBeatsEmptyBatchDoesNotDial(t *testing.T) {
	f := mustNew(t, "beats://127.0.0.1:1", Options{})
	if err := f.Send(context.Background(), nil); err != nil {
		t.Fatalf("Send(nil): %v", err)
	}
}

func TestBeatsBadCertificate(t *testing.T) {
	pki := peers.NewPKI(t, t.TempDir())
	peer := startBeats(t, pki.ServerTLS())
	f := mustNew(t, "beats+tls://"+peer.Addr, Options{Timeout: 2 * time.Second}) // system roots: does not trust the test CA
	_, err := sendWithin(t, f, context.Background(), events(1), 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Send to an untrusted server: %v, want a certificate error", err)
	}
}

var _ sink.Forwarder = (*beats)(nil)
