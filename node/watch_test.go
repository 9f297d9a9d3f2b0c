package node

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestWatcher: a new document is applied, one that does not parse is
// refused once while the last good one stays, and mending it applies it;
// removing the document brings the defaults back.
func TestWatcher(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	env := Env{LogDir: "/var/log/ucp-audit", StateDir: dir}
	type event struct {
		level    string // the auditLevel applied; "" for a refusal
		rejected bool
	}
	var (
		mu     sync.Mutex
		events []event
	)
	w := Watcher{Path: path, Env: env, Interval: 5 * time.Millisecond,
		Changed: func(c Config, _ []byte) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, event{level: c.AuditLevelText})
		},
		Rejected: func(_ []byte, err error) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, event{rejected: true})
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.Run(ctx, nil) }()
	defer func() { cancel(); wg.Wait() }()

	waitFor := func(n int) []event {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			got := append([]event(nil), events...)
			mu.Unlock()
			if len(got) >= n {
				time.Sleep(30 * time.Millisecond) // nothing more comes
				mu.Lock()
				defer mu.Unlock()
				return append([]event(nil), events...)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d events, want %d: %+v", len(got), n, got)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	write := func(doc string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"auditLevel": "metadata"}`)
	waitFor(1)
	write(`{"auditLevel": "loud"}`)
	waitFor(2)
	write(`{"auditLevel": "none"}`)
	waitFor(3)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	got := waitFor(4)
	want := []event{{level: "metadata"}, {rejected: true}, {level: "none"}, {level: "request"}}
	if len(got) != len(want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
