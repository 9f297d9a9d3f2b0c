package review

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/ucp-audit/ucp-audit/audit"
	"github.com/ucp-audit/ucp-audit/auditlog"
)

// Type says what one line of an audit file holds.
type Type int

// The line types. Only TypeEvent lines are audit events; the others are the
// plugin's own records (marked by a top-level key under
// auditlog.ReservedPrefix, other than auditlog.ChainKey), objects that are
// not events, and lines that could not be read.
const (
	TypeEvent   Type = iota // an audit event
	TypeSelf                // auditlog.SelfKey, the plugin's lifecycle
	TypeGap                 // auditlog.GapKey, events lost for a destination
	TypeSeal                // auditlog.SealKey, a tamper-evidence seal
	TypeOther               // another plugin record, or an object without auditID (a quarantine.log record)
	TypeInvalid             // not a JSON object, or too long; Record.Err says which
)

var typeNames = [...]string{"event", "self", "gap", "seal", "other", "invalid"}

func (t Type) String() string {
	if t < 0 || int(t) >= len(typeNames) {
		return "unknown"
	}
	return typeNames[t]
}

// ErrNotJSON is Record.Err for a line that is not a JSON object.
var ErrNotJSON = errors.New("not a JSON object")

// Record is one line of an audit file.
type Record struct {
	File string // the file it was read from
	Line int    // its line number in File, from 1
	// Raw is the line as it is in the file, without its newline. It is
	// only valid until the callback that received the Record returns.
	Raw   []byte
	Type  Type
	Event *Event // set for TypeEvent
	Err   error  // set for TypeInvalid: ErrNotJSON or auditlog.ErrLineTooLong
}

// Event holds the fields of an audit event that query and report use.
// Fields that are absent, null or of an unexpected JSON type are left
// zero; the event is still an event.
type Event struct {
	AuditID                  string            `json:"auditID"`
	Kind                     string            `json:"kind"` // the API family: kubernetes, docker-swarm, ucp …
	Level                    string            `json:"level"`
	Stage                    string            `json:"stage"`
	Verb                     string            `json:"verb"`
	RequestURI               string            `json:"requestURI"`
	User                     User              `json:"user"`
	SourceIPs                []string          `json:"sourceIPs"`
	ObjectRef                ObjectRef         `json:"objectRef"`
	Code                     int               `json:"-"` // responseStatus.code; 0 when absent
	StageTimestamp           string            `json:"stageTimestamp"`
	RequestReceivedTimestamp string            `json:"requestReceivedTimestamp"`
	Timestamp                string            `json:"timestamp"`
	Annotations              map[string]string `json:"annotations"`
	// Time is the event's time (see EventTime); zero when none parses.
	Time time.Time `json:"-"`
}

// User is the event's user.
type User struct {
	Username string              `json:"username"`
	UID      string              `json:"uid"`
	Groups   []string            `json:"groups"`
	Extra    map[string][]string `json:"extra"`
}

// ObjectRef is the Kubernetes object an event acted on.
type ObjectRef struct {
	Namespace   string `json:"namespace"`
	Resource    string `json:"resource"`
	Subresource string `json:"subresource"`
	Name        string `json:"name"`
	APIGroup    string `json:"apiGroup"`
	APIVersion  string `json:"apiVersion"`
}

