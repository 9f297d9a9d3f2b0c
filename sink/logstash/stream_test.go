package logstash

import (
	"context"
	"crypto/tls"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	lumbersrv "github.com/elastic/go-lumber/server/v2"

	"github.com/ucp-audit/ucp-audit/tests/peers"
)

func TestStreamDeliversByteExact(t *testing.T) {
	pki := peers.NewPKI(t, t.TempDir())
	for _, tc := range []struct {
		scheme    string
		serverTLS *tls.Config
		clientTLS *tls.Config
	}{
		{"tcp", nil, nil},
		{"tls", pki.ServerTLS(), pki.ClientTLS()},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			peer := startLines(t, tc.serverTLS)
			f := mustNew(t, tc.scheme+"://"+peer.Addr, Options{TLS: tc.clientTLS, Timeout: 5 * time.Second})
			if f.(interface{ Acknowledged() bool }).Acknowledged() {
				t.Fatal("json_lines transport claims acknowledgement")
			}
			batch := events(20)
			if err := f.Send(context.Background(), batch); err != nil {
				t.Fatalf("Send: %v", err)
			}
			batch2 := events(3)
			if err := f.Send(context.Background(), batch2); err != nil {
				t.Fatalf("Send: %v", err)
			}
			want := append(lines(batch), lines(batch2)...)
			checkLinesEqual(t, peer.Wait(t, len(want), 10*time.Second), want)

			// The peer drops the connection between batches (a Logstash
			// restart): the next batch goes through on a new connection.
			if runtime.GOOS == "linux" {
				peer.DropConns()
				time.Sleep(50 * time.Millisecond)
				batch3 := events(2)
				if err := f.Send(context.Background(), batch3); err != nil {
					t.Fatalf("Send after the peer closed: %v", err)
				}
				want = append(want, lines(batch3)...)
				checkLinesEqual(t, peer.Wait(t, len(want), 10*time.Second), want)
			}
		})
	}
}

func TestStreamServerDown(t *testing.T) {
	peer := startLines(t, nil)
	f := mustNew(t, "tcp://"+peer.Addr, Options{Timeout: 5 * time.Second})
	if err := f.Send(context.Background(), events(1)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	peer.Stop()
	time.Sleep(50 * time.Millisecond)
	if _, err := sendWithin(t, f, context.Background(), events(1), 2*time.Second); err == nil {
		t.Fatal("Send to a stopped server succeeded")
	}
}

func TestStreamWriteTimeout(t *testing.T) {
	peer := peers.StartSilent(t, "tcp") // accepts, never reads
	f := mustNew(t, "tcp://"+peer.Addr, Options{Timeout: 300 * time.Millisecond})
	_, err := sendWithin(t, f, context.Background(), sizedEvents(64, 1<<20), 5*time.Second)
	if err == nil {
		t.Fatal("64 MB written to a peer that reads nothing")
	}
	t.Logf("%v", err)
}

// Close makes a Send blocked in each transport's slowest step return
// promptly, with ErrClosed.
func TestCloseDuringSend(t *testing.T) {
	pki := peers.NewPKI(t, t.TempDir())
	long := Options{Timeout: 30 * time.Second}
	withTLS := Options{Timeout: long.Timeout, TLS: pki.ClientTLS()}
	// silent starts a peer that accepts connections and never reads or
	// answers.
	silent := func(t *testing.T, scheme string, o Options) (string, Options, *peers.Silent) {
		p := peers.StartSilent(t, "tcp")
		return scheme + "://" + p.Addr, o, p
	}
	cases := []struct {
		name  string
		setup func(t *testing.T) (addr string, o Options, s *peers.Silent)
		batch int    // events of 1 MB; 0 means events(5)
		in    string // the step Send must be blocked in, as its error says
	}{
		{"beats waiting for ACK", func(t *testing.T) (string, Options, *peers.Silent) {
			peer := startManualBeats(t, lumbersrv.Keepalive(50*time.Millisecond))
			go func() { peer.Receive(10 * time.Second) }()
			return "beats://" + peer.Addr, long, nil
		}, 0, "not acknowledged"},
		{"beats+tls in handshake", func(t *testing.T) (string, Options, *peers.Silent) {
			return silent(t, "beats+tls", withTLS)
		}, 0, "connect"},
		{"http waiting for the answer", func(t *testing.T) (string, Options, *peers.Silent) {
			addr, o, p := silent(t, "http", long)
			return addr + "/", o, p
		}, 0, "Post"},
		{"tcp write blocked", func(t *testing.T) (string, Options, *peers.Silent) {
			return silent(t, "tcp", long)
		}, 64, "write"},
		{"tls in handshake", func(t *testing.T) (string, Options, *peers.Silent) {
			return silent(t, "tls", withTLS)
		}, 0, "connect"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, o, peer := tc.setup(t)
			f := mustNew(t, addr, o)
			batch := events(5)
			if tc.batch > 0 {
				batch = sizedEvents(tc.batch, 1<<20)
			}
			errc := make(chan error, 1)
			go func() { errc <- f.Send(context.Background(), batch) }()
			// Building a 64 MB batch is slow under -race, and a busy
			// machine is slower still: wait for the connection before
			// giving Send time to block in its step.
			if strings.Contains(tc.in, "write") || strings.Contains(tc.in, "connect") {
				if !peer.WaitAccepted(30 * time.Second) {
					t.Fatal("Send never connected")
				}
			}
			time.Sleep(300 * time.Millisecond)
			select {
			case err := <-errc:
				t.Fatalf("Send returned before Close: %v", err)
			default:
			}
			start := time.Now()
			if err := f.Close(); err != nil {
				t.Logf("Close: %v", err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), tc.in) {
					t.Fatalf("Send ended by Close: %v, want ErrClosed in %q", err, tc.in)
				}
				t.Logf("after %v: %v", time.Since(start), err)
			case <-time.After(2 * time.Second):
				t.Fatal("Send still blocked 2s after Close")
			}
			if err := f.Send(context.Background(), events(1)); !errors.Is(err, ErrClosed) {
				t.Fatalf("Send after Close: %v, want ErrClosed", err)
			}
		})
	}
}
