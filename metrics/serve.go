package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HTTP server limits. A scrape is small; nothing here needs to be generous.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	scrapeTimeout     = 20 * time.Second // under writeTimeout, so promhttp answers 503 first
	maxScrapes        = 4                // concurrent /metrics requests; more get 503
	shutdownTimeout   = 2 * time.Second  // then open connections are closed
)

// Handler serves /metrics (Prometheus text format, from the Metrics' own
// registry) and /healthz. Other paths are 404. For a nil Metrics, both
// answer 503 "metrics disabled".
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	if m == nil {
		disabled := func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "metrics disabled", http.StatusServiceUnavailable)
		}
		mux.HandleFunc("/metrics", disabled)
		mux.HandleFunc("/healthz", disabled)
		return mux
	}
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg, // exports promhttp_metric_handler_errors_total
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapes,
		Timeout:             scrapeTimeout,
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := m.healthy(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err.Error())
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Serve listens on addr (host:port) and serves Handler until ctx is done. It
// returns after the server has shut down: nil when ctx ended it, else the
// error that stopped it. Any address is accepted; the endpoints have no
// authentication, so a loopback address is recommended. A nil Metrics
// returns nil at once without listening.
func (m *Metrics) Serve(ctx context.Context, addr string) error {
	if m == nil {
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	return m.ServeListener(ctx, l)
}

// ServeListener is Serve on a listener the caller opened (for example on
// "127.0.0.1:0", to learn the port from l.Addr()). It takes ownership of l
// and closes it.
func (m *Metrics) ServeListener(ctx context.Context, l net.Listener) error {
	if m == nil {
		_ = l.Close()
		return nil
	}
	srv := &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()

	select {
	case err := <-errc: // stopped by itself: the listener failed
		_ = srv.Close()
		return fmt.Errorf("metrics: serve on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve on %s: %w", l.Addr(), err)
	}
	return nil
}