// Parse classifies one line (without its newline) and, for an event,
// decodes the fields Event holds. It returns TypeInvalid with ErrNotJSON
// for a line that is not a JSON object. A line whose top-level keys include
// one under auditlog.ReservedPrefix (other than auditlog.ChainKey) is a
// plugin record; an object without auditID is TypeOther; every other
// object is an event.
func Parse(line []byte) (Type, *Event, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(line, &top); err != nil || top == nil {
		return TypeInvalid, nil, ErrNotJSON
	}
	t := TypeEvent
	for k := range top {
		if !strings.HasPrefix(k, auditlog.ReservedPrefix) || k == auditlog.ChainKey {
			continue
		}
		var kt Type
		switch k {
		case auditlog.SelfKey:
			kt = TypeSelf
		case auditlog.GapKey:
			kt = TypeGap
		case auditlog.SealKey:
			kt = TypeSeal
		default:
			kt = TypeOther
		}
		// Several plugin keys in one line (not written today): the
		// first in the order above wins, so the result is deterministic.
		if t == TypeEvent || kt < t {
			t = kt
		}
	}
	if t != TypeEvent {
		return t, nil, nil
	}
	if _, ok := top["auditID"]; !ok {
		return TypeOther, nil, nil
	}
	e := &Event{}
	// Each field on its own, so that one of an unexpected type loses
	// only itself.
	fields := []struct {
		key string
		dst any
	}{
		{"auditID", &e.AuditID}, {"kind", &e.Kind}, {"level", &e.Level}, {"stage", &e.Stage},
		{"verb", &e.Verb}, {"requestURI", &e.RequestURI}, {"sourceIPs", &e.SourceIPs},
		{"stageTimestamp", &e.StageTimestamp}, {"requestReceivedTimestamp", &e.RequestReceivedTimestamp},
		{"timestamp", &e.Timestamp},
	}
	for _, f := range fields {
		if raw, ok := top[f.key]; ok {
			_ = json.Unmarshal(raw, f.dst) // a wrong type leaves the field as it was
		}
	}
	// user, objectRef and responseStatus by their exact keys, as the
	// plugin's validator reads them: encoding/json alone would also take
	// "Username" for username, and show a user the plugin never checked.
	if raw, ok := top["user"]; ok {
		m := exactObject(raw)
		decodeExact(m, "username", &e.User.Username)
		decodeExact(m, "uid", &e.User.UID)
		decodeExact(m, "groups", &e.User.Groups)
		decodeExact(m, "extra", &e.User.Extra)
	}
	if raw, ok := top["objectRef"]; ok {
		m := exactObject(raw)
		decodeExact(m, "namespace", &e.ObjectRef.Namespace)
		decodeExact(m, "resource", &e.ObjectRef.Resource)
		decodeExact(m, "subresource", &e.ObjectRef.Subresource)
		decodeExact(m, "name", &e.ObjectRef.Name)
		decodeExact(m, "apiGroup", &e.ObjectRef.APIGroup)
		decodeExact(m, "apiVersion", &e.ObjectRef.APIVersion)
	}
	if raw, ok := top["responseStatus"]; ok {
		decodeExact(exactObject(raw), "code", &e.Code)
	}
	if raw, ok := top["annotations"]; ok {
		var ann map[string]json.RawMessage
		_ = json.Unmarshal(raw, &ann)
		for k, v := range ann {
			var s string
			if json.Unmarshal(v, &s) == nil {
				if e.Annotations == nil {
					e.Annotations = make(map[string]string, len(ann))
				}
				e.Annotations[k] = s
			}
		}
	}
	e.Time = EventTime(e)
	return TypeEvent, e, nil
}

// exactObject decodes a JSON object's members by their exact keys (the
// last of a key given twice wins, as in the plugin's validator); nil when
// raw is not an object.
func exactObject(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	return m
}

// decodeExact decodes m[key] into dst; a member of another type leaves dst
// as it was.
func decodeExact(m map[string]json.RawMessage, key string, dst any) {
	if raw, ok := m[key]; ok {
		_ = json.Unmarshal(raw, dst)
	}
}

// EventTime is the event's time: the first of stageTimestamp,
// requestReceivedTimestamp, timestamp and the ucp-audit/received-at
// annotation that is an RFC 3339 time (any number of fractional digits).
// Absent, null and unparseable values are passed over; the zero time means
// none parsed. The result is in UTC.
func EventTime(e *Event) time.Time {
	for _, s := range [...]string{e.StageTimestamp, e.RequestReceivedTimestamp, e.Timestamp, e.Annotations[audit.AnnotationReceivedAt]} {
		if t, ok := parseRFC3339(s); ok {
			return t
		}
	}
	return time.Time{}
}

