// Package config turns the log-opts of one container into a typed Config.
//
// Parse is the only entry point: it applies defaults, parses every key with
// an error that names it, rejects unknown keys and then checks the keys
// against each other. It owns the keys of the audit files, the docker-logs
// store and the spool; each remote destination owns its own keys (see
// sink.Destination), and Parse accepts those of the destinations in
// Env.Destinations (package sink/destinations names them), without knowing
// any of them by name. The driver calls it once, at StartLogging, so a bad
// option makes `docker run` fail with that error.
package config

import (
	"errors"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ucp-audit/ucp-audit/audit"
	"github.com/ucp-audit/ucp-audit/logopt"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/spool"
)

// ErrUnknownOption and ErrInvalidValue are wrapped by every error Parse
// returns, so callers can tell a typo in a key from a bad value. They are
// logopt's, which every owner of log-opts uses.
var (
	ErrUnknownOption = logopt.ErrUnknownOption
	ErrInvalidValue  = logopt.ErrInvalidValue
)

// DefaultLogDir is the host directory the plugin mounts for its output.
// Output files must live below it, or they would land in the plugin's own
// root filesystem where nobody on the host can read them.
const DefaultLogDir = "/var/log/ucp-audit"

// Limits and defaults, in bytes.
const (
	DefaultMaxLineSize = 4 << 20  // 4 MiB: request payloads are large
	MinMaxLineSize     = 16 << 10 // one Docker partial chunk
	MaxMaxLineSize     = 64 << 20

	DefaultAuditFileMaxSize  = 100 << 20
	DefaultAuditFileMaxFiles = 20

	DefaultStoreMaxSize = 20 << 20 // as Docker's local driver
	DefaultStoreMaxFile = 5

	DefaultSpoolMaxSize = 256 << 20 // per container
)

// Config is the parsed configuration of one container's stream.
type Config struct {
	AuditLevel       audit.Level
	AuditIgnore      audit.Ignore
	AuditFile        string
	AuditFileMaxSize int64 // <= 0: never rotate
	AuditFileMaxFile int
	QuarantineFile   string
	MaxLineSize      int

	StoreMaxSize int64 // per segment of the docker-logs store
	StoreMaxFile int

	// Remotes are the remote destinations the options configure, in the
	// order of Env.Destinations; none when not configured.
	Remotes []sink.Remote
	// The spool of events awaiting the remote destinations.
	SpoolMaxSize int64
	SpoolFull    spool.FullPolicy
}

// Env is what Parse needs to know about the plugin's surroundings.
type Env struct {
	// LogDir is where output files may be written. Empty means DefaultLogDir.
	LogDir string
	// Destinations are the remote destinations whose options Parse
	// accepts. nil means destinations.All().
	Destinations []sink.Destination
}

// OptionError names the offending log-opt (see logopt.OptionError).
type OptionError = logopt.OptionError

func invalid(key, value, want string, reason error) error {
	return logopt.Invalid(key, value, want, reason)
}

type option struct {
	parse func(c *Config, env Env, v string) (want string, err error)
}

// ignored lists the keys dockerd passes to every driver and handles itself.
var ignored = []string{"mode", "max-buffer-size", "cache-disabled", "cache-max-size", "cache-max-file", "cache-compress"}

