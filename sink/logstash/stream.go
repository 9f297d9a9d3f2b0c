package logstash

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
)

// stream writes json_lines to the Logstash tcp input, plain or over TLS.
type stream struct {
	*base
	buf []byte // reused write buffer; only Send touches it

	mu   sync.Mutex
	conn net.Conn // nil when not connected
}

func newStream(b *base) *stream { return &stream{base: b} }

// Acknowledged reports false: the tcp input confirms nothing, so events
// written before a failure can be lost without an error.
func (f *stream) Acknowledged() bool { return false }

// Send writes the batch, each event followed by "\n", and returns nil once
// it is written to the connection. That is not a delivery confirmation.
func (f *stream) Send(ctx context.Context, batch []sink.Event) error {
	ctx, done, err := f.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	if len(batch) == 0 {
		return nil
	}
	if err := checkLines(batch); err != nil {
		return f.errorf("%w", err)
	}
	if err := f.checkSizes(batch); err != nil {
		return f.errorf("%w", err)
	}
	f.buf = f.buf[:0]
	for _, ev := range batch {
		f.buf = append(f.buf, ev.Line...)
		f.buf = append(f.buf, '\n')
	}
	defer func() {
		if cap(f.buf) > 4<<20 {
			f.buf = nil // do not keep a huge batch's buffer
		}
	}()

	conn, err := f.connect(ctx)
	if err != nil {
		return f.fail(ctx, fmt.Errorf("connect: %w", err))
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err = conn.SetWriteDeadline(time.Now().Add(f.timeout))
	if err == nil {
		_, err = conn.Write(f.buf)
	}
	if !stop() || err != nil {
		f.drop(conn)
	}
	if err != nil {
		return f.fail(ctx, fmt.Errorf("write: %w", err))
	}
	return nil
}

// connect returns the open connection, or dials one.
func (f *stream) connect(ctx context.Context) (net.Conn, error) {
	f.mu.Lock()
	conn := f.conn
	f.mu.Unlock()
	if conn != nil {
		if !peerClosed(conn) {
			return conn, nil
		}
		f.drop(conn)
	}
	conn, err := f.dial(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Err() != nil {
		conn.Close()
		return nil, ErrClosed
	}
	f.conn = conn
	return conn, nil
}

// drop closes conn and forgets it if it is the current connection.
func (f *stream) drop(conn net.Conn) {
	conn.Close()
	f.mu.Lock()
	if f.conn == conn {
		f.conn = nil
	}
	f.mu.Unlock()
}

// Close closes the connection; an in-flight Send returns ErrClosed.
func (f *stream) Close() error {
	f.close()
	f.mu.Lock()
	conn := f.conn
	f.conn = nil
	f.mu.Unlock()
	if conn != nil {
		return conn.Close()
	}
	return nil
}
