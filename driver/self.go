package driver

import (
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/driver/pipeline"
	"github.com/ucp-audit/ucp-audit/sink/file"
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

// writeSelfDefault writes ev to the default audit file, opened just for
// it: at plugin start and stop no stream holds it, and a rejected
// configuration has no audit file of its own.
func (d *Driver) writeSelfDefault(ev auditlog.Self) {
	s, err := d.openSink(file.Options{Path: d.defaultAuditFile(), MaxSize: d.defaultCfg.AuditFileMaxSize, MaxFiles: d.defaultCfg.AuditFileMaxFile})
	if err != nil {
		d.log.Warn("cannot record a self-audit event in the default audit file", "event", ev.Type, "error", err)
		return
	}
	defer s.Close()
	if err := pipeline.WriteSelf(s, ev); err != nil {
		d.log.Warn("cannot record a self-audit event", "event", ev.Type, "error", err)
	}
}

func (d *Driver) defaultAuditFile() string { return d.defaultCfg.AuditFile }
