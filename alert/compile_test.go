package alert

import (
	"errors"
	"strings"
	"testing"
)

// compileWhen compiles one rule with the expression when.
func compileWhen(t *testing.T, when string) (*Rules, error) {
	t.Helper()
	c := &Config{Outputs: []Output{{Name: "am", Type: Alertmanager, URL: "http://127.0.0.1:9093"}}}
	c.Rules = []Rule{{Name: "r", When: when, Severity: Info, Outputs: []string{"am"}, Count: 1, key: "alerts.rules[3]"}}
	return Compile(c)
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct{ when, msg string }{
		// Positions are line:column of the expression, from 1.
		{"event != null &&\n  evnt.verb == 'x'", `rule "r": 2:3: undeclared reference to 'evnt'`},
		{"event != null && event.verb == ", `rule "r": 1:32: Syntax error`},
		{"event != null && event.verb.nosuchfunction()", `rule "r": 1:`},
		{"event != null && size(event.user, 2) > 0", `1:22: found no matching overload for 'size'`},
		{"event", "1:1: the expression is of type dyn, not bool"},
		{"'a' + 'b'", "the expression is of type string, not bool"},
		// It would fail on every record of the other kind.
		{"event.verb == 'create'", "it fails where event is null (on every self and gap record): no such key: verb; guard it: event != null"},
		{"self.type == 'gap'", "it fails where self is null (on every event)"},
		// Cost.
		{"event != null && event.user.groups.exists(g, event.user.groups.exists(h, h == g))", "its estimated cost, 28174985986054 over records"},
		{"event != null && event.requestObject.spec.containers.exists(c, c.env.exists(e, e.name == 'X'))", "passes the limit of 10000000"},
		{"event != null && event.requestURI.matches(event.requestURI)", "passes the limit"},
		// Values read through an optional are sized like any other.
		{"event != null && event.?a.orValue([]).exists(x, event.?b.orValue([]).exists(y, x == y))", "passes the limit"},
	} {
		_, err := compileWhen(t, tc.when)
		var ke *KeyError
		if !errors.As(err, &ke) || !errors.Is(err, ErrInvalidRule) || ke.Key != "alerts.rules[3].when" || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q:\n got %v\nwant alerts.rules[3].when, ErrInvalidRule, %q", tc.when, err, tc.msg)
		}
	}
}

func TestCompileAccepts(t *testing.T) {
	for _, when := range []string{
		"event != null && has(event.objectRef) && event.objectRef.subresource in ['exec', 'attach']",
		"event != null && event.user.groups.exists(g, g == 'admins')",
		"event != null && event.requestURI.matches('^(/v[0-9.]+)?/swarm/update')",
		"event != null && event.verb.upperAscii() == 'POST'",
		"event.?objectRef.?subresource.orValue('') == 'exec'",
		"event != null && event.responseStatus.code >= 400",
		"event != null && 'admins' in event.user.?groups.orValue([])",
		"event != null && event.?requestObject.?spec.?containers.orValue([]).exists(c, c.?securityContext.?privileged.orValue(false) == true)",
		"self != null && self.type in ['gap', 'input-lost']",
		"(event != null && event.verb == 'delete') || (self != null && self.type == 'gap')",
		"event == null",
		"true",
	} {
		if _, err := compileWhen(t, when); err != nil {
			t.Errorf("%q: %v", when, err)
		}
	}
}

func TestCompileReads(t *testing.T) {
	for _, tc := range []struct {
		when               string
		event, self, other bool
	}{
		{"event != null && event.verb == 'x'", true, false, false},
		{"event == null", true, false, true},
		{"self != null && self.type == 'gap'", false, true, false},
		{"event != null || self != null", true, true, false},
	} {
		rs, err := compileWhen(t, tc.when)
		if err != nil {
			t.Fatal(err)
		}
		r := rs.rules[0]
		if r.readsEvent != tc.event || r.readsSelf != tc.self || r.other != tc.other {
			t.Errorf("%q: reads event %v, self %v, other %v", tc.when, r.readsEvent, r.readsSelf, r.other)
		}
	}
}
