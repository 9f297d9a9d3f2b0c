package driver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/alert/output"
	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// webhookPeer is a loopback webhook receiver that records the bodies whose
// signature checks out under secret, and counts the others.
func webhookPeer(t testing.TB, secret []byte) (*peers.HTTP, func() int) {
	var mu sync.Mutex
	bad := 0
	p := peers.NewHTTP(t)
	p.Decode = func(r *http.Request, body []byte) ([]string, error) {
		if !output.Verify(secret, body, r.Header.Get(output.SignatureHeader)) {
			mu.Lock()
			bad++
			mu.Unlock()
		}
		return []string{string(body)}, nil
	}
	return p, func() int { mu.Lock(); defer mu.Unlock(); return bad }
}

// alertsDoc is a node configuration with a webhook output at url and a
// rule on service calls.
func alertsDoc(h *harness, url string) string {
	return `{"alerts": {"outputs": [{"name": "hook", "type": "webhook", "url": "` + url + `", "secret_file": "{state}/hook.key"}],
	  "rules": [{"name": "services", "when": "event != null && event.requestURI.startsWith('/v1.41/services')", "severity": "warning", "outputs": ["hook"]}]}}`
}

// TestAlerting: a rule fires on the events the driver writes; each alert
// reaches the webhook, signed, and is recorded in the trail as an
// alert-fired record naming the rule, the output, the alert and the event.
// While the webhook is down the alerts wait in the output's spool, and the
// plugin's crash is an alarm of its own once it restarts.
func TestAlerting(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	hook, badSigs := webhookPeer(t, secret)
	h := newHarness(t, nil)
	if err := os.WriteFile(filepath.Join(h.d.opts.StateDir, "hook.key"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.d.SetNode(nodeConfig(t, h, alertsDoc(h, hook.URL())), ""); err != nil {
		t.Fatal(err)
	}
	ids := writeEvents(h, "svc", 3) // the webhook is down: the alerts wait
	h.waitFor("3 alert-fired records", func() bool { return len(selfOf(h, "audit.log", auditlog.SelfAlertFired)) == 3 })
	hook.Start()
	bodies := hook.Wait(t, 3, 10*time.Second)
	if n := badSigs(); n > 0 {
		t.Errorf("%d webhook bodies with a bad signature", n)
	}
	got := map[string]bool{}
	for _, b := range bodies {
		var w output.WebhookBody
		if err := json.Unmarshal([]byte(b), &w); err != nil {
			t.Fatalf("webhook body: %v: %s", err, b)
		}
		if w.Rule != "services" || w.Output != "hook" {
			t.Errorf("webhook body: %s", b)
		}
		got[w.ID] = true
	}
	fired := selfOf(h, "audit.log", auditlog.SelfAlertFired)
	for i, f := range fired {
		if f.Rule != "services" || f.Destination != "alert:hook" || f.Severity != "warning" || f.AuditID != ids[i] || !got[f.AlertID] {
			t.Errorf("alert-fired record %d: %+v", i, f)
		}
	}

	// kill -9 and a new process, which reads the same node configuration:
	// the crash is an alarm.
	h.d.opts.Node = h.d.Node()
	h.d.crash()
	h.reattach()
	h.waitFor("the crash recorded", func() bool { return len(selfOf(h, "audit.log", auditlog.SelfRestartedAfterCrash)) == 1 })
	h.waitFor("the crash alarm", func() bool {
		for _, f := range selfOf(h, "audit.log", auditlog.SelfAlertFired) {
			if f.Rule == "ucp-audit-crash-restart" {
				return true
			}
		}
		return false
	})
	more := hook.Wait(t, 4, 10*time.Second)
	if !strings.Contains(strings.Join(more, "\n"), "ucp-audit-crash-restart") {
		t.Errorf("the crash alarm did not reach the webhook: %q", more)
	}
	h.stop()
}

// BenchmarkAlertLatency measures, through the driver, the time from an
// audit line written to the FIFO to its alert received by a loopback
// webhook: the Engine, the output's spool and its delivery worker. The
// goal (issue 13) is under 2 s a record; ms/alert is the median over the
// run, p100-ms the slowest.
func BenchmarkAlertLatency(b *testing.B) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	hook, _ := webhookPeer(b, secret)
	hook.Start()
	h := newHarness(b, nil)
	if err := os.WriteFile(filepath.Join(h.d.opts.StateDir, "hook.key"), secret, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := h.d.SetNode(nodeConfig(b, h, alertsDoc(h, hook.URL())), ""); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		h.write("stdout", auditLine(fmt.Sprintf("lat-%d", i), "/v1.41/services"))
		hook.Wait(b, i+1, 10*time.Second)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms/alert")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "p100-ms")
	h.stop()
}
