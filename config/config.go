// Package config turns the log-opts of one container into a typed Config.
//
// Parse is the only entry point: it applies defaults, parses every key with
// an error that names it, rejects unknown keys and then checks the keys
// against each other and against the node's caps. It owns the keys of the
// container's own audit events (its level, below the node's, and its ignore
// list), its docker-logs store and its spool; each remote destination owns
// its own keys (see sink.Destination), and Parse accepts those of the
// destinations in Env.Destinations (package sink/destinations names them),
// without knowing any of them by name. What reaches beyond the container,
// the trail's files, belongs to the node (package node): those log-opts are
// refused, naming the node setting that replaced them. The driver calls it
// once, at StartLogging, so a bad option makes `docker run` fail with that
// error.
package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/ucp-audit/ucp-audit/audit"
	"github.com/ucp-audit/ucp-audit/logopt"
	"github.com/ucp-audit/ucp-audit/node"
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

// ErrLossyMode is wrapped by the error for mode=non-blocking on an audit
// producer: dockerd then drops lines when its buffer is full, before the
// plugin sees them, so audit events would be lost without a trace.
var ErrLossyMode = errors.New("dockerd drops lines in non-blocking mode when its buffer is full, before the plugin sees them: an audit producer's events would be lost without a trace")

// ErrNodeSetting is wrapped by the error for a log-opt that would reach
// beyond its container: the node configuration owns what it set.
var ErrNodeSetting = errors.New("the trail's files belong to the node, not to a container")

// DefaultCertDir is where the files a log-opt names (TLS CAs, certificates
// and keys) must be, as the plugin sees them: below its state directory,
// apart from its own state.
const DefaultCertDir = node.DefaultStateDir + "/certs"

// Limits and defaults, in bytes.
const (
	DefaultMaxLineSize = node.DefaultMaxLineSize // at most the node's caps.maxLineSize
	MinMaxLineSize     = node.MinMaxLineSize     // one Docker partial chunk
	MaxMaxLineSize     = node.MaxMaxLineSize

	DefaultStoreMaxSize = 20_000_000 // "20m" as Docker parses max-size (decimal), as a user writing it gets
	DefaultStoreMaxFile = 5

	DefaultSpoolMaxSize = 256 << 20 // per container, at most the node's caps.spoolSize
)

// nodeKeys are the log-opts that set the trail's files before they became
// the node's, with the node setting that replaced each.
var nodeKeys = map[string]string{
	"audit-file":           "trail.auditFile",
	"quarantine-file":      "trail.quarantineFile",
	"audit-file-max-size":  "trail.maxSize",
	"audit-file-max-files": "trail.maxFiles",
}

// Config is the parsed configuration of one container's stream.
type Config struct {
	// AuditLevel is the container's own ceiling; the node's auditLevel
	// caps it (the pipeline applies the lower of the two).
	AuditLevel  audit.Level
	AuditIgnore audit.Ignore
	MaxLineSize int

	StoreMaxSize int64 // per segment of the docker-logs store
	StoreMaxFile int

	// Remotes are the remote destinations the options configure, in the
	// order of Env.Destinations; none when not configured.
	Remotes []sink.Remote
	// The spool of events awaiting the remote destinations.
	SpoolMaxSize int64
	SpoolFull    spool.FullPolicy

	// Labels, LabelsRegex, Env and EnvRegex select the container's labels
	// and environment variables that each event carries as annotations
	// (Attributes), as Docker's drivers' labels, labels-regex, env and
	// env-regex do.
	Labels, Env           []string
	LabelsRegex, EnvRegex *regexp.Regexp
	// Extra are those annotations, set by the driver at StartLogging from
	// what dockerd tells of the container; nil for a stream resumed after
	// a restart (its state keeps them).
	Extra []audit.Annotation
}

// Env is what Parse needs to know about the plugin's surroundings.
type Env struct {
	// Caps are the node's caps; the zero Caps is the node's defaults.
	Caps node.Caps
	// CertDir is where the files a log-opt names must be; empty means
	// DefaultCertDir.
	CertDir string
	// Destinations are the remote destinations whose options Parse
	// accepts. nil means destinations.All().
	Destinations []sink.Destination
	// Producer says the container is an audit producer of the node: its
	// options may not make dockerd drop its lines (mode=non-blocking).
	Producer bool
}

func (env Env) caps() node.Caps {
	if env.Caps == (node.Caps{}) {
		return node.Default(node.Env{}).Caps
	}
	return env.Caps
}

