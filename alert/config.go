package alert

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Key is the node configuration's key of the section Parse reads.
const Key = "alerts"

// DefaultStateDir is where secret and CA files must be when Env.StateDir
// is empty: the plugin's state directory.
const DefaultStateDir = "/var/lib/ucp-audit"

// Config is the parsed "alerts" section.
type Config struct {
	Outputs []Output
	Rules   []Rule
	// Builtins holds every built-in alarm, in the order of BuiltinKinds,
	// with its settings (Enabled unless switched off).
	Builtins []Builtin
}

// OutputType is an output's protocol.
type OutputType string

// The output types.
const (
	// Alertmanager: Prometheus Alertmanager's API v2, POST
	// {url}/api/v2/alerts with a JSON array of alerts.
	Alertmanager OutputType = "alertmanager"
	// Webhook: a JSON POST to url, signed with HMAC-SHA256.
	Webhook OutputType = "webhook"
	// Slack: a Slack incoming-webhook message, {"text": …}.
	Slack OutputType = "slack"
)

// Output is where alerts go.
type Output struct {
	Name string
	Type OutputType
	// URL is the Alertmanager's base URL (http://127.0.0.1:9093, or with
	// a path prefix), or the webhook's or Slack's full URL. It may hold a
	// token (Slack's does): errors never show more than its scheme and
	// host (Redacted).
	URL string
	// SecretFile is the file holding the webhook's HMAC key (required for
	// a webhook, refused for the others), below the state directory.
	SecretFile string
	// CAFile, when set, is a PEM file of the CA certificates an https
	// URL's server must chain to (instead of the system's roots), below
	// the state directory.
	CAFile string
	// Timeout bounds one delivery attempt (default DefaultTimeout).
	Timeout time.Duration
}

// DefaultTimeout is an output's timeout when none is given.
const DefaultTimeout = 10 * time.Second

// Redacted is the output's URL for messages: scheme and host only.
func (o Output) Redacted() string {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}

// Severity is an alert's severity, Alertmanager's "severity" label.
type Severity string

// The severities.
const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
	Info     Severity = "info"
)

// Rule is one alerting rule.
type Rule struct {
	Name string
	// When is the CEL expression; the rule matches a record for which it
	// is true.
	When     string
	Severity Severity
	Outputs  []string // names of outputs
	// GroupBy holds field paths (event.user.username,
	// event.annotations["ucp-audit/user"], self.destination): the values
	// they have in a record make its group. Count and Throttle apply per
	// group.
	GroupBy []string
	// Throttle: a group fires at most once per Throttle (0: every match).
	Throttle time.Duration
	// Count and Within: the rule fires when a group has matched Count
	// times within Within (Count 1: every match). The count starts again
	// after each firing.
	Count  int
	Within time.Duration

	key string // "alerts.rules[2]", for errors
}

// Limits of the section.
const (
	maxOutputs  = 32
	maxRules    = 256
	maxGroupBy  = 8
	maxWhen     = 16 << 10
	maxCount    = 100000
	maxWindow   = 7 * 24 * time.Hour
	builtinsKey = "builtins"
)

// The keys of the section's objects; docs/alerting.md lists each (checked
// by a test).
var (
	topKeys     = []string{"outputs", "rules", builtinsKey}
	outputKeys  = []string{"name", "type", "url", "secret_file", "ca_file", "timeout"}
	ruleKeys    = []string{"name", "when", "severity", "outputs", "group_by", "throttle", "count", "within"}
	builtinKeys = []string{"enabled", "severity", "outputs", "throttle", "after"} // after: destination_down only
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)

const nameWant = "1 to 128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit"

// Env is where Parse allows files.
type Env struct {
	StateDir string // empty: DefaultStateDir
}

func (e Env) stateDir() string {
	if e.StateDir == "" {
		return DefaultStateDir
	}
	return e.StateDir
}

// Parse reads the "alerts" section of the node configuration (its value,
// raw JSON; null or empty is no alerting) with files below
// DefaultStateDir. See Env.Parse.
func Parse(raw json.RawMessage) (*Config, error) { return Env{}.Parse(raw) }

