package driver

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/driver/pipeline"
	"github.com/ucp-audit/ucp-audit/node"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/sink/file"
)

// trail is the node's audit trail: one audit file and one quarantine file,
// named by the node configuration, which every producer's stream, every
// delivery and the driver itself write. The driver opens them once and
// moves them when the node configuration names other files: writers keep
// their views (auditFile and quarantineFile), which follow the move.
type trail struct {
	open  func(file.Options) (sink.Sink, error)
	hooks trailHooks

	mu         sync.RWMutex // held for writing while the files are moved
	settings   node.Trail
	audit      sink.Sink
	quarantine sink.Sink
}

// trailHooks are told of what happens to the trail's files: observe of
// every record written to the audit file (without its newline), failed of
// every failure to write or sync either file (but a line refused as it
// is), synced of every sync that succeeded. All are called with the trail's lock held for reading: they must
// not write to the trail.
type trailHooks struct {
	observe func(line []byte)
	failed  func(err error)
	synced  func() // a sync that succeeded
}

// openTrail opens the files settings names.
func openTrail(settings node.Trail, open func(file.Options) (sink.Sink, error), h trailHooks) (*trail, error) {
	t := &trail{open: open, hooks: h}
	if err := t.openLocked(settings); err != nil {
		return nil, err
	}
	return t, nil
}

func fileOptions(path string, s node.Trail) file.Options {
	return file.Options{Path: path, MaxSize: s.MaxSize, MaxFiles: s.MaxFiles, Compress: s.Compress}
}

func (t *trail) openLocked(s node.Trail) error {
	a, err := t.open(fileOptions(s.AuditFile, s))
	if err != nil {
		return fmt.Errorf("trail.auditFile %s: %w", s.AuditFile, err)
	}
	q, err := t.open(fileOptions(s.QuarantineFile, s))
	if err != nil {
		_ = a.Close()
		return fmt.Errorf("trail.quarantineFile %s: %w", s.QuarantineFile, err)
	}
	t.settings, t.audit, t.quarantine = s, hooked{a, t.hooks, true}, hooked{q, t.hooks, false}
	return nil
}

// moveHooks are what trail.move calls on the way: before and after with
// the audit file as it is then, to record the move in both trails, and
// between with no file open, so that what the files are sealed with
// changes there (forward: on the way to the new files; !forward: on the
// way back to the old ones, when the new ones cannot be opened).
type moveHooks struct {
	before, after func(audit sink.Sink)
	between       func(forward bool)
}

// move closes the files (their close seals end them) and opens the ones s
// names. When the new files cannot be opened, the old ones are opened
// again and the error returned.
func (t *trail) move(s node.Trail, h moveHooks) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s == t.settings {
		return nil
	}
	old := t.settings
	if h.before != nil {
		h.before(t.audit)
	}
	err := errors.Join(t.audit.Close(), t.quarantine.Close())
	if h.between != nil {
		h.between(true)
	}
	if oerr := t.openLocked(s); oerr != nil {
		if h.between != nil {
			h.between(false)
		}
		if rerr := t.openLocked(old); rerr != nil {
			return errors.Join(oerr, rerr)
		}
		return oerr
	}
	if h.after != nil {
		h.after(t.audit)
	}
	return err
}

// Settings returns the files' settings in force.
func (t *trail) Settings() node.Trail {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.settings
}

// writeSelf writes a self record to the audit file and syncs it.
func (t *trail) writeSelf(ev auditlog.Self) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return pipeline.WriteSelf(t.audit, ev)
}

// close closes both files.
func (t *trail) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return errors.Join(t.audit.Close(), t.quarantine.Close())
}

// auditFile and quarantineFile are the writers' views of the files.
func (t *trail) auditFile() sink.Sink      { return trailView{t, false} }
func (t *trail) quarantineFile() sink.Sink { return trailView{t, true} }

// trailView is a sink.Sink onto one of the trail's files, whichever it is
// now. Its Close does nothing: the trail owns the files.
type trailView struct {
	t          *trail
	quarantine bool
}

func (v trailView) file() sink.Sink {
	if v.quarantine {
		return v.t.quarantine
	}
	return v.t.audit
}

func (v trailView) Write(p []byte) error {
	v.t.mu.RLock()
	defer v.t.mu.RUnlock()
	return v.file().Write(p)
}

func (v trailView) Sync() error {
	v.t.mu.RLock()
	defer v.t.mu.RUnlock()
	return v.file().Sync()
}

// hooked is one of the trail's files as the trail holds it: every write and
// sync, whoever makes it, goes past the hooks.
type hooked struct {
	sink.Sink
	h     trailHooks
	audit bool
}

func (f hooked) Write(p []byte) error {
	err := f.Sink.Write(p)
	switch {
	case err == nil && f.audit && f.h.observe != nil:
		f.h.observe(p)
	case err != nil:
		f.fail(err)
	}
	return err
}

func (f hooked) Sync() error {
	err := f.Sink.Sync()
	switch {
	case err != nil:
		f.fail(err)
	case f.h.synced != nil:
		f.h.synced()
	}
	return err
}

func (f hooked) fail(err error) {
	if f.h.failed != nil && !errors.Is(err, sink.ErrRefused) && !errors.Is(err, file.ErrClosed) {
		f.h.failed(err)
	}
}

func (v trailView) Close() error { return nil }
