package logstash

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/sink/sinktest"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// Every transport runs the Forwarder conformance suite against a loopback
// peer: go-lumber's server for beats, an HTTP server for http, a
// json_lines receiver for tcp, each also over TLS.
func TestForwarderConformance(t *testing.T) {
	pki := peers.NewPKI(t, t.TempDir())
	// serverTLS is the peer's TLS for a TLS scheme, nil otherwise.
	serverTLS := func(scheme string) *tls.Config {
		if a, _ := ParseAddress(scheme + "://h:1"); a.isTLS() {
			return pki.ServerTLS()
		}
		return nil
	}
	opts := func(timeout time.Duration) Options { return Options{Timeout: timeout, TLS: pki.ClientTLS()} }
	open := func(scheme string) func(t *testing.T) (sink.Forwarder, sinktest.Peer) {
		return func(t *testing.T) (sink.Forwarder, sinktest.Peer) {
			switch scheme {
			case SchemeBeats, SchemeBeatsTLS:
				p := startBeats(t, serverTLS(scheme))
				return mustNew(t, scheme+"://"+p.Addr, opts(5*time.Second)), p
			case SchemeHTTP, SchemeHTTPS:
				p := peers.NewHTTP(t)
				p.TLS = serverTLS(scheme)
				p.Start()
				return mustNew(t, p.URL(), opts(5*time.Second)), p
			default:
				p := startLines(t, serverTLS(scheme))
				return mustNew(t, scheme+"://"+p.Addr, opts(5*time.Second)), p
			}
		}
	}
	// stalled is a Forwarder to a peer that never reads or answers, with
	// a batch that waits in the TLS handshake or for the answer, or for
	// tcp one that fills the socket buffers.
	stalled := func(scheme string) func(t *testing.T) (sink.Forwarder, []sink.Event) {
		return func(t *testing.T) (sink.Forwarder, []sink.Event) {
			p := peers.StartSilent(t, "tcp")
			batch := events(5)
			if scheme == SchemeTCP {
				batch = sizedEvents(64, 1<<20)
			}
			return mustNew(t, scheme+"://"+p.Addr+"/", opts(30*time.Second)), batch
		}
	}
	// newline is an event line framing cannot carry.
	newline := func(seq uint64) sink.Event {
		return sink.Event{Line: []byte("{\n\"a\":1}"), Seq: seq}
	}
	for _, scheme := range []string{SchemeBeats, SchemeBeatsTLS, SchemeHTTP, SchemeHTTPS, SchemeTCP, SchemeTLS} {
		suite := sinktest.Forwarder{Open: open(scheme), Stalled: stalled(scheme)}
		if scheme != SchemeBeats && scheme != SchemeBeatsTLS {
			suite.TooLarge = newline
		}
		t.Run(scheme, suite.Run)
	}
}
