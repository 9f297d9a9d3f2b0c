package review

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

// None is the key under which report counts events that lack the value
// (no user, no kind, no response code …).
const None = "-"

// Other is the key of the row (or column) that counts what a cut to the
// top rows left out.
const Other = "(other)"

// Summary accumulates a Report: Add each selected event, and AddRecord (or
// Skip, which only counts it) each record that is not an event. The zero
// Summary is not ready; use NewSummary.
type Summary struct {
	events, noTime, denied, failed int
	first, last                    *Mark
	users, verbs, kinds            map[string]int
	resources, codes, endpoints    map[string]int
	failedCalls                    map[FailedCall]int
	records                        Records
	hours                          map[time.Time]int // events per hour, by its start
	userNamespaces                 map[[2]string]int // events per human user and namespace
	gaps                           []auditlog.Gap
}

// NewSummary returns an empty Summary.
func NewSummary() *Summary {
	return &Summary{
		users: map[string]int{}, verbs: map[string]int{}, kinds: map[string]int{},
		resources: map[string]int{}, codes: map[string]int{}, endpoints: map[string]int{},
		failedCalls: map[FailedCall]int{}, hours: map[time.Time]int{}, userNamespaces: map[[2]string]int{},
	}
}

// Add counts one event.
func (s *Summary) Add(e *Event) {
	s.events++
	if e.Time.IsZero() {
		s.noTime++
	} else {
		if s.first == nil || e.Time.Before(s.first.Time) {
			s.first = &Mark{e.Time, e.AuditID}
		}
		if s.last == nil || !e.Time.Before(s.last.Time) {
			s.last = &Mark{e.Time, e.AuditID}
		}
		s.hours[e.Time.Truncate(time.Hour)]++
	}
	s.users[orNone(e.HumanUser())]++
	s.userNamespaces[[2]string{orNone(e.HumanUser()), orNone(e.Namespace())}]++
	s.verbs[orNone(e.Verb)]++
	s.kinds[orNone(e.Kind)]++
	s.resources[orNone(e.Resource())]++
	code := None
	if e.Code != 0 {
		code = strconv.Itoa(e.Code)
	}
	s.codes[code]++
	s.endpoints[orNone(e.Path())]++
	if e.Code == 401 || e.Code == 403 {
		s.denied++
	}
	if e.Code >= 400 {
		s.failed++
		s.failedCalls[FailedCall{Code: e.Code, User: orNone(e.HumanUser()), Verb: orNone(e.Verb), Endpoint: orNone(e.Path())}]++
	}
}

// Skip counts a record that is not an event (TypeSelf, TypeGap, TypeSeal,
// TypeOther); other types are ignored.
func (s *Summary) Skip(t Type) {
	switch t {
	case TypeSelf:
		s.records.Self++
	case TypeGap:
		s.records.Gap++
	case TypeSeal:
		s.records.Seal++
	case TypeOther:
		s.records.Other++
	}
}

// AddRecord counts a record that is not an event, as Skip does, and
// keeps the content of a gap record for Report.Gaps.
func (s *Summary) AddRecord(rec *Record) {
	s.Skip(rec.Type)
	if rec.Type != TypeGap {
		return
	}
	var m map[string]json.RawMessage
	var g auditlog.Gap
	if json.Unmarshal(rec.Raw, &m) == nil && json.Unmarshal(m[auditlog.GapKey], &g) == nil {
		s.gaps = append(s.gaps, g)
	}
}

func orNone(s string) string {
	if s == "" {
		return None
	}
	return s
}