// Parse reads the "alerts" section strictly: unknown keys are refused
// (matched exactly), as are keys given twice and values of the wrong
// type; every error is a *KeyError naming the key ("alerts.rules[2].when").
// Rule expressions are not compiled here: Compile does it.
func (e Env) Parse(raw json.RawMessage) (*Config, error) {
	top, err := readObject(Key, raw, topKeys...)
	if err != nil {
		return nil, err
	}
	c := &Config{}
	outs, err := top.list("outputs", "a list of outputs")
	if err != nil {
		return nil, err
	}
	if len(outs) > maxOutputs {
		return nil, invalid(join(Key, "outputs"), fmt.Sprintf("%d outputs", len(outs)), fmt.Sprintf("at most %d", maxOutputs))
	}
	for i, r := range outs {
		o, err := e.parseOutput(index(join(Key, "outputs"), i), r)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(c.Outputs, func(x Output) bool { return x.Name == o.Name }) {
			return nil, invalid(index(join(Key, "outputs"), i)+".name", fmt.Sprintf("%q names another output too", o.Name), "unique names")
		}
		c.Outputs = append(c.Outputs, o)
	}
	rules, err := top.list("rules", "a list of rules")
	if err != nil {
		return nil, err
	}
	if len(rules) > maxRules {
		return nil, invalid(join(Key, "rules"), fmt.Sprintf("%d rules", len(rules)), fmt.Sprintf("at most %d", maxRules))
	}
	for i, r := range rules {
		rule, err := c.parseRule(index(join(Key, "rules"), i), r)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(c.Rules, func(x Rule) bool { return x.Name == rule.Name }) {
			return nil, invalid(rule.key+".name", fmt.Sprintf("%q names another rule too", rule.Name), "unique names")
		}
		c.Rules = append(c.Rules, rule)
	}
	if c.Builtins, err = c.parseBuiltins(join(Key, builtinsKey), top.vals[builtinsKey]); err != nil {
		return nil, err
	}
	return c, nil
}

