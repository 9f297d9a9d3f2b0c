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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ucp-audit/ucp-audit/api"
	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/driver"
	"github.com/ucp-audit/ucp-audit/metrics"
	"github.com/ucp-audit/ucp-audit/node"
	"github.com/ucp-audit/ucp-audit/plugin"
	"github.com/ucp-audit/ucp-audit/sink/file"
)

const socketPath = "/run/docker/plugins/ucp-audit.sock"

// exampleMetricsAddress is the metrics listener the docs suggest: on
// loopback, and not 9323, which Docker documents for dockerd's own
// metrics-addr (the plugin shares the host's network).
const exampleMetricsAddress = "127.0.0.1:9388"

// serve runs `ucp-audit serve`, the plugin.
func serve(args []string) int {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "--help" {
			fmt.Println("usage: ucp-audit serve\n\nRuns as the Docker plugin: config.json names this command as the plugin's entry point.\nIts settings come from the environment (docker plugin set ucp-audit KEY=VALUE).")
			return 0
		}
		fmt.Fprintf(os.Stderr, "ucp-audit serve: takes no arguments (its settings come from the environment), got %q\n", args)
		return 2
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ucp-audit:", err)
		return 1
	}
	return 0
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
	api       string // API_ADDRESS: host:port of the configuration API, or "" for none
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
	s.api = getenv("API_ADDRESS")
	if s.api != "" {
		if _, _, err := net.SplitHostPort(s.api); err != nil {
			return s, fmt.Errorf("setting API_ADDRESS: invalid value %q (want host:port, e.g. 0.0.0.0:12391)", s.api)
		}
	}
	s.metrics = getenv("METRICS_ADDRESS")
	if s.metrics != "" {
		host, _, err := net.SplitHostPort(s.metrics)
		if err != nil {
			return s, fmt.Errorf("setting METRICS_ADDRESS: invalid value %q (want host:port, e.g. %s)", s.metrics, exampleMetricsAddress)
		}
		remote, err := strconv.ParseBool(get("METRICS_ALLOW_REMOTE", "false"))
		if err != nil {
			return s, fmt.Errorf("setting METRICS_ALLOW_REMOTE: invalid value %q (want true or false)", get("METRICS_ALLOW_REMOTE", ""))
		}
		if ip := net.ParseIP(host); !remote && (ip == nil || !ip.IsLoopback()) && host != "localhost" {
			return s, fmt.Errorf("setting METRICS_ADDRESS: invalid value %q: not a loopback address; the plugin runs on the host's network, so /metrics would be open to the network (want e.g. %s, or set METRICS_ALLOW_REMOTE=true)", s.metrics, exampleMetricsAddress)
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
	level := new(slog.LevelVar)
	level.Set(set.level)
	log := slog.New(newLogHandler(os.Stdout, os.Stderr, level))
	unlock, err := lockState(set.stateDir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := publishBinary(set.stateDir); err != nil {
		log.Warn("cannot copy the plugin's binary for the host CLI", "error", err)
	}
	var m *metrics.Metrics
	if set.metrics != "" {
		m = metrics.New()
		m.SetBuildInfo(version, commit)
	}
	nenv := node.Env{LogDir: set.logDir, StateDir: set.stateDir}
	ns := &nodeState{path: nenv.Path(), env: nenv, sealKey: set.sealKey, level: level, setting: set.level}
	nc, doc, nodeErr := ns.load()
	if nodeErr != nil {
		log.Error("node configuration refused: the defaults apply until it is mended", "error", nodeErr)
	}
	sealing := file.Sealing{Interval: set.sealEvery}
	if nc.SealKey != "" {
		if sealing.Key, err = chain.LoadPrivateKey(nc.SealKey); err != nil {
			return fmt.Errorf("seal key %s (sealKey in the node configuration, or SEAL_KEY): %w", nc.SealKey, err)
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
		Node:         nc,
	})
	if err != nil {
		return err
	}
	if nodeErr != nil {
		d.RejectNode(nodeErr)
	}
	var srv *api.Server
	if set.api != "" {
		srv = ns.apiServer(d, log)
		configureAPI(srv, nc, log)
	}
	nctx, stopNode := context.WithCancel(context.Background())
	var nodeWG sync.WaitGroup
	nodeWG.Add(1)
	go func() {
		defer nodeWG.Done()
		ns.watch(nctx, doc, d, srv, log)
	}()
	if srv != nil {
		nodeWG.Add(1)
		go func() {
			defer nodeWG.Done()
			log.Info("serving the configuration API", "address", set.api)
			if err := srv.Serve(nctx, set.api); err != nil {
				log.Error("configuration API listener", "error", err)
			}
		}()
	}
	defer func() { stopNode(); nodeWG.Wait() }()
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
		m.SetPipelineLag(d.PipelineLag)
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
	log.Info("ucp-audit serving", "version", version, "commit", commit, "socket", sock, "log_level", level.Level().String())

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
	// The watcher and the API stop first: nothing changes the driver
	// while it drains.
	stopNode()
	nodeWG.Wait()
	return errors.Join(err, d.Close())
}

// lockFile, in the state directory, is held by the process that serves:
// two processes writing one trail would interleave two chains.
const lockFile = "plugin.lock"

// lockState takes the state directory's lock, or says who holds it.
func lockState(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another ucp-audit process (%s) holds %s: it already writes this node's trail; stop it first (docker plugin disable ucp-audit, or the other dockerd)", strings.TrimSpace(string(holder)), path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "pid %d, version %s\n", os.Getpid(), version)
	return func() { f.Close() }, nil
}

// logHandler writes the plugin's log records below error to stdout and the
// others to stderr: dockerd logs a plugin's stdout at level info and its
// stderr at level error, so operators who grep dockerd's log for errors
// find only the plugin's errors.
type logHandler struct{ out, errs slog.Handler }

func newLogHandler(stdout, stderr *os.File, level slog.Leveler) slog.Handler {
	o := &slog.HandlerOptions{Level: level}
	return logHandler{out: slog.NewTextHandler(stdout, o), errs: slog.NewTextHandler(stderr, o)}
}

func (h logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.out.Enabled(ctx, l) }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		return h.errs.Handle(ctx, r)
	}
	return h.out.Handle(ctx, r)
}

func (h logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{out: h.out.WithAttrs(as), errs: h.errs.WithAttrs(as)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{out: h.out.WithGroup(name), errs: h.errs.WithGroup(name)}
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
