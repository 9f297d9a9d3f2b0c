package sink

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// NewHTTPClient returns the client of a destination that speaks HTTP (the
// Logstash http input, the alert outputs): no proxy (HTTP_PROXY is
// ignored: audit data and alerts go straight to the address given), no
// redirect followed (the 3xx answer is returned, an unexpected status),
// and timeout bounding the dial, the TLS handshake and the wait for the
// answer's header. tc may be nil (plain HTTP). Its CloseIdleConnections
// drops the kept connection after a failure.
func NewHTTPClient(timeout time.Duration, tc *tls.Config) *http.Client {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          2,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}
