package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/driver/ingest"
	"github.com/ucp-audit/ucp-audit/metrics"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/spool"
)

// Delivery tuning. A batch is what one Send carries: up to batchEvents
// events and batchBytes bytes. Beats pays a fixed cost per batch (go-lumber
// sets up a new zlib compressor, about 1 MiB, for each), which 256-event
// batches made the largest part of the remote path's CPU; 1024 events of a
// typical 0.7 KB still fit the byte bound.
const (
	batchEvents  = 1024
	batchBytes   = 1 << 20
	sendTimeout  = 60 * time.Second
	backoffFirst = 200 * time.Millisecond
	backoffMax   = 30 * time.Second
	// linger is how long a worker that found less than a full batch waits
	// for more before it sends (not once the stream has ended): a busy
	// container then gets full batches instead of one small send, with its
	// wake-ups and per-batch costs, each time the worker catches up.
	linger = 200 * time.Millisecond
)

// destination is one configured remote destination of a container.
type destination struct {
	name string // stable: the spool cursor is keyed by it
	fwd  sink.Forwarder
}

// destinations builds the forwarders of the remote destinations cfg
// configures; none dials yet, so a destination that is down never stops a
// container from starting.
func destinations(cfg config.Config, info dockerlog.Info, host string) ([]destination, error) {
	c := sinkContainer(info, host)
	var out []destination
	for _, r := range cfg.Remotes {
		f, err := r.New(c)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out = append(out, destination{name: r.Name(), fwd: f})
	}
	return out, nil
}

func closeAll(ds []destination) {
	for _, d := range ds {
		_ = d.fwd.Close()
	}
}

// sinkContainer is what the destinations know of the container: the facts
// Docker's log drivers give their tag template, and the node's host name.
func sinkContainer(info dockerlog.Info, host string) sink.Container {
	short := func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	}
	return sink.Container{
		ID: short(info.ContainerID), FullID: info.ContainerID, Name: info.Name(),
		ImageID: short(trimDigest(info.ContainerImageID)), ImageFullID: info.ContainerImageID,
		ImageName: info.ContainerImageName, DaemonName: info.DaemonName, Host: host,
	}
}

func trimDigest(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[i+1:]
		}
	}
	return s
}

// delivery owns a container's spool and one worker per destination. It
// outlives the container's stream: after the stream ends, the workers go
// on until every destination has everything, or until stop.
type delivery struct {
	id    string
	sp    *spool.Spool
	dests []destination
	log   *slog.Logger
	// lost records events a destination will never get (a full spool,
	// an event too large for the transport) in the audit trail.
	lost func(auditlog.Gap)
	// note records a destination going down or coming back.
	note    func(typ, dest, detail string)
	metrics *metrics.Metrics

	// giveUp is when (Unix ns) a destination that still fails is given
	// up: its undelivered events are recorded as a gap. 0: never.
	giveUp atomic.Int64

	cancel   context.CancelFunc
	finished chan struct{} // closed when no more events will be appended
	finOnce  sync.Once
	wg       sync.WaitGroup
	done     chan struct{} // closed when all workers ended and the spool is closed
}

func openDelivery(dir string, cfg config.Config, dests []destination, log *slog.Logger, lost func(auditlog.Gap), note func(typ, dest, detail string), m *metrics.Metrics) (*delivery, error) {
	names := make([]string, len(dests))
	for i, d := range dests {
		names[i] = d.name
	}
	// With spool-full=block a full spool slows the reading of the container
	// (see ingest.BlockRate): say so in the audit trail, at most once a minute
	// while it lasts.
	full := &rate.Sometimes{Interval: time.Minute}
	onWait := func() {
		full.Do(func() {
			note(auditlog.SelfSpoolFull, "", fmt.Sprintf("spool full (spool-max-size %d bytes, spool-full=block): reading the container is slowed to %d KiB/s until a destination takes events", cfg.SpoolMaxSize, ingest.BlockRate>>10))
		})
	}
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(dir, "spool"), MaxSize: cfg.SpoolMaxSize, Full: cfg.SpoolFull, OnWait: onWait}, names)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	dl := &delivery{sp: sp, dests: dests, log: log, lost: lost, note: note, metrics: m, cancel: cancel,
		finished: make(chan struct{}), done: make(chan struct{})}
	for _, d := range dests {
		dl.wg.Add(1)
		go dl.work(ctx, d)
	}
	go func() {
		dl.wg.Wait()
		closeAll(dests)
		if err := sp.Close(); err != nil {
			log.Error("close spool", "error", err)
		}
		close(dl.done)
	}()
	return dl, nil
}

