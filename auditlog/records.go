package auditlog

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// The reserved top-level keys of a line. An audit event with a top-level
// key under ReservedPrefix is quarantined (package audit), so a line with
// one, ChainKey aside, is one of the plugin's own records.
const (
	ReservedPrefix = "ucp-audit/"
	// ChainKey is the tamper-evidence field every line of a chained file
	// ends with (package chain). It does not make a line a plugin record.
	ChainKey = "ucp-audit/chain"
	// SealKey holds a seal (package chain writes and reads them).
	SealKey = "ucp-audit/seal"
	// SelfKey holds a self record (Self).
	SelfKey = "ucp-audit/self"
	// GapKey holds a gap record in audit.log (Gap).
	GapKey = "ucp-audit/gap"
)

// Self is a self record: an event of the plugin's own lifecycle (its
// start, stop and failures), one line {"ucp-audit/self":{…}} in audit.log,
// never confused with an audit event (it has no auditID).
type Self struct {
	Type          string `json:"type"` // one of the Self… types
	Time          string `json:"time"` // RFC 3339 with nanoseconds, UTC
	Host          string `json:"host,omitempty"`
	Version       string `json:"version,omitempty"`
	ContainerID   string `json:"container-id,omitempty"`
	ContainerName string `json:"container-name,omitempty"`
	Destination   string `json:"destination,omitempty"`
	Detail        string `json:"detail,omitempty"`
	// Subject names who made a change through the configuration API (the
	// client certificate's subject); config-changed records only.
	Subject string `json:"subject,omitempty"`
	// Old and New are the node configuration before and after a change
	// (secrets removed); config-changed records only.
	Old json.RawMessage `json:"old,omitempty"`
	New json.RawMessage `json:"new,omitempty"`
	// Rule, Severity, AlertID and AuditID describe an alert raised
	// (alert-fired records only): the rule or built-in alarm, its
	// severity, the alert's ID as its output receives it, and the
	// auditID of the event it fired on, if any.
	Rule     string `json:"rule,omitempty"`
	Severity string `json:"severity,omitempty"`
	AlertID  string `json:"alert-id,omitempty"`
	AuditID  string `json:"audit-id,omitempty"`
}

// The types of self records (Self.Type). docs/operating.md's table says when the
// driver writes each.
const (
	SelfPluginStarted   = "plugin-started"
	SelfPluginStopped   = "plugin-stopped"
	SelfStreamAttached  = "stream-attached"
	SelfStreamReattach  = "stream-reattached"
	SelfStreamDetached  = "stream-detached"
	SelfDestinationDown = "destination-down"
	SelfDestinationBack = "destination-back"
	SelfConfigRejected  = "configuration-rejected"
	SelfInputLost       = "input-lost"
	SelfSpoolFull       = "spool-full"
	// SelfConfigChanged: the node configuration in force changed (Old,
	// New, and Subject when the configuration API changed it).
	SelfConfigChanged = "config-changed"
	// SelfUntrusted: a container that is not an audit producer printed
	// audit-looking lines; they stayed in its docker logs only.
	SelfUntrusted = "untrusted-audit-lines"
	// SelfSpoolHighWater: a container's spool passed its high-water mark
	// (80% of its bound); detail says how full it is. Written once per
	// crossing (it must fall below half again first).
	SelfSpoolHighWater = "spool-high-water"
	// SelfSinkFailing: writing or syncing the audit or quarantine file
	// failed (a full disk, an fsync error); detail holds the error.
	// Written when the failure starts, at most once a minute while it
	// lasts; when the audit file itself cannot take it, alerting still
	// sees it.
	SelfSinkFailing = "sink-failing"
	// SelfSinkRecovered: a file of the trail that failed writes again;
	// detail says how long it failed.
	SelfSinkRecovered = "sink-recovered"
	// SelfChainError: the hash chain or a seal could not be kept (the
	// record of the last seal unwritable); detail holds the error.
	SelfChainError = "chain-error"
	// SelfRestartedAfterCrash: the plugin started and found that its
	// previous process did not stop cleanly.
	SelfRestartedAfterCrash = "plugin-restarted-after-crash"
	// SelfAlertFired: an alert was raised, one record per (rule, output):
	// Rule, Destination (the output), Severity, AlertID and AuditID.
	// Alerting passes over these records, so alerts never fire on alerts.
	SelfAlertFired = "alert-fired"
)

// MarshalSelf returns the line of s (without its newline):
// {"ucp-audit/self":{…}}.
func MarshalSelf(s Self) ([]byte, error) {
	return marshal("self record", map[string]Self{SelfKey: s})
}

// Gap is a gap record: events of a container that will never reach a
// destination (FirstSeq to LastSeq of its ucp-audit/seq, Lost of them). It
// is written to audit.log as {"ucp-audit/gap":{…}} (MarshalGap), so the
// trail itself shows the gap, and to quarantine.log as a QuarantineGap.
type Gap struct {
	Time          string `json:"time"` // RFC 3339 with nanoseconds, UTC
	ContainerID   string `json:"container-id"`
	ContainerName string `json:"container-name"`
	Destination   string `json:"destination"`
	Lost          uint64 `json:"lost"`
	FirstSeq      uint64 `json:"first-seq"`
	LastSeq       uint64 `json:"last-seq"`
	Reason        string `json:"reason"`
}

// QuarantineGap is a gap record as quarantine.log holds it: the Gap's
// fields at the top level, then a summary in words.
type QuarantineGap struct {
	Gap
	Summary string `json:"summary"`
}

// MarshalGap returns g's line in audit.log (without its newline):
// {"ucp-audit/gap":{…}}.
func MarshalGap(g Gap) ([]byte, error) {
	return marshal("gap record", map[string]Gap{GapKey: g})
}

// MarshalQuarantineGap returns g's line in quarantine.log (without its
// newline): a QuarantineGap with its summary.
func MarshalQuarantineGap(g Gap) ([]byte, error) {
	return marshal("gap record", QuarantineGap{g, fmt.Sprintf("%d events (seq %d-%d) not delivered to %s: %s", g.Lost, g.FirstSeq, g.LastSeq, g.Destination, g.Reason)})
}

// Quarantine is a quarantine record, a line of quarantine.log: a line of a
// container's output that could not be written as an audit event (Raw or
// RawBase64 hold it), or a count of output lost before it was read (Size
// bytes, no raw line), with the reason.
type Quarantine struct {
	Time          string `json:"time"`
	Reason        string `json:"reason"`
	ContainerID   string `json:"container-id"`
	ContainerName string `json:"container-name"`
	Stream        string `json:"stream"`
	Seq           uint64 `json:"quarantine-seq"`
	Size          int    `json:"size"`
	Truncated     bool   `json:"truncated,omitempty"`
	Unfinished    bool   `json:"unfinished,omitempty"`
	Raw           string `json:"raw,omitempty"`
	RawBase64     string `json:"raw-base64,omitempty"`
	// RawBytes, when set, says raw holds only the line's first RawBytes
	// bytes: the whole would not fit in one record.
	RawBytes int `json:"raw-bytes,omitempty"`
}

// MarshalQuarantine returns q's line (without its newline).
func MarshalQuarantine(q Quarantine) ([]byte, error) {
	return marshal("quarantine record", q)
}

// marshal is the compact JSON of v without HTML escaping ("<", ">" and "&"
// stay as they are, as in the events); what names the record in an error.
func marshal(what string, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
