package review

import (
	"reflect"
	"testing"
	"time"
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
