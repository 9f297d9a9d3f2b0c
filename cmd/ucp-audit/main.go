// Command ucp-audit is the plugin's entry point: it reads its settings from
// the environment (set with `docker plugin set ucp-audit KEY=VALUE`), serves
// the plugin API on its unix socket and drains every stream on SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/driver"
	"github.com/ucp-audit/ucp-audit/metrics"
	"github.com/ucp-audit/ucp-audit/plugin"
	"github.com/ucp-audit/ucp-audit/sink/file"
)

const socketPath = "/run/docker/plugins/ucp-audit.sock"

// Set at build time (Makefile: -ldflags -X).
var (
	version = "0.0.0-dev"
	commit  = "unknown"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "version", "--version":
			fmt.Printf("ucp-audit %s (commit %s)\n", version, commit)
			return
		case "status":
			os.Exit(status(os.Args[2:]))
		case "query":
			os.Exit(query(os.Args[2:]))
		case "report":
			os.Exit(report(os.Args[2:]))
		case "verify":
			os.Exit(verify(os.Args[2:]))
		case "keygen":
			os.Exit(keygen(os.Args[2:], processEnv()))
		case "config":
			os.Exit(nodeConfig(os.Args[2:]))
		case "support-dump":
			os.Exit(supportDump(os.Args[2:]))
		default:
			fmt.Fprintf(os.Stderr, "ucp-audit: unknown command %q (commands: version, status [ADDRESS], query, report, verify, keygen, config, support-dump; with no command it runs as the Docker plugin)\n", os.Args[1])
			os.Exit(2)
		}
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ucp-audit:", err)
		os.Exit(1)
	}
}

// settings are read from the environment; config.json declares the ones
// `docker plugin set` may change.
type settings struct {
	level     slog.Level
	drain     time.Duration
	retention time.Duration
	stateDir  string
	logDir    string
	socket    string
	metrics   string // METRICS_ADDRESS: host:port, or "" for none
	sealKey   string // SEAL_KEY: PEM Ed25519 private key signing the seals, or "" for unsigned
	sealEvery time.Duration
}

func loadSettings(getenv func(string) string) (settings, error) {
	get := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	var s settings
	if err := s.level.UnmarshalText([]byte(get("LOG_LEVEL", "info"))); err != nil {
		return s, fmt.Errorf("setting LOG_LEVEL: invalid value %q (want debug, info, warn or error)", get("LOG_LEVEL", ""))
	}
	var err error
	for _, d := range []struct {
		key, def string
		dst      *time.Duration
	}{{"DRAIN_TIMEOUT", "20s", &s.drain}, {"STORE_RETENTION", "168h", &s.retention}, {"SEAL_INTERVAL", "1m", &s.sealEvery}} {
		v := get(d.key, d.def)
		if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst < 0 {
			return s, fmt.Errorf("setting %s: invalid value %q (want a duration such as %s)", d.key, v, d.def)
		}
	}
	s.stateDir = get("STATE_DIR", "/var/lib/ucp-audit")
	s.logDir = get("LOG_DIR", "/var/log/ucp-audit")
	s.socket = get("SOCKET", socketPath)
	if s.sealEvery < time.Second {
		return s, fmt.Errorf("setting SEAL_INTERVAL: invalid value %q (want a duration of at least 1s, such as 1m)", get("SEAL_INTERVAL", ""))
	}
	s.sealKey = getenv("SEAL_KEY")
	s.metrics = getenv("METRICS_ADDRESS")
	if s.metrics != "" {
		if _, _, err := net.SplitHostPort(s.metrics); err != nil {
			return s, fmt.Errorf("setting METRICS_ADDRESS: invalid value %q (want host:port, e.g. 127.0.0.1:9323)", s.metrics)
		}
	}
	return s, nil
}

// gcPercent is the plugin's garbage-collection target unless GOGC is set:
// its live heap is small (a few buffers per stream) while every event
// allocates, so collecting at 5× the live heap instead of 2× gives the
// CPU back to the containers for a few MiB. memLimit, unless GOMEMLIMIT is
// set, makes the collector work harder instead when many streams would
// take the heap past it.
const (
	gcPercent = 400
	memLimit  = 48 << 20
)

func run() error {
	set, err := loadSettings(os.Getenv)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memLimit)
	}
	level := set.level
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var m *metrics.Metrics
	if set.metrics != "" {
		m = metrics.New()
		m.SetBuildInfo(version, commit)
	}
	sealing := file.Sealing{Interval: set.sealEvery}
	if set.sealKey != "" {
		if sealing.Key, err = chain.LoadPrivateKey(set.sealKey); err != nil {
			return fmt.Errorf("setting SEAL_KEY: %w", err)
		}
	}
	d, err := driver.New(driver.Options{
		Sealing:      sealing,
		Version:      version,
		Metrics:      m,
		StateDir:     set.stateDir,
		LogDir:       set.logDir,
		Host:         hostname(),
		DrainTimeout: set.drain,
		Retention:    set.retention,
		Logger:       log,
	})
	if err != nil {
		return err
	}
	sock := set.socket
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		return err
	}
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	mctx, stopMetrics := context.WithCancel(context.Background())
	metricsDone := make(chan struct{})
	go func() {
		defer close(metricsDone)
		if m == nil {
			return
		}
		m.SetHealth(d.Healthy)
		log.Info("serving metrics", "address", set.metrics)
		if err := m.Serve(mctx, set.metrics); err != nil {
			log.Error("metrics listener", "error", err)
		}
	}()
	defer func() { stopMetrics(); <-metricsDone }()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- plugin.NewHandler(d).Serve(l) }()
	log.Info("ucp-audit serving", "version", version, "commit", commit, "socket", sock, "log_level", level.String())

	select {
	case sig := <-sigs:
		log.Info("shutting down: draining streams", "signal", sig.String())
		l.Close()
		err = nil
	case err = <-served:
		if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
			err = nil
		}
	}
	return errors.Join(err, d.Close())
}

// hostname is the node's name. The plugin has its own UTS namespace, so the
// node's /etc/hostname is mounted at /etc/ucp-audit/hostname (config.json).
func hostname() string {
	if v := os.Getenv("HOSTNAME_OVERRIDE"); v != "" {
		return v
	}
	if b, err := os.ReadFile("/etc/ucp-audit/hostname"); err == nil {
		if h := strings.TrimSpace(string(b)); h != "" {
			return h
		}
	}
	h, _ := os.Hostname()
	return h
}

// status prints a human summary of a running plugin, read from its metrics
// listener: ucp-audit status [ADDRESS], ADDRESS defaulting to
// $METRICS_ADDRESS.
func status(args []string) int {
	addr := os.Getenv("METRICS_ADDRESS")
	if len(args) > 0 {
		addr = args[0]
	}
	if addr == "" || len(args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: ucp-audit status ADDRESS (the plugin's METRICS_ADDRESS, e.g. 127.0.0.1:9323)")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := metrics.Status(ctx, addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ucp-audit status:", err)
		return 1
	}
	fmt.Print(out)
	return 0
}
