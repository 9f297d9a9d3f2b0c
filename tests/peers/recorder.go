package peers

import (
	"sync"
	"testing"
	"time"
)

// Recorder keeps what a peer received, one string per message (an event,
// a syslog message, a line), in arrival order, duplicates included, and
// lets a test wait for it. The zero Recorder is ready to use; peers embed
// it.
type Recorder struct {
	mu   sync.Mutex
	msgs []string
}

// Add records one message.
func (r *Recorder) Add(m string) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

// Events returns every message received so far, in arrival order
// (duplicates included).
func (r *Recorder) Events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// Count returns how many messages were received so far (duplicates
// included).
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// Wait returns the messages once there are at least n; the test fails if
// that takes longer than within.
func (r *Recorder) Wait(t testing.TB, n int, within time.Duration) []string {
	t.Helper()
	var got []string
	if !WaitUntilEvery(within, 5*time.Millisecond, func() bool {
		got = r.Events()
		return len(got) >= n
	}) {
		t.Fatalf("received %d messages, want %d", len(got), n)
	}
	return got
}
