package metrics

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestStatus(t *testing.T) {
	m := New()
	m.SetBuildInfo("1.2.0", "abc1234")
	for range 1234 {
		m.LineRead()
	}
	for range 100 {
		m.Event(OutcomeValidated)
	}
	for range 98 {
		m.Event(OutcomeForwarded)
	}
	m.Event(OutcomeIgnored)
	m.Event(OutcomeIgnored)
	m.Event(OutcomeRedacted)
	m.Event(OutcomeQuarantined)
	m.Delivered(beats, 98)
	m.DeliveryFailed(beats)
	m.DeliveryFailed(beats)
	m.Delivered(relp, 90)
	m.Lost(relp, 8)
	m.SetSpool(beats, 2048, 1024)
	m.StreamsActive(3)
	m.FIFOsOpen(4)
	addr := serve(t, m)

	got, err := Status(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", got)
	for _, want := range []string{
		"ucp-audit at " + addr + "\n",
		"health:       ok\n",
		"version:      1.2.0 (commit abc1234)\n",
		"uptime:       ",
		"streams:      3 active, 4 FIFOs open\n",
		"lines read:   1234\n",
		"events:       validated 100, forwarded 98, ignored 2, redacted 1, quarantined 1\n",
		"  logstash beats://127.0.0.1:5044: delivered 98, failed 2, lost 0, spool 2KiB, lag 1KiB\n",
		"  syslog relp://127.0.0.1:2514: delivered 90, failed 0, lost 8, spool -\n",
		"process:      goroutines ",
		", open fds ",
		", RSS ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if strings.Contains(got, "other") {
		t.Error("summary shows the other outcome while it is 0")
	}

	m.SetHealth(func() error { return errors.New("destination down:\nlogstash") })
	got, err = Status(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if want := "health:       UNHEALTHY: destination down: logstash\n"; !strings.Contains(got, want) {
		t.Errorf("summary lacks %q:\n%s", want, got)
	}
}

func TestStatusUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Status(t.Context(), addr)
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("Status on a closed port: %v, want an error naming %s", err, addr)
	}
	if _, err := Status(t.Context(), "nonsense"); err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Errorf("Status on a bad address: %v", err)
	}
}

func TestBaseURL(t *testing.T) {
	for _, c := range []struct{ addr, want string }{
		{"127.0.0.1:9464", "http://127.0.0.1:9464"},
		{"0.0.0.0:9464", "http://127.0.0.1:9464"},
		{":9464", "http://127.0.0.1:9464"},
		{"[::]:9464", "http://[::1]:9464"},
		{"[::1]:9464", "http://[::1]:9464"},
		{"localhost:9464", "http://localhost:9464"},
		{"http://10.0.0.5:9464/", "http://10.0.0.5:9464"},
	} {
		got, err := baseURL(c.addr)
		if err != nil || got != c.want {
			t.Errorf("baseURL(%q) = %q, %v; want %q", c.addr, got, err, c.want)
		}
	}
}

func TestSummarizeMissing(t *testing.T) {
	// An endpoint without our metrics still gives a readable summary.
	got := summarize("x:1", "ok", nil, time.Now())
	for _, want := range []string{"streams:      ? active, ? FIFOs open\n", "destinations: none\n", "goroutines ?"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
}
