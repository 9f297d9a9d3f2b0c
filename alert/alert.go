package alert

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/review"
)

// Alert is one alert to deliver to one output.
type Alert struct {
	// Rule is the rule's name, or the built-in alarm's (ucp-audit-…).
	Rule string
	// Builtin is the built-in alarm's kind; "" for a rule.
	Builtin  BuiltinKind
	Output   string // the output's name
	Severity Severity
	// FiredAt is the time given to Observe or Tick when it fired.
	FiredAt time.Time
	// Group holds the values of the rule's group_by paths, in order ("" for
	// an absent one); nil without group_by.
	Group []string
	// Count is how many matches of the group made it fire: the rule's
	// count (or more), 1 for a rule without one.
	Count int
	// Suppressed is how many times the group matched while throttled
	// since it last fired.
	Suppressed int
	// Record is what it fired on: the record that matched, or for a
	// destination that stays down, its destination-down record.
	Record Record
	// DownFor is how long the destination has been down (DestinationDown
	// only).
	DownFor time.Duration
}

// The kinds of Record.
const (
	KindEvent = "event"
	KindSelf  = "self"
	KindGap   = "gap"
)

// Record holds what an alert tells of the record it fired on: never a
// request or response payload, nothing the trail does not hold.
type Record struct {
	Kind string // KindEvent, KindSelf or KindGap
	// Time is the event's time (stageTimestamp, else
	// requestReceivedTimestamp …) or the self or gap record's; zero when
	// it has none.
	Time time.Time

	// An event's fields.
	AuditID    string
	Stage      string
	User       string // the human user: ucp-audit/user, else user.extra.username[0], else user.username
	Verb       string
	RequestURI string
	SourceIP   string // the first of sourceIPs
	Code       int    // responseStatus.code; 0 when absent
	ObjectRef  review.ObjectRef

	// Where it comes from: the node (ucp-audit/host, or the self record's
	// host, else Options.Host) and the container.
	Host          string
	ContainerID   string
	ContainerName string

	// A self or gap record's fields (Type is GapType for a gap record).
	Type        string
	Destination string
	Detail      string
	Lost        uint64
	FirstSeq    uint64
	LastSeq     uint64
	Reason      string
}

// recordOf reads the fields of the record line holds, of kind k.
func recordOf(k string, line []byte, host string) Record {
	r := Record{Kind: k}
	switch k {
	case KindEvent:
		if _, ev, err := review.Parse(line); err == nil && ev != nil {
			r.Time = ev.Time
			r.AuditID, r.Stage, r.Verb, r.RequestURI = ev.AuditID, ev.Stage, ev.Verb, ev.RequestURI
			r.User = ev.HumanUser()
			if len(ev.SourceIPs) > 0 {
				r.SourceIP = ev.SourceIPs[0]
			}
			r.Code = ev.Code
			r.ObjectRef = ev.ObjectRef
			r.Host, r.ContainerID, r.ContainerName = ev.Host(), ev.ContainerID(), ev.ContainerName()
		}
	case KindSelf:
		var v struct {
			S auditlog.Self `json:"ucp-audit/self"`
		}
		_ = json.Unmarshal(line, &v)
		r.Time = parseTime(v.S.Time)
		r.Type, r.Host, r.ContainerID, r.ContainerName = v.S.Type, v.S.Host, v.S.ContainerID, v.S.ContainerName
		r.Destination, r.Detail = v.S.Destination, v.S.Detail
	case KindGap:
		var v struct {
			G auditlog.Gap `json:"ucp-audit/gap"`
		}
		_ = json.Unmarshal(line, &v)
		r.Time = parseTime(v.G.Time)
		r.Type, r.ContainerID, r.ContainerName = GapType, v.G.ContainerID, v.G.ContainerName
		r.Destination, r.Lost, r.FirstSeq, r.LastSeq, r.Reason = v.G.Destination, v.G.Lost, v.G.FirstSeq, v.G.LastSeq, v.G.Reason
	}
	if r.Host == "" {
		r.Host = host
	}
	return r
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// Summary is the alert in one line of at most 300 characters, without
// control characters: who did what, or what failed.
func (a Alert) Summary() string {
	r := a.Record
	var b strings.Builder
	switch {
	case a.Builtin == DestinationDown:
		b.WriteString("destination " + orNone(r.Destination) + " down for " + a.DownFor.Round(time.Second).String())
		if r.Detail != "" {
			b.WriteString(": " + r.Detail)
		}
	case r.Kind == KindEvent:
		b.WriteString(orNone(r.User) + " " + r.Verb + " " + r.RequestURI)
		if r.SourceIP != "" {
			b.WriteString(" from " + r.SourceIP)
		}
		if r.Code != 0 {
			b.WriteString(" → " + strconv.Itoa(r.Code))
		}
	case r.Kind == KindGap:
		b.WriteString(strconv.FormatUint(r.Lost, 10) + " events (seq " + strconv.FormatUint(r.FirstSeq, 10) + "-" + strconv.FormatUint(r.LastSeq, 10) + ") will never reach " + orNone(r.Destination) + ": " + r.Reason)
	default:
		b.WriteString(r.Type)
		if r.Destination != "" {
			b.WriteString(" " + r.Destination)
		}
		if r.Detail != "" {
			b.WriteString(": " + r.Detail)
		}
	}
	if a.Count > 1 {
		b.WriteString(" (" + strconv.Itoa(a.Count) + " times)")
	}
	return oneLine(b.String(), 300)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// oneLine replaces control characters with spaces and cuts s to at most
// max runes, ending a cut one with "…".
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if rs := []rune(s); len(rs) > max {
		s = string(rs[:max-1]) + "…"
	}
	return s
}
