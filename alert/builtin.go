package alert

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

// GapType is the type self holds for a gap record.
const GapType = "gap"

// BuiltinKind names a built-in alarm; it is its key under
// "alerts.builtins".
type BuiltinKind string

// The built-in alarms, for audit processing failures.
const (
	DestinationDown BuiltinKind = "destination_down"
	SpoolHighWater  BuiltinKind = "spool_high_water"
	InputLost       BuiltinKind = "input_lost"
	GapRecorded     BuiltinKind = "gap"
	SinkFailing     BuiltinKind = "sink_failing"
	ConfigRejected  BuiltinKind = "configuration_rejected"
	ChainError      BuiltinKind = "chain_error"
	CrashRestart    BuiltinKind = "crash_restart"
)

// builtinPrefix starts every built-in alarm's name; rule names may not.
const builtinPrefix = "ucp-audit-"

// Defaults of a built-in alarm.
const (
	DefaultBuiltinThrottle = 10 * time.Minute
	DefaultDownAfter       = 5 * time.Minute
)

// BuiltinSpec says what a built-in alarm fires on.
type BuiltinSpec struct {
	Kind BuiltinKind
	// Name is the alert's name (Alertmanager's alertname).
	Name string
	// Types are the self record types it fires on (GapType for gap
	// records). DestinationDown is a timer: it fires when a destination
	// stays down (SelfDestinationDown, without SelfDestinationBack for
	// the same container and destination) for Builtin.After.
	Types    []string
	Severity Severity // the default
	What     string   // for the summary and the documentation
}

// BuiltinKinds lists the built-in alarms, in the order Config.Builtins
// holds them.
var BuiltinKinds = []BuiltinSpec{
	{DestinationDown, builtinPrefix + "destination-down", []string{auditlog.SelfDestinationDown, auditlog.SelfDestinationBack}, Critical, "a destination stays down"},
	{SpoolHighWater, builtinPrefix + "spool-high-water", []string{auditlog.SelfSpoolHighWater, auditlog.SelfSpoolFull}, Warning, "a spool passed its high-water mark"},
	{InputLost, builtinPrefix + "input-lost", []string{auditlog.SelfInputLost}, Critical, "container output was lost"},
	{GapRecorded, builtinPrefix + "gap", []string{GapType}, Critical, "events will never reach a destination"},
	{SinkFailing, builtinPrefix + "sink-failing", []string{auditlog.SelfSinkFailing}, Critical, "the audit file cannot be written"},
	{ConfigRejected, builtinPrefix + "configuration-rejected", []string{auditlog.SelfConfigRejected}, Warning, "a configuration was rejected"},
	{ChainError, builtinPrefix + "chain-error", []string{auditlog.SelfChainError}, Critical, "the hash chain or a seal failed"},
	{CrashRestart, builtinPrefix + "crash-restart", []string{auditlog.SelfRestartedAfterCrash, auditlog.SelfStreamReattach}, Critical, "the plugin restarted after a crash"},
}

// Builtin is a built-in alarm's settings. Built-ins need no rule: they are
// on whenever an output exists, unless switched off.
type Builtin struct {
	BuiltinSpec
	Enabled  bool
	Severity Severity
	Outputs  []string // nil: every output
	// Throttle: a group (the record's type, container and destination)
	// fires at most once per Throttle.
	Throttle time.Duration
	// After: DestinationDown only, how long a destination must stay down.
	After time.Duration
}

func (c *Config) parseBuiltins(at string, raw json.RawMessage) ([]Builtin, error) {
	keys := make([]string, len(BuiltinKinds))
	for i, s := range BuiltinKinds {
		keys[i] = string(s.Kind)
	}
	top, err := readObject(at, raw, keys...)
	if err != nil {
		return nil, err
	}
	out := make([]Builtin, 0, len(BuiltinKinds))
	for _, s := range BuiltinKinds {
		b, err := c.parseBuiltin(join(at, string(s.Kind)), s, top.vals[string(s.Kind)])
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func (c *Config) parseBuiltin(at string, s BuiltinSpec, raw json.RawMessage) (Builtin, error) {
	b := Builtin{BuiltinSpec: s}
	known := builtinKeys[:len(builtinKeys)-1]
	if s.Kind == DestinationDown {
		known = builtinKeys
	}
	obj, err := readObject(at, raw, known...)
	if err != nil {
		return b, err
	}
	if b.Enabled, err = obj.boolean("enabled", true); err != nil {
		return b, err
	}
	if b.Severity, err = severity(obj, "severity", s.Severity); err != nil {
		return b, err
	}
	if b.Outputs, err = c.outputNames(obj, "outputs", false); err != nil {
		return b, err
	}
	if b.Throttle, err = obj.duration("throttle", DefaultBuiltinThrottle, 0, maxWindow); err != nil {
		return b, err
	}
	if s.Kind == DestinationDown {
		if b.After, err = obj.duration("after", DefaultDownAfter, 0, maxWindow); err != nil {
			return b, err
		}
	}
	return b, nil
}

// outputs returns the outputs b sends to: its own, or every output.
func (b Builtin) outputs(all []Output) []string {
	if b.Outputs != nil {
		return b.Outputs
	}
	names := make([]string, len(all))
	for i, o := range all {
		names[i] = o.Name
	}
	return names
}

// builtinFor returns the enabled built-in that fires on self record type
// typ (DestinationDown aside), or nil.
func builtinFor(bs []Builtin, typ string) *Builtin {
	for i := range bs {
		if bs[i].Enabled && bs[i].Kind != DestinationDown && slices.Contains(bs[i].Types, typ) {
			return &bs[i]
		}
	}
	return nil
}