func parseRFC3339(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	// Parsing accepts a fractional second after the seconds even though
	// the layout has none.
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// HumanUser is the person behind the event: the ucp-audit/user annotation,
// else user.extra.username[0], else user.username (an account ID in UCP),
// else user.uid; "" when there is none.
func (e *Event) HumanUser() string {
	if u := e.Annotations[audit.AnnotationUser]; u != "" {
		return u
	}
	if u := e.User.Extra["username"]; len(u) > 0 && u[0] != "" {
		return u[0]
	}
	if e.User.Username != "" {
		return e.User.Username
	}
	return e.User.UID
}

// Path is the requestURI without its query string (and fragment), not
// unescaped.
func (e *Event) Path() string {
	p := e.RequestURI
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	return p
}

// ContainerName is the ucp-audit/container-name annotation.
func (e *Event) ContainerName() string { return e.Annotations[audit.AnnotationContainerName] }

// ContainerID is the ucp-audit/container-id annotation.
func (e *Event) ContainerID() string { return e.Annotations[audit.AnnotationContainerID] }

// Host is the ucp-audit/host annotation.
func (e *Event) Host() string { return e.Annotations[audit.AnnotationHost] }

// Resource names what the event acted on, for grouping:
//
//   - with objectRef.resource: "NAMESPACE/RESOURCE", or "RESOURCE" for a
//     cluster-scoped one ("default/pods", "nodes");
//   - else, for a Kubernetes-shaped path (/api/VERSION/… or
//     /apis/GROUP/VERSION/…), the same read from the path;
//   - else the path's first segment after a Docker API version segment
//     (/v1.41/services/x → "services", /auth/login → "auth"), or its first
//     two when the first is "api" (/api/ucp/config → "api/ucp");
//   - "" for an empty path.
func (e *Event) Resource() string {
	if r := e.ObjectRef.Resource; r != "" {
		if ns := e.ObjectRef.Namespace; ns != "" {
			return ns + "/" + r
		}
		return r
	}
	return pathResource(e.Path())
}

func pathResource(p string) string {
	segs := segments(p)
	if len(segs) == 0 {
		return ""
	}
	if rest := k8sRest(segs); rest != nil {
		if rest[0] == "namespaces" && len(rest) >= 3 {
			return rest[1] + "/" + rest[2]
		}
		return rest[0]
	}
	if isDockerVersion(segs[0]) {
		segs = segs[1:]
		if len(segs) == 0 {
			return ""
		}
	}
	if segs[0] == "api" && len(segs) > 1 {
		return segs[0] + "/" + segs[1]
	}
	return segs[0]
}

// segments returns the non-empty segments of path p.
func segments(p string) []string {
	var segs []string
	for s := range strings.SplitSeq(p, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	return segs
}

// k8sRest returns what follows the API version in a Kubernetes-shaped
// path's non-empty segments (/api/v1/…, /apis/GROUP/VERSION/…), nil for
// another path or nothing after the version.
func k8sRest(segs []string) []string {
	switch {
	case len(segs) >= 3 && segs[0] == "api" && isK8sVersion(segs[1]):
		return segs[2:]
	case len(segs) >= 4 && segs[0] == "apis" && isK8sVersion(segs[2]):
		return segs[3:]
	}
	return nil
}

// Namespace is the Kubernetes namespace the event concerns:
// objectRef.namespace, else NS of a Kubernetes path
// /api/VERSION/namespaces/NS… or /apis/GROUP/VERSION/namespaces/NS… (a
// "watch" segment after the version allowed), as the API server reads it;
// "" for a cluster-scoped object or a path of another API.
func (e *Event) Namespace() string {
	if ns := e.ObjectRef.Namespace; ns != "" {
		return ns
	}
	rest := k8sRest(segments(e.Path()))
	if len(rest) > 0 && rest[0] == "watch" {
		rest = rest[1:]
	}
	if len(rest) >= 2 && rest[0] == "namespaces" {
		return rest[1]
	}
	return ""
}

// isK8sVersion reports whether s is a Kubernetes API version: v1, v1beta1,
// v2alpha3.
func isK8sVersion(s string) bool {
	if len(s) < 2 || s[0] != 'v' || s[1] < '1' || s[1] > '9' {
		return false
	}
	rest := strings.TrimLeft(s[1:], "0123456789")
	for _, suf := range [...]string{"alpha", "beta"} {
		if r, ok := strings.CutPrefix(rest, suf); ok && r != "" && strings.Trim(r, "0123456789") == "" {
			return true
		}
	}
	return rest == ""
}

// isDockerVersion reports whether s is a Docker API version segment: v1.41.
func isDockerVersion(s string) bool {
	v, ok := strings.CutPrefix(s, "v")
	if !ok {
		return false
	}
	maj, min, ok := strings.Cut(v, ".")
	return ok && maj != "" && min != "" && strings.Trim(maj, "0123456789") == "" && strings.Trim(min, "0123456789") == ""
}
