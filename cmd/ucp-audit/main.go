// Command ucp-audit is the plugin's entry point: it reads its settings from
// the environment (set with `docker plugin set ucp-audit KEY=VALUE`), serves
// the plugin API on its unix socket and drains every stream on SIGTERM.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ucp-audit/ucp-audit/driver"
	"github.com/ucp-audit/ucp-audit/plugin"
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
		default:
			fmt.Fprintf(os.Stderr, "ucp-audit: unknown command %q (commands: version; with no command it runs as the Docker plugin)\n", os.Args[1])
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
	}{{"DRAIN_TIMEOUT", "20s", &s.drain}, {"STORE_RETENTION", "168h", &s.retention}} {
		v := get(d.key, d.def)
		if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst < 0 {
			return s, fmt.Errorf("setting %s: invalid value %q (want a duration such as %s)", d.key, v, d.def)
		}
	}
	s.stateDir = get("STATE_DIR", "/var/lib/ucp-audit")
	s.logDir = get("LOG_DIR", "/var/log/ucp-audit")
	s.socket = get("SOCKET", socketPath)
	return s, nil
}

func run() error {
	set, err := loadSettings(os.Getenv)
	if err != nil {
		return err
	}
	level := set.level
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	d, err := driver.New(driver.Options{
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