// finish says no more events will be appended: workers end once their
// destination has everything.
func (dl *delivery) finish() { dl.finOnce.Do(func() { close(dl.finished) }) }

// giveUpAt sets when a destination that still fails is given up (see
// work). Until it is called, never.
func (dl *delivery) giveUpAt(t time.Time) { dl.giveUp.Store(t.UnixNano()) }

// abandon commits everything d has not taken and records it as a gap.
func (dl *delivery) abandon(d destination, why string) error {
	g := auditlog.Gap{Destination: d.name, Reason: why}
	for {
		recs, err := dl.sp.Read(d.name, batchEvents, batchBytes)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		if g.Lost == 0 {
			g.FirstSeq = recs[0].Seq
		}
		g.LastSeq = recs[len(recs)-1].Seq
		g.Lost += uint64(len(recs))
		if err := dl.sp.Commit(d.name, recs[len(recs)-1].End); err != nil {
			return err
		}
	}
	if g.Lost > 0 {
		dl.lost(g)
	}
	return nil
}

// stop ends the workers at their last commit and waits for them.
func (dl *delivery) stop() {
	dl.cancel()
	<-dl.done
}

func (dl *delivery) work(ctx context.Context, d destination) {
	defer dl.wg.Done()
	gauge := dl.metrics.Spool(d.name)
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
			dl.log.Error("spool read", "destination", d.name, "error", err)
			if !sleep(ctx, backoffMax) {
				return
			}
			continue
		}
		gauge.Set(dl.sp.Size(), dl.sp.Lag(d.name))
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
			select {
			case <-time.After(linger):
			case <-dl.finished:
			case <-ctx.Done():
				return
			}
			continue // read again: a fuller batch
		}
		lingered = false
		err = dl.send(ctx, d, recs)
		if err != nil && ctx.Err() == nil {
			dl.metrics.DeliveryFailed(d.name)
		}
		if err == nil {
			if failing {
				dl.log.Info("destination delivers again", "destination", d.name)
				dl.note(auditlog.SelfDestinationBack, d.name, "")
				failing = false
			}
			backoff = backoffFirst
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if !failing {
			dl.note(auditlog.SelfDestinationDown, d.name, err.Error())
		}
		failing = true
		if gu := dl.giveUp.Load(); gu != 0 && time.Now().UnixNano() >= gu {
			why := fmt.Sprintf("destination still failing when the container's store expired (STORE_RETENTION after it stopped): %v", err)
			if err := dl.abandon(d, why); err != nil {
				dl.log.Error("giving up a destination failed", "destination", d.name, "error", err)
			}
			continue
		}
		warn.Do(func() {
			dl.log.Warn("destination unavailable; events wait in the spool", "destination", d.name, "error", err)
		})
		// Capped exponential backoff with jitter.
		if !sleep(ctx, backoff/2+rand.N(backoff/2+1)) {
			return
		}
		backoff = min(backoff*2, backoffMax)
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
func (dl *delivery) send(ctx context.Context, d destination, recs []spool.Record) error {
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
		dl.lost(auditlog.Gap{Destination: d.name, Lost: 1, FirstSeq: tl.Seq, LastSeq: tl.Seq,
			Reason: fmt.Sprintf("event too large for the transport: %v", tl)})
		return dl.sp.Commit(d.name, recs[i].End)
	}
	if err != nil {
		return err
	}
	dl.metrics.Delivered(d.name, len(recs))
	return dl.sp.Commit(d.name, recs[len(recs)-1].End)
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
