package driver

import (
	"os"
	"path/filepath"
	"time"

	"golang.org/x/time/rate"

	"github.com/ucp-audit/ucp-audit/driver/pipeline"
	"github.com/ucp-audit/ucp-audit/sink/file"
)

// Housekeeping: two goroutines New starts and Close stops and waits for.

// sealer seals the audit and quarantine files that went quiet with lines
// not sealed yet, checking four times per seal interval: a file's
// unsealed tail is then at most about one interval old.
func (d *Driver) sealer() {
	defer d.wg.Done()
	every := d.opts.Sealing.Interval
	if every <= 0 {
		every = file.DefaultSealInterval
	}
	t := time.NewTicker(every / 4)
	defer t.Stop()
	warn := rate.Sometimes{Interval: time.Minute}
	for {
		select {
		case <-t.C:
		case <-d.ctx.Done():
			return
		}
		if err := d.files.SealIdle(); err != nil {
			warn.Do(func() { d.log.Error("sealing an idle audit file failed", "error", err) })
		}
	}
}

// janitor removes the stores of containers stopped longer than Retention,
// so that private copies of logs never fill the disk unnoticed.
func (d *Driver) janitor() {
	defer d.wg.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		d.prune(time.Now())
		select {
		case <-t.C:
		case <-d.ctx.Done():
			return
		}
	}
}

// prune removes the stores of containers stopped longer than Retention.
func (d *Driver) prune(now time.Time) {
	err := d.eachState(func(dir string, st pipeline.State) {
		if d.expired(st, now) {
			d.pruneOne(dir, now)
		}
	})
	if err != nil {
		d.log.Error("prune stores", "error", err)
	}
}

// expired reports whether st is the state of a container stopped longer
// than Retention.
func (d *Driver) expired(st pipeline.State, now time.Time) bool {
	return !st.Running && now.Sub(st.Updated) >= d.opts.Retention
}

// pruneOne removes the store in dir. It checks again under the driver's
// lock, with the state as it is then: no StartLogging can begin on a store
// being removed, and a container that logged since prune read its state
// keeps its store.
func (d *Driver) pruneOne(dir string, now time.Time) {
	id := filepath.Base(dir)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byID[id] != nil || d.deliveries[id] != nil {
		return
	}
	st, found, err := pipeline.Load(dir)
	if err != nil || !found || !d.expired(st, now) {
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		d.log.Error("prune store", "container", id, "error", err)
		return
	}
	d.log.Info("removed the log store of a container stopped long ago", "container", id, "stopped", st.Updated)
}
