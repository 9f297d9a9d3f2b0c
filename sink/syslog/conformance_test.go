package syslog

import (
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/sink/sinktest"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// Every transport runs the Forwarder conformance suite against a loopback
// peer: octet-counted stream receivers for tcp, tcp+tls and unix, the RELP
// test receiver, datagram receivers for udp and unixgram.
func TestForwarderConformance(t *testing.T) {
	pki := peers.NewPKI(t, t.TempDir())
	withTLS := func(o *Options) { o.TLS = pki.ClientTLS() }
	message := func(ev sink.Event) string { return string(AppendMessage(nil, defaultOpts(), ev)) }
	stream := func(network, scheme string, serverTLS bool, mod ...func(*Options)) func(t *testing.T) (sink.Forwarder, sinktest.Peer) {
		return func(t *testing.T) (sink.Forwarder, sinktest.Peer) {
			p := peers.NewStream(t, network, peers.OctetCounted)
			if serverTLS {
				p.TLS = pki.ServerTLS()
			}
			p.Start()
			return mustNew(t, scheme+"://"+p.Addr, mod...), p
		}
	}
	datagram := func(network string) func(t *testing.T) (sink.Forwarder, sinktest.Peer) {
		return func(t *testing.T) (sink.Forwarder, sinktest.Peer) {
			p := peers.StartDatagram(t, network)
			return mustNew(t, network+"://"+p.Addr), p
		}
	}
	// stalled is a Forwarder to a peer that never reads, with a batch
	// that fills the socket buffers (big) or one that waits in the TLS
	// handshake or for the RELP open answer.
	stalled := func(network, scheme string, big bool, mod ...func(*Options)) func(t *testing.T) (sink.Forwarder, []sink.Event) {
		return func(t *testing.T) (sink.Forwarder, []sink.Event) {
			p := peers.StartSilent(t, network)
			batch := batchOf(1, 3)
			if big {
				batch[0].Line = []byte(`{"big":"` + strings.Repeat("x", 16<<20) + `"}`)
			}
			return mustNew(t, scheme+"://"+p.Addr, mod...), batch
		}
	}
	tooLarge := func(seq uint64) sink.Event {
		ev := testEvent(seq)
		ev.Line = []byte(`{"x":"` + strings.Repeat("y", 70000) + `"}`) // more than a UDP datagram carries
		return ev
	}
	for _, tc := range []struct {
		name  string
		suite sinktest.Forwarder
	}{
		{"tcp", sinktest.Forwarder{Open: stream("tcp", "tcp", false), Stalled: stalled("tcp", "tcp", true)}},
		{"tcp+tls", sinktest.Forwarder{Open: stream("tcp", "tcp+tls", true, withTLS), Stalled: stalled("tcp", "tcp+tls", false, withTLS)}},
		{"unix", sinktest.Forwarder{Open: stream("unix", "unix", false), Stalled: stalled("unix", "unix", true)}},
		{"relp", sinktest.Forwarder{
			Open: func(t *testing.T) (sink.Forwarder, sinktest.Peer) {
				s := newRELPServer(t, always(relpAck))
				return mustNew(t, s.addr()), s
			},
			Stalled: stalled("tcp", "relp", false),
		}},
		{"udp", sinktest.Forwarder{Open: datagram("udp"), Lossy: true, TooLarge: tooLarge}},
		{"unixgram", sinktest.Forwarder{Open: datagram("unixgram"), Lossy: true, TooLarge: tooLarge}},
	} {
		tc.suite.Message = message
		t.Run(tc.name, tc.suite.Run)
	}
}
