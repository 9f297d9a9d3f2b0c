package alert_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/alert"
	"github.com/ucp-audit/ucp-audit/alert/output"
	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// A real Alertmanager on loopback, its webhook receiver a capture peer:
// an event rule fires, a destination that stays down fires the built-in,
// grouping and throttling hold, an outage of the Alertmanager loses
// nothing (and a redelivery is not notified twice), and no secret reaches
// it.
func TestThroughRealAlertmanager(t *testing.T) {
	peers.SkipWithoutAlertmanager(t)
	am := peers.StartAlertmanager(t, t.TempDir(), "alertname", "group")
	cfg, err := alert.Parse([]byte(`{
	  "outputs": [{"name": "am", "type": "alertmanager", "url": "` + am.URL + `"}],
	  "rules": [
	    {"name": "exec-into-pod", "when": "event != null && event.?objectRef.?subresource.orValue('') in ['exec', 'attach']", "severity": "warning", "outputs": ["am"]},
	    {"name": "secret-read", "when": "event != null && event.?objectRef.?resource.orValue('') == 'secrets' && event.verb == 'get'", "severity": "critical", "outputs": ["am"],
	     "group_by": ["event.annotations[\"ucp-audit/user\"]"], "throttle": "1h"}
	  ],
	  "builtins": {"destination_down": {"after": "2m"}}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := alert.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eng := alert.NewEngine(rs, alert.Options{Host: "mgr-1"})
	fwd, err := output.New(rs.Outputs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	deliver := func(t *testing.T, as []alert.Alert) {
		t.Helper()
		var batch []sink.Event
		for _, a := range as {
			ev, err := output.Event(alert.Alertmanager, a)
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, ev)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := fwd.Send(ctx, batch); err != nil {
			t.Fatalf("Send: %v\n%s", err, am.Output())
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)

	t.Run("event rule", func(t *testing.T) {
		got := eng.Observe([]byte(event("e-1", "bob", "create", "pods", "exec", now)), now)
		if len(got) != 1 {
			t.Fatalf("%d alerts", len(got))
		}
		deliver(t, got)
		a := am.WaitAlerts(t, 20*time.Second, func(a peers.AMAlert) bool { return a.Labels["alertname"] == "exec-into-pod" })
		want := map[string]string{"alertname": "exec-into-pod", "severity": "warning", "node": "mgr-1", "container": "ucp-controller"}
		for k, v := range want {
			if a.Labels[k] != v {
				t.Errorf("label %s = %q, want %q (labels %v)", k, a.Labels[k], v, a.Labels)
			}
		}
		if a.Annotations["auditID"] != "e-1" || a.Annotations["user"] != "bob" || a.Annotations["verb"] != "create" || a.Annotations["sourceIP"] != "10.0.0.7" ||
			!strings.HasPrefix(a.Annotations["requestURI"], "/api/v1/namespaces/default/pods/web-1/exec") || !strings.HasPrefix(a.Annotations["summary"], "bob create ") {
			t.Errorf("annotations %v", a.Annotations)
		}
		if !a.StartsAt.Equal(now) || a.Status != "firing" {
			t.Errorf("startsAt %v (want %v), status %s", a.StartsAt, now, a.Status)
		}
	})

	t.Run("destination stays down", func(t *testing.T) {
		down, _ := auditlog.MarshalSelf(auditlog.Self{Type: auditlog.SelfDestinationDown, Time: now.Format(time.RFC3339Nano), Host: "mgr-1",
			ContainerID: "3f1c9a7b", ContainerName: "ucp-controller", Destination: "syslog relp://siem:2514", Detail: "connection refused"})
		if got := eng.Observe(down, now); len(got) != 0 {
			t.Fatalf("fired at once: %d", len(got))
		}
		got := eng.Tick(now.Add(2 * time.Minute))
		if len(got) != 1 {
			t.Fatalf("%d alerts after 2m", len(got))
		}
		deliver(t, got)
		a := am.WaitAlerts(t, 20*time.Second, func(a peers.AMAlert) bool { return a.Labels["alertname"] == "ucp-audit-destination-down" })
		if a.Labels["severity"] != "critical" || a.Labels["destination"] != "syslog relp://siem:2514" || !strings.Contains(a.Annotations["summary"], "down for 2m0s") {
			t.Errorf("%+v", a)
		}
	})

	t.Run("grouped and throttled", func(t *testing.T) {
		var all []alert.Alert
		for i, user := range []string{"carol", "carol", "dave", "carol"} {
			all = append(all, eng.Observe([]byte(event("s-"+string(rune('a'+i)), user, "get", "secrets", "", now)), now.Add(time.Duration(i)*time.Second))...)
		}
		if len(all) != 2 {
			t.Fatalf("%d alerts, want one per user", len(all))
		}
		deliver(t, all)
		for _, user := range []string{"carol", "dave"} {
			a := am.WaitAlerts(t, 20*time.Second, func(a peers.AMAlert) bool {
				return a.Labels["alertname"] == "secret-read" && a.Labels["group"] == user
			})
			if a.Annotations["user"] != user {
				t.Errorf("%+v", a)
			}
		}
		// One alert per group reached the receiver, each in its own notification group.
		n := 0
		for _, nt := range am.Notifications() {
			for _, a := range nt.Alerts {
				if a.Labels["alertname"] == "secret-read" {
					n++
					if nt.GroupLabels["group"] != a.Labels["group"] {
						t.Errorf("notification grouped by %v holds %v", nt.GroupLabels, a.Labels)
					}
				}
			}
		}
		if n != 2 {
			t.Errorf("%d secret-read alerts notified, want 2", n)
		}
	})

	t.Run("outage", func(t *testing.T) {
		got := eng.Observe([]byte(event("e-9", "erin", "create", "pods", "attach", now)), now.Add(time.Minute))
		batch := []sink.Event{}
		for _, a := range got {
			ev, _ := output.Event(alert.Alertmanager, a)
			batch = append(batch, ev)
		}
		am.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := fwd.Send(ctx, batch)
		cancel()
		if err == nil {
			t.Fatal("Send to a stopped Alertmanager returned nil")
		}
		am.Start()
		if !peers.WaitUntil(20*time.Second, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return fwd.Send(ctx, batch) == nil
		}) {
			t.Fatal("Send still fails after the Alertmanager came back")
		}
		am.WaitAlerts(t, 20*time.Second, func(a peers.AMAlert) bool { return a.Annotations["auditID"] == "e-9" })
		// Delivered again (at-least-once): the same alert_id, one notification.
		deliver(t, got)
		time.Sleep(3 * time.Second) // group_interval is 1s
		n := 0
		for _, nt := range am.Notifications() {
			for _, a := range nt.Alerts {
				if a.Annotations["auditID"] == "e-9" {
					n++
				}
			}
		}
		if n != 1 {
			t.Errorf("the alert redelivered was notified %d times, want once", n)
		}
	})

	t.Run("no secret", func(t *testing.T) {
		for _, body := range am.Capture.Events() {
			for _, s := range []string{"PAYLOADSECRET", "LICENSEHASH", "requestObject", "licenseKey"} {
				if strings.Contains(body, s) {
					t.Errorf("a notification holds %q: %s", s, body)
				}
			}
		}
	})
}

// event returns an audit event line as the plugin writes it, with a
// request payload holding a secret no alert may carry.
func event(id, user, verb, resource, sub string, at time.Time) string {
	ref := map[string]any{"namespace": "default", "resource": resource, "name": "web-1"}
	uri := "/api/v1/namespaces/default/" + resource + "/web-1"
	if sub != "" {
		ref["subresource"] = sub
		uri += "/" + sub + "?command=sh"
	}
	b, _ := json.Marshal(map[string]any{
		"annotations": map[string]string{"ucp-audit/container-id": "3f1c9a7b", "ucp-audit/container-name": "ucp-controller",
			"ucp-audit/host": "mgr-1", "ucp-audit/user": user, "ucp-audit/seq": "1"},
		"apiVersion": "audit.k8s.io/v1", "auditID": id, "kind": "Event", "level": "Request", "objectRef": ref,
		"requestObject":            map[string]any{"data": map[string]string{"password": "PAYLOADSECRET"}},
		"requestReceivedTimestamp": at.Format(time.RFC3339Nano), "requestURI": uri, "sourceIPs": []string{"10.0.0.7"},
		"stage": "ResponseComplete", "verb": verb,
		"user": map[string]any{"username": "6f1e", "extra": map[string]any{"username": []string{user}, "licenseKey": []string{"sha256:LICENSEHASH"}}},
	})
	return string(b)
}
