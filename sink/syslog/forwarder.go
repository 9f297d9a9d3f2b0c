package syslog

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
)

// Options configure a Forwarder.
type Options struct {
	Address  Address
	Format   Format
	Facility int    // 0-23; callers default to "daemon" (3)
	AppName  string // the tag (already rendered by the caller); "-" if empty
	Hostname string // the node's hostname for the header; "-" if empty
	// TLS is used for tcp+tls (relp is plain TCP only). nil means the
	// system roots with ServerName taken from Address; a config without
	// ServerName gets it from Address too.
	TLS *tls.Config
	// DialTimeout bounds a connection attempt (default 10s); WriteTimeout
	// bounds each read or write on the connection (default 30s). The ctx
	// deadline of Send caps both.
	DialTimeout, WriteTimeout time.Duration
	// MaxUDPSize is the largest message sent as one datagram over udp and
	// unixgram (default 65507, the largest IPv4 UDP payload). Larger ones
	// fail with a *sink.TooLargeError.
	MaxUDPSize int
	// MaxMessageSize is the largest message sent over any transport
	// (default DefaultMaxMessageSize): a receiver cuts longer ones (rsyslog's
	// maxMessageSize, and imrelp's maxDataSize with its default
	// oversizeMode) and still acknowledges them, so a longer one fails Send
	// with a *sink.TooLargeError instead: the caller records it as lost for
	// this destination.
	MaxMessageSize int
}

// DefaultMaxMessageSize is the longest syslog message sent by default: what
// the shipped rsyslog receiver (receivers/rsyslog) takes. rsyslog's own
// default is 8k.
const DefaultMaxMessageSize = 256 << 10

// MaxMaxMessageSize is the largest syslog-max-message-size.
const MaxMaxMessageSize = 64 << 20

const (
	defaultDialTimeout  = 10 * time.Second
	defaultWriteTimeout = 30 * time.Second
	defaultMaxUDPSize   = 65507
	relpWindow          = 128 // outstanding RELP messages at most
	closeTimeout        = 2 * time.Second
	writeBufferSize     = 64 << 10
)

var errClosed = errors.New("forwarder closed")

