package output

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ucp-audit/ucp-audit/alert"
	"github.com/ucp-audit/ucp-audit/review"
	"github.com/ucp-audit/ucp-audit/sink"
)

// Event formats a for the output type t as the sink.Event an output's
// Forwarder sends: Line is the payload, AuditID the event's (empty for a
// self or gap record) and Time the time it fired. Seq is left to the
// spool.
func Event(t alert.OutputType, a alert.Alert) (sink.Event, error) {
	var line []byte
	var err error
	switch t {
	case alert.Alertmanager:
		line, err = FormatAlertmanager(a)
	case alert.Webhook:
		line, err = FormatWebhook(a)
	case alert.Slack:
		line, err = FormatSlack(a)
	default:
		return sink.Event{}, fmt.Errorf("alert output type %q: %w", t, ErrUnknownType)
	}
	if err != nil {
		return sink.Event{}, err
	}
	return sink.Event{Line: line, AuditID: a.Record.AuditID, Time: a.FiredAt}, nil
}

// amAlert is one alert of Alertmanager's API v2 (postableAlert).
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    string            `json:"startsAt,omitempty"`
}

// FormatAlertmanager returns a as one alert of Alertmanager's API v2, a JSON
// object; the Forwarder POSTs a batch of them as an array.
//
// Labels (what Alertmanager groups, routes, silences and deduplicates
// by): alertname (the rule's name), severity, node (the host), container
// (the container's name); for a rule with group_by, group (the group's
// values joined by ","); for a built-in alarm, destination when it has
// one; and alert_id, the alert's ID. Empty labels are left out.
//
// alert_id makes each firing its own alert in Alertmanager: an audit
// alert is an event, and without it a second exec by another user would
// only update the first alert, notified again after repeat_interval. The
// rule's throttle decides how often it notifies; a payload delivered
// twice (at-least-once, after an outage) has the same alert_id, and
// Alertmanager keeps one.
//
// Annotations: auditID, user (the human user), verb, requestURI,
// sourceIP, summary, and count when the rule counted more than one match.
// startsAt is the record's time (RFC 3339), else the time it fired;
// endsAt is left to Alertmanager (resolve_timeout).
func FormatAlertmanager(a alert.Alert) ([]byte, error) {
	r := a.Record
	labels := map[string]string{}
	put(labels, "alertname", a.Rule)
	put(labels, "severity", string(a.Severity))
	put(labels, "node", r.Host)
	put(labels, "container", r.ContainerName)
	put(labels, "group", strings.Join(a.Group, ","))
	if a.Builtin != "" {
		put(labels, "destination", r.Destination)
	}
	labels["alert_id"] = ID(a)
	ann := map[string]string{}
	put(ann, "auditID", r.AuditID)
	put(ann, "user", r.User)
	put(ann, "verb", r.Verb)
	put(ann, "requestURI", r.RequestURI)
	put(ann, "sourceIP", r.SourceIP)
	put(ann, "summary", a.Summary())
	if a.Count > 1 {
		ann["count"] = strconv.Itoa(a.Count)
	}
	return marshal(amAlert{Labels: labels, Annotations: ann, StartsAt: timeOf(r.Time, a.FiredAt)})
}

