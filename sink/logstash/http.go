package logstash

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/ucp-audit/ucp-audit/sink"
)

// httpForwarder POSTs NDJSON to the Logstash http input.
type httpForwarder struct {
	*base
	client *http.Client
}

func newHTTP(b *base, o Options) *httpForwarder {
	return &httpForwarder{base: b, client: sink.NewHTTPClient(o.Timeout, b.tls)}
}

// Acknowledged reports true: a 2xx answer acknowledges the batch.
func (f *httpForwarder) Acknowledged() bool { return true }

// Send POSTs the batch as NDJSON and returns nil on a 2xx answer.
func (f *httpForwarder) Send(ctx context.Context, batch []sink.Event) error {
	ctx, done, err := f.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	defer func() {
		if f.closed.Err() != nil { // Close raced with this Send
			f.client.CloseIdleConnections()
		}
	}()
	if len(batch) == 0 {
		return nil
	}
	if err := checkLines(batch); err != nil {
		return f.errorf("%w", err)
	}
	if err := f.checkSizes(batch); err != nil {
		return f.errorf("%w", err)
	}
	size := 0
	for _, ev := range batch {
		size += len(ev.Line) + 1
	}
	body := make([]byte, 0, size)
	for _, ev := range batch {
		body = append(body, ev.Line...)
		body = append(body, '\n')
	}

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.addr.URL, bytes.NewReader(body))
	if err != nil {
		return f.errorf("%w", err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := f.client.Do(req)
	if err != nil {
		return f.fail(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		// Drain a little so that the connection can be reused.
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	serr := &StatusError{Code: resp.StatusCode, Body: printable(snippet)}
	if serr.Retryable() {
		return f.errorf("%w", serr)
	}
	return f.errorf("%w: %w", ErrUnexpectedStatus, serr)
}

// printable makes a response body fit for an error message.
func printable(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), string(utf8.RuneError)))
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(b) == 512 {
		s += "…"
	}
	return s
}

// Close cancels an in-flight request and closes idle connections.
func (f *httpForwarder) Close() error {
	f.close()
	f.client.CloseIdleConnections()
	return nil
}
