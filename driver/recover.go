package driver

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/driver/delivery"
	"github.com/ucp-audit/ucp-audit/driver/pipeline"
)

// Recovery after the plugin stopped without StopLogging (a crash, kill -9,
// a disable -f or an upgrade): New re-attaches the streams that were
// running and resumes the deliveries that were not done, from what the
// state directory holds.

// reattach resumes the streams that were running when the plugin stopped
// without StopLogging (a crash, kill -9): dockerd restarts the plugin but
// never calls StartLogging again, while it keeps the FIFO open, so what the
// container wrote meanwhile waits in the pipe. The pipeline resumes from its
// checkpoint, so seq numbering continues.
func (d *Driver) reattach() {
	_ = d.eachState(func(dir string, st pipeline.State) {
		if !st.Running || st.FIFO == "" || validID(st.Info.ContainerID) != nil {
			return
		}
		gone, err := d.reattachOne(dir, st)
		if err != nil {
			d.log.Warn("not re-attaching a stream", "container", st.Info.ContainerID, "fifo", st.FIFO, "reason", err)
			st.Running = false
			if err := pipeline.Save(dir, st); err != nil {
				d.log.Error("save stream state", "container", st.Info.ContainerID, "error", err)
			}
			return
		}
		if gone != nil {
			d.log.Warn("cannot re-attach a stream: handling what was taken from its FIFO, then detaching", "container", st.Info.ContainerID, "fifo", st.FIFO, "reason", gone)
			return
		}
		d.log.Info("re-attached to a running container's stream", "container", st.Info.ContainerID, "fifo", st.FIFO)
	})
}

// reattachOne resumes one stream. When its FIFO is gone, or nobody writes
// it any more (the container ended while the plugin was down, or dockerd
// restarted), it still finishes the stream from what the plugin had taken
// (see startStreamAs), and gone says why the FIFO was not re-opened.
func (d *Driver) reattachOne(dir string, st pipeline.State) (gone, err error) {
	if fi, err := os.Stat(st.FIFO); err != nil {
		gone = err
	} else if fi.Mode()&os.ModeNamedPipe == 0 {
		gone = fmt.Errorf("%s is not a FIFO", st.FIFO)
	}
	cfg, err := config.ParseStored(st.Info.Config, d.configEnv())
	if err != nil {
		return nil, err
	}
	s, err := d.start(st.FIFO, st.Info, cfg, auditlog.SelfStreamReattach, gone, false)
	if err != nil {
		return nil, err
	}
	return s.gone, nil
}

// resumeDeliveries restarts the delivery of events spooled before the
// plugin stopped: containers that are gone or stopped still get every event
// to every destination.
func (d *Driver) resumeDeliveries() {
	_ = d.eachState(func(dir string, st pipeline.State) {
		if _, err := os.Stat(filepath.Join(dir, "spool")); err != nil || validID(st.Info.ContainerID) != nil {
			return
		}
		cfg, err := config.ParseStored(st.Info.Config, d.configEnv())
		if err != nil {
			// The spool stays for when the options parse again (a
			// certificate put back); the audit trail says why it waits.
			d.log.Error("cannot resume delivery: its options no longer parse", "container", st.Info.ContainerID, "error", err)
			ev := d.selfEvent(auditlog.SelfConfigRejected, &st.Info)
			ev.Detail = fmt.Sprintf("spooled events wait undelivered: the container's options no longer parse: %v", err)
			d.writeSelf(ev)
			return
		}
		d.resumeOne(dir, cfg, st)
	})
}

// resumeOne resumes the delivery of one container's spool, unless a
// stream or a delivery of the container runs already.
func (d *Driver) resumeOne(dir string, cfg config.Config, st pipeline.State) {
	info := st.Info
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.deliveries[info.ContainerID] != nil || d.byID[info.ContainerID] != nil {
		return
	}
	targets, err := delivery.NewTargets(cfg, info, d.opts.Host)
	if err != nil || len(targets) == 0 {
		return
	}
	dl, err := d.openDelivery(dir, cfg, info, targets, true)
	if err != nil {
		d.log.Error("cannot resume delivery", "container", info.ContainerID, "error", err)
		return
	}
	d.deliveries[info.ContainerID] = dl
	dl.Finish()
	if d.opts.Retention > 0 && !st.Running {
		dl.GiveUpAt(st.Updated.Add(d.opts.Retention))
	}
	d.log.Info("resumed delivery of spooled events", "container", info.ContainerID)
}
