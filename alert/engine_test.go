package alert

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

const execRule = `{"name": "exec-into-pod", "when": "event != null && event.?objectRef.?subresource.orValue('') in ['exec', 'attach']", "severity": "warning", "outputs": ["am", "hook"]}`

func TestObserveFires(t *testing.T) {
	e := NewEngine(config(t, execRule, ""), Options{})
	got := e.Observe(eventLine(t, id(1), t0, nil), t0)
	if want := []string{"exec-into-pod/am", "exec-into-pod/hook"}; !slices.Equal(names(got), want) {
		t.Fatalf("alerts %v, want %v", names(got), want)
	}
	a := got[0]
	r := a.Record
	if a.Severity != Warning || !a.FiredAt.Equal(t0) || a.Count != 1 || a.Builtin != "" || a.Group != nil {
		t.Errorf("alert %+v", a)
	}
	if r.Kind != KindEvent || r.AuditID != id(1) || r.User != "bob" || r.Verb != "create" || r.SourceIP != "10.0.0.7" || r.Code != 101 ||
		r.Host != "mgr-1" || r.ContainerName != "ucp-controller" || r.ObjectRef.Subresource != "exec" || !r.Time.Equal(t0) {
		t.Errorf("record %+v", r)
	}
	if s := a.Summary(); s != "bob create /api/v1/namespaces/default/pods/web-1/exec?command=sh&stdin=true&tty=true from 10.0.0.7 → 101" {
		t.Errorf("summary %q", s)
	}
	// Not an exec; a self record; a seal; an alert-fired record; not JSON.
	quiet := [][]byte{
		eventLine(t, id(2), t0, map[string]any{"objectRef": map[string]any{"resource": "pods", "name": "web-1"}}),
		selfLine(t, "stream-attached", t0, "", ""),
		[]byte(`{"ucp-audit/seal":{"reason":"open","time":"2024-03-02T10:04:00Z","file":1,"keep":5,"records":1},"ucp-audit/chain":{"n":1}}`),
		selfLine(t, auditlog.SelfAlertFired, t0, "", ""),
		[]byte(`not json`),
		[]byte(`{"reason":"not JSON","raw":"{\"auditID\":1"}`),
	}
	for _, l := range quiet {
		if got := e.Observe(l, t0); len(got) != 0 {
			t.Errorf("%s: fired %v", l, names(got))
		}
	}
	if n := e.EvalErrors(); len(n) != 0 {
		t.Errorf("evaluation errors %v", n)
	}
}

