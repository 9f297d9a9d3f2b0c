package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/review"
)

// DefaultTrail is what TestRules reads when given no path.
const DefaultTrail = "/var/log/ucp-audit"

// ParseDocument reads the configuration document `ucp-audit alerts test`
// is given: a node configuration holding an "alerts" key (its other keys
// are not looked at), or an "alerts" section by itself (the shape of
// rules/alerts.json).
func (e Env) ParseDocument(doc []byte) (*Config, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, invalid(Key, "not a JSON object", "")
	}
	if raw, ok := top[Key]; ok {
		return e.Parse(raw)
	}
	return e.Parse(doc)
}

// TestReport is what TestRules found.
type TestReport struct {
	Fired   []Fired  // the rules and built-ins that fired, in the configuration's order
	Quiet   []string // the rules that never fired
	Records int      // records read
	// EvalErrors counts each rule's evaluation errors; FirstError holds
	// the first error of each.
	EvalErrors map[string]uint64
	FirstError map[string]string
	// Unreadable counts lines longer than auditlog.MaxLine, skipped.
	Unreadable int
}

// Fired is a rule or built-in alarm that fired, with what it fired on.
type Fired struct {
	Rule string
	// On holds, for each alert, the auditID it fired on, or for a self or
	// gap record its description (type, time and summary).
	On []string
}

// TestRules runs cfg's rules and built-in alarms over the trail files in
// paths (default DefaultTrail: directories, live files with their rotated
// and compressed files, or rotated files; see auditlog.Files) as the
// plugin would have, each record at its own time, throttling and counting
// included, and writes for each rule that fires its name and the auditIDs
// it fired on to out (nil: nothing written). A file it cannot read is
// reported in the error returned, after the others are read.
func TestRules(cfg *Config, paths []string, out io.Writer) (*TestReport, error) {
	rs, err := Compile(cfg)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		paths = []string{DefaultTrail}
	}
	sets, err := auditlog.Files(paths...)
	if err != nil {
		return nil, err
	}
	rep := &TestReport{FirstError: map[string]string{}}
	eng := NewEngine(rs, Options{OnEvalError: func(rule string, err error, _ uint64) {
		if _, ok := rep.FirstError[rule]; !ok {
			rep.FirstError[rule] = err.Error()
		}
	}})
	fired := map[string]*Fired{}
	var last time.Time
	observe := func(line []byte) {
		rep.Records++
		if t := lineTime(line); !t.IsZero() {
			last = t
		}
		seen := map[string]bool{}
		for _, a := range eng.Observe(line, last) {
			on := a.Record.AuditID
			if on == "" {
				on = a.Record.Type + " at " + a.Record.Time.Format(time.RFC3339Nano) + ": " + a.Summary()
			}
			if seen[a.Rule+"\x00"+on] { // the same alert for another output
				continue
			}
			seen[a.Rule+"\x00"+on] = true
			f := fired[a.Rule]
			if f == nil {
				f = &Fired{Rule: a.Rule}
				fired[a.Rule] = f
			}
			f.On = append(f.On, on)
		}
	}
	var errs []error
	for _, s := range sets {
		for _, name := range s.Files {
			n, err := readLines(name, observe)
			rep.Unreadable += n
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, r := range cfg.Rules {
		if f := fired[r.Name]; f != nil {
			rep.Fired = append(rep.Fired, *f)
		} else {
			rep.Quiet = append(rep.Quiet, r.Name)
		}
	}
	for _, b := range cfg.Builtins {
		if f := fired[b.Name]; f != nil {
			rep.Fired = append(rep.Fired, *f)
		}
	}
	rep.EvalErrors = eng.EvalErrors()
	if out != nil {
		rep.write(out)
	}
	return rep, errors.Join(errs...)
}

// readLines calls fn with every line of one trail file, plain or gzip, and
// returns the number of lines too long to read.
func readLines(name string, fn func([]byte)) (int, error) {
	rc, err := auditlog.Open(name)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	lr := auditlog.NewLineReader(rc, 0)
	skipped := 0
	for {
		line, err := lr.Next()
		switch {
		case err == io.EOF:
			if rest, ok, err := lr.Rest(); ok && err == nil {
				fn(rest)
			} else if ok {
				skipped++
			}
			return skipped, nil
		case errors.Is(err, auditlog.ErrLineTooLong):
			skipped++
		case err != nil:
			return skipped, fmt.Errorf("%s: line %d: %w", name, lr.Line()+1, err)
		case len(bytes.TrimSpace(line)) > 0:
			fn(line)
		}
	}
}

// lineTime is the time of the record line holds; zero when it has none.
func lineTime(line []byte) time.Time {
	typ, ev, err := review.Parse(line)
	switch {
	case err != nil:
		return time.Time{}
	case typ == review.TypeEvent:
		return ev.Time
	case typ == review.TypeSelf || typ == review.TypeGap:
		var v map[string]struct {
			Time string `json:"time"`
		}
		_ = json.Unmarshal(line, &v)
		for _, k := range []string{auditlog.SelfKey, auditlog.GapKey} {
			if t := parseTime(v[k].Time); !t.IsZero() {
				return t
			}
		}
	}
	return time.Time{}
}

func (r *TestReport) write(w io.Writer) {
	for _, f := range r.Fired {
		n := "alerts"
		if len(f.On) == 1 {
			n = "alert"
		}
		fmt.Fprintf(w, "%s: %d %s\n", f.Rule, len(f.On), n)
		for _, on := range f.On {
			fmt.Fprintf(w, "  %s\n", on)
		}
	}
	if len(r.Quiet) > 0 {
		fmt.Fprintf(w, "did not fire: %s\n", strings.Join(r.Quiet, ", "))
	}
	names := make([]string, 0, len(r.EvalErrors))
	for k := range r.EvalErrors {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(w, "evaluation errors: %s: %d (the first: %s)\n", k, r.EvalErrors[k], r.FirstError[k])
	}
	if r.Unreadable > 0 {
		fmt.Fprintf(w, "%d lines longer than %d bytes were not read\n", r.Unreadable, auditlog.MaxLine)
	}
	fmt.Fprintf(w, "%d records read\n", r.Records)
}
