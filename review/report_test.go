package review

import (
	"reflect"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

func TestSummary(t *testing.T) {
	t0 := time.Date(2024, 3, 2, 10, 0, 0, 0, time.UTC)
	events := []*Event{
		{AuditID: "late-1", Verb: "get", Time: t0.Add(time.Hour), Code: 403, RequestURI: "/b?x=1", User: User{Username: "bob"}},
		{AuditID: "early-1", Verb: "GET", Time: t0, Code: 200, RequestURI: "/a", User: User{Username: "alice"}},
		{AuditID: "early-2", Verb: "get", Time: t0, Code: 500, RequestURI: "/b", User: User{Username: "bob"}},
		{AuditID: "late-2", Verb: "list", Time: t0.Add(time.Hour), Code: 403, RequestURI: "/b", User: User{Username: "bob"}},
		{AuditID: "no-time", RequestURI: "/c"},
	}
	s := NewSummary()
	for _, e := range events {
		s.Add(e)
	}
	for _, typ := range []Type{TypeSelf, TypeGap, TypeGap, TypeSeal, TypeOther, TypeInvalid, TypeEvent} {
		s.Skip(typ)
	}
	r := s.Report(1)
	if r.Events != 5 || r.EventsWithoutTime != 1 || r.Denied != 2 || r.Failed != 3 {
		t.Errorf("counts %d %d %d %d", r.Events, r.EventsWithoutTime, r.Denied, r.Failed)
	}
	if r.First.AuditID != "early-1" || r.Last.AuditID != "late-2" {
		t.Errorf("first %+v, last %+v: want the first of the earliest, the last of the latest", r.First, r.Last)
	}
	if want := []Count{{"bob", 3}, {"-", 1}, {"alice", 1}}; !reflect.DeepEqual(r.Users, want) {
		t.Errorf("users %v, want %v (count descending, then key)", r.Users, want)
	}
	if want := []Count{{"get", 2}, {"-", 1}, {"GET", 1}, {"list", 1}}; !reflect.DeepEqual(r.Verbs, want) {
		t.Errorf("verbs %v, want %v", r.Verbs, want)
	}
	if want := []Count{{"/b", 3}}; !reflect.DeepEqual(r.Endpoints, want) || r.EndpointsOther != 2 {
		t.Errorf("endpoints %v, other %d; want %v, other 2", r.Endpoints, r.EndpointsOther, want)
	}
	wantFailed := []FailedCount{{FailedCall{403, "bob", "get", "/b"}, 1}}
	if !reflect.DeepEqual(r.FailedCalls, wantFailed) || r.FailedCallsOther != 2 {
		t.Errorf("failed calls %v, other %d; want %v, other 2", r.FailedCalls, r.FailedCallsOther, wantFailed)
	}
	if r.Records != (Records{Self: 1, Gap: 2, Seal: 1, Other: 1}) {
		t.Errorf("records %+v", r.Records)
	}
	if all := s.Report(0); len(all.Endpoints) != 3 || all.EndpointsOther != 0 || len(all.FailedCalls) != 3 {
		t.Errorf("Report(0) cut rows: %v %v", all.Endpoints, all.FailedCalls)
	}
}

func TestSummaryDaysAndChargeback(t *testing.T) {
	day := func(d, h int) time.Time { return time.Date(2024, 3, d, h, 30, 0, 0, time.UTC) }
	ev := func(user, uri, ns string, at time.Time) *Event {
		return &Event{User: User{Username: user}, RequestURI: uri, ObjectRef: ObjectRef{Namespace: ns}, Time: at}
	}
	s := NewSummary()
	for _, e := range []*Event{
		ev("alice", "/api/v1/namespaces/default/pods", "", day(1, 23)),
		ev("alice", "/api/v1/namespaces/default/pods", "", day(2, 0)),
		ev("alice", "/api/v1/nodes", "", day(2, 1)),
		ev("bob", "/x", "staging", day(2, 2)),
		ev("bob", "/api/v1/namespaces/web/pods", "", day(3, 3)),
		ev("carol", "/v1.41/services", "", day(3, 4)),
		ev("dave", "/api/v1/namespaces/web/pods", "", time.Time{}),
	} {
		s.Add(e)
	}
	r := s.Report(0)
	if want := []Count{{"2024-03-01", 1}, {"2024-03-02", 3}, {"2024-03-03", 2}, {None, 1}}; !reflect.DeepEqual(r.Days, want) {
		t.Errorf("days %v, want %v (by date, then those without a time)", r.Days, want)
	}
	all := Chargeback{
		Namespaces: []string{"-", "default", "web", "staging"},
		Rows: []ChargebackRow{
			{"alice", []int{1, 2, 0, 0}, 3},
			{"bob", []int{0, 0, 1, 1}, 2},
			{"carol", []int{1, 0, 0, 0}, 1},
			{"dave", []int{0, 0, 1, 0}, 1},
		},
		Totals: []int{2, 2, 2, 1}, Total: 7,
	}
	if !reflect.DeepEqual(r.Chargeback, all) {
		t.Errorf("chargeback\n%+v\nwant\n%+v", r.Chargeback, all)
	}
	cut := Chargeback{
		Namespaces: []string{"-", "default", Other},
		Rows: []ChargebackRow{
			{"alice", []int{1, 2, 0}, 3},
			{"bob", []int{0, 0, 2}, 2},
			{Other, []int{1, 0, 1}, 2},
		},
		Totals: []int{2, 2, 3}, Total: 7,
	}
	if got := s.Report(2).Chargeback; !reflect.DeepEqual(got, cut) {
		t.Errorf("chargeback, top 2\n%+v\nwant\n%+v", got, cut)
	}
	if got := s.Report(4).Chargeback; !reflect.DeepEqual(got, all) {
		t.Errorf("chargeback, top 4 of 4: %+v", got)
	}
}

func TestSummaryGaps(t *testing.T) {
	s := NewSummary()
	for i, line := range []string{
		`{"ucp-audit/gap":{"container-id":"3f1c","container-name":"ucp-controller","destination":"syslog tcp://siem:514","first-seq":9,"last-seq":10,"lost":2,"reason":"spool full","time":"2024-03-02T12:00:00Z"},"ucp-audit/chain":{"n":4}}`,
		`{"ucp-audit/gap":"not an object"}`,
		`{"ucp-audit/self":{"type":"plugin-started"}}`,
		`{"ucp-audit/gap":{"destination":"logstash beats://siem:5044","first-seq":100,"last-seq":199,"lost":100}}`,
		`{"ucp-audit/gap":{"destination":"x","first-seq":1,"last-seq":5,"lost":5}}`,
	} {
		typ, _, _ := Parse([]byte(line))
		s.AddRecord(&Record{Line: i + 1, Raw: []byte(line), Type: typ})
	}
	r := s.Report(2)
	want := []auditlog.Gap{
		{Time: "2024-03-02T12:00:00Z", ContainerID: "3f1c", ContainerName: "ucp-controller", Destination: "syslog tcp://siem:514", Lost: 2, FirstSeq: 9, LastSeq: 10, Reason: "spool full"},
		{Destination: "logstash beats://siem:5044", Lost: 100, FirstSeq: 100, LastSeq: 199},
	}
	if !reflect.DeepEqual(r.Gaps, want) || r.GapsOther != 5 {
		t.Errorf("gaps %+v, other %d; want %+v, other 5", r.Gaps, r.GapsOther, want)
	}
	if r.Records != (Records{Self: 1, Gap: 4}) {
		t.Errorf("records %+v", r.Records)
	}
}

func TestTimeline(t *testing.T) {
	t0 := time.Date(2024, 3, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		times []time.Duration // after t0
		want  Timeline
	}{
		{"none", nil, Timeline{Step: time.Hour}},
		{"hourly", []time.Duration{0, 10 * time.Minute, 5*time.Hour + 59*time.Minute, 71 * time.Hour}, Timeline{
			Step: time.Hour, From: t0, To: t0.Add(72 * time.Hour),
			Buckets: []Bucket{{t0, 2}, {t0.Add(5 * time.Hour), 1}, {t0.Add(71 * time.Hour), 1}},
		}},
		{"daily beyond 72 hours", []time.Duration{0, 14 * time.Hour, 15 * time.Hour, 72 * time.Hour}, Timeline{
			Step: 24 * time.Hour, From: t0.Add(-10 * time.Hour), To: t0.Add(86 * time.Hour),
			Buckets: []Bucket{{t0.Add(-10 * time.Hour), 1}, {t0.Add(14 * time.Hour), 2}, {t0.Add(62 * time.Hour), 1}},
		}},
	}
	for _, tt := range tests {
		s := NewSummary()
		for _, d := range tt.times {
			s.Add(&Event{Time: t0.Add(d)})
		}
		s.Add(&Event{}) // no time: not in the timeline
		if got := s.Timeline(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Timeline\n%+v\nwant\n%+v", tt.name, got, tt.want)
		}
	}
}
