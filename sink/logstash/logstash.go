package logstash

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
)

// Sentinel errors. Errors returned by this package wrap them with %w; test
// with errors.Is.
var (
	// ErrInvalidAddress: ParseAddress (or New) got a malformed address.
	ErrInvalidAddress = errors.New("invalid address")
	// ErrInvalidOptions: New got an out-of-range option.
	ErrInvalidOptions = errors.New("invalid options")
	// ErrClosed: Send was called after Close, or Close ended it.
	ErrClosed = errors.New("forwarder closed")
	// ErrNotAcknowledged: a beats destination did not acknowledge the whole
	// batch (the connection failed or went silent for Timeout first). Any
	// part of the batch may have arrived.
	ErrNotAcknowledged = errors.New("batch not acknowledged")
	// ErrUnavailable: an http(s) destination answered 429 (busy) or 5xx.
	// Retry later.
	ErrUnavailable = errors.New("destination unavailable")
	// ErrUnexpectedStatus: an http(s) destination answered a status other
	// than 2xx, 429 or 5xx (a 4xx, or a redirect, which is not followed).
	// Usually a configuration problem, which may be fixed while events
	// wait: unlike sink.ErrRefused, it does not mean "never", and the
	// caller retries the batch like any other failure.
	ErrUnexpectedStatus = errors.New("destination refused the batch")
)

// StatusError is the error of an http(s) Send answered with a non-2xx
// status. It unwraps to ErrUnavailable (429, 5xx) or ErrUnexpectedStatus.
type StatusError struct {
	Code int    // HTTP status code
	Body string // start of the response body, for the message
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("HTTP status %d", e.Code)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	if e.Retryable() {
		return msg + " (retryable)"
	}
	return msg
}

// Retryable reports whether the status says "later" (429, 5xx) rather
// than "never like this".
func (e *StatusError) Retryable() bool {
	return e.Code == 429 || e.Code >= 500
}

func (e *StatusError) Unwrap() error {
	if e.Retryable() {
		return ErrUnavailable
	}
	return ErrUnexpectedStatus
}

// Defaults for Options.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultCompressionLevel = 3
	// NoCompression as Options.CompressionLevel sends beats data frames
	// uncompressed (0 means the default level).
	NoCompression = -1
)

// Options configures a Forwarder.
type Options struct {
	// Address is the destination (from ParseAddress).
	Address Address
	// TLS is the client TLS configuration for beats+tls, https and tls;
	// nil means the system roots and the address's host as server name.
	// A config without ServerName gets the address's host. Ignored by the
	// plaintext schemes.
	TLS *tls.Config
	// Timeout bounds dialling (TCP and TLS handshake), each write, and for
	// beats each wait for the next ACK (keep-alive ACKs restart it); for
	// http(s) the whole request. 0 means DefaultTimeout (30s). The ctx
	// given to Send bounds the whole Send on top of it.
	Timeout time.Duration
	// CompressionLevel is the beats zlib level, 1-9; 0 means
	// DefaultCompressionLevel (3) and NoCompression (-1) none.
	CompressionLevel int
	// MaxMessageSize is the longest event sent; a longer one fails Send
	// with a *sink.TooLargeError (the caller records it as lost for this
	// destination) instead of reaching a Logstash that may cut it. 0 means
	// DefaultMaxMessageSize.
	MaxMessageSize int
}

// DefaultMaxMessageSize and MaxMaxMessageSize bound the events sent to
// Logstash: by default as long as the longest line the plugin handles
// (max-line-size's largest value), as Logstash's inputs take far more.
const (
	DefaultMaxMessageSize = 64 << 20
	MaxMaxMessageSize     = 64 << 20
)

