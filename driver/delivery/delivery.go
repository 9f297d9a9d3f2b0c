// Package delivery owns the remote delivery of one container's events:
// its spool (package spool) and one worker per remote destination, which
// reads the spool with the destination's own cursor, sends batches and
// commits only what the destination acknowledged.
//
//   - delivery.go: a container's Delivery, opened, finished, given up,
//     stopped;
//   - worker.go: one destination's worker (batches, backoff, giving up);
//   - targets.go: the destinations a container's configuration names,
//     each with its forwarder.
//
// A delivery outlives the container's stream: after the stream ends, the
// workers go on until every destination has everything. It records what
// a destination will never get, and a destination going down or coming
// back, through the callbacks its Options name, in the container's audit
// trail.
package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/metrics"
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

// Options configure a Delivery.
type Options struct {
	// Dir is the container's directory: the spool is Dir/spool.
	Dir string
	// Config is the container's configuration: its spool's size and
	// spool-full policy.
	Config config.Config
	// Targets are the destinations to deliver to (see NewTargets). Open
	// takes them over; when it fails, the caller still owns them.
	Targets []Target
	Log     *slog.Logger
	// Lost records events a destination will never get (a full spool, an
	// event too large for the transport, a destination given up) in the
	// audit trail; the record's time and container are the caller's to
	// set.
	Lost func(auditlog.Gap)
	// Note records a self-audit event of type typ (auditlog.Self…): a
	// destination going down or coming back, a full spool.
	Note func(typ, dest, detail string)
	// Metrics, if not nil, counts what is delivered and lost.
	Metrics *metrics.Metrics
	// BlockRate is the pace, in bytes a second, to which a full spool
	// slows the reading of the container with spool-full=block
	// (ingest.BlockRate): the spool-full self-audit event says it.
	BlockRate int
}

// Delivery owns a container's spool and one worker per destination. It
// outlives the container's stream: after the stream ends, the workers go
// on until every destination has everything, or until Stop.
type Delivery struct {
	o  Options
	sp *spool.Spool

	// giveUp is when (Unix ns) a destination that still fails is given
	// up: its undelivered events are recorded as a gap. 0: never.
	giveUp atomic.Int64
	// high is set while the spool is past its high-water mark (see
	// checkHighWater).
	high atomic.Bool

	cancel   context.CancelFunc
	finished chan struct{} // closed when no more events will be appended
	finOnce  sync.Once
	wg       sync.WaitGroup
	done     chan struct{} // closed when all workers ended and the spool is closed
}

// Open opens the container's spool and starts a worker for each target.
func Open(o Options) (*Delivery, error) {
	names := make([]string, len(o.Targets))
	for i, t := range o.Targets {
		names[i] = t.name
	}
	// With spool-full=block a full spool slows the reading of the container
	// (see Options.BlockRate): say so in the audit trail, at most once a
	// minute while it lasts. Note may forward the record into this very
	// spool, whose Append then waits and calls onWait again: the claim of
	// the minute is taken before Note runs, and no lock is held across it
	// (a rate.Sometimes would deadlock there).
	var lastFull atomic.Int64 // Unix ns of the last note; 0: none yet
	onWait := func() {
		now, last := time.Now().UnixNano(), lastFull.Load()
		if last != 0 && now-last < int64(time.Minute) || !lastFull.CompareAndSwap(last, now) {
			return
		}
		o.Note(auditlog.SelfSpoolFull, "", fmt.Sprintf("spool full (spool-max-size %d bytes, spool-full=block): reading the container is slowed to %d KiB/s until a destination takes events", o.Config.SpoolMaxSize, o.BlockRate>>10))
	}
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(o.Dir, "spool"), MaxSize: o.Config.SpoolMaxSize, Full: o.Config.SpoolFull, OnWait: onWait}, names)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	dl := &Delivery{o: o, sp: sp, cancel: cancel, finished: make(chan struct{}), done: make(chan struct{})}
	for _, t := range o.Targets {
		dl.wg.Add(1)
		go dl.work(ctx, t)
	}
	go func() {
		dl.wg.Wait()
		CloseTargets(o.Targets)
		if err := sp.Close(); err != nil {
			o.Log.Error("close spool", "error", err)
		}
		close(dl.done)
	}()
	return dl, nil
}

// High-water marks of a spool, in percent of its bound: a spool-high-water
// record when it passes highWater, and another only after it fell below
// lowWater.
const (
	highWater = 80
	lowWater  = 50
)

// checkHighWater records a spool-high-water self record when the spool
// passes highWater percent of its bound, once until it falls below
// lowWater: destinations are falling behind, before anything is dropped.
func (dl *Delivery) checkHighWater() {
	limit := dl.o.Config.SpoolMaxSize
	if limit <= 0 {
		return
	}
	size := dl.sp.Size()
	switch {
	case size*100 >= limit*highWater:
		if dl.high.CompareAndSwap(false, true) {
			dl.o.Note(auditlog.SelfSpoolHighWater, "", fmt.Sprintf("spool %d%% full (%d of %d bytes, spool-full=%s): the destinations are behind", size*100/limit, size, limit, dl.o.Config.SpoolFull))
		}
	case size*100 < limit*lowWater:
		dl.high.Store(false)
	}
}

// Spool is the container's spool, which the pipeline appends to.
func (dl *Delivery) Spool() *spool.Spool { return dl.sp }

// Finish says no more events will be appended: workers end once their
// destination has everything.
func (dl *Delivery) Finish() { dl.finOnce.Do(func() { close(dl.finished) }) }

// GiveUpAt sets when a destination that still fails is given up (see
// work). Until it is called, never.
func (dl *Delivery) GiveUpAt(t time.Time) { dl.giveUp.Store(t.UnixNano()) }

// Stop ends the workers at their last commit and waits for them.
func (dl *Delivery) Stop() {
	dl.cancel()
	<-dl.done
}

// Done is closed once every worker has ended (after Finish, when every
// destination has everything; or after Stop) and the spool is closed.
func (dl *Delivery) Done() <-chan struct{} { return dl.done }
