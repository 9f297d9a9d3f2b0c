package driver

import (
	"crypto/ed25519"
	"fmt"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/node"
	"github.com/ucp-audit/ucp-audit/sink"
)

// Node returns the node configuration in force.
func (d *Driver) Node() node.Config { return *d.node.Load() }

// SetNode applies a new node configuration to running and new streams and
// records the change in the trail (config-changed, with the configuration
// before and after, and subject: who made the change through the
// configuration API, or ""). What it changes at once: alerting (its
// outputs restart, its groups and throttles start again), the trail's files
// (moved, the old files closed with their seals; the record goes into
// both), the seal key (a key seal in the open files; when the files move
// too, the old ones end under the old key and the new ones start under the
// new key, so neither trail changes keys), which containers
// are audit producers, and the audit-level ceiling. The caps apply to
// streams started afterwards. A configuration it cannot apply (a seal key
// it cannot read, files it cannot open) is refused: the one in force stays,
// and the refusal is recorded.
func (d *Driver) SetNode(c node.Config, subject string) error {
	old := d.node.Load()
	if old.Equal(c) {
		return nil
	}
	before, after := old.RedactedJSON(), c.RedactedJSON()
	var key ed25519.PrivateKey
	if c.SealKey != "" {
		var err error
		if key, err = chain.LoadPrivateKey(c.SealKey); err != nil {
			err = fmt.Errorf("ucp-audit: node configuration \"sealKey\": %w", err)
			d.RejectNode(err)
			return err
		}
	}
	ev := d.selfEvent(auditlog.SelfConfigChanged, nil)
	ev.Subject, ev.Old, ev.New = subject, before, after
	oldKey := d.files.Key()
	setKey := func(k ed25519.PrivateKey) {
		if err := d.files.SetKey(k); err != nil {
			d.log.Error("changing the seal key of an open file failed", "error", err)
		}
	}
	keyChanged := c.SealKey != old.SealKey
	d.node.Store(&c)
	d.mu.Lock()
	for _, s := range d.byID {
		s.producer.Store(c.IsProducer(container(s.info)))
	}
	d.mu.Unlock()
	record := func(audit sink.Sink) {
		if err := d.writeSelfTo(audit, ev); err != nil {
			d.log.Warn("cannot record a self-audit event", "event", ev.Type, "error", err)
		}
	}
	if c.Trail == old.Trail {
		// The files in force change keys: a key seal in each, signed
		// with the new key, vouches for what came before.
		if keyChanged {
			setKey(key)
		}
		d.writeSelf(ev)
	} else if err := d.trail.move(c.Trail, moveHooks{
		before: record,
		after:  record,
		// The old files end under the old key, the new ones start
		// under the new one.
		between: func(forward bool) {
			switch {
			case !keyChanged:
			case forward:
				setKey(key)
			default:
				setKey(oldKey)
			}
		},
	}); err != nil {
		// The files in force stay, with their key; so does the rest of
		// the old configuration's trail settings.
		c.Trail, c.SealKey = old.Trail, old.SealKey
		d.node.Store(&c)
		err = fmt.Errorf("ucp-audit: node configuration \"trail\": %w", err)
		d.RejectNode(err)
		return err
	}
	d.alerts.apply(c.Alerts)
	d.log.Info("node configuration applied", "subject", subject)
	return nil
}

// RejectNode records a node configuration that was refused: it did not
// parse, or could not be applied. The one in force stays.
func (d *Driver) RejectNode(err error) {
	d.log.Error("node configuration refused; the one in force stays", "error", err)
	ev := d.selfEvent(auditlog.SelfConfigRejected, nil)
	ev.Detail = "node configuration: " + err.Error()
	d.writeSelf(ev)
}

// RecordRefusal records a client the configuration API refused.
func (d *Driver) RecordRefusal(subject, why string) {
	ev := d.selfEvent(auditlog.SelfConfigRejected, nil)
	ev.Subject, ev.Detail = subject, "configuration API: "+why
	d.writeSelf(ev)
}
