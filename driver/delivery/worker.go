package delivery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"golang.org/x/time/rate"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/spool"
)

// work delivers to the destination d until it has everything after
// Finish, or until ctx ends: it reads a batch from the spool with d's
// cursor, lingers for a fuller one, sends, commits, and backs off while d
// fails; past GiveUpAt, d's undelivered events are abandoned as a gap.
func (dl *Delivery) work(ctx context.Context, d Target) {
	defer dl.wg.Done()
	gauge := dl.o.Metrics.Spool(d.name)
	defer gauge.Close()
	warn := rate.Sometimes{Interval: 30 * time.Second}
	backoff := backoffFirst
	failing := false
	lingered := false
	for {
		changed := dl.sp.Watch()
		recs, err := dl.sp.Read(d.name, batchEvents, batchBytes)
		if err != nil {
			if errors.Is(err, spool.ErrClosed) || ctx.Err() != nil {
				return
			}
			dl.o.Log.Error("spool read", "destination", d.name, "error", err)
			if !sleep(ctx, backoffMax) {
				return
			}
			continue
		}
		gauge.Set(dl.sp.Size(), dl.sp.Lag(d.name))
		dl.checkHighWater()
		if len(recs) == 0 {
			select {
			case <-dl.finished:
				if !dl.sp.Pending(d.name) {
					return
				}
			default:
			}
			select {
			case <-changed:
			case <-dl.finished:
			case <-ctx.Done():
				return
			}
			continue
		}
		if !lingered && !failing && len(recs) < batchEvents && batchSize(recs) < batchBytes/2 {
			lingered = true
			if !dl.linger(ctx) {
				return
			}
			continue // read again: a fuller batch
		}
		lingered = false
		err = dl.send(ctx, d, recs)
		if err != nil && ctx.Err() == nil {
			dl.o.Metrics.DeliveryFailed(d.name)
		}
		if err == nil {
			if failing {
				dl.o.Log.Info("destination delivers again", "destination", d.name)
				dl.o.Note(auditlog.SelfDestinationBack, d.name, "")
				failing = false
			}
			backoff = backoffFirst
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if !failing {
			dl.o.Note(auditlog.SelfDestinationDown, d.name, err.Error())
		}
		failing = true
		if gu := dl.giveUp.Load(); gu != 0 && time.Now().UnixNano() >= gu {
			why := fmt.Sprintf("destination still failing when the container's store expired (STORE_RETENTION after it stopped): %v", err)
			if err := dl.abandon(d, why); err != nil {
				dl.o.Log.Error("giving up a destination failed", "destination", d.name, "error", err)
			}
			continue
		}
		warn.Do(func() {
			dl.o.Log.Warn("destination unavailable; events wait in the spool", "destination", d.name, "error", err)
		})
		// Capped exponential backoff with jitter.
		if !sleep(ctx, backoff/2+rand.N(backoff/2+1)) {
			return
		}
		backoff = min(backoff*2, backoffMax)
	}
}

// linger waits up to linger for more events, so that a busy container's
// events go in full batches. It ends early once the stream has ended, or
// while an Append waits for room (spool-full=block and a full spool):
// nothing more comes before this batch is committed, and waiting would
// only hold the container back. It returns false when ctx ends.
func (dl *Delivery) linger(ctx context.Context) bool {
	t := time.NewTimer(linger)
	defer t.Stop()
	for {
		changed := dl.sp.Watch()
		if dl.sp.Waiting() {
			return true
		}
		select {
		case <-t.C:
			return true
		case <-changed:
		case <-dl.finished:
			return true
		case <-ctx.Done():
			return false
		}
	}
}

// batchSize is the bytes of recs' events.
func batchSize(recs []spool.Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Event.Line)
	}
	return n
}

// send delivers recs and commits them. An event the transport can never
// carry is recorded as lost for this destination and skipped.
func (dl *Delivery) send(ctx context.Context, d Target, recs []spool.Record) error {
	events := make([]sink.Event, len(recs))
	for i, r := range recs {
		events[i] = r.Event
	}
	sctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	err := d.fwd.Send(sctx, events)
	var tl *sink.TooLargeError
	if errors.As(err, &tl) {
		i := 0
		for i < len(recs) && recs[i].Seq != tl.Seq {
			i++
		}
		if i == len(recs) {
			return err
		}
		if i > 0 {
			if err := dl.send(ctx, d, recs[:i]); err != nil {
				return err
			}
		}
		dl.o.Lost(auditlog.Gap{Destination: d.name, Lost: 1, FirstSeq: tl.Seq, LastSeq: tl.Seq,
			Reason: fmt.Sprintf("event too large for the transport: %v", tl)})
		return dl.sp.Commit(d.name, recs[i].End)
	}
	if err != nil {
		return err
	}
	dl.o.Metrics.Delivered(d.name, len(recs))
	return dl.sp.Commit(d.name, recs[len(recs)-1].End)
}

// abandon commits everything d has not taken and records the events among
// it as a gap (records of the plugin's own, seq 0, are not counted: a gap
// record forwarded by this very gap is given up without another).
func (dl *Delivery) abandon(d Target, why string) error {
	g := auditlog.Gap{Destination: d.name, Reason: why}
	for {
		recs, err := dl.sp.Read(d.name, batchEvents, batchBytes)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Seq == 0 {
				continue // a record of the plugin's own, not an event
			}
			if g.Lost == 0 {
				g.FirstSeq = r.Seq
			}
			g.LastSeq = r.Seq
			g.Lost++
		}
		if err := dl.sp.Commit(d.name, recs[len(recs)-1].End); err != nil {
			return err
		}
	}
	if g.Lost > 0 {
		dl.o.Lost(g)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