func put(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func timeOf(t, fallback time.Time) string {
	if t.IsZero() {
		t = fallback
	}
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// WebhookVersion is WebhookBody.Version.
const WebhookVersion = 1

// WebhookBody is the JSON body a webhook output POSTs, one alert per POST.
// Exactly one of Event and Self is set. Receivers verify the signature
// over the raw body (Verify) before decoding it, and may drop a body whose
// ID they have seen (delivery is at-least-once).
type WebhookBody struct {
	Version int    `json:"version"` // WebhookVersion
	ID      string `json:"id"`      // the alert's ID: 32 hex digits
	Rule    string `json:"rule"`    // the rule's name, or the built-in alarm's
	// Builtin is the built-in alarm's kind (destination_down …); absent
	// for a rule.
	Builtin   string `json:"builtin,omitempty"`
	Severity  string `json:"severity"`
	Output    string `json:"output"`  // the output's name
	FiredAt   string `json:"firedAt"` // RFC 3339
	Node      string `json:"node,omitempty"`
	Container string `json:"container,omitempty"`
	// Group holds the values of the rule's group_by paths.
	Group []string `json:"group,omitempty"`
	// Count is how many matches made it fire; Suppressed how many the
	// throttle held back since the group last fired.
	Count      int           `json:"count"`
	Suppressed int           `json:"suppressed"`
	Summary    string        `json:"summary"`
	Event      *WebhookEvent `json:"event"`
	Self       *WebhookSelf  `json:"self"`
}

// WebhookEvent is what a webhook body tells of an audit event: no payload.
type WebhookEvent struct {
	AuditID     string            `json:"auditID"`
	Time        string            `json:"time,omitempty"`
	Stage       string            `json:"stage,omitempty"`
	User        string            `json:"user,omitempty"`
	Verb        string            `json:"verb,omitempty"`
	RequestURI  string            `json:"requestURI,omitempty"`
	SourceIP    string            `json:"sourceIP,omitempty"`
	Code        int               `json:"code,omitempty"`
	ObjectRef   *review.ObjectRef `json:"objectRef,omitempty"`
	ContainerID string            `json:"containerID,omitempty"`
}

// WebhookSelf is what a webhook body tells of a self or gap record.
type WebhookSelf struct {
	Type        string `json:"type"` // the self record's type, or "gap"
	Time        string `json:"time,omitempty"`
	ContainerID string `json:"containerID,omitempty"`
	Destination string `json:"destination,omitempty"`
	Detail      string `json:"detail,omitempty"`
	// A gap record's loss.
	Lost     uint64 `json:"lost,omitempty"`
	FirstSeq uint64 `json:"firstSeq,omitempty"`
	LastSeq  uint64 `json:"lastSeq,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// DownFor: destination_down, how long it has been down (Go duration).
	DownFor string `json:"downFor,omitempty"`
}

// FormatWebhook returns a as a webhook output's body, a WebhookBody.
func FormatWebhook(a alert.Alert) ([]byte, error) {
	r := a.Record
	b := WebhookBody{Version: WebhookVersion, ID: ID(a), Rule: a.Rule, Builtin: string(a.Builtin), Severity: string(a.Severity),
		Output: a.Output, FiredAt: timeOf(a.FiredAt, time.Time{}), Node: r.Host, Container: r.ContainerName, Group: a.Group,
		Count: a.Count, Suppressed: a.Suppressed, Summary: a.Summary()}
	if r.Kind == alert.KindEvent {
		b.Event = &WebhookEvent{AuditID: r.AuditID, Time: timeOf(r.Time, time.Time{}), Stage: r.Stage, User: r.User, Verb: r.Verb,
			RequestURI: r.RequestURI, SourceIP: r.SourceIP, Code: r.Code, ContainerID: r.ContainerID}
		if r.ObjectRef != (review.ObjectRef{}) {
			ref := r.ObjectRef
			b.Event.ObjectRef = &ref
		}
	} else {
		b.Self = &WebhookSelf{Type: r.Type, Time: timeOf(r.Time, time.Time{}), ContainerID: r.ContainerID, Destination: r.Destination,
			Detail: r.Detail, Lost: r.Lost, FirstSeq: r.FirstSeq, LastSeq: r.LastSeq, Reason: r.Reason}
		if a.DownFor > 0 {
			b.Self.DownFor = a.DownFor.String()
		}
	}
	return marshal(b)
}

// ID is the alert's ID: the first 16 bytes, in hex, of the SHA-256 of its
// rule, output, time of firing and record. Formatting the same alert
// again gives the same ID.
func ID(a alert.Alert) string {
	r := a.Record
	h := sha256.New()
	for _, s := range []string{a.Rule, a.Output, a.FiredAt.UTC().Format(time.RFC3339Nano), r.Kind, r.AuditID, r.Stage, r.Type,
		r.Time.UTC().Format(time.RFC3339Nano), r.ContainerID, r.Destination} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// FormatSlack returns a as a Slack incoming-webhook message: {"text": …},
// three lines: the severity, rule, node and container; the summary; the
// auditID, or the record's type and time. Slack's control characters
// (&, <, >) are escaped, so no value can mention or link.
func FormatSlack(a alert.Alert) ([]byte, error) {
	r := a.Record
	icon := map[alert.Severity]string{alert.Critical: ":rotating_light:", alert.Warning: ":warning:", alert.Info: ":information_source:"}[a.Severity]
	var b strings.Builder
	fmt.Fprintf(&b, "%s *[%s] %s*", icon, strings.ToUpper(string(a.Severity)), slackEscape(a.Rule))
	if r.Host != "" {
		b.WriteString(" on " + slackEscape(r.Host))
	}
	if r.ContainerName != "" {
		b.WriteString(" (" + slackEscape(r.ContainerName) + ")")
	}
	b.WriteString("\n" + slackEscape(a.Summary()) + "\n")
	if r.AuditID != "" {
		b.WriteString("auditID `" + slackEscape(strings.ReplaceAll(r.AuditID, "`", "'")) + "`")
	} else {
		b.WriteString(slackEscape(r.Type) + " at " + timeOf(r.Time, a.FiredAt))
	}
	if a.Suppressed > 0 {
		fmt.Fprintf(&b, " (%d more held back by the throttle)", a.Suppressed)
	}
	return marshal(map[string]string{"text": b.String()})
}

var slackReplacer = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func slackEscape(s string) string { return slackReplacer.Replace(s) }

// marshal is compact JSON without HTML escaping.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("alert payload: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
