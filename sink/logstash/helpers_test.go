package logstash

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-lumber/lj"
	golog "github.com/elastic/go-lumber/log"
	lumbersrv "github.com/elastic/go-lumber/server/v2"

	"github.com/ucp-audit/ucp-audit/sink"
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

// testPKI is a throwaway CA and a server certificate for 127.0.0.1.
type testPKI struct {
	server *tls.Config // for the listeners
	client *tls.Config // trusts the CA only
}

func newPKI(t testing.TB) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ucp-audit test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{
		server: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		client: &tls.Config{RootCAs: pool},
	}
}

// lumberPeer is go-lumber's v2 server standing in for Logstash's beats
// input. It keeps each data frame's raw JSON bytes (as a string).
type lumberPeer struct {
	t    testing.TB
	addr string
	srv  *lumbersrv.Server
	tls  *tls.Config
	opts []lumbersrv.Option
}

// rawDecoder keeps the data frame's bytes, after checking they are a JSON
// object.
func rawDecoder(b []byte, v interface{}) error {
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	*v.(*interface{}) = string(b)
	return nil
}

func startLumber(t testing.TB, serverTLS *tls.Config, opts ...lumbersrv.Option) *lumberPeer {
	t.Helper()
	p := &lumberPeer{t: t, addr: "127.0.0.1:0", tls: serverTLS, opts: opts}
	p.start()
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func (p *lumberPeer) start() {
	p.t.Helper()
	var l net.Listener
	var err error
	for range 50 { // the port of a stopped peer can take a moment to free
		if l, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.addr = l.Addr().String()
	if p.tls != nil {
		l = tls.NewListener(l, p.tls)
	}
	p.srv, err = lumbersrv.NewWithListener(l, p.opts...)
	if err != nil {
		p.t.Fatal(err)
	}
}

// stop stops the peer and closes its connections; start then starts it
// again on the same port.
func (p *lumberPeer) stop() { p.srv.Close() }

// ackAll ACKs every batch at once and returns the events received.
func (p *lumberPeer) ackAll() (events func() []any) {
	var mu sync.Mutex
	var got []any
	srv := p.srv
	go func() {
		for b := range srv.ReceiveChan() {
			mu.Lock()
			got = append(got, b.Events...)
			mu.Unlock()
			b.ACK()
		}
	}()
	return func() []any {
		mu.Lock()
		defer mu.Unlock()
		return append([]any(nil), got...)
	}
}

func (p *lumberPeer) receive(timeout time.Duration) *lj.Batch {
	p.t.Helper()
	select {
	case b := <-p.srv.ReceiveChan():
		return b
	case <-time.After(timeout):
		p.t.Fatal("no batch received")
		return nil
	}
}

func asStrings(evs []any) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i], _ = e.(string)
	}
	return out
}

// linePeer is a Logstash tcp input (json_lines) stand-in: it accepts
// connections and collects the lines read.
type linePeer struct {
	l     net.Listener
	mu    sync.Mutex
	lines []string
	conns []net.Conn
	got   chan struct{}
}

func startLinePeer(t testing.TB, serverTLS *tls.Config) *linePeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if serverTLS != nil {
		l = tls.NewListener(l, serverTLS)
	}
	p := &linePeer{l: l, got: make(chan struct{}, 1)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			go func() {
				defer c.Close()
				r := bufio.NewReaderSize(c, 1<<20)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					p.mu.Lock()
					p.lines = append(p.lines, strings.TrimSuffix(line, "\n"))
					p.mu.Unlock()
					select {
					case p.got <- struct{}{}:
					default:
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); p.dropConns() })
	return p
}

func (p *linePeer) addr() string { return p.l.Addr().String() }

// dropConns closes every accepted connection.
func (p *linePeer) dropConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// waitLines waits until n lines have arrived and returns them.
func (p *linePeer) waitLines(t testing.TB, n int) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		p.mu.Lock()
		if len(p.lines) >= n {
			out := append([]string(nil), p.lines...)
			p.mu.Unlock()
			return out
		}
		p.mu.Unlock()
		select {
		case <-p.got:
		case <-deadline:
			t.Fatalf("timed out waiting for %d lines", n)
		}
	}
}

// silentPeer accepts connections and never reads or writes: a TLS
// handshake or a large write to it blocks.
// silentAccepted maps a silent peer's address to the number of
// connections it accepted.
var silentAccepted sync.Map

// waitAccepted waits until the silent peer at addr (a URL ending in it) has
// accepted a connection, or the deadline passes.
func waitAccepted(addr string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ok := false
		silentAccepted.Range(func(k, v any) bool {
			if strings.HasSuffix(addr, k.(string)) && v.(*atomic.Int64).Load() > 0 {
				ok = true
			}
			return !ok
		})
		if ok {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func silentPeer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	accepted := new(atomic.Int64)
	silentAccepted.Store(l.Addr().String(), accepted)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			accepted.Add(1)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
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

func lumbersrvKeepalive(d time.Duration) []lumbersrv.Option {
	return []lumbersrv.Option{lumbersrv.Keepalive(d)}
}

// blockingHTTP serves requests that never get an answer until the test
// ends; it returns the URL.
func blockingHTTP(t testing.TB) string {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv.URL + "/"
}
