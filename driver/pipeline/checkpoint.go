package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/ucp-audit/ucp-audit/driver/ingest"
)

// syncEvery bounds how much the pipeline writes between checkpoints when
// it never catches up with the container.
const syncEvery = 1 << 20

// checkpoint makes the sinks durable, then records how far the pipeline
// got, so a restart neither loses nor repeats a line.
func (p *Pipeline) checkpoint(ctx context.Context, pos ingest.Position) error {
	safe := pos
	for _, s := range p.starts {
		if s.Before(safe) {
			safe = s
		}
	}
	if !p.dirty && safe == p.state.Safe {
		p.o.Progress.Checkpoint()
		return nil
	}
	backoff := 100 * time.Millisecond
	for {
		err := errors.Join(p.o.AuditFile.Sync(), p.o.Quarantine.Sync())
		if err == nil && p.o.Spool != nil {
			if err = p.o.Spool.Sync(); p.spoolFailed(err) {
				err = nil
			}
		}
		if err == nil {
			p.state.Safe = safe
			p.state.Updated = time.Now().UTC()
			err = Save(p.o.Dir, p.state)
		}
		if err == nil {
			break
		}
		p.warn.Do(func() { p.o.Log.Error("checkpoint failed; retrying", "error", err) })
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	p.unsynced = 0
	p.dirty = false
	p.o.Store.SetPin(safe.Seg)
	p.o.Progress.Checkpoint()
	return nil
}
