//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// TestAlertsThroughAlertmanager: the installed plugin's alerting, through
// a real Alertmanager on loopback. Rules go in with `config apply`; an
// event rule (grouped by auditID and throttled, so a request's two stages
// raise one alert) fires on the secrets a controller creates, a self rule
// fires on a destination that is down. Alertmanager is down while they
// fire: the alerts wait in the plugin's spool and all arrive once it is up.
// Every alert is in the trail as an alert-fired record, and no secret of
// the events is in any alert.
func TestAlertsThroughAlertmanager(t *testing.T) {
	peers.SkipWithoutAlertmanager(t)
	am := peers.NewAlertmanager(t, t.TempDir(), "alertname", "group")
	d := sharedTrail()
	resetKeys(t, "alerts")
	n := len(selfRecords(t, d.Audit, auditlog.SelfConfigChanged))
	configApply(t, `{"alerts": {
	  "outputs": [{"name": "am", "type": "alertmanager", "url": "`+am.URL+`"}],
	  "rules": [
	    {"name": "secret-created", "severity": "critical", "outputs": ["am"],
	     "when": "event != null && event.verb in ['POST', 'create'] && (event.requestURI.endsWith('/secrets/create') || event.requestURI.endsWith('/secrets'))",
	     "group_by": ["event.auditID"], "throttle": "1h"},
	    {"name": "destination-down", "severity": "warning", "outputs": ["am"],
	     "when": "self != null && self.type == 'destination-down'"}
	  ],
	  "builtins": {"destination_down": {"enabled": false}}
	}}`)
	waitSelf(t, d.Audit, auditlog.SelfConfigChanged, n)

	// One swarm and one Kubernetes secret (-n 3: the third request of each
	// family), two stages each; a Beats destination nobody listens on.
	args := []string{"-seed", "81", "-n", "3", "-big", "0", "-malformed=false", "-ignored=false", "-stderr=false"}
	em := emit(t, args...)
	var secretIDs []string
	var secrets []string
	for _, ev := range em.Manifest.Events {
		if strings.HasSuffix(ev.RequestURI, "/secrets/create") || strings.HasSuffix(ev.RequestURI, "/secrets") {
			if ev.Stage == "RequestReceived" {
				secretIDs = append(secretIDs, ev.AuditID)
			}
			secrets = append(secrets, ev.Secrets...)
		}
	}
	if len(secretIDs) != 2 || len(secrets) == 0 {
		t.Fatalf("the emitter printed %d secret creations (%d secrets), want 2", len(secretIDs), len(secrets))
	}
	c := runContainer(t, pluginName, []string{fmt.Sprintf("logstash-address=beats://127.0.0.1:%d", peers.FreeTCPPort(t))}, args...)
	waitRecords(t, d.Audit, c, len(em.Forwarded()))

	// Recorded while Alertmanager is down.
	var fired []auditlog.Self
	if !peers.WaitUntil(30*time.Second, func() bool {
		fired = nil
		for _, f := range selfRecords(t, d.Audit, auditlog.SelfAlertFired) {
			if f.ContainerID == c.ID {
				fired = append(fired, f)
			}
		}
		return countRule(fired, "secret-created") >= 2 && countRule(fired, "destination-down") >= 1
	}) {
		t.Fatalf("alert-fired records of the container: %+v", fired)
	}
	if n := countRule(fired, "secret-created"); n != 2 {
		t.Errorf("%d secret-created alerts for 2 requests of two stages each (grouped by auditID, throttled)", n)
	}

	am.Start()
	for _, id := range secretIDs {
		a := am.WaitAlerts(t, 60*time.Second, func(a peers.AMAlert) bool {
			return a.Labels["alertname"] == "secret-created" && a.Annotations["auditID"] == id
		})
		if a.Labels["severity"] != "critical" || a.Labels["container"] != c.Name {
			t.Errorf("secret-created alert: labels %v", a.Labels)
		}
	}
	am.WaitAlerts(t, 60*time.Second, func(a peers.AMAlert) bool { return a.Labels["alertname"] == "destination-down" })

	all, _ := json.Marshal(am.Notifications())
	for _, s := range secrets {
		if strings.Contains(string(all), s) {
			t.Errorf("a secret of the events is in an alert: %.20s…", s)
		}
	}
}

func countRule(fired []auditlog.Self, rule string) int {
	n := 0
	for _, f := range fired {
		if f.Rule == rule {
			n++
		}
	}
	return n
}