// New returns the Forwarder for o.Address. It validates the options and
// never dials: the connection is made by the first Send. Every Forwarder it
// returns implements sink.Acknowledged.
func New(o Options) (sink.Forwarder, error) {
	a, err := ParseAddress(o.Address.String())
	if err != nil {
		return nil, err
	}
	if a.Scheme == SchemeHTTP || a.Scheme == SchemeHTTPS {
		// String() masks credentials and tokens: keep the URL as given.
		if a, err = ParseAddress(o.Address.URL); err != nil {
			return nil, err
		}
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("logstash %q: %w: negative timeout %v", a, ErrInvalidOptions, o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	switch {
	case o.CompressionLevel == 0:
		o.CompressionLevel = DefaultCompressionLevel
	case o.CompressionLevel == NoCompression:
		o.CompressionLevel = 0
	case o.CompressionLevel < 0 || o.CompressionLevel > 9:
		return nil, fmt.Errorf("logstash %q: %w: compression level %d (want 1-9, 0 for the default or -1 for none)", a, ErrInvalidOptions, o.CompressionLevel)
	}
	o.Address = a
	b := newBase(o)
	switch a.Scheme {
	case SchemeBeats, SchemeBeatsTLS:
		return newBeats(b, o), nil
	case SchemeHTTP, SchemeHTTPS:
		return newHTTP(b, o), nil
	default:
		return newStream(b), nil
	}
}

// base holds what every transport shares: the name for errors, the dialer
// and the closed state.
type base struct {
	addr    Address
	name    string
	timeout time.Duration
	maxSize int         // the longest event sent (Options.MaxMessageSize)
	tls     *tls.Config // nil for plaintext schemes

	closed context.Context // done once Close was called
	close  context.CancelFunc
}

func newBase(o Options) *base {
	b := &base{addr: o.Address, name: o.Address.String(), timeout: o.Timeout, maxSize: o.MaxMessageSize}
	if o.Address.isTLS() {
		if o.TLS != nil {
			b.tls = o.TLS.Clone()
		} else {
			b.tls = &tls.Config{}
		}
	}
	b.closed, b.close = context.WithCancel(context.Background())
	return b
}

// begin starts a Send: the returned ctx is done when the caller's is, or
// when Close is called (its cause is then ErrClosed).
func (b *base) begin(ctx context.Context) (context.Context, func(), error) {
	if b.closed.Err() != nil {
		return nil, nil, b.errorf("%w", ErrClosed)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(b.closed, func() { cancel(ErrClosed) })
	return ctx, func() { stop(); cancel(nil) }, nil
}

// dial connects to host:port, with TLS for the TLS schemes, within Timeout
// and ctx.
func (b *base) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	d := &net.Dialer{Timeout: b.timeout, KeepAlive: 30 * time.Second}
	if b.tls == nil {
		return d.DialContext(ctx, "tcp", b.addr.Addr)
	}
	td := &tls.Dialer{NetDialer: d, Config: b.tls}
	return td.DialContext(ctx, "tcp", b.addr.Addr)
}

// errorf formats an error naming the destination.
func (b *base) errorf(format string, args ...any) error {
	return fmt.Errorf("logstash %q: "+format, append([]any{b.name}, args...)...)
}

// fail names the destination and, if ctx ended the Send, says why (ErrClosed,
// context.Canceled or context.DeadlineExceeded), keeping err as well.
func (b *base) fail(ctx context.Context, err error) error {
	var cause error
	switch {
	case b.closed.Err() != nil:
		// Close cancels ctx asynchronously: it may not be done yet.
		cause = ErrClosed
	case ctx.Err() != nil:
		cause = context.Cause(ctx)
	}
	if cause != nil && !errors.Is(err, cause) {
		return b.errorf("%w: %w", cause, err)
	}
	return b.errorf("%w", err)
}

// checkSizes rejects a batch holding an event longer than the destination
// takes.
func (b *base) checkSizes(batch []sink.Event) error {
	for _, ev := range batch {
		if len(ev.Line) > b.maxSize {
			return &sink.TooLargeError{Seq: ev.Seq, Size: len(ev.Line), Limit: b.maxSize,
				Reason: fmt.Sprintf("the event of %d bytes is longer than logstash-max-message-size (%d bytes)", len(ev.Line), b.maxSize)}
		}
	}
	return nil
}

// checkLines rejects a batch holding an event that line framing cannot
// carry (a Line with a newline).
func checkLines(batch []sink.Event) error {
	for _, ev := range batch {
		if i := bytes.IndexByte(ev.Line, '\n'); i >= 0 {
			return &sink.TooLargeError{Seq: ev.Seq, Size: len(ev.Line),
				Reason: fmt.Sprintf("contains a newline at byte %d, which line framing (NDJSON, json_lines) cannot carry", i)}
		}
	}
	return nil
}