func (e Env) parseOutput(at string, raw json.RawMessage) (Output, error) {
	o := Output{}
	obj, err := readObject(at, raw, outputKeys...)
	if err != nil {
		return o, err
	}
	if o.Name, err = obj.required("name", nameWant); err != nil {
		return o, err
	}
	if !nameRE.MatchString(o.Name) {
		return o, invalid(join(at, "name"), fmt.Sprintf("%q", o.Name), nameWant)
	}
	typ, err := obj.required("type", "alertmanager, webhook or slack")
	if err != nil {
		return o, err
	}
	o.Type = OutputType(typ)
	if !slices.Contains([]OutputType{Alertmanager, Webhook, Slack}, o.Type) {
		return o, invalid(join(at, "type"), fmt.Sprintf("%q", typ), "alertmanager, webhook or slack")
	}
	if o.URL, err = obj.required("url", "an http:// or https:// URL"); err != nil {
		return o, err
	}
	u, perr := url.Parse(o.URL)
	switch {
	case perr != nil || u.Host == "" || u.Opaque != "":
		// Not shown: a URL may hold a token.
		return o, invalid(join(at, "url"), "not a URL with a host (not shown: a URL may hold a token)", "an http:// or https:// URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return o, invalid(join(at, "url"), fmt.Sprintf("scheme %q", u.Scheme), "an http:// or https:// URL")
	case u.Fragment != "":
		return o, invalid(join(at, "url"), "has a #fragment", "an http:// or https:// URL")
	case o.Type == Alertmanager && u.RawQuery != "":
		return o, invalid(join(at, "url"), "has a query", "the Alertmanager's base URL, such as http://127.0.0.1:9093")
	}
	if o.SecretFile, err = obj.statePath("secret_file", e.stateDir()); err != nil {
		return o, err
	}
	switch {
	case o.Type == Webhook && o.SecretFile == "":
		return o, invalid(join(at, "secret_file"), "missing: a webhook is always signed", "the path of the file holding the HMAC key, below "+e.stateDir())
	case o.Type != Webhook && o.SecretFile != "":
		return o, invalid(join(at, "secret_file"), "only a webhook is signed", "no secret_file for "+string(o.Type))
	}
	if o.CAFile, err = obj.statePath("ca_file", e.stateDir()); err != nil {
		return o, err
	}
	if o.CAFile != "" && u.Scheme != "https" {
		return o, invalid(join(at, "ca_file"), "the URL is not https", "no ca_file for http://")
	}
	if o.Timeout, err = obj.duration("timeout", DefaultTimeout, time.Second, 5*time.Minute); err != nil {
		return o, err
	}
	return o, nil
}

// severity reads a severity at k; def when absent (required when def is
// empty).
func severity(obj object, k string, def Severity) (Severity, error) {
	const want = "critical, warning or info"
	s, err := obj.str(k, want)
	if err != nil {
		return "", err
	}
	if s == "" && def != "" {
		return def, nil
	}
	sev := Severity(s)
	if !slices.Contains([]Severity{Critical, Warning, Info}, sev) {
		return "", invalid(join(obj.at, k), fmt.Sprintf("%q", s), want)
	}
	return sev, nil
}

// outputNames reads a list of output names at k, each naming one of c's
// outputs, none twice; required says the list may not be empty.
func (c *Config) outputNames(obj object, k string, required bool) ([]string, error) {
	names := make([]string, 0, len(c.Outputs))
	for _, o := range c.Outputs {
		names = append(names, o.Name)
	}
	want := "names of outputs"
	if len(names) > 0 {
		want += ": " + strings.Join(names, ", ")
	}
	l, err := obj.stringList(k, want)
	if err != nil {
		return nil, err
	}
	if required && len(l) == 0 {
		return nil, invalid(join(obj.at, k), "missing", want)
	}
	for i, n := range l {
		if !slices.Contains(names, n) {
			return nil, invalid(index(join(obj.at, k), i), fmt.Sprintf("no output is named %q", n), want)
		}
		if slices.Contains(l[:i], n) {
			return nil, invalid(index(join(obj.at, k), i), fmt.Sprintf("%q given twice", n), want)
		}
	}
	return l, nil
}

func (c *Config) parseRule(at string, raw json.RawMessage) (Rule, error) {
	r := Rule{key: at}
	obj, err := readObject(at, raw, ruleKeys...)
	if err != nil {
		return r, err
	}
	if r.Name, err = obj.required("name", nameWant); err != nil {
		return r, err
	}
	if !nameRE.MatchString(r.Name) || strings.HasPrefix(r.Name, builtinPrefix) {
		return r, invalid(join(at, "name"), fmt.Sprintf("%q", r.Name), nameWant+", not starting with "+builtinPrefix+" (the built-in alarms' names)")
	}
	if r.When, err = obj.required("when", "a CEL expression"); err != nil {
		return r, err
	}
	if len(r.When) > maxWhen {
		return r, invalid(join(at, "when"), fmt.Sprintf("%d bytes", len(r.When)), fmt.Sprintf("at most %d", maxWhen))
	}
	if r.Severity, err = severity(obj, "severity", ""); err != nil {
		return r, err
	}
	if r.Outputs, err = c.outputNames(obj, "outputs", true); err != nil {
		return r, err
	}
	if r.GroupBy, err = obj.stringList("group_by", "field paths such as event.user.username"); err != nil {
		return r, err
	}
	if len(r.GroupBy) > maxGroupBy {
		return r, invalid(join(at, "group_by"), fmt.Sprintf("%d paths", len(r.GroupBy)), fmt.Sprintf("at most %d", maxGroupBy))
	}
	for i, p := range r.GroupBy {
		if _, err := parsePath(p); err != nil {
			return r, invalid(index(join(at, "group_by"), i), err.Error(), "a field path such as event.user.username or event.annotations[\"ucp-audit/user\"]")
		}
	}
	if r.Throttle, err = obj.duration("throttle", 0, 0, maxWindow); err != nil {
		return r, err
	}
	if r.Count, err = obj.count("count", 1, 1, maxCount); err != nil {
		return r, err
	}
	if r.Within, err = obj.duration("within", 0, time.Second, maxWindow); err != nil {
		return r, err
	}
	switch {
	case r.Count > 1 && r.Within == 0:
		return r, invalid(join(at, "within"), "missing: count needs a window", "a duration such as \"1m\"")
	case r.Count == 1 && obj.has("within"):
		return r, invalid(join(at, "count"), "missing: within needs a count", "a whole number of at least 2")
	}
	return r, nil
}