// Report is the summary of the selected events. Lists are ordered by count,
// highest first, then by key.
type Report struct {
	Events            int `json:"events"`
	EventsWithoutTime int `json:"eventsWithoutTime"` // counted, but not in first/last
	Denied            int `json:"denied"`            // response code 401 or 403
	Failed            int `json:"failed"`            // response code 400 or above, denied included
	// First and Last are the events with the earliest and latest time
	// (the first of a tie for First, the last for Last); nil when no event
	// has a time.
	First     *Mark   `json:"first"`
	Last      *Mark   `json:"last"`
	Users     []Count `json:"users"`     // by human user (Event.HumanUser)
	Verbs     []Count `json:"verbs"`     // verbs as written (get, GET)
	Kinds     []Count `json:"kinds"`     // API families
	Resources []Count `json:"resources"` // Event.Resource
	Codes     []Count `json:"codes"`     // response codes, "-" for none
	// FailedCalls are the calls answered 400 or above, by code, user, verb
	// and endpoint, at most top rows; FailedCallsOther counts the events of
	// the rows left out.
	FailedCalls      []FailedCount `json:"failedCalls"`
	FailedCallsOther int           `json:"failedCallsOther"`
	// Endpoints are the busiest request paths (requestURI without its
	// query string), at most top rows; EndpointsOther counts the events
	// of the rows left out.
	Endpoints      []Count `json:"endpoints"`
	EndpointsOther int     `json:"endpointsOther"`
	// Days counts the events per UTC date (2006-01-02), oldest first, and
	// under None, last, those without a time.
	Days []Count `json:"days"`
	// Chargeback counts the events per human user and namespace, at most
	// top users and top namespaces.
	Chargeback Chargeback `json:"chargeback"`
	// Gaps are the gap records read, whatever the filter (events that
	// will never reach a destination), in the order read, at most top;
	// GapsOther is the sum of Lost of the records left out.
	Gaps      []auditlog.Gap `json:"gaps"`
	GapsOther uint64         `json:"gapsOther"`
	// Records counts the plugin's own records read, whatever the filter.
	Records Records `json:"records"`
}

// Mark names one event by its time and auditID.
type Mark struct {
	Time    time.Time `json:"time"`
	AuditID string    `json:"auditID"`
}

// Count is one row of a section.
type Count struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// FailedCall is what a failed call is grouped by.
type FailedCall struct {
	Code     int    `json:"code"`
	User     string `json:"user"`
	Verb     string `json:"verb"`
	Endpoint string `json:"endpoint"`
}

// FailedCount is one row of Report.FailedCalls.
type FailedCount struct {
	FailedCall
	Count int `json:"count"`
}

// Records counts the lines that are not events.
type Records struct {
	Self  int `json:"self"`  // TypeSelf records
	Gap   int `json:"gap"`   // TypeGap records
	Seal  int `json:"seal"`  // TypeSeal records
	Other int `json:"other"` // other objects without auditID
}

// Report returns the summary so far, with at most top rows of failed calls
// and of endpoints (all when top <= 0).
func (s *Summary) Report(top int) Report {
	r := Report{
		Events: s.events, EventsWithoutTime: s.noTime, Denied: s.denied, Failed: s.failed,
		First: s.first, Last: s.last,
		Users: counts(s.users), Verbs: counts(s.verbs), Kinds: counts(s.kinds),
		Resources: counts(s.resources), Codes: counts(s.codes), Endpoints: counts(s.endpoints),
		Records: s.records,
	}
	r.Endpoints, r.EndpointsOther = cut(r.Endpoints, top, func(c Count) int { return c.Count })
	fc := make([]FailedCount, 0, len(s.failedCalls))
	for k, n := range s.failedCalls {
		fc = append(fc, FailedCount{k, n})
	}
	slices.SortFunc(fc, func(a, b FailedCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Code, b.Code),
			cmp.Compare(a.User, b.User), cmp.Compare(a.Verb, b.Verb), cmp.Compare(a.Endpoint, b.Endpoint))
	})
	r.FailedCalls, r.FailedCallsOther = cut(fc, top, func(c FailedCount) int { return c.Count })
	r.Days = s.days()
	r.Chargeback = s.chargeback(top)
	r.Gaps, r.GapsOther = cut(append([]auditlog.Gap{}, s.gaps...), top, func(g auditlog.Gap) uint64 { return g.Lost })
	return r
}

// counts lists m by count, highest first, then by key.
func counts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{k, n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Key, b.Key))
	})
	return out
}

// cut keeps the first top rows (all when top <= 0) and sums the counts of
// the others.
func cut[T any, N int | uint64](rows []T, top int, count func(T) N) ([]T, N) {
	if top <= 0 || len(rows) <= top {
		return rows, 0
	}
	var other N
	for _, r := range rows[top:] {
		other += count(r)
	}
	return rows[:top], other
}