// New returns a Forwarder for o after validating it. It never dials: a
// destination that is down is found by Send, not here.
func New(o Options) (sink.Forwarder, error) {
	info, ok := schemes[o.Address.Scheme]
	if !ok {
		return nil, fmt.Errorf("syslog: unknown address scheme %q (want one of %s)", o.Address.Scheme, schemeList)
	}
	dest := o.Address.String()
	bad := func(format string, a ...any) (sink.Forwarder, error) {
		return nil, fmt.Errorf("syslog %q: %s", dest, fmt.Sprintf(format, a...))
	}
	if o.Address.Network == "" {
		o.Address.Network = info.network
	} else if o.Address.Network != info.network {
		return bad("network %q does not match scheme %q (want %q)", o.Address.Network, o.Address.Scheme, info.network)
	}
	if o.Address.Addr == "" {
		return bad("missing address")
	}
	if info.defaultPort != "" {
		if _, _, err := net.SplitHostPort(o.Address.Addr); err != nil {
			return bad("address %q: %v", o.Address.Addr, err)
		}
	}
	if o.Format < FormatRFC5424 || o.Format > FormatRFC3164 {
		return bad("unknown format %d", int(o.Format))
	}
	if o.Facility < 0 || o.Facility > 23 {
		return bad("facility %d out of range (want 0 to 23)", o.Facility)
	}
	if o.DialTimeout < 0 || o.WriteTimeout < 0 || o.MaxUDPSize < 0 {
		return bad("negative timeout or size")
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = defaultDialTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = defaultWriteTimeout
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MaxUDPSize == 0 {
		o.MaxUDPSize = defaultMaxUDPSize
	}
	if o.Address.Scheme == "tcp+tls" {
		if o.TLS == nil {
			o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		} else {
			o.TLS = o.TLS.Clone()
		}
		if o.TLS.ServerName == "" {
			o.TLS.ServerName = o.Address.host()
		}
	} else {
		o.TLS = nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &forwarder{o: o, dest: dest, closeCtx: ctx, closeFn: cancel}, nil
}

type forwarder struct {
	o        Options
	dest     string
	closeCtx context.Context // cancelled by Close
	closeFn  context.CancelFunc

	mu     sync.Mutex // held by Send, and by Close once in-flight Send returned
	closed bool
	conn   *conn // nil when not connected
	buf    []byte
	ends   []int // buf[ends[i-1]:ends[i]] is message i
}

func (f *forwarder) Acknowledged() bool { return f.o.Address.Scheme == "relp" }

func (f *forwarder) errorf(format string, a ...any) error {
	return fmt.Errorf("syslog %q: "+format, append([]any{f.dest}, a...)...)
}

func (f *forwarder) datagram() bool {
	return f.o.Address.Network == "udp" || f.o.Address.Network == "unixgram"
}

// Send delivers batch; see the package documentation for what nil promises
// on each transport.
func (f *forwarder) Send(ctx context.Context, batch []sink.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.errorf("%w", errClosed)
	}
	if len(batch) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return f.errorf("%w", err)
	}
	f.buf, f.ends = f.buf[:0], f.ends[:0]
	for _, ev := range batch {
		start := len(f.buf)
		f.buf = AppendMessage(f.buf, f.o, ev)
		f.ends = append(f.ends, len(f.buf))
		if n := len(f.buf) - start; f.datagram() && n > f.o.MaxUDPSize {
			return f.errorf("%w", &sink.TooLargeError{
				Seq: ev.Seq, Size: n, Limit: f.o.MaxUDPSize,
				Reason: fmt.Sprintf("the syslog message of %d bytes does not fit in one %s datagram (limit %d bytes)", n, f.o.Address.Scheme, f.o.MaxUDPSize),
			})
		} else if n > f.o.MaxMessageSize {
			return f.errorf("%w", &sink.TooLargeError{
				Seq: ev.Seq, Size: n, Limit: f.o.MaxMessageSize,
				Reason: fmt.Sprintf("the syslog message of %d bytes is longer than syslog-max-message-size (%d bytes)", n, f.o.MaxMessageSize),
			})
		}
	}
	defer func() {
		if cap(f.buf) > 4<<20 { // do not keep a huge batch's buffer around
			f.buf, f.ends = nil, nil
		}
	}()

	sendCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopClose := context.AfterFunc(f.closeCtx, func() { cancel(errClosed) })
	defer stopClose()

	if err := f.send(sendCtx, batch); err != nil {
		f.drop()
		cause := context.Cause(sendCtx)
		if d, ok := sendCtx.Deadline(); ok && cause == nil && !time.Now().Before(d) {
			// The connection's deadline (capped at ctx's) fired just
			// before ctx's own timer.
			cause = context.DeadlineExceeded
		}
		if cause != nil {
			return f.errorf("%w (%v)", cause, err)
		}
		return f.errorf("%w", err)
	}
	return nil
}

func (f *forwarder) msg(i int) []byte {
	start := 0
	if i > 0 {
		start = f.ends[i-1]
	}
	return f.buf[start:f.ends[i]]
}

// drop closes the current connection, if any.
func (f *forwarder) drop() {
	if f.conn != nil {
		f.conn.nc.Close()
		f.conn = nil
	}
}

