package logstash

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	lumbersrv "github.com/elastic/go-lumber/server/v2"

	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// 256 events of 1 KB per Send, to loopback peers that take and acknowledge
// everything at once.

func BenchmarkBeatsSend256x1KB(b *testing.B) {
	for _, bc := range []struct {
		name  string
		level int
	}{{"zlib3", 0}, {"uncompressed", NoCompression}} {
		b.Run(bc.name, func(b *testing.B) {
			// The peer only counts the frames' bytes: the benchmark measures
			// the client and the protocol, not the peer's JSON decoding.
			// (It records nothing: the events decode to numbers.)
			peer := peers.NewBeats(b)
			peer.Options = []lumbersrv.Option{lumbersrv.JSONDecoder(func(p []byte, v interface{}) error {
				*v.(*interface{}) = len(p)
				return nil
			})}
			peer.Start()
			f := mustNew(b, "beats://"+peer.Addr, Options{CompressionLevel: bc.level})
			batch := sizedEvents(256, 1024)
			b.SetBytes(256 * 1024)
			b.ReportAllocs()
			for b.Loop() {
				if err := f.Send(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkHTTPSend256x1KB(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	f := mustNew(b, srv.URL+"/", Options{})
	batch := sizedEvents(256, 1024)
	b.SetBytes(256 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		if err := f.Send(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTCPSend256x1KB(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	f := mustNew(b, "tcp://"+l.Addr().String(), Options{})
	batch := sizedEvents(256, 1024)
	b.SetBytes(256 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		if err := f.Send(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
