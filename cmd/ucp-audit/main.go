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

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ucp-audit:", err)
		os.Exit(1)
	}
}

func run() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(env("LOG_LEVEL", "info"))); err != nil {
		return fmt.Errorf("setting LOG_LEVEL: %w (want debug, info, warn or error)", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	drain, err := duration("DRAIN_TIMEOUT", "20s")
	if err != nil {
		return err
	}
	retention, err := duration("STORE_RETENTION", "168h")
	if err != nil {
		return err
	}
	d, err := driver.New(driver.Options{
		StateDir:     env("STATE_DIR", "/var/lib/ucp-audit"),
		LogDir:       env("LOG_DIR", "/var/log/ucp-audit"),
		Host:         hostname(),
		DrainTimeout: drain,
		Retention:    retention,
		Logger:       log,
	})
	if err != nil {
		return err
	}
	sock := env("SOCKET", socketPath)
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
	log.Info("ucp-audit serving", "socket", sock, "log_level", level.String())

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

func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func duration(key, def string) (time.Duration, error) {
	v := env(key, def)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("setting %s: invalid value %q (want a duration such as 20s)", key, v)
	}
	return d, nil
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
