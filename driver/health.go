package driver

import (
	"fmt"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

// Health: what /healthz and the metrics say of the driver besides its
// streams' counters. A trail file that fails to write or sync makes the
// plugin unhealthy until it recovers (package file recovers it once the
// disk is back, and says so); so does a pipeline that has fallen far behind
// what its reader stored (maxHealthyLag in all).

// maxHealthyLag is the most the pipelines together may be behind their
// readers (bytes stored, not yet handled) for the plugin to be healthy.
const maxHealthyLag = 256 << 20

// sinkFailure is a failure of the trail's files, since when.
type sinkFailure struct {
	since time.Time
	err   error
}

// sinkFailed notes a failure of one of the trail's files (the trail's
// hook): the first one counts until the file recovers.
func (d *Driver) sinkFailed(err error) {
	if d.sinkFail.CompareAndSwap(nil, &sinkFailure{since: time.Now(), err: err}) {
		d.opts.Metrics.SetSinkFailing(true)
	}
	d.alerts.sinkFailing(err)
}

// sinkSynced notes a sync of a trail file that succeeded (the trail's
// hook): a failure noted before is over.
func (d *Driver) sinkSynced() {
	if d.sinkFail.Load() != nil && d.sinkFail.Swap(nil) != nil {
		d.opts.Metrics.SetSinkFailing(false)
	}
}

// sinkRecovered notes that a trail file writes again (package file's
// OnRecovered, called with the file's lock held): a sink-recovered record,
// written by alerting's goroutine.
func (d *Driver) sinkRecovered(path string, failure error) {
	var since time.Time
	if f := d.sinkFail.Swap(nil); f != nil {
		since = f.since
	}
	d.opts.Metrics.SetSinkFailing(false)
	d.log.Info("an audit file writes again", "file", path, "error", failure)
	ev := d.selfEvent(auditlog.SelfSinkRecovered, nil)
	ev.Detail = fmt.Sprintf("%s writes again (%v)", path, failure)
	if !since.IsZero() {
		ev.Detail += fmt.Sprintf(" after failing for %s; what it had accepted since its last fsync was written again", time.Since(since).Round(time.Millisecond))
	}
	d.alerts.recordLater(ev)
}

// PipelineLag returns how many bytes the pipelines together are behind what
// their readers stored.
func (d *Driver) PipelineLag() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var lag int64
	for _, s := range d.byID {
		if n := s.progress.Appended.Load() - s.progress.Consumed.Load(); n > 0 {
			lag += n
		}
	}
	return lag
}

// Healthy reports whether the driver is running, its trail's files write,
// and its pipelines keep up; the error says what is wrong.
func (d *Driver) Healthy() error {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if f := d.sinkFail.Load(); f != nil {
		return fmt.Errorf("the audit trail's files fail to write since %s: %v", f.since.UTC().Format(time.RFC3339), f.err)
	}
	if lag := d.PipelineLag(); lag > maxHealthyLag {
		return fmt.Errorf("the pipelines are %d bytes behind what they stored (more than %d)", lag, maxHealthyLag)
	}
	return nil
}