func (f *forwarder) send(ctx context.Context, batch []sink.Event) (err error) {
	if f.conn != nil && !f.conn.usable() {
		f.drop()
	}
	fresh := false
	if f.conn == nil {
		nc, err := f.dial(ctx)
		if err != nil {
			return err
		}
		f.conn = newConn(nc, f.o.WriteTimeout)
		fresh = true
	}
	c := f.conn
	stop := c.begin(ctx)
	defer func() {
		if !stop() && err == nil {
			// ctx ended just as we finished: the deadline may be in the
			// past, so do not reuse this connection.
			f.drop()
		}
	}()

	switch {
	case f.o.Address.Scheme == "relp":
		if fresh {
			if err := c.relpOpen(); err != nil {
				return err
			}
		}
		return c.relpSend(f, batch)
	case f.datagram():
		for i := range batch {
			if _, err := c.Write(f.msg(i)); err != nil {
				return err
			}
		}
		return nil
	default: // RFC 6587 octet counting
		var num [20]byte
		for i := range batch {
			m := f.msg(i)
			c.w.Write(strconv.AppendInt(num[:0], int64(len(m)), 10))
			c.w.WriteByte(' ')
			c.w.Write(m)
		}
		return c.w.Flush()
	}
}

func (f *forwarder) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: f.o.DialTimeout}
	if f.o.TLS != nil {
		td := &tls.Dialer{NetDialer: d, Config: f.o.TLS}
		return td.DialContext(ctx, "tcp", f.o.Address.Addr)
	}
	return d.DialContext(ctx, f.o.Address.Network, f.o.Address.Addr)
}

// Close makes an in-flight Send return, closes the connection (for relp,
// after a close command answered or not within 2 s) and releases the
// Forwarder. Send after Close returns an error.
func (f *forwarder) Close() error {
	f.closeFn()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	if f.conn == nil {
		return nil
	}
	c := f.conn
	f.conn = nil
	if f.o.Address.Scheme == "relp" && c.usable() {
		ctx, cancel := context.WithTimeout(context.Background(), min(closeTimeout, f.o.WriteTimeout))
		stop := c.begin(ctx)
		c.relpClose() // best effort: the receiver has everything acked
		stop()
		cancel()
	}
	if err := c.nc.Close(); err != nil {
		return f.errorf("close: %w", err)
	}
	return nil
}

// conn is one connection. Its Read and Write (used through r and w) set
// the deadline before each call: WriteTimeout from now, capped by the
// deadline of the current Send's ctx; once that ctx is done, they fail.
type conn struct {
	nc      net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration
	txnr    int // relp: the last transaction number used

	mu        sync.Mutex // guards cancelled, limit and deadline changes
	cancelled bool
	limit     time.Time
}

func newConn(nc net.Conn, timeout time.Duration) *conn {
	c := &conn{nc: nc, timeout: timeout}
	c.r = bufio.NewReaderSize(c, 4096)
	c.w = bufio.NewWriterSize(c, writeBufferSize)
	return c
}

var errCancelled = errors.New("operation cancelled")

// begin arms c for one operation under ctx; stop reports false when ctx
// ended (and c's deadline was set in the past) before stop was called.
func (c *conn) begin(ctx context.Context) (stop func() bool) {
	c.mu.Lock()
	c.cancelled = false
	c.limit, _ = ctx.Deadline()
	c.mu.Unlock()
	return context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cancelled = true
		c.nc.SetDeadline(time.Unix(1, 0))
		c.mu.Unlock()
	})
}

func (c *conn) arm() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancelled {
		return errCancelled
	}
	d := time.Now().Add(c.timeout)
	if !c.limit.IsZero() && c.limit.Before(d) {
		d = c.limit
	}
	return c.nc.SetDeadline(d)
}

func (c *conn) Read(p []byte) (int, error) {
	if err := c.arm(); err != nil {
		return 0, err
	}
	return c.nc.Read(p)
}

func (c *conn) Write(p []byte) (int, error) {
	if err := c.arm(); err != nil {
		return 0, err
	}
	return c.nc.Write(p)
}

// usable reports whether an idle stream connection can be reused: nothing
// unread is pending and the peer has not closed it. Datagram sockets are
// always reused.
func (c *conn) usable() bool {
	switch c.nc.LocalAddr().Network() {
	case "udp", "unixgram":
		return true
	}
	if c.r.Buffered() > 0 || c.w.Buffered() > 0 {
		return false
	}
	return idleAlive(c.nc)
}
