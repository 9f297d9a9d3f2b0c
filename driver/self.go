package driver

import (
	"fmt"
	"sync"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/driver/pipeline"
	"github.com/ucp-audit/ucp-audit/sink"
)

// Self-audit: the plugin records its own lifecycle in the audit trail, as
// audit requirements ask of a logging system (its start, stop and
// failures). The driver decides when; package auditlog owns the record
// (auditlog.Self) and its types, package pipeline writes it.

// selfEvent returns a self record of type typ, of the container info if
// not nil.
func (d *Driver) selfEvent(typ string, info *dockerlog.Info) auditlog.Self {
	ev := auditlog.Self{Type: typ, Time: time.Now().UTC().Format(time.RFC3339Nano), Host: d.opts.Host, Version: d.opts.Version}
	if info != nil {
		ev.ContainerID, ev.ContainerName = info.ContainerID, info.Name()
	}
	return ev
}

// writeSelfTo writes ev to the audit file s (one the trail holds while it
// moves).
func (d *Driver) writeSelfTo(s sink.Sink, ev auditlog.Self) error { return pipeline.WriteSelf(s, ev) }

// writeSelf writes ev to the node's audit file, logging a failure.
func (d *Driver) writeSelf(ev auditlog.Self) {
	if err := d.trail.writeSelf(ev); err != nil {
		d.log.Warn("cannot record a self-audit event", "event", ev.Type, "error", err)
	}
}

// untrustedLines records, once at the end of a stream of a container that
// is not an audit producer, that its audit-looking lines were not trusted
// (n of them), so that a real producer the node configuration does not
// name gets noticed. At most one such record a second, node-wide.
func (d *Driver) untrustedLines(s *stream, n uint64) {
	if n == 0 {
		return
	}
	s.log.Warn("a container that is not an audit producer printed audit-looking lines: they stayed in its docker logs", "lines", n, "image", s.info.ContainerImageName)
	ok, dropped := d.untrusted.allow()
	if !ok {
		return
	}
	ev := d.selfEvent(auditlog.SelfUntrusted, &s.info)
	ev.Detail = fmt.Sprintf("%d audit-looking lines of image %s (%s) were not trusted: the container is not an audit producer of this node (producers in the node configuration), so they stayed in its docker logs", n, s.info.ContainerImageName, s.info.ContainerImageID)
	if dropped > 0 {
		ev.Detail += fmt.Sprintf(" (and %d more such containers since the last record)", dropped)
	}
	d.writeSelf(ev)
}

// recordLimit lets through one record a second and counts the others.
type recordLimit struct {
	mu      sync.Mutex
	last    time.Time
	dropped int
}

// allow reports whether a record may be written now, and how many were not
// since the last one.
func (l *recordLimit) allow() (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.last) >= time.Second {
		n := l.dropped
		l.last, l.dropped = now, 0
		return true, n
	}
	l.dropped++
	return false, 0
}
