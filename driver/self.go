package driver

import (
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/sink/file"
)

// Self-audit: the plugin records its own lifecycle in the audit trail, as
// audit requirements ask of a logging system (its start, stop and
// failures). The driver decides when; package auditlog owns the record
// (auditlog.Self) and its types, named here as the driver's files use them.
const (
	selfPluginStarted   = auditlog.SelfPluginStarted
	selfPluginStopped   = auditlog.SelfPluginStopped
	selfStreamAttached  = auditlog.SelfStreamAttached
	selfStreamReattach  = auditlog.SelfStreamReattach
	selfStreamDetached  = auditlog.SelfStreamDetached
	selfDestinationDown = auditlog.SelfDestinationDown
	selfDestinationBack = auditlog.SelfDestinationBack
	selfConfigRejected  = auditlog.SelfConfigRejected
	selfInputLost       = auditlog.SelfInputLost
	selfSpoolFull       = auditlog.SelfSpoolFull
)

type selfEvent = auditlog.Self

func (d *Driver) selfEvent(typ string, info *dockerlog.Info) selfEvent {
	ev := selfEvent{Type: typ, Time: time.Now().UTC().Format(time.RFC3339Nano), Host: d.opts.Host, Version: d.opts.Version}
	if info != nil {
		ev.ContainerID, ev.ContainerName = info.ContainerID, info.Name()
	}
	return ev
}

// writeSelf appends ev to s and syncs it.
func writeSelf(s sink.Sink, ev selfEvent) error {
	b, err := auditlog.MarshalSelf(ev)
	if err != nil {
		return err
	}
	if err := s.Write(b); err != nil {
		return err
	}
	return s.Sync()
}

// writeSelfDefault writes ev to the default audit file, opened just for
// it: at plugin start and stop no stream holds it, and a rejected
// configuration has no audit file of its own.
func (d *Driver) writeSelfDefault(ev selfEvent) {
	s, err := d.openSink(file.Options{Path: d.defaultAuditFile(), MaxSize: d.defaultCfg.AuditFileMaxSize, MaxFiles: d.defaultCfg.AuditFileMaxFile})
	if err != nil {
		d.log.Warn("cannot record a self-audit event in the default audit file", "event", ev.Type, "error", err)
		return
	}
	defer s.Close()
	if err := writeSelf(s, ev); err != nil {
		d.log.Warn("cannot record a self-audit event", "event", ev.Type, "error", err)
	}
}

func (d *Driver) defaultAuditFile() string { return d.defaultCfg.AuditFile }
