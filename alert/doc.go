// Package alert owns alerting over the audit trail: the "alerts" section of
// the node configuration (outputs, rules and the built-in alarms), the
// rules' language, and the Engine that decides, record by record, which
// alerts to raise. Package alert/output formats an Alert for each output
// type and delivers it; this package sends nothing.
//
// # Rules
//
// A rule's "when" is a CEL expression (cel.dev/cel-go) over two variables,
// exactly one of which is set for each record of the trail:
//
//   - event: an audit event as written to audit.log (after redaction, with
//     its ucp-audit/ annotations, without its ucp-audit/chain field), a map;
//   - self: the content of a {"ucp-audit/self":{…}} record, or of a
//     {"ucp-audit/gap":{…}} record with "type": "gap" added, a map.
//
// The other one is null. JSON numbers that are whole are CEL ints, others
// doubles. Compile refuses a rule that does not parse or type-check, that
// is not boolean, whose estimated cost passes MaxEstimatedCost, or that fails when
// the variable it reads is null (it would fail on every record of the
// other kind): the error names the rule's key and the position
// (line:column) in the expression. At run time a rule costs at most
// MaxCost; an evaluation that fails does not fire the rule, and is
// counted (Engine.EvalErrors) and reported through Options.OnEvalError,
// at most once a minute per rule.
//
// # The Engine
//
// The driver calls Engine.Observe with every record it writes to the
// trail, and Engine.Tick now and then (the built-in "destination down"
// alarm is a timer). Each returns the alerts to deliver, one per (rule,
// output). Grouping (group_by), counting (count within a window) and
// throttling happen there, in memory: a restart forgets them.
//
// Seals and the plugin's own alert-fired records are never looked at, so
// an alert can never fire on an alert. With no output configured, Observe
// returns at once; with no rule, it decodes only self and gap records,
// for the built-in alarms.
//
// # The offline test
//
// TestRules runs a configuration's rules over trail files and prints, for
// each rule that fires, its name and the auditIDs it fired on: `ucp-audit
// alerts test CONFIG [PATH…]`.
//
// docs/alerting.md is the reference for users: every key, the language,
// the payloads and a working Alertmanager set-up.
package alert
