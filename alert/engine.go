package alert

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/interpreter"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

// Options configures an Engine.
type Options struct {
	// Host is the node's name, for records that carry none (gap records).
	Host string
	// OnEvalError, when set, is told of a rule's evaluation errors: the
	// first at once, then at most one a minute per rule (by the times
	// given to Observe), with the number of errors not reported since the
	// last call. It is called without the Engine's lock held.
	OnEvalError func(rule string, err error, suppressed uint64)
}

// ErrNotBool is an evaluation error: a rule's result was not a bool (an
// expression of type bool can still yield a dyn value of another type).
var ErrNotBool = errors.New("result is not a bool")

// Engine runs compiled rules over the records of a trail. Its methods are
// safe for concurrent use.
type Engine struct {
	rules *Rules
	opts  Options

	mu        sync.Mutex
	groups    map[string]*group     // by rule name and group values
	down      map[string]*downState // by container ID and destination
	errs      map[string]*errState  // by rule name
	lastPrune time.Time
}

// Bounds of the Engine's memory.
const (
	// MaxGroups bounds the groups tracked (all rules together); past it a
	// new group shares its rule's overflow group.
	MaxGroups = 100000
	// maxDown bounds the destinations tracked as down.
	maxDown    = 4096
	pruneEvery = time.Minute
	// errorReportEvery is OnEvalError's rate per rule.
	errorReportEvery = time.Minute
)

type group struct {
	hits       []time.Time // count rules: the matches within the window, oldest first
	quietUntil time.Time   // throttled until
	suppressed int
	lastSeen   time.Time
	keep       time.Duration // how long the state matters after lastSeen
}

type downState struct {
	since time.Time
	line  []byte // the destination-down record
	fired bool
}

type errState struct {
	count, pending uint64
	reported       time.Time
}

type report struct {
	rule       string
	err        error
	suppressed uint64
}

// NewEngine returns an Engine running r.
func NewEngine(r *Rules, o Options) *Engine {
	return &Engine{rules: r, opts: o, groups: map[string]*group{}, down: map[string]*downState{}, errs: map[string]*errState{}}
}

// Observe takes one record written to the trail (a line, without its
// newline) at time now, and returns the alerts to deliver, one per (rule,
// output): those of the rules and built-in alarms it fires, and of any
// destination that has now been down for long enough. Seals and
// alert-fired records are passed over. Observe does not keep line.
func (e *Engine) Observe(line []byte, now time.Time) []Alert {
	if len(e.rules.outputs) == 0 {
		return nil
	}
	var out []Alert
	var reports []report
	if len(e.rules.rules) > 0 || maybeSelf(line) {
		out, reports = e.observe(line, now)
	}
	out = append(out, e.Tick(now)...)
	e.report(reports)
	return out
}

func (e *Engine) observe(line []byte, now time.Time) ([]Alert, []report) {
	d := decodeLine(line)
	if d.kind == "" {
		return nil, nil
	}
	var out []Alert
	var rec *Record // read once, when something fires
	record := func() Record {
		if rec == nil {
			r := recordOf(d.kind, line, e.opts.Host)
			rec = &r
		}
		return *rec
	}
	if d.self != nil {
		out = e.builtins(d, line, now, record, out)
	}
	if len(e.rules.rules) == 0 {
		return out, nil
	}
	act, err := interpreter.NewActivation(map[string]any{"event": mapOrNil(d.event), "self": mapOrNil(d.self)})
	if err != nil { // only for an input of the wrong type: not ours
		return out, nil
	}
	var reports []report
	for _, r := range e.rules.rules {
		match, err := r.eval(d, act)
		if err != nil {
			if rep, ok := e.evalError(r.Name, err, now); ok {
				reports = append(reports, rep)
			}
			continue
		}
		if !match {
			continue
		}
		var values []string
		for _, p := range r.groupBy {
			values = append(values, p.value(d.event, d.self))
		}
		keep := max(r.Throttle, r.Within)
		e.mu.Lock()
		count, suppressed, fire := e.step(r.Name, values, now, r.Count, r.Within, r.Throttle, keep)
		e.mu.Unlock()
		if fire {
			a := Alert{Rule: r.Name, Severity: r.Severity, FiredAt: now, Group: values, Count: count, Suppressed: suppressed, Record: record()}
			out = appendPerOutput(out, a, r.Outputs)
		}
	}
	return out, reports
}

// eval runs r on d: whether it matches.
func (r *rule) eval(d decoded, act interpreter.Activation) (bool, error) {
	if (d.event != nil && !r.readsEvent && r.readsSelf) || (d.self != nil && !r.readsSelf && r.readsEvent) {
		return r.other, nil
	}
	v, _, err := r.prg.Eval(act)
	if err != nil {
		return false, err
	}
	b, ok := v.Value().(bool)
	if !ok {
		return false, fmt.Errorf("%w: %v", ErrNotBool, v.Type())
	}
	return b, nil
}

