package node

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/ucp-audit/ucp-audit/audit"
)

// Default paths, as both the host and the plugin see them (config.json
// mounts the host directories at the same paths).
const (
	DefaultLogDir   = "/var/log/ucp-audit"
	DefaultStateDir = "/var/lib/ucp-audit"
	// FileName is the document's name in the state directory.
	FileName = "node.json"
)

// Defaults and bounds of the trail's files and of the caps, in bytes.
const (
	DefaultMaxSize  = 100 << 20 // one audit or quarantine file, before rotation
	DefaultMaxFiles = 20

	DefaultMaxLineSize = 4 << 20 // request payloads are large
	MinMaxLineSize     = 16 << 10
	MaxMaxLineSize     = 64 << 20

	// A manager node runs a few dozen containers, all logging through the
	// plugin when it is the engine's default driver: 1 GiB per container
	// leaves room for any store a log-opt can sensibly ask for, and the
	// totals keep the state directory's disk use below what such a node
	// has to spare.
	DefaultStoreSize  = 1 << 30
	DefaultStoreTotal = 10 << 30
	DefaultSpoolSize  = 1 << 30
	DefaultSpoolTotal = 4 << 30
)

// DefaultProducers names the containers whose image repository's last path
// component is ucp-controller: docker/ucp-controller, mirantis/ucp-controller,
// from any registry.
var DefaultProducers = []Producer{{Image: "ucp-controller"}}

// Config is the parsed node configuration.
type Config struct {
	// LogLevel is the plugin's own log level, as written ("INFO", "debug").
	LogLevel string
	// AuditLevel is the node's ceiling on what any container forwards;
	// AuditLevelText is the value as written ("" means none, as in UCP).
	AuditLevel     audit.Level
	AuditLevelText string
	// SupportDumpIncludeAuditLogs: `ucp-audit support-dump` copies the trail.
	SupportDumpIncludeAuditLogs bool

	Trail Trail
	// SealKey is the path of the PEM Ed25519 private key that signs the
	// seals; empty: unsigned.
	SealKey   string
	Caps      Caps
	Producers []Producer
	API       API
	// Alerts is alerting's section; nil: no alerting.
	Alerts *Alerts
}

// Trail is the audit trail's files.
type Trail struct {
	AuditFile      string
	QuarantineFile string
	MaxSize        int64 // rotate before a file passes it; <= 0: never
	MaxFiles       int   // files kept per output, the live one included
	Compress       bool  // gzip rotated files from .2 on
}

// Caps bound what one container, and all of them together, may make the
// plugin hold.
type Caps struct {
	MaxLineSize int64 // the longest line the audit pipeline reassembles
	StoreSize   int64 // one container's docker-logs store: max-size × max-file
	StoreTotal  int64 // every container's store
	SpoolSize   int64 // one container's spool (spool-max-size)
	SpoolTotal  int64 // every running container's spool
}

// API configures the HTTPS listener of /api/ucp/config/logging (the plugin
// setting API_ADDRESS turns it on).
type API struct {
	CertFile, KeyFile string // the listener's certificate and key (PEM)
	ClientCAFile      string // the CAs whose client certificates are accepted
	// AllowedSubjects lists the client certificate subjects allowed: a
	// full RFC 2253 subject ("CN=admin,O=ucp") or "CN=" and a common name.
	AllowedSubjects []string
}

// Env is where the plugin's directories are.
type Env struct {
	LogDir   string // where the trail's files may be; empty: DefaultLogDir
	StateDir string // where key and certificate files may be; empty: DefaultStateDir
}

func (e Env) logDir() string {
	if e.LogDir == "" {
		return DefaultLogDir
	}
	return e.LogDir
}

func (e Env) stateDir() string {
	if e.StateDir == "" {
		return DefaultStateDir
	}
	return e.StateDir
}

// Path is where the document lives in env's state directory.
func (e Env) Path() string { return filepath.Join(e.stateDir(), FileName) }

// Default returns the configuration of a node without a document.
func Default(env Env) Config {
	return Config{
		LogLevel:       "info",
		AuditLevel:     audit.LevelRequest,
		AuditLevelText: "request",
		Trail: Trail{
			AuditFile:      filepath.Join(env.logDir(), "audit.log"),
			QuarantineFile: filepath.Join(env.logDir(), "quarantine.log"),
			MaxSize:        DefaultMaxSize,
			MaxFiles:       DefaultMaxFiles,
		},
		Caps: Caps{
			MaxLineSize: DefaultMaxLineSize,
			StoreSize:   DefaultStoreSize, StoreTotal: DefaultStoreTotal,
			SpoolSize: DefaultSpoolSize, SpoolTotal: DefaultSpoolTotal,
		},
		Producers: append([]Producer(nil), DefaultProducers...),
	}
}

// SlogLevel is LogLevel for log/slog. Parse accepted it, so it is one of
// the known names.
func (c Config) SlogLevel() slog.Level {
	l, _ := parseLogLevel(c.LogLevel)
	return l
}

// ErrUnknownKey and ErrInvalidValue are wrapped by every error Parse
// returns (through *KeyError), so callers can tell a typo in a key from a
// bad value.
var (
	ErrUnknownKey   = errors.New("unknown key")
	ErrInvalidValue = errors.New("invalid value")
	// ErrNotObject: the document is not one JSON object.
	ErrNotObject = errors.New("not a JSON object")
)

// KeyError names the offending key of the document by its dotted path.
type KeyError struct {
	Key    string // "trail.maxSize"; "" for the document as a whole
	Value  string // the value as written, when it is shown
	Err    error  // ErrUnknownKey, ErrInvalidValue or ErrNotObject
	Reason error  // why, when there is more to say; may be nil
	Want   string // what is allowed
}

func (e *KeyError) Error() string {
	var b strings.Builder
	b.WriteString("ucp-audit: node configuration")
	if e.Key != "" {
		fmt.Fprintf(&b, " %q", e.Key)
	}
	switch {
	case errors.Is(e.Err, ErrUnknownKey):
		b.WriteString(": unknown key")
		if e.Want != "" {
			b.WriteString(" (known: " + e.Want + ")")
		}
		return b.String()
	case errors.Is(e.Err, ErrInvalidValue):
		fmt.Fprintf(&b, ": invalid value %s", e.Value)
	default:
		b.WriteString(": " + e.Err.Error())
	}
	if e.Reason != nil {
		b.WriteString(": " + e.Reason.Error())
	}
	if e.Want != "" {
		b.WriteString(" (want " + e.Want + ")")
	}
	return b.String()
}

func (e *KeyError) Unwrap() []error {
	if e.Reason == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Reason}
}

func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "fatal":
		return slog.LevelError, nil
	}
	return 0, errors.New("unknown level")
}
