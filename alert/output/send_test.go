package output

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/alert"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/sink/sinktest"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// decodeFor returns how a loopback peer standing in for an output of type
// typ reads a POST: Alertmanager's API takes an array at
// /api/v2/alerts, a webhook a signed body, Slack a {"text"} body.
func decodeFor(typ alert.OutputType) func(r *http.Request, body []byte) ([]string, error) {
	return func(r *http.Request, body []byte) ([]string, error) {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			return nil, fmt.Errorf("Content-Type %q", ct)
		}
		switch typ {
		case alert.Alertmanager:
			if r.URL.Path != "/prefix"+AlertmanagerPath {
				return nil, fmt.Errorf("path %q", r.URL.Path)
			}
			var alerts []json.RawMessage
			if err := json.Unmarshal(body, &alerts); err != nil {
				return nil, err
			}
			out := make([]string, len(alerts))
			for i, a := range alerts {
				out[i] = string(a)
			}
			return out, nil
		case alert.Webhook:
			if !Verify(testSecret, body, r.Header.Get(SignatureHeader)) {
				return nil, errors.New("bad signature")
			}
			if ts, err := strconv.ParseInt(r.Header.Get(TimestampHeader), 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
				return nil, fmt.Errorf("timestamp %q", r.Header.Get(TimestampHeader))
			}
		}
		if !json.Valid(body) {
			return nil, errors.New("not JSON")
		}
		return []string{string(body)}, nil
	}
}

