package syslog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

type relpAction int

const (
	relpAck     relpAction = iota // rsp 200 OK
	relpRefuse                    // rsp 500
	relpDrop                      // close the connection without answering
	relpSilent                    // never answer
	relpCloseIt                   // answer 200, then serverclose and close
)

// relpServer is a tiny RELP receiver for tests. decide is asked for every
// syslog frame (conn counts from 1, n from 0 within the connection). It
// records the messages it acknowledges, and can be stopped and started
// again on its port.
type relpServer struct {
	peers.Recorder
	t        *testing.T
	hostport string
	decide   func(conn, n int) relpAction

	mu    sync.Mutex
	ln    net.Listener // nil when stopped
	open  map[net.Conn]bool
	conns int
	cmds  []string
	wg    sync.WaitGroup
}

func newRELPServer(t *testing.T, decide func(conn, n int) relpAction) *relpServer {
	s := &relpServer{t: t, hostport: "127.0.0.1:0", decide: decide, open: map[net.Conn]bool{}}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start listens (again) on the server's port.
func (s *relpServer) Start() {
	s.t.Helper()
	ln := peers.ListenRetry(s.t, s.hostport)
	s.mu.Lock()
	s.ln, s.hostport = ln, ln.Addr().String()
	s.mu.Unlock()
	s.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			id := s.conns
			s.open[conn] = true
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(conn, id) })
		}
	})
}

// Stop closes the listener and every connection, and waits for them.
func (s *relpServer) Stop() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *relpServer) addr() string { return "relp://" + s.hostport }

func (s *relpServer) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *relpServer) wait(t *testing.T, n int) []string { return wait(t, &s.Recorder, n) }

func (s *relpServer) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

func (s *relpServer) serve(conn net.Conn, id int) {
	defer func() {
		s.mu.Lock()
		delete(s.open, conn)
		s.mu.Unlock()
		conn.Close()
	}()
	r := bufio.NewReader(conn)
	rsp := func(txnr int, data string) {
		fmt.Fprintf(conn, "%d rsp %d %s\n", txnr, len(data), data)
	}
	n := 0
	for {
		fr, err := readRelpFrame(r, 1<<20)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.cmds = append(s.cmds, fr.cmd)
		s.mu.Unlock()
		switch fr.cmd {
		case "open":
			if !strings.Contains(string(fr.data), "commands=syslog") || fr.txnr != 1 {
				s.t.Errorf("bad open frame: %d %q", fr.txnr, fr.data)
			}
			rsp(fr.txnr, "200 OK\nrelp_version=0\nrelp_software=test\ncommands=syslog")
		case "close":
			rsp(fr.txnr, "")
			fmt.Fprintf(conn, "0 serverclose 0\n")
			return
		case "syslog":
			act := s.decide(id, n)
			n++
			switch act {
			case relpAck, relpCloseIt:
				s.Add(string(fr.data))
				rsp(fr.txnr, "200 OK")
				if act == relpCloseIt {
					fmt.Fprintf(conn, "0 serverclose 0\n")
					return
				}
			case relpRefuse:
				rsp(fr.txnr, "500 no room")
			case relpDrop:
				return
			case relpSilent: // until the client or Stop closes the connection
				io.Copy(io.Discard, r)
				return
			}
		default:
			s.t.Errorf("unexpected command %q", fr.cmd)
			return
		}
	}
}

func always(a relpAction) func(int, int) relpAction { return func(int, int) relpAction { return a } }

func TestRELPDelivers(t *testing.T) {
	s := newRELPServer(t, always(relpAck))
	f := mustNew(t, s.addr())
	if !f.(sink.Acknowledged).Acknowledged() {
		t.Error("relp forwarder: Acknowledged() must be true")
	}
	b := batchOf(1, 300) // more than the window
	if err := f.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	checkMessages(t, s.wait(t, 300), wantMessages(defaultOpts(), b))
	b2 := batchOf(301, 2)
	if err := f.Send(context.Background(), b2); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cmds := s.commands()
	if cmds[0] != "open" || cmds[len(cmds)-1] != "close" || len(cmds) != 304 || s.connCount() != 1 {
		t.Errorf("commands %v… (%d) over %d connections", cmds[:3], len(cmds), s.connCount())
	}
}