// builtins runs the built-in alarms on a self or gap record.
func (e *Engine) builtins(d decoded, line []byte, now time.Time, record func() Record, out []Alert) []Alert {
	typ := d.typ()
	cid, _ := d.self["container-id"].(string)
	dest, _ := d.self["destination"].(string)
	switch typ {
	case auditlog.SelfDestinationDown, auditlog.SelfDestinationBack:
		if e.builtin(DestinationDown) == nil {
			return out
		}
		key := cid + "\x00" + dest
		e.mu.Lock()
		if _, ok := e.down[key]; typ == auditlog.SelfDestinationBack {
			delete(e.down, key)
		} else if !ok && len(e.down) < maxDown {
			e.down[key] = &downState{since: now, line: append([]byte(nil), line...)}
		}
		e.mu.Unlock()
		return out
	}
	b := builtinFor(e.rules.builtins, typ)
	if b == nil {
		return out
	}
	e.mu.Lock()
	_, suppressed, fire := e.step(b.Name, []string{typ, cid, dest}, now, 1, 0, b.Throttle, b.Throttle)
	e.mu.Unlock()
	if !fire {
		return out
	}
	a := Alert{Rule: b.Name, Builtin: b.Kind, Severity: b.Severity, FiredAt: now, Count: 1, Suppressed: suppressed, Record: record()}
	return appendPerOutput(out, a, b.outputs(e.rules.outputs))
}

// builtin returns the built-in alarm of kind k when it is enabled.
func (e *Engine) builtin(k BuiltinKind) *Builtin {
	for i := range e.rules.builtins {
		if b := &e.rules.builtins[i]; b.Kind == k && b.Enabled {
			return b
		}
	}
	return nil
}

// Tick returns the alerts of destinations that have been down (a
// destination-down record without a destination-back since) for the
// built-in's "after" at time now, once per outage, and forgets groups
// whose state no longer matters. The driver calls it every few seconds;
// Observe calls it too.
func (e *Engine) Tick(now time.Time) []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.prune(now)
	b := e.builtin(DestinationDown)
	if b == nil || len(e.rules.outputs) == 0 {
		return nil
	}
	var out []Alert
	for _, key := range slices.Sorted(maps.Keys(e.down)) { // sorted: the same trail gives the same alerts
		st := e.down[key]
		if st.fired || now.Sub(st.since) < b.After {
			continue
		}
		st.fired = true
		cid, dest, _ := strings.Cut(key, "\x00")
		_, suppressed, fire := e.step(b.Name, []string{cid, dest}, now, 1, 0, b.Throttle, b.Throttle)
		if fire {
			a := Alert{Rule: b.Name, Builtin: b.Kind, Severity: b.Severity, FiredAt: now, Count: 1, Suppressed: suppressed,
				Record: recordOf(KindSelf, st.line, e.opts.Host), DownFor: now.Sub(st.since)}
			out = appendPerOutput(out, a, b.outputs(e.rules.outputs))
		}
	}
	return out
}

// step records a match of rule name's group values at now and says
// whether it fires: with count > 1, once the group has matched count
// times within window (count is then the number of matches); then unless
// the group fired less than throttle ago (suppressed counts the matches
// held back since it last fired). Called with e.mu held.
func (e *Engine) step(name string, values []string, now time.Time, count int, window, throttle, keep time.Duration) (n, suppressed int, fire bool) {
	key := name + "\x00" + strings.Join(values, "\x00")
	g, ok := e.groups[key]
	if !ok {
		if len(e.groups) >= MaxGroups {
			key = name + "\x00\x01overflow"
			g = e.groups[key]
		}
		if g == nil {
			g = &group{}
			e.groups[key] = g
		}
	}
	g.lastSeen, g.keep = now, keep
	n = 1
	if count > 1 {
		g.hits = append(g.hits, now)
		i := 0
		for i < len(g.hits) && now.Sub(g.hits[i]) >= window {
			i++
		}
		g.hits = g.hits[i:]
		if len(g.hits) < count {
			return 0, 0, false
		}
		n = len(g.hits)
		g.hits = nil
	}
	if now.Before(g.quietUntil) {
		g.suppressed++
		return 0, 0, false
	}
	suppressed, g.suppressed = g.suppressed, 0
	if throttle > 0 {
		g.quietUntil = now.Add(throttle)
	}
	return n, suppressed, true
}

// prune forgets groups whose state no longer matters, at most once a
// minute. Called with e.mu held.
func (e *Engine) prune(now time.Time) {
	if now.Sub(e.lastPrune) < pruneEvery && !now.Before(e.lastPrune) {
		return
	}
	e.lastPrune = now
	maps.DeleteFunc(e.groups, func(_ string, g *group) bool {
		return now.Sub(g.lastSeen) > g.keep
	})
}

func appendPerOutput(out []Alert, a Alert, outputs []string) []Alert {
	for _, o := range outputs {
		a.Output = o
		out = append(out, a)
	}
	return out
}

// evalError counts an evaluation error of rule name and says whether to
// report it now.
func (e *Engine) evalError(name string, err error, now time.Time) (report, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.errs[name]
	if st == nil {
		st = &errState{}
		e.errs[name] = st
	}
	st.count++
	if !st.reported.IsZero() && now.Sub(st.reported) < errorReportEvery && !now.Before(st.reported) {
		st.pending++
		return report{}, false
	}
	rep := report{rule: name, err: err, suppressed: st.pending}
	st.pending, st.reported = 0, now
	return rep, true
}

func (e *Engine) report(reps []report) {
	if e.opts.OnEvalError == nil {
		return
	}
	for _, r := range reps {
		e.opts.OnEvalError(r.rule, r.err, r.suppressed)
	}
}

// EvalErrors returns the number of evaluation errors of each rule so far
// (rules without any are absent), for a metric.
func (e *Engine) EvalErrors() map[string]uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]uint64, len(e.errs))
	for k, st := range e.errs {
		out[k] = st.count
	}
	return out
}
