package output

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ucp-audit/ucp-audit/alert"
	"github.com/ucp-audit/ucp-audit/sink"
)

// Errors of the Forwarders, wrapped; test with errors.Is.
var (
	// ErrClosed: Send after Close, or Close ended it.
	ErrClosed = errors.New("output closed")
	// ErrUnavailable: the receiver answered 429 or 5xx; retry later.
	ErrUnavailable = errors.New("output unavailable")
	// ErrUnexpectedStatus: the receiver answered another non-2xx status
	// (a 4xx, a redirect, which is not followed): usually a configuration
	// problem, which may be fixed while the alerts wait; the caller
	// retries like any failure.
	ErrUnexpectedStatus = errors.New("output refused the alerts")
	// ErrUnknownType: an output type this package does not know.
	ErrUnknownType = errors.New("unknown output type")
	// ErrInvalidURL: an output's URL is not http:// or https:// with a
	// host.
	ErrInvalidURL = errors.New("invalid URL")
	// ErrBadCA: an output's ca_file cannot be read or holds no
	// certificate.
	ErrBadCA = errors.New("bad CA file")
)

// StatusError is a POST answered with a non-2xx status. It unwraps to
// ErrUnavailable (429, 5xx) or ErrUnexpectedStatus.
type StatusError struct {
	Code int
	Body string // the start of the answer's body, printable
}

func (e *StatusError) Error() string {
	msg := "HTTP status " + strconv.Itoa(e.Code)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

func (e *StatusError) Unwrap() error {
	if e.Code == http.StatusTooManyRequests || e.Code >= 500 {
		return ErrUnavailable
	}
	return ErrUnexpectedStatus
}

// MaxPayload is the longest payload sent, in bytes: an alert is a few
// hundred.
const MaxPayload = 1 << 20

// AlertmanagerPath is where Alertmanager's API v2 takes alerts, below its
// base URL.
const AlertmanagerPath = "/api/v2/alerts"

// Options configures a Forwarder.
type Options struct {
	// Name names the output in errors.
	Name string
	// Timeout bounds each POST; 0 means alert.DefaultTimeout.
	Timeout time.Duration
	// TLS is the client TLS configuration for https; nil means the
	// system's roots.
	TLS *tls.Config
	// Now is the clock of the webhook's timestamp header; nil: time.Now.
	Now func() time.Time
}

// New returns the Forwarder of output o: it reads the webhook's secret
// file and the CA file, and never connects (the first Send does).
func New(o alert.Output) (sink.Forwarder, error) {
	opts := Options{Name: o.Name, Timeout: o.Timeout}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("alert output %q: %w: %w", o.Name, ErrBadCA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("alert output %q: %w: %s holds no PEM certificate", o.Name, ErrBadCA, o.CAFile)
		}
		opts.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	switch o.Type {
	case alert.Alertmanager:
		return NewAlertmanager(o.URL, opts)
	case alert.Webhook:
		secret, err := ReadSecret(o.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("alert output %q: %w", o.Name, err)
		}
		return NewWebhook(o.URL, secret, opts)
	case alert.Slack:
		return NewSlack(o.URL, opts)
	}
	return nil, fmt.Errorf("alert output %q: %w %q", o.Name, ErrUnknownType, o.Type)
}

// NewAlertmanager returns a Forwarder POSTing each batch to the
// Alertmanager at base (http://127.0.0.1:9093, or with a path prefix) as
// one JSON array.
func NewAlertmanager(base string, o Options) (sink.Forwarder, error) {
	u, err := parseURL(base, "alertmanager", o)
	if err != nil {
		return nil, err
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + AlertmanagerPath
	u.RawPath = ""
	return newForwarder(u, "alertmanager", o, func(batch []sink.Event) [][]byte {
		size := 2
		for _, ev := range batch {
			size += len(ev.Line) + 1
		}
		body := make([]byte, 0, size)
		body = append(body, '[')
		for i, ev := range batch {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, ev.Line...)
		}
		return [][]byte{append(body, ']')}
	}, nil), nil
}

// NewWebhook returns a Forwarder POSTing each alert's payload to url,
// signed with secret (at least MinSecret bytes).
func NewWebhook(url string, secret []byte, o Options) (sink.Forwarder, error) {
	if len(secret) < MinSecret {
		return nil, fmt.Errorf("alert output %q: %w: %d bytes, want at least %d", o.Name, ErrBadSecret, len(secret), MinSecret)
	}
	u, err := parseURL(url, "webhook", o)
	if err != nil {
		return nil, err
	}
	secret = bytes.Clone(secret)
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return newForwarder(u, "webhook", o, onePerPost, func(h http.Header, body []byte) {
		h.Set(SignatureHeader, Sign(secret, body))
		h.Set(TimestampHeader, strconv.FormatInt(now().Unix(), 10))
	}), nil
}

// NewSlack returns a Forwarder POSTing each alert's message to a Slack
// incoming webhook's url.
func NewSlack(url string, o Options) (sink.Forwarder, error) {
	u, err := parseURL(url, "slack", o)
	if err != nil {
		return nil, err
	}
	return newForwarder(u, "slack", o, onePerPost, nil), nil
}

func onePerPost(batch []sink.Event) [][]byte {
	bodies := make([][]byte, len(batch))
	for i, ev := range batch {
		bodies[i] = ev.Line
	}
	return bodies
}

// parseURL checks an output's URL; errors never show it (it may hold a
// token).
func parseURL(raw, typ string, o Options) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("alert output %q (%s): %w: not http:// or https:// with a host (not shown: a URL may hold a token)", o.Name, typ, ErrInvalidURL)
	}
	return u, nil
}