var options = map[string]option{
	"audit-level": {func(c *Config, _ Env, v string) (string, error) {
		l, err := audit.ParseLevel(v)
		c.AuditLevel = l
		if err != nil {
			err = errBadLevel // the "want" says it all
		}
		return "none, metadata or request", err
	}},
	"audit-ignore": {func(c *Config, _ Env, v string) (string, error) {
		ig, err := audit.ParseIgnore(v)
		c.AuditIgnore = ig
		return "a comma-separated list of paths starting with \"/\", a trailing \"*\" matching by prefix", err
	}},
	"audit-file": {func(c *Config, env Env, v string) (string, error) {
		p, err := outputPath(env, v)
		c.AuditFile = p
		return "an absolute path below " + env.logDir(), err
	}},
	"quarantine-file": {func(c *Config, env Env, v string) (string, error) {
		p, err := outputPath(env, v)
		c.QuarantineFile = p
		return "an absolute path below " + env.logDir(), err
	}},
	"audit-file-max-size": {func(c *Config, _ Env, v string) (string, error) {
		n, err := logopt.Size(v, -1, 1<<40)
		c.AuditFileMaxSize = n
		return "a size such as 100m, or -1 for no rotation", err
	}},
	"audit-file-max-files": {func(c *Config, _ Env, v string) (string, error) {
		n, err := logopt.Count(v, 2, 1000)
		c.AuditFileMaxFile = n
		return "a whole number from 2 to 1000", err
	}},
	"max-line-size": {func(c *Config, _ Env, v string) (string, error) {
		n, err := logopt.Size(v, MinMaxLineSize, MaxMaxLineSize)
		c.MaxLineSize = int(n)
		return "a size from 16k to 64m", err
	}},
	"max-size": {func(c *Config, _ Env, v string) (string, error) {
		n, err := logopt.Size(v, 64<<10, 1<<40)
		c.StoreMaxSize = n
		return "a size of at least 64k, such as 20m", err
	}},
	"max-file": {func(c *Config, _ Env, v string) (string, error) {
		n, err := logopt.Count(v, 1, 1000)
		c.StoreMaxFile = n
		return "a whole number from 1 to 1000", err
	}},
	// The spool's options belong to no destination: they apply to all.
	"spool-max-size": {func(c *Config, _ Env, v string) (string, error) {
		n, err := logopt.Size(v, 1<<20, 1<<40)
		c.SpoolMaxSize = n
		return "a size of at least 1m, such as 256m", err
	}},
	"spool-full": {func(c *Config, _ Env, v string) (string, error) {
		p, err := spool.ParseFullPolicy(v)
		c.SpoolFull = p
		return "drop or block", logopt.NotAllowed(err)
	}},
}

// Keys lists every log-opt Parse accepts with the default Env, sorted.
func Keys() []string { return Env{}.keys() }

func (env Env) keys() []string {
	keys := append([]string(nil), ignored...)
	for k := range options {
		keys = append(keys, k)
	}
	for _, d := range env.destinations() {
		keys = append(keys, d.Keys...)
	}
	sort.Strings(keys)
	return keys
}

// Default returns the configuration used when no log-opt is given.
func Default(env Env) Config {
	dir := env.logDir()
	ig, _ := audit.NewIgnore(audit.DefaultIgnoreList)
	return Config{
		AuditLevel:       audit.LevelRequest,
		AuditIgnore:      ig,
		AuditFile:        filepath.Join(dir, "audit.log"),
		AuditFileMaxSize: DefaultAuditFileMaxSize,
		AuditFileMaxFile: DefaultAuditFileMaxFiles,
		QuarantineFile:   filepath.Join(dir, "quarantine.log"),
		MaxLineSize:      DefaultMaxLineSize,
		StoreMaxSize:     DefaultStoreMaxSize,
		StoreMaxFile:     DefaultStoreMaxFile,
		SpoolMaxSize:     DefaultSpoolMaxSize,
	}
}

// Parse turns log-opts into a Config. Keys are checked in sorted order, so
// the error for several bad keys is deterministic.
func Parse(opts map[string]string, env Env) (Config, error) {
	c := Default(env)
	rs := newRemotes(env.destinations())
	for _, k := range logopt.SortedKeys(opts) {
		v := opts[k]
		o, ok := options[k]
		if !ok {
			if owned, err := rs.check(k, v); owned {
				if err != nil {
					return Config{}, err
				}
				continue
			}
			if contains(ignored, k) {
				continue
			}
			return Config{}, logopt.Unknown(k, v, env.keys())
		}
		if want, err := o.parse(&c, env, v); err != nil {
			return Config{}, invalid(k, v, want, err)
		}
	}
	if c.AuditFile == c.QuarantineFile {
		return Config{}, invalid("quarantine-file", c.QuarantineFile, "a path different from audit-file", nil)
	}
	var err error
	if c.Remotes, err = rs.configure(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (env Env) logDir() string {
	if env.LogDir == "" {
		return DefaultLogDir
	}
	return env.LogDir
}

var (
	errNotBelow = errors.New("not below the plugin's log directory")
	errBadLevel = errors.New("unknown level")
)

func outputPath(env Env, v string) (string, error) {
	if !filepath.IsAbs(v) {
		return "", errors.New("not an absolute path")
	}
	p := filepath.Clean(v)
	dir := env.logDir()
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", errNotBelow
	}
	return p, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