func (env Env) certDir() string {
	if env.CertDir == "" {
		return DefaultCertDir
	}
	return env.CertDir
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
	"max-line-size": {func(c *Config, _ Env, v string) (string, error) {
		n, err := logopt.Size(v, MinMaxLineSize, MaxMaxLineSize)
		c.MaxLineSize = int(n)
		return "a size from 16k to 64m", err
	}},
	"max-size": {func(c *Config, _ Env, v string) (string, error) {
		// Docker's meaning: decimal, as json-file's and local's max-size.
		n, err := logopt.DockerSize(v, 64_000, 1<<40)
		c.StoreMaxSize = n
		return "a size of at least 64k, such as 20m (decimal, as Docker's: 20m is 20,000,000 bytes)", err
	}},
	"max-file": {func(c *Config, _ Env, v string) (string, error) {
		n, err := logopt.Count(v, 1, 1000)
		c.StoreMaxFile = n
		return "a whole number from 1 to 1000", err
	}},
	// Docker's attributes options (moby's logger.Info.ExtraAttributes).
	"labels": {func(c *Config, _ Env, v string) (string, error) {
		c.Labels = nameList(v)
		return "a comma-separated list of label keys", nil
	}},
	"labels-regex": {func(c *Config, _ Env, v string) (string, error) {
		var err error
		c.LabelsRegex, err = boundedRegexp(v)
		return "a regular expression (Go syntax) of label keys", err
	}},
	"env": {func(c *Config, _ Env, v string) (string, error) {
		c.Env = nameList(v)
		return "a comma-separated list of environment variable names", nil
	}},
	"env-regex": {func(c *Config, _ Env, v string) (string, error) {
		var err error
		c.EnvRegex, err = boundedRegexp(v)
		return "a regular expression (Go syntax) of environment variable names", err
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
	ig, _ := audit.NewIgnore(audit.DefaultIgnoreList)
	caps := env.caps()
	return Config{
		AuditLevel:   audit.LevelRequest,
		AuditIgnore:  ig,
		MaxLineSize:  int(min(DefaultMaxLineSize, caps.MaxLineSize)),
		StoreMaxSize: min(DefaultStoreMaxSize, caps.StoreSize),
		StoreMaxFile: int(max(1, min(DefaultStoreMaxFile, caps.StoreSize/min(DefaultStoreMaxSize, caps.StoreSize)))),
		SpoolMaxSize: min(DefaultSpoolMaxSize, caps.SpoolSize),
	}
}

// Parse turns log-opts into a Config. Keys are checked in sorted order, so
// the error for several bad keys is deterministic.
func Parse(opts map[string]string, env Env) (Config, error) {
	c := Default(env)
	rs := newRemotes(env.destinations(), sink.Env{CertDir: env.certDir()})
	for _, k := range logopt.SortedKeys(opts) {
		v := opts[k]
		if setting, ok := nodeKeys[k]; ok {
			return Config{}, invalid(k, v, fmt.Sprintf("no %s log-opt: set %s in the node configuration (ucp-audit config set %s=…)", k, setting, setting), ErrNodeSetting)
		}
		o, ok := options[k]
		if !ok {
			if owned, err := rs.check(k, v); owned {
				if err != nil {
					return Config{}, err
				}
				continue
			}
			if contains(ignored, k) {
				if k == "mode" && env.Producer && strings.EqualFold(strings.TrimSpace(v), "non-blocking") {
					return Config{}, invalid(k, v, "blocking, dockerd's default, for an audit producer", ErrLossyMode)
				}
				continue
			}
			return Config{}, logopt.Unknown(k, v, env.keys())
		}
		if want, err := o.parse(&c, env, v); err != nil {
			return Config{}, invalid(k, v, want, err)
		}
	}
	if err := c.checkCaps(opts, env.caps()); err != nil {
		return Config{}, err
	}
	var err error
	if c.Remotes, err = rs.configure(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ParseStored parses the log-opts a stream was started with, as its state
// keeps them, when the plugin resumes it (env.Producer is not looked at:
// the container runs already): the keys that now belong to the
// node (valid when the stream started, before an upgrade) are left out,
// as the node's settings replace them.
func ParseStored(opts map[string]string, env Env) (Config, error) {
	env.Producer = false
	kept := make(map[string]string, len(opts))
	for k, v := range opts {
		if _, moved := nodeKeys[k]; !moved {
			kept[k] = v
		}
	}
	return Parse(kept, env)
}

// errAboveCap is the reason a value above a node cap is refused.
var errAboveCap = errors.New("above the node's cap")

// checkCaps refuses sizes above the node's caps, naming the cap.
func (c Config) checkCaps(opts map[string]string, caps node.Caps) error {
	above := func(key, capKey string, cap int64, want string) error {
		return invalid(key, opts[key], fmt.Sprintf("%s, at most the node's %s (%s)", want, capKey, node.FormatSize(cap)), errAboveCap)
	}
	if int64(c.MaxLineSize) > caps.MaxLineSize {
		return above("max-line-size", "caps.maxLineSize", caps.MaxLineSize, "a size from 16k")
	}
	if c.StoreMaxSize*int64(c.StoreMaxFile) > caps.StoreSize {
		key := "max-size"
		if _, ok := opts["max-file"]; ok {
			key = "max-file"
		}
		return above(key, "caps.storeSize", caps.StoreSize, "max-size × max-file")
	}
	if c.SpoolMaxSize > caps.SpoolSize {
		return above("spool-max-size", "caps.spoolSize", caps.SpoolSize, "a size of at least 1m")
	}
	return nil
}

var errBadLevel = errors.New("unknown level")

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