func newForType(t *testing.T, typ alert.OutputType, url string, o Options) sink.Forwarder {
	t.Helper()
	var f sink.Forwarder
	var err error
	switch typ {
	case alert.Alertmanager:
		f, err = NewAlertmanager(url, o)
	case alert.Webhook:
		f, err = NewWebhook(url, testSecret, o)
	case alert.Slack:
		f, err = NewSlack(url, o)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// Every output type runs the Forwarder conformance suite against a
// loopback HTTP peer that checks what that type's receiver checks, over
// http and https.
func TestForwarderConformance(t *testing.T) {
	pki := peers.NewPKI(t, t.TempDir())
	for _, typ := range []alert.OutputType{alert.Alertmanager, alert.Webhook, alert.Slack} {
		for _, scheme := range []string{"http", "https"} {
			opts := func(timeout time.Duration) Options {
				o := Options{Name: "test", Timeout: timeout}
				if scheme == "https" {
					o.TLS = pki.ClientTLS()
				}
				return o
			}
			suite := sinktest.Forwarder{
				Open: func(t *testing.T) (sink.Forwarder, sinktest.Peer) {
					p := peers.NewHTTP(t)
					p.Decode = decodeFor(typ)
					if scheme == "https" {
						p.TLS = pki.ServerTLS()
					}
					p.Start()
					return newForType(t, typ, strings.TrimSuffix(p.URL(), "/")+"/prefix", opts(5*time.Second)), p
				},
				Stalled: func(t *testing.T) (sink.Forwarder, []sink.Event) {
					p := peers.StartSilent(t, "tcp")
					return newForType(t, typ, scheme+"://"+p.Addr+"/prefix", opts(30*time.Second)), sinktest.Events(1, 5)
				},
				TooLarge: func(seq uint64) sink.Event {
					return sink.Event{Line: []byte(`{"pad":"` + strings.Repeat("x", MaxPayload) + `"}`), Seq: seq}
				},
			}
			t.Run(string(typ)+"/"+scheme, suite.Run)
		}
	}
}

func TestSendRefusesNotJSON(t *testing.T) {
	f := newForType(t, alert.Alertmanager, "http://127.0.0.1:9", Options{})
	err := f.Send(context.Background(), []sink.Event{{Line: []byte(`[1]`), Seq: 4}})
	var tl *sink.TooLargeError
	if !errors.As(err, &tl) || tl.Seq != 4 || !strings.Contains(err.Error(), "not a JSON object") {
		t.Errorf("%v", err)
	}
}

func TestSendStatus(t *testing.T) {
	var mu sync.Mutex
	code := http.StatusTooManyRequests
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(code)
		fmt.Fprint(w, "busy\nnow")
	}))
	defer srv.Close()
	// A Slack URL's path is its token: errors must not show it.
	f := newForType(t, alert.Slack, srv.URL+"/services/T0/B0/SLACKTOKEN", Options{Name: "ops"})
	batch := []sink.Event{{Line: []byte(`{"text":"x"}`)}}
	err := f.Send(context.Background(), batch)
	var se *StatusError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &se) || se.Code != 429 || !strings.Contains(err.Error(), `alert output "ops" (slack http://127.0.0.1:`) || !strings.Contains(err.Error(), "busy now") {
		t.Errorf("429: %v", err)
	}
	mu.Lock()
	code = http.StatusBadRequest
	mu.Unlock()
	if err := f.Send(context.Background(), batch); !errors.Is(err, ErrUnexpectedStatus) || errors.Is(err, ErrUnavailable) {
		t.Errorf("400: %v", err)
	}
	srv.Close()
	err = f.Send(context.Background(), batch)
	if err == nil || strings.Contains(err.Error(), "SLACKTOKEN") || strings.Contains(err.Error(), "/services") {
		t.Errorf("a closed server: %v", err)
	}
	f.Close()
	if err := f.Send(context.Background(), batch); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "hook.key")
	os.WriteFile(key, append(testSecret, '\n'), 0o600)
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("TOOSHORT"), 0o600)
	pki := peers.NewPKI(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)

	// A webhook over https with the output's own CA, to a real peer.
	p := peers.NewHTTP(t)
	p.Decode = func(r *http.Request, body []byte) ([]string, error) {
		if !Verify(testSecret, body, r.Header.Get(SignatureHeader)) {
			return nil, errors.New("bad signature")
		}
		return []string{string(body)}, nil
	}
	p.TLS = pki.ServerTLS()
	p.Start()
	f, err := New(alert.Output{Name: "hook", Type: alert.Webhook, URL: p.URL() + "x?token=1", SecretFile: key, CAFile: pki.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	body, _ := FormatWebhook(alerts["gap"])
	if err := f.Send(context.Background(), []sink.Event{{Line: body}}); err != nil {
		t.Fatal(err)
	}
	if got := p.Events(); len(got) != 1 || got[0] != string(body) {
		t.Errorf("received %q", got)
	}
	for _, tc := range []struct {
		o    alert.Output
		want error
	}{
		{alert.Output{Name: "h", Type: alert.Webhook, URL: "http://127.0.0.1:9", SecretFile: short}, ErrBadSecret},
		{alert.Output{Name: "h", Type: alert.Webhook, URL: "http://127.0.0.1:9", SecretFile: filepath.Join(dir, "none")}, ErrBadSecret},
		{alert.Output{Name: "s", Type: alert.Slack, URL: "https://127.0.0.1:9", CAFile: notPEM}, ErrBadCA},
		{alert.Output{Name: "s", Type: alert.Slack, URL: "https://127.0.0.1:9", CAFile: filepath.Join(dir, "none")}, ErrBadCA},
		{alert.Output{Name: "s", Type: alert.Slack, URL: "ftp://h/TOKEN"}, ErrInvalidURL},
		{alert.Output{Name: "x", Type: "pagerduty", URL: "http://h"}, ErrUnknownType},
	} {
		_, err := New(tc.o)
		if !errors.Is(err, tc.want) || strings.Contains(err.Error(), "TOOSHORT") || strings.Contains(err.Error(), "TOKEN") {
			t.Errorf("%+v: %v, want %v", tc.o, err, tc.want)
		}
	}
	if _, err := NewWebhook("http://127.0.0.1:9", []byte("short"), Options{}); !errors.Is(err, ErrBadSecret) {
		t.Errorf("a short secret: %v", err)
	}
}
