package peers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Alertmanager is a real Prometheus Alertmanager (Debian's
// prometheus-alertmanager) on loopback, without clustering, whose one
// route sends every notification, group_wait 1s, to a webhook receiver on
// loopback: Capture, which records each notification's body.
type Alertmanager struct {
	t   testing.TB
	Dir string
	// URL is the Alertmanager's base URL, http://127.0.0.1:port: its API
	// v2 is below it.
	URL     string
	Port    int
	Capture *HTTP

	bin    string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	output bytes.Buffer
}

// AMNotification is one notification Alertmanager's webhook receiver got
// (its webhook payload, version 4).
type AMNotification struct {
	Receiver    string            `json:"receiver"`
	Status      string            `json:"status"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []AMAlert         `json:"alerts"`
}

// AMAlert is one alert of a notification.
type AMAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	Fingerprint string            `json:"fingerprint"`
}

const alertmanagerMissing = "prometheus-alertmanager not installed (apt-get install prometheus-alertmanager)"

func findAlertmanager() string {
	if p, err := exec.LookPath("prometheus-alertmanager"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/prometheus-alertmanager"); err == nil {
		return "/usr/bin/prometheus-alertmanager"
	}
	return ""
}

// SkipWithoutAlertmanager skips t when prometheus-alertmanager is not
// installed; in CI (CI=true, or UCP_AUDIT_E2E_REQUIRED=1) it fails t
// instead.
func SkipWithoutAlertmanager(t testing.TB) {
	t.Helper()
	if findAlertmanager() != "" {
		return
	}
	msg := alertmanagerMissing + ": real-Alertmanager tests skipped"
	if os.Getenv("CI") == "true" || os.Getenv("UCP_AUDIT_E2E_REQUIRED") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// NewAlertmanager prepares an Alertmanager in dir (created if needed) on a
// free port, with its capture receiver started; it is down until Start.
// The route groups by groupBy (alertname when empty). t.Cleanup stops both.
func NewAlertmanager(t testing.TB, dir string, groupBy ...string) *Alertmanager {
	t.Helper()
	bin := findAlertmanager()
	if bin == "" {
		t.Fatal(alertmanagerMissing)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	capture := NewHTTP(t)
	capture.Decode = func(_ *http.Request, body []byte) ([]string, error) {
		if !json.Valid(body) {
			return nil, errors.New("not JSON")
		}
		return []string{string(body)}, nil
	}
	capture.Start()
	if len(groupBy) == 0 {
		groupBy = []string{"alertname"}
	}
	groups, _ := json.Marshal(groupBy)
	conf := fmt.Sprintf(`route:
  receiver: capture
  group_by: %s
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: capture
    webhook_configs:
      - url: %q
        send_resolved: false
`, groups, capture.URL())
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &Alertmanager{t: t, Dir: dir, Port: FreeTCPPort(t), Capture: capture, bin: bin}
	a.URL = "http://127.0.0.1:" + strconv.Itoa(a.Port)
	t.Cleanup(a.Stop)
	return a
}

// StartAlertmanager is NewAlertmanager followed by Start.
func StartAlertmanager(t testing.TB, dir string, groupBy ...string) *Alertmanager {
	t.Helper()
	a := NewAlertmanager(t, dir, groupBy...)
	a.Start()
	return a
}

// Start runs the Alertmanager and waits until it is ready (/-/ready).
func (a *Alertmanager) Start() {
	t := a.t
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd != nil {
		t.Fatal("alertmanager already running")
	}
	a.output.Reset()
	cmd := exec.Command(a.bin, "--config.file="+filepath.Join(a.Dir, "alertmanager.yml"), "--storage.path="+filepath.Join(a.Dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(a.Port), "--cluster.listen-address=")
	cmd.Stdout, cmd.Stderr = &a.output, &a.output
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting alertmanager: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	a.cmd, a.exited = cmd, exited
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(a.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("alertmanager exited: %s\n%s", cmd.ProcessState, a.output.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager not ready on %s: %v\n%s", a.URL, err, a.output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the Alertmanager with SIGTERM and waits for it; SIGKILL
// after 10 s. Stopping a stopped one does nothing.
func (a *Alertmanager) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return
	}
	terminate(a.cmd, a.exited)
	a.cmd = nil
}

// Output returns what the Alertmanager logged, for failures.
func (a *Alertmanager) Output() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.output.String()
}

// Notifications returns the notifications the capture receiver got so
// far, in arrival order.
func (a *Alertmanager) Notifications() []AMNotification {
	var out []AMNotification
	for _, body := range a.Capture.Events() {
		var n AMNotification
		if err := json.Unmarshal([]byte(body), &n); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// WaitAlerts waits until the notifications hold an alert for which match
// holds, and returns it; the test fails after within.
func (a *Alertmanager) WaitAlerts(t testing.TB, within time.Duration, match func(AMAlert) bool) AMAlert {
	t.Helper()
	var found AMAlert
	if !WaitUntil(within, func() bool {
		for _, n := range a.Notifications() {
			for _, al := range n.Alerts {
				if match(al) {
					found = al
					return true
				}
			}
		}
		return false
	}) {
		t.Fatalf("no matching alert reached the webhook receiver within %v; notifications: %+v\nalertmanager's log:\n%s", within, a.Notifications(), a.Output())
	}
	return found
}
