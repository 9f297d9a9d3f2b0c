package driver

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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

// janitor removes stores of stopped containers: those stopped longer than
// Retention, and, while the stores together hold more than the node's
// caps.storeTotal, the longest stopped ones, so that private copies of
// logs never fill the disk unnoticed.
func (d *Driver) janitor() {
	defer d.wg.Done()
	t := time.NewTicker(janitorInterval)
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

// janitorInterval is how often the janitor looks at the stores: the total
// may exceed caps.storeTotal by what the running containers write in that
// time (each bounded by max-size × max-file).
const janitorInterval = 5 * time.Minute

// prune removes the stores of containers stopped longer than Retention,
// then those of stopped containers, the longest stopped first, while the
// stores together exceed caps.storeTotal. Running containers' stores count
// towards the total but are never removed.
func (d *Driver) prune(now time.Time) {
	type stopped struct {
		dir     string
		updated time.Time
		size    int64
	}
	var total int64
	var candidates []stopped
	err := d.eachState(func(dir string, st pipeline.State) {
		if d.expired(st, now) && d.pruneOne(dir, func(st pipeline.State) bool { return d.expired(st, now) }) {
			d.log.Info("removed the log store of a container stopped long ago", "container", filepath.Base(dir), "stopped", st.Updated)
			return
		}
		size := dirSize(dir)
		total += size
		if !st.Running {
			candidates = append(candidates, stopped{dir, st.Updated, size})
		}
	})
	if err != nil {
		d.log.Error("prune stores", "error", err)
		return
	}
	limit := d.Node().Caps.StoreTotal
	slices.SortFunc(candidates, func(a, b stopped) int { return a.updated.Compare(b.updated) })
	for _, c := range candidates {
		if total <= limit {
			return
		}
		// Only if it has not logged since: a container started again
		// keeps its store.
		if d.pruneOne(c.dir, func(st pipeline.State) bool { return !st.Running && !st.Updated.After(c.updated) }) {
			total -= c.size
			d.log.Warn("removed the log store of a stopped container: the stores exceed the node's caps.storeTotal (docker logs of it is gone; the audit trail is not affected)",
				"container", filepath.Base(c.dir), "stopped", c.updated, "bytes", c.size, "storeTotal", limit)
		}
	}
}

// expired reports whether st is the state of a container stopped longer
// than Retention.
func (d *Driver) expired(st pipeline.State, now time.Time) bool {
	return !st.Running && now.Sub(st.Updated) >= d.opts.Retention
}

// pruneOne removes the store in dir and reports whether it did. It checks
// again under the driver's lock, with the state as it is then (still
// removable): no StartLogging can begin on a store being removed, and a
// container that logged since prune read its state keeps its store.
func (d *Driver) pruneOne(dir string, still func(pipeline.State) bool) bool {
	id := filepath.Base(dir)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byID[id] != nil || d.deliveries[id] != nil {
		return false
	}
	st, found, err := pipeline.Load(dir)
	if err != nil || !found || !still(st) {
		return false
	}
	if err := os.RemoveAll(dir); err != nil {
		d.log.Error("prune store", "container", id, "error", err)
		return false
	}
	return true
}

// dirSize returns the bytes of the regular files below dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	return n
}