func TestRELPTxnrWraps(t *testing.T) {
	c := &conn{txnr: relpMaxTxnr - 1}
	if a, b := c.nextTxnr(), c.nextTxnr(); a != relpMaxTxnr || b != 1 {
		t.Errorf("txnr after %d: %d, %d", relpMaxTxnr-1, a, b)
	}
}

// A refusal (rsp 500) or a dropped connection fails the batch; the next
// Send reconnects and delivers it.
func TestRELPRetry(t *testing.T) {
	for _, tt := range []struct {
		name string
		act  relpAction
		want string
	}{
		{"refused", relpRefuse, `receiver refused event seq 4: "500 no room"`},
		{"dropped", relpDrop, "connection closed by the receiver"},
		{"serverclose", relpCloseIt, "serverclose"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newRELPServer(t, func(conn, n int) relpAction {
				if conn == 1 && n == 3 {
					return tt.act
				}
				return relpAck
			})
			f := mustNew(t, s.addr())
			b := batchOf(1, 10)
			err := f.Send(context.Background(), b)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), fmt.Sprintf("syslog %q: ", s.addr())) {
				t.Fatalf("Send = %v, want error containing %q", err, tt.want)
			}
			if err := f.Send(context.Background(), b); err != nil {
				t.Fatalf("second Send: %v", err)
			}
			got := s.wait(t, 0)
			// The retried batch arrives whole, after what the first
			// connection took (at-least-once: duplicates allowed).
			want := wantMessages(defaultOpts(), b)
			checkMessages(t, got[len(got)-10:], want)
			if s.connCount() != 2 {
				t.Errorf("%d connections, want 2", s.connCount())
			}
		})
	}
}

// serverclose while idle is noticed before the next batch: no error.
func TestRELPServerCloseWhileIdle(t *testing.T) {
	s := newRELPServer(t, func(conn, n int) relpAction {
		if n == 1 {
			return relpCloseIt
		}
		return relpAck
	})
	f := mustNew(t, s.addr())
	for i := range 3 {
		if err := f.Send(context.Background(), batchOf(uint64(1+2*i), 2)); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.wait(t, 6)
	if s.connCount() != 3 {
		t.Errorf("%d connections, want 3", s.connCount())
	}
}

func TestRELPSilentReceiver(t *testing.T) {
	s := newRELPServer(t, always(relpSilent))
	f := mustNew(t, s.addr())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := f.Send(ctx, batchOf(1, 3))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("Send = %v after %v, want DeadlineExceeded after about 300ms", err, time.Since(start))
	}

	// WriteTimeout applies without a ctx deadline.
	f2 := mustNew(t, s.addr(), func(o *Options) { o.WriteTimeout = 200 * time.Millisecond })
	start = time.Now()
	if err := f2.Send(context.Background(), batchOf(1, 1)); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("Send = %v after %v, want a timeout", err, time.Since(start))
	}

	// Close makes an in-flight Send return.
	f3 := mustNew(t, s.addr())
	done := make(chan error, 1)
	go func() { done <- f3.Send(context.Background(), batchOf(1, 1)) }()
	time.Sleep(100 * time.Millisecond)
	start = time.Now()
	f3.Close()
	select {
	case err := <-done:
		if !errors.Is(err, errClosed) {
			t.Errorf("in-flight Send after Close = %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not make the in-flight Send return")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestRELPOpenRefused(t *testing.T) {
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
			r := bufio.NewReader(c)
			if _, err := readRelpFrame(r, 1<<20); err == nil {
				fmt.Fprintf(c, "1 rsp 21 500 too many sessions\n")
			}
			c.Close()
		}
	}()
	f := mustNew(t, "relp://"+ln.Addr().String())
	err = f.Send(context.Background(), batchOf(1, 1))
	if err == nil || !strings.Contains(err.Error(), `refused the session: "500 too many sessions"`) {
		t.Errorf("Send = %v", err)
	}
}

