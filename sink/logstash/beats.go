package logstash

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"

	lumber "github.com/elastic/go-lumber/client/v2"

	"github.com/ucp-audit/ucp-audit/sink"
)

// beats forwards over Lumberjack v2 (the Logstash beats input).
type beats struct {
	*base
	opts []lumber.Option

	mu   sync.Mutex
	conn net.Conn // nil when not connected
	cl   *lumber.SyncClient
}

func newBeats(b *base, o Options) *beats {
	return &beats{base: b, opts: []lumber.Option{
		lumber.Timeout(o.Timeout),
		lumber.CompressionLevel(o.CompressionLevel),
		lumber.JSONEncoder(rawEncoder),
	}}
}

// rawEncoder sends a json.RawMessage as it is. go-lumber's default,
// json.Marshal, would re-compact it and escape <, > and & as \u003c etc.
func rawEncoder(v any) ([]byte, error) {
	if raw, ok := v.(json.RawMessage); ok {
		return raw, nil
	}
	return json.Marshal(v)
}

// Acknowledged reports true: Logstash ACKs each batch once queued.
func (f *beats) Acknowledged() bool { return true }

// Send sends the batch as one window and waits until Logstash has
// acknowledged all of it.
func (f *beats) Send(ctx context.Context, batch []sink.Event) error {
	ctx, done, err := f.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	if len(batch) == 0 {
		return nil
	}
	if err := f.checkSizes(batch); err != nil {
		return f.errorf("%w", err)
	}
	conn, cl, err := f.connect(ctx)
	if err != nil {
		return f.fail(ctx, fmt.Errorf("connect: %w", err))
	}
	// go-lumber sets its own deadlines before every read and write, so
	// ctx and Close can only interrupt it by closing the connection.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	data := make([]any, len(batch))
	for i := range batch {
		data[i] = json.RawMessage(batch[i].Line)
	}
	n, err := cl.Send(data)
	if !stop() || err != nil {
		f.drop(conn)
	}
	if err == nil && n != len(batch) {
		err = fmt.Errorf("acknowledged %d of %d events", n, len(batch))
	}
	if err != nil {
		return f.fail(ctx, fmt.Errorf("%w (%d of %d events acknowledged): %w", ErrNotAcknowledged, n, len(batch), err))
	}
	return nil
}

// connect returns the open connection, or dials one.
func (f *beats) connect(ctx context.Context) (net.Conn, *lumber.SyncClient, error) {
	f.mu.Lock()
	conn, cl := f.conn, f.cl
	f.mu.Unlock()
	if conn != nil {
		if peerClosed(conn) {
			f.drop(conn)
		} else {
			return conn, cl, nil
		}
	}
	conn, err := f.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	cl, err = lumber.NewSyncClientWithConn(conn, f.opts...)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Err() != nil {
		conn.Close()
		return nil, nil, ErrClosed
	}
	f.conn, f.cl = conn, cl
	return conn, cl, nil
}

// drop closes conn and forgets it if it is the current connection.
func (f *beats) drop(conn net.Conn) {
	conn.Close()
	f.mu.Lock()
	if f.conn == conn {
		f.conn, f.cl = nil, nil
	}
	f.mu.Unlock()
}

// Close closes the connection; an in-flight Send returns ErrClosed.
func (f *beats) Close() error {
	f.close()
	f.mu.Lock()
	conn := f.conn
	f.conn, f.cl = nil, nil
	f.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	return nil
}
