package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/alert"
)

const slackURL = "https://hooks.slack.com/services/T000/B000/sekrit-token"

// TestParseAlerts: the alerts section is parsed and compiled with the
// document; a rule that does not compile is refused naming the rule's key
// and the position; records and dumps never show an output's URL whole.
func TestParseAlerts(t *testing.T) {
	doc := `{"alerts": {"outputs": [{"name": "chat", "type": "slack", "url": "` + slackURL + `"}],
	  "rules": [{"name": "exec", "when": "event != null && event.verb == 'create'", "severity": "warning", "outputs": ["chat"]}]}}`
	c, err := Parse([]byte(doc), Env{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Alerts == nil || c.Alerts.Rules == nil || len(c.Alerts.Config.Outputs) != 1 {
		t.Fatalf("alerts: %+v", c.Alerts)
	}
	if !strings.Contains(string(c.JSON()), "sekrit-token") {
		t.Error("Document drops the URL: config get would lose it")
	}
	if r := string(c.RedactedJSON()); strings.Contains(r, "sekrit-token") || !strings.Contains(r, "hooks.slack.com") {
		t.Errorf("Redacted: %s", r)
	}
	// A token change is a change.
	c2, err := Parse([]byte(strings.Replace(doc, "sekrit", "other", 1)), Env{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Equal(c2) || c.Alerts.Equal(c2.Alerts) {
		t.Error("a changed URL token is not a change")
	}
	if back, err := Parse(c.JSON(), Env{}); err != nil || !back.Equal(c) {
		t.Errorf("round trip: %v", err)
	}

	_, err = Parse([]byte(`{"alerts": {"outputs": [{"name": "chat", "type": "slack", "url": "`+slackURL+`"}],
	  "rules": [{"name": "bad", "when": "event.verb ==", "severity": "warning", "outputs": ["chat"]}]}}`), Env{})
	var ke *alert.KeyError
	if !errors.As(err, &ke) || !strings.Contains(err.Error(), `"alerts.rules[0].when"`) || !strings.Contains(err.Error(), "1:") {
		t.Errorf("bad rule: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "sekrit") {
		t.Errorf("the error shows the URL's token: %v", err)
	}
}

// docs/configuration.md names every key of the document.
func TestDocsNameEveryKey(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if strings.HasPrefix(k, "producers[].") {
			k = strings.TrimPrefix(k, "producers[].")
		}
		if !strings.Contains(string(b), "`"+k+"`") {
			t.Errorf("docs/configuration.md does not name `%s`", k)
		}
	}
}
