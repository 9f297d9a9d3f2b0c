package syslog

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
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
	o := Options{Address: a, Facility: DefaultFacility, Hostname: "node-1", AppName: "ucp-audit"}
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

func wantMessages(o Options, batch []sink.Event) [][]byte {
	var out [][]byte
	for _, ev := range batch {
		out = append(out, AppendMessage(nil, o, ev))
	}
	return out
}

func defaultOpts() Options {
	return Options{Facility: DefaultFacility, Hostname: "node-1", AppName: "ucp-audit"}
}

func checkMessages(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("message %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}

// collector gathers messages a test peer received.
type collector struct {
	mu    sync.Mutex
	msgs  [][]byte
	conns int
	cond  *sync.Cond
}

func newCollector() *collector {
	c := &collector{}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *collector) connCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns
}

func (c *collector) add(m []byte) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.cond.Broadcast()
	c.mu.Unlock()
}

// wait returns the messages once there are at least n, or fails after 10s.
func (c *collector) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := append([][]byte(nil), c.msgs...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d messages, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serveOctetCounted accepts stream connections and parses RFC 6587
// octet-counted frames strictly, failing the test on anything else.
func serveOctetCounted(t *testing.T, ln net.Listener, c *collector, closeAfter int) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns++
			c.mu.Unlock()
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				for n := 0; closeAfter == 0 || n < closeAfter; n++ {
					lenStr, err := r.ReadString(' ')
					if err == io.EOF && lenStr == "" {
						return
					}
					if err != nil {
						if n > 0 || !strings.Contains(err.Error(), "tls:") {
							t.Errorf("reading length: %v", err)
						}
						return
					}
					size, err := strconv.Atoi(strings.TrimSuffix(lenStr, " "))
					if err != nil || size <= 0 || lenStr[0] == '0' {
						t.Errorf("bad octet count %q", lenStr)
						return
					}
					m := make([]byte, size)
					if _, err := io.ReadFull(r, m); err != nil {
						t.Errorf("reading message: %v", err)
						return
					}
					c.add(m)
				}
			}()
		}
	}()
}

func TestTCPOctetCounting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	serveOctetCounted(t, ln, c, 0)
	f := mustNew(t, "tcp://"+ln.Addr().String())
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
	checkMessages(t, c.wait(t, len(want)), want)
	if c.connCount() != 1 {
		t.Errorf("%d connections, want 1", c.connCount())
	}
}

// A receiver that closed the idle connection (restart) is noticed before
// writing: the next Send reconnects and delivers without losing the batch.
func TestTCPReconnectsAfterPeerClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	serveOctetCounted(t, ln, c, 2) // closes each connection after 2 messages
	f := mustNew(t, "tcp://"+ln.Addr().String())
	for i := range 3 {
		b := batchOf(uint64(1+2*i), 2)
		if err := f.Send(context.Background(), b); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		c.wait(t, 2*(i+1))
		time.Sleep(20 * time.Millisecond) // let the FIN arrive
	}
	if c.connCount() != 3 {
		t.Errorf("%d connections, want 3", c.connCount())
	}
}

func TestTLSOctetCounting(t *testing.T) {
	pki := newTestPKI(t, t.TempDir())
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pki.serverCert}})
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	serveOctetCounted(t, ln, c, 0)
	f := mustNew(t, "tcp+tls://"+ln.Addr().String(), func(o *Options) { o.TLS = &tls.Config{RootCAs: pki.pool} })
	b := batchOf(1, 5)
	if err := f.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	checkMessages(t, c.wait(t, 5), wantMessages(defaultOpts(), b))
	b2 := batchOf(6, 5)
	if err := f.Send(context.Background(), b2); err != nil {
		t.Fatal(err)
	}
	c.wait(t, 10)
	if c.connCount() != 1 {
		t.Errorf("%d connections, want 1 (the idle check must not drop a healthy TLS connection)", c.connCount())
	}

	// Untrusted server: the handshake fails and names the destination.
	f2 := mustNew(t, "tcp+tls://"+ln.Addr().String())
	err = f2.Send(context.Background(), b)
	if err == nil || !strings.Contains(err.Error(), `syslog "tcp+tls://127.0.0.1:`) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Send to an untrusted server = %v", err)
	}
}

func TestUnixStream(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	serveOctetCounted(t, ln, c, 0)
	f := mustNew(t, "unix://"+path, func(o *Options) { o.Format = FormatRFC3164 })
	b := batchOf(1, 20)
	if err := f.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	o := defaultOpts()
	o.Format = FormatRFC3164
	checkMessages(t, c.wait(t, 20), wantMessages(o, b))
}

func readDatagrams(t *testing.T, pc net.PacketConn, c *collector) {
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1<<17)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			c.add(append([]byte(nil), buf[:n]...))
		}
	}()
}

func testDatagram(t *testing.T, addr string, pc net.PacketConn) {
	c := newCollector()
	readDatagrams(t, pc, c)
	f := mustNew(t, addr, func(o *Options) { o.MaxUDPSize = 2000; o.Format = FormatRFC5424Micro })
	o := defaultOpts()
	o.Format = FormatRFC5424Micro
	b := batchOf(1, 10)
	if err := f.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	checkMessages(t, c.wait(t, 10), wantMessages(o, b))

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
	got := c.wait(t, 11)
	time.Sleep(50 * time.Millisecond)
	got = c.wait(t, 11)
	checkMessages(t, got, append(wantMessages(o, b), wantMessages(o, b2)...))
}

func TestUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testDatagram(t, "udp://"+pc.LocalAddr().String(), pc)
}

func TestUnixgram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.sock")
	pc, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	testDatagram(t, "unixgram://"+path, pc)
}

func TestDefaultMaxUDPSize(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	readDatagrams(t, pc, c)
	f := mustNew(t, "udp://"+pc.LocalAddr().String(), func(o *Options) { o.Hostname = "" })
	ev := testEvent(1)
	o := defaultOpts()
	o.Hostname = ""
	hdr := len(AppendMessage(nil, o, sink.Event{AuditID: ev.AuditID, Seq: 1, Time: ev.Time}))
	ev.Line = bytes.Repeat([]byte("x"), 65507-hdr) // exactly the limit
	if err := f.Send(context.Background(), []sink.Event{ev}); err != nil {
		t.Fatalf("Send of a 65507-byte datagram: %v", err)
	}
	if got := c.wait(t, 1); len(got[0]) != 65507 {
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // never read
		}
	}()
	f := mustNew(t, "tcp://"+ln.Addr().String())
	big := testEvent(1)
	big.Line = bytes.Repeat([]byte("x"), 16<<20) // more than the socket buffers
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = f.Send(ctx, []sink.Event{big})
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

// testPKI is a throwaway CA and a server certificate for 127.0.0.1.
type testPKI struct {
	pool       *x509.CertPool
	serverCert tls.Certificate
	caFile     string
	certFile   string
	keyFile    string
}

func newTestPKI(t *testing.T, dir string) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ucp-audit test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{pool: x509.NewCertPool(),
		caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "server.pem"), keyFile: filepath.Join(dir, "server.key")}
	p.pool.AddCert(ca)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	for f, b := range map[string][]byte{p.caFile: caPEM, p.certFile: certPEM, p.keyFile: keyPEM} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if p.serverCert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return p
}