// forwarder POSTs the bodies bodies makes of a batch, one after the other.
type forwarder struct {
	name    string // for errors: the output's name, type and redacted URL
	url     string
	bodies  func([]sink.Event) [][]byte
	header  func(http.Header, []byte) // extra headers of a body; may be nil
	timeout time.Duration
	client  *http.Client

	closed context.Context // done once Close was called
	close  context.CancelFunc
}

var _ sink.Acknowledged = (*forwarder)(nil)

func newForwarder(u *url.URL, typ string, o Options, bodies func([]sink.Event) [][]byte, header func(http.Header, []byte)) *forwarder {
	if o.Timeout <= 0 {
		o.Timeout = alert.DefaultTimeout
	}
	var tc *tls.Config
	if o.TLS != nil {
		tc = o.TLS.Clone()
	}
	f := &forwarder{
		name:    fmt.Sprintf("alert output %q (%s %s://%s)", o.Name, typ, u.Scheme, u.Host),
		url:     u.String(),
		bodies:  bodies,
		header:  header,
		timeout: o.Timeout,
		client:  sink.NewHTTPClient(o.Timeout, tc),
	}
	f.closed, f.close = context.WithCancel(context.Background())
	return f
}

// Acknowledged reports true: a 2xx answer acknowledges.
func (f *forwarder) Acknowledged() bool { return true }

// Send POSTs the batch and returns nil once every POST was answered 2xx.
func (f *forwarder) Send(ctx context.Context, batch []sink.Event) error {
	if f.closed.Err() != nil {
		return f.errorf("%w", ErrClosed)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(f.closed, func() { cancel(ErrClosed) })
	defer stop()
	defer func() {
		// A dial or TLS handshake this Send started goes on after the
		// request gave up, unless cancelled now that nobody waits for it.
		if f.closed.Err() != nil {
			f.client.CloseIdleConnections()
		}
	}()
	for _, ev := range batch {
		if err := check(ev); err != nil {
			return f.errorf("%w", err)
		}
	}
	for _, body := range f.bodies(batch) {
		if err := f.post(ctx, body); err != nil {
			return err
		}
	}
	return nil
}

// check refuses a payload no receiver will ever take.
func check(ev sink.Event) error {
	switch {
	case len(ev.Line) > MaxPayload:
		return &sink.TooLargeError{Seq: ev.Seq, Size: len(ev.Line), Limit: MaxPayload,
			Reason: fmt.Sprintf("the alert payload of %d bytes is longer than %d", len(ev.Line), MaxPayload)}
	case len(ev.Line) == 0 || ev.Line[0] != '{' || !json.Valid(ev.Line):
		return &sink.TooLargeError{Seq: ev.Seq, Size: len(ev.Line), Reason: "the alert payload is not a JSON object"}
	}
	return nil
}

func (f *forwarder) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
	if err != nil {
		return f.errorf("%w", hideURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ucp-audit")
	if f.header != nil {
		f.header(req.Header, body)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			return f.errorf("%w: %w", cause, hideURL(err))
		}
		return f.errorf("%w", hideURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // so that the connection can be reused
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	return f.errorf("%w", &StatusError{Code: resp.StatusCode, Body: printable(snippet)})
}

// hideURL strips the URL net/http puts in its errors (it may hold a
// token).
func hideURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// printable makes the start of an answer fit for an error message.
func printable(b []byte) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(b), "\uFFFD")))
}

func (f *forwarder) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{f.name}, args...)...)
}

// Close makes a Send in progress return soon, and later ones fail.
func (f *forwarder) Close() error {
	f.close()
	f.client.CloseIdleConnections()
	return nil
}
