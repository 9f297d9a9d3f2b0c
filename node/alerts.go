package node

import (
	"bytes"
	"encoding/json"

	"github.com/ucp-audit/ucp-audit/alert"
)

// Alerts is the document's "alerts" section (package alert: outputs,
// rules, built-in alarms), parsed and its rules compiled, so that a rule
// that does not compile is refused with the rest of the document.
type Alerts struct {
	// Raw is the section as written, compacted: a change of any byte is a
	// change (an output's URL may differ only in its token, which the
	// records never show).
	Raw    []byte
	Config *alert.Config
	Rules  *alert.Rules
}

func parseAlerts(c *Config, env Env, v any) error {
	if v == nil {
		c.Alerts = nil
		return nil
	}
	raw, err := json.Marshal(v) // Decode's maps, lists and json.Numbers
	if err != nil {
		return err
	}
	cfg, err := alert.Env{StateDir: env.stateDir()}.Parse(raw)
	if err != nil {
		return err
	}
	rules, err := alert.Compile(cfg)
	if err != nil {
		return err
	}
	c.Alerts = &Alerts{Raw: raw, Config: cfg, Rules: rules}
	return nil
}

// Equal reports whether a and b are the same section as written.
func (a *Alerts) Equal(b *Alerts) bool {
	if a == nil || b == nil {
		return a == b
	}
	return bytes.Equal(a.Raw, b.Raw)
}

// document returns the section as written; with redact, each output's URL
// is cut to its scheme and host (Slack's URL is its token, an
// Alertmanager's may hold a password).
func (a *Alerts) document(redact bool) any {
	if a == nil {
		return nil
	}
	v, err := Decode(a.Raw)
	if err != nil {
		return nil // Raw was encoded from a decoded document
	}
	if m, ok := v.(map[string]any); ok && redact {
		outs, _ := m["outputs"].([]any)
		for i, o := range outs {
			if om, ok := o.(map[string]any); ok && i < len(a.Config.Outputs) {
				om["url"] = a.Config.Outputs[i].Redacted()
			}
		}
	}
	return v
}