func TestObserveWithoutOutputs(t *testing.T) {
	c, err := Parse([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := Compile(c)
	e := NewEngine(rs, Options{})
	if got := e.Observe(gapLine(t, t0), t0); got != nil {
		t.Errorf("alerts without outputs: %v", names(got))
	}
}

func TestGroupAndThrottle(t *testing.T) {
	rule := `{"name": "deletes", "when": "event != null && event.verb == 'delete'", "severity": "info", "outputs": ["am"],
	          "group_by": ["event.annotations[\"ucp-audit/user\"]"], "throttle": "10m"}`
	e := NewEngine(config(t, rule, ""), Options{})
	del := func(i int, user string, at time.Time) []Alert {
		return e.Observe(eventLine(t, id(i), at, map[string]any{"verb": "delete",
			"annotations": map[string]any{"ucp-audit/user": user}}), at)
	}
	// bob fires, then is throttled for 10 minutes; alice is another group.
	if got := del(1, "bob", t0); len(got) != 1 || !slices.Equal(got[0].Group, []string{"bob"}) || got[0].Record.User != "bob" {
		t.Fatalf("first delete: %+v", got)
	}
	for i := range 3 {
		if got := del(2+i, "bob", t0.Add(time.Duration(i+1)*time.Minute)); len(got) != 0 {
			t.Fatalf("bob fired again within the throttle: %v", names(got))
		}
	}
	if got := del(9, "alice", t0.Add(2*time.Minute)); len(got) != 1 || got[0].Group[0] != "alice" {
		t.Fatalf("alice: %+v", got)
	}
	got := del(10, "bob", t0.Add(10*time.Minute))
	if len(got) != 1 || got[0].Suppressed != 3 || got[0].Record.AuditID != id(10) {
		t.Fatalf("bob after the throttle: %+v", got)
	}
	// A group whose state no longer matters is forgotten.
	e.Observe(selfLine(t, "stream-attached", t0, "", ""), t0.Add(time.Hour))
	e.mu.Lock()
	n := len(e.groups)
	e.mu.Unlock()
	if n != 0 {
		t.Errorf("%d groups kept an hour later", n)
	}
}

func TestCountWithin(t *testing.T) {
	rule := `{"name": "denied-burst", "when": "event != null && has(event.responseStatus) && event.responseStatus.code in [401, 403]",
	          "severity": "warning", "outputs": ["am"], "group_by": ["event.user.username"], "count": 5, "within": "1m", "throttle": "10m"}`
	e := NewEngine(config(t, rule, ""), Options{})
	denied := func(i int, at time.Time) []Alert {
		return e.Observe(eventLine(t, id(i), at, map[string]any{"responseStatus": map[string]any{"code": 403}}), at)
	}
	// Four within a minute, then a pause: the window slides past them.
	for i := range 4 {
		if got := denied(i, t0.Add(time.Duration(i)*time.Second)); len(got) != 0 {
			t.Fatalf("fired after %d", i+1)
		}
	}
	if got := denied(10, t0.Add(70*time.Second)); len(got) != 0 {
		t.Fatal("fired with matches outside the window")
	}
	var fired []Alert
	for i := range 4 {
		fired = append(fired, denied(11+i, t0.Add(71*time.Second+time.Duration(i)*time.Second))...)
	}
	if len(fired) != 1 || fired[0].Count != 5 || fired[0].Record.AuditID != id(14) || !strings.HasSuffix(fired[0].Summary(), "(5 times)") {
		t.Fatalf("burst: %+v", fired)
	}
	// The count starts again, and the throttle holds the next burst.
	for i := range 5 {
		if got := denied(20+i, t0.Add(80*time.Second+time.Duration(i)*time.Second)); len(got) != 0 {
			t.Fatal("a second burst within the throttle fired")
		}
	}
	// Other codes do not count.
	if got := e.Observe(eventLine(t, id(30), t0, nil), t0.Add(time.Hour)); len(got) != 0 {
		t.Fatal("a 101 counted")
	}
}

func TestEvalErrorsCountedAndRateLimited(t *testing.T) {
	// user.extra.groups does not exist: every event fails.
	rule := `{"name": "bad", "when": "event != null && event.user.extra.groups[0] == 'x'", "severity": "info", "outputs": ["am"]}`
	var mu sync.Mutex
	type call struct {
		rule       string
		err        error
		suppressed uint64
	}
	var calls []call
	e := NewEngine(config(t, rule+","+execRule, ""), Options{OnEvalError: func(rule string, err error, suppressed uint64) {
		mu.Lock()
		calls = append(calls, call{rule, err, suppressed})
		mu.Unlock()
	}})
	var fired []string
	for i := range 100 {
		fired = append(fired, names(e.Observe(eventLine(t, id(i), t0, nil), t0.Add(time.Duration(i)*100*time.Millisecond)))...)
	}
	if n := e.EvalErrors()["bad"]; n != 100 {
		t.Errorf("EvalErrors = %d, want 100", n)
	}
	if len(fired) != 200 || slices.Contains(fired, "bad/am") {
		t.Errorf("fired %d alerts (the failing rule must not fire, the other must): %v", len(fired), fired[:min(4, len(fired))])
	}
	if len(calls) != 1 || calls[0].rule != "bad" || calls[0].suppressed != 0 || !strings.Contains(calls[0].err.Error(), "no such key: groups") {
		t.Fatalf("OnEvalError calls %+v, want one", calls)
	}
	e.Observe(eventLine(t, id(200), t0, nil), t0.Add(2*time.Minute))
	if len(calls) != 2 || calls[1].suppressed != 99 {
		t.Errorf("a minute later: %+v, want a second call with 99 suppressed", calls)
	}
}

func TestRuntimeCostLimit(t *testing.T) {
	// Estimated within the limit for records of EstimateSize; this event
	// holds a list ten times longer.
	rule := `{"name": "scan", "when": "event != null && has(event.requestObject) && event.requestObject.items.exists(x, x == 'needle')", "severity": "info", "outputs": ["am"]}`
	e := NewEngine(config(t, rule, ""), Options{})
	items := make([]any, 10*EstimateSize)
	for i := range items {
		items[i] = "hay"
	}
	start := time.Now()
	got := e.Observe(eventLine(t, id(1), t0, map[string]any{"requestObject": map[string]any{"items": items}}), t0)
	if len(got) != 0 || e.EvalErrors()["scan"] != 1 {
		t.Errorf("alerts %v, errors %v: want one cost error", names(got), e.EvalErrors())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if got := e.Observe(eventLine(t, id(2), t0, map[string]any{"requestObject": map[string]any{"items": []any{"needle"}}}), t0); len(got) != 1 {
		t.Errorf("a short list: %v", names(got))
	}
}

func TestNumbers(t *testing.T) {
	rule := `{"name": "n", "when": "event != null && event.responseStatus.code >= 400 && event.responseStatus.code < 500 && event.x == 1.5 && event.big > 9223372036854775807", "severity": "info", "outputs": ["am"]}`
	e := NewEngine(config(t, rule, ""), Options{})
	line := eventLine(t, id(1), t0, map[string]any{"responseStatus": map[string]any{"code": 403}, "x": 1.5, "big": uint64(1 << 63)})
	if got := e.Observe(line, t0); len(got) != 1 {
		t.Errorf("alerts %v, errors %v", names(got), e.EvalErrors())
	}
}

func TestSelfRules(t *testing.T) {
	rule := `{"name": "stream-gone", "when": "self != null && self.type == 'stream-detached'", "severity": "info", "outputs": ["am"], "group_by": ["self.container-id"]}`
	e := NewEngine(config(t, rule, `{"gap": {"enabled": false}}`), Options{})
	got := e.Observe(selfLine(t, "stream-detached", t0, "", "lines=7"), t0)
	if len(got) != 1 || got[0].Record.Kind != KindSelf || got[0].Record.Type != "stream-detached" || got[0].Group[0] != "3f1c9a7b" {
		t.Fatalf("%+v", got)
	}
	if s := got[0].Summary(); s != "stream-detached: lines=7" {
		t.Errorf("summary %q", s)
	}
	// An event rule is not evaluated on self records, nor this one on events.
	if got := e.Observe(eventLine(t, id(1), t0, nil), t0); len(got) != 0 {
		t.Errorf("fired on an event: %v", names(got))
	}
	// A rule on gap records sees type "gap".
	e = NewEngine(config(t, `{"name": "g", "when": "self != null && self.type == 'gap' && self.lost > 100", "severity": "info", "outputs": ["am"]}`, `{"gap": {"enabled": false}}`), Options{Host: "mgr-9"})
	got = e.Observe(gapLine(t, t0), t0)
	if len(got) != 1 || got[0].Record.Kind != KindGap || got[0].Record.Lost != 120 || got[0].Record.Host != "mgr-9" {
		t.Fatalf("gap: %+v", got)
	}
}

func TestBuiltins(t *testing.T) {
	rs := config(t, "", `{"configuration_rejected": {"enabled": false}, "input_lost": {"outputs": ["hook"], "severity": "warning"}}`)
	e := NewEngine(rs, Options{})
	for _, tc := range []struct {
		line []byte
		want []string
	}{
		{gapLine(t, t0), []string{"ucp-audit-gap/am", "ucp-audit-gap/hook"}},
		{selfLine(t, "input-lost", t0, "", "12 bytes"), []string{"ucp-audit-input-lost/hook"}},
		{selfLine(t, "spool-full", t0, "", ""), []string{"ucp-audit-spool-high-water/am", "ucp-audit-spool-high-water/hook"}},
		{selfLine(t, auditlog.SelfSpoolHighWater, t0, "", "81%"), []string{"ucp-audit-spool-high-water/am", "ucp-audit-spool-high-water/hook"}},
		{selfLine(t, auditlog.SelfSinkFailing, t0, "", "no space left on device"), []string{"ucp-audit-sink-failing/am", "ucp-audit-sink-failing/hook"}},
		{selfLine(t, auditlog.SelfChainError, t0, "", "seal key"), []string{"ucp-audit-chain-error/am", "ucp-audit-chain-error/hook"}},
		{selfLine(t, auditlog.SelfRestartedAfterCrash, t0, "", ""), []string{"ucp-audit-crash-restart/am", "ucp-audit-crash-restart/hook"}},
		{selfLine(t, "stream-reattached", t0, "", "resumes at seq 8"), []string{"ucp-audit-crash-restart/am", "ucp-audit-crash-restart/hook"}},
		{selfLine(t, "configuration-rejected", t0, "", "bad"), nil},
		{selfLine(t, "plugin-started", t0, "", ""), nil},
		// Throttled: the same group again within DefaultBuiltinThrottle.
		{gapLine(t, t0), nil},
		{selfLine(t, "input-lost", t0.Add(time.Minute), "", "12 bytes"), nil},
	} {
		got := e.Observe(tc.line, t0)
		if !slices.Equal(names(got), tc.want) {
			t.Errorf("%s: %v, want %v", tc.line, names(got), tc.want)
		}
		for _, a := range got {
			if a.Builtin == "" || a.Record.Host != "" && a.Record.Host != "mgr-1" {
				t.Errorf("%+v", a)
			}
		}
	}
	got := e.Observe(gapLine(t, t0.Add(DefaultBuiltinThrottle)), t0.Add(DefaultBuiltinThrottle))
	if len(got) != 2 || got[0].Suppressed != 1 || got[0].Severity != Critical || got[0].Builtin != GapRecorded {
		t.Errorf("gap after the throttle: %+v", got)
	}
	if s := got[0].Summary(); s != "120 events (seq 880-999) will never reach logstash beats://siem:5044: spool full" {
		t.Errorf("summary %q", s)
	}
}

func TestDestinationDown(t *testing.T) {
	e := NewEngine(config(t, "", `{"destination_down": {"after": "5m", "outputs": ["am"]}}`), Options{})
	const dest = "syslog relp://siem:2514"
	if got := e.Observe(selfLine(t, "destination-down", t0, dest, "connection refused"), t0); len(got) != 0 {
		t.Fatalf("fired at once: %v", names(got))
	}
	if got := e.Tick(t0.Add(4 * time.Minute)); len(got) != 0 {
		t.Fatalf("fired after 4m: %v", names(got))
	}
	got := e.Tick(t0.Add(5 * time.Minute))
	if !slices.Equal(names(got), []string{"ucp-audit-destination-down/am"}) {
		t.Fatalf("after 5m: %v", names(got))
	}
	if a := got[0]; a.DownFor != 5*time.Minute || a.Record.Destination != dest || a.Record.Type != "destination-down" || !a.FiredAt.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("%+v", a)
	}
	if s := got[0].Summary(); s != "destination "+dest+" down for 5m0s: connection refused" {
		t.Errorf("summary %q", s)
	}
	// Once per outage; a second destination-down changes nothing.
	e.Observe(selfLine(t, "destination-down", t0.Add(6*time.Minute), dest, "again"), t0.Add(6*time.Minute))
	if got := e.Tick(t0.Add(20 * time.Minute)); len(got) != 0 {
		t.Fatalf("fired twice for one outage: %v", names(got))
	}
	// Back, then down again: a new outage, past the throttle.
	e.Observe(selfLine(t, "destination-back", t0.Add(21*time.Minute), dest, ""), t0.Add(21*time.Minute))
	e.Observe(selfLine(t, "destination-down", t0.Add(22*time.Minute), dest, ""), t0.Add(22*time.Minute))
	// Back before the threshold: nothing.
	e.Observe(selfLine(t, "destination-down", t0.Add(22*time.Minute), "logstash beats://siem:5044", ""), t0.Add(22*time.Minute))
	e.Observe(selfLine(t, "destination-back", t0.Add(23*time.Minute), "logstash beats://siem:5044", ""), t0.Add(23*time.Minute))
	got = e.Observe(eventLine(t, id(1), t0, nil), t0.Add(27*time.Minute)) // Observe runs the timers too
	if len(got) != 1 || got[0].Record.Destination != dest || got[0].DownFor != 5*time.Minute {
		t.Fatalf("second outage: %+v", got)
	}
	// Switched off: nothing.
	e = NewEngine(config(t, "", `{"destination_down": {"enabled": false}}`), Options{})
	e.Observe(selfLine(t, "destination-down", t0, dest, ""), t0)
	if got := e.Tick(t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("switched off, fired %v", names(got))
	}
}

func TestObserveConcurrent(t *testing.T) {
	rule := `{"name": "burst", "when": "event != null", "severity": "info", "outputs": ["am"], "group_by": ["event.auditID"], "count": 2, "within": "1h"}`
	e := NewEngine(config(t, rule, ""), Options{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				n := len(e.Observe(eventLine(t, id(g*1000+i%25), t0, nil), t0))
				n += len(e.Observe(gapLine(t, t0), t0))
				e.Tick(t0)
				mu.Lock()
				total += n
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// 4 goroutines × 25 IDs, each seen twice: one burst each; one gap alarm per output.
	if total != 100+2 {
		t.Errorf("%d alerts, want 102", total)
	}
}

func TestEvalErrorOfType(t *testing.T) {
	// A dyn operand that type-checks as bool but is a string at run time.
	rule := `{"name": "r", "when": "event != null && event.verb", "severity": "info", "outputs": ["am"]}`
	var got error
	e := NewEngine(config(t, rule, ""), Options{OnEvalError: func(_ string, err error, _ uint64) { got = err }})
	e.Observe(eventLine(t, id(1), t0, nil), t0)
	if got == nil || e.EvalErrors()["r"] != 1 {
		t.Errorf("error %v, count %v", got, e.EvalErrors())
	}
}