func TestReadRelpFrame(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want relpFrame
		err  string
	}{
		{"1 rsp 6 200 OK\n", relpFrame{1, "rsp", []byte("200 OK")}, ""},
		{"0 serverclose 0\n", relpFrame{0, "serverclose", nil}, ""},
		{"7 rsp 0 \n", relpFrame{7, "rsp", nil}, ""},
		{"999999999 rsp 3 a\nb\n", relpFrame{999999999, "rsp", []byte("a\nb")}, ""},
		{"", relpFrame{}, "unexpected EOF"},
		{"1 rsp 6 200 O", relpFrame{}, "unexpected EOF"},
		{"x rsp 0\n", relpFrame{}, "TXNR expected"},
		{"1234567890 rsp 0\n", relpFrame{}, "longer than 9 digits"},
		{"1 r2p 0\n", relpFrame{}, "bad COMMAND"},
		{"1  rsp 0\n", relpFrame{}, "bad COMMAND"},
		{"1 " + strings.Repeat("a", 33) + " 0\n", relpFrame{}, "bad COMMAND"},
		{"1 rsp 6 200 OKX", relpFrame{}, "trailer"},
		{"1 rsp 6\n200 OK\n", relpFrame{}, "expected space after DATALEN"},
		{"1 rsp 99999 x\n", relpFrame{}, "exceeds the limit"},
		{"1\trsp 0\n", relpFrame{}, "expected space after TXNR"},
	} {
		fr, err := readRelpFrame(bufio.NewReader(strings.NewReader(tt.in)), 1000)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || fr.txnr != tt.want.txnr || fr.cmd != tt.want.cmd || !bytes.Equal(fr.data, tt.want.data) {
			t.Errorf("%q = %+v, %v; want %+v", tt.in, fr, err, tt.want)
		}
	}
	if code, line := relpStatus([]byte("200 OK\nrelp_version=0")); code != 200 || line != "200 OK" {
		t.Errorf("relpStatus = %d %q", code, line)
	}
	for _, d := range []string{"", "20", "2000 OK", "abc", "OK 200"} {
		if code, _ := relpStatus([]byte(d)); code != 0 {
			t.Errorf("relpStatus(%q) = %d", d, code)
		}
	}
}

func FuzzReadRelpFrame(f *testing.F) {
	for _, s := range []string{"1 rsp 6 200 OK\n", "0 serverclose 0\n", "7 rsp 0 \n",
		"1 rsp 92 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n",
		"2 rsp 6 200 OK\n3 rsp 6 200 OK\n", "12 rsp 5 500 x\n", "1 rsp 6 200 O"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		for range 4 {
			fr, err := readRelpFrame(r, 4096)
			if err != nil {
				return
			}
			if fr.txnr < 0 || fr.txnr > relpMaxTxnr || len(fr.cmd) == 0 || len(fr.cmd) > 32 || len(fr.data) > 4096 {
				t.Fatalf("invalid frame accepted: %+v", fr)
			}
			relpStatus(fr.data)
			// Re-encoding and parsing again gives the same frame.
			var buf bytes.Buffer
			c := &conn{w: bufio.NewWriter(&buf)}
			c.writeRelpFrame(fr.txnr, fr.cmd, fr.data)
			c.w.Flush()
			fr2, err := readRelpFrame(bufio.NewReader(&buf), 4096)
			if err != nil || fr2.txnr != fr.txnr || fr2.cmd != fr.cmd || !bytes.Equal(fr2.data, fr.data) {
				t.Fatalf("round trip of %+v: %+v, %v", fr, fr2, err)
			}
		}
	})
}
