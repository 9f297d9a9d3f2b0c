// Package rules holds the example alerting rules shipped with ucp-audit:
// alerts.json, an "alerts" section of the node configuration (package
// alert reads it), embedded as Example. README.md says what each rule
// watches and what it needs (some read request payloads, which only
// auditLevel "request" keeps).
//
// Each rule is tested on two fixtures, lines as the plugin writes them to
// audit.log: testdata/<rule>.fires.log, on which it must fire, and
// testdata/<rule>.quiet.log, on which it must not; neither may make it
// fail. `ucp-audit alerts test rules/alerts.json rules/testdata` runs them
// all.
package rules

import _ "embed"

// Example is alerts.json.
//
//go:embed alerts.json
var Example []byte
