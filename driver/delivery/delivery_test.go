package delivery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/spool"
)

// With spool-full=block, the spool-full note is recorded by Note, which
// the driver lets forward the record into this very spool: that Append
// waits for room too, and calls the spool's OnWait again from inside the
// first. It must give up after its own wait, never deadlock the pipeline.
func TestSpoolFullNoteReentrant(t *testing.T) {
	var dl *Delivery
	var notes atomic.Int32
	note := func(typ, dest, detail string) {
		if typ != auditlog.SelfSpoolFull {
			return
		}
		notes.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, _ = dl.Spool().Append(ctx, sink.Event{Line: []byte(`{"ucp-audit/self":{}}`)}) // as pipeline.Forward does
	}
	cfg := config.Config{SpoolMaxSize: 4096, SpoolFull: spool.Block}
	var err error
	down := NewTarget("down", downForwarder{}) // a destination that is down: nothing frees room
	dl, err = Open(Options{Dir: t.TempDir(), Config: cfg, Targets: []Target{down}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Note: note, Lost: func(auditlog.Gap) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Stop()
	line := make([]byte, 1000)
	for i := range line {
		line[i] = 'x'
	}
	done := make(chan error, 1)
	go func() {
		for seq := uint64(1); ; seq++ {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			_, err := dl.Spool().Append(ctx, sink.Event{Line: line, Seq: seq})
			cancel()
			if err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Append on a full spool: %v, want its context's deadline", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Append on a full spool never returned: the spool-full note deadlocked")
	}
	if n := notes.Load(); n != 1 {
		t.Errorf("%d spool-full notes, want 1", n)
	}
}

// downForwarder is a destination that refuses every batch.
type downForwarder struct{}

func (downForwarder) Send(context.Context, []sink.Event) error {
	return errors.New("connection refused")
}
func (downForwarder) Close() error { return nil }
