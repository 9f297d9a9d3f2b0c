package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ucp-audit/ucp-audit/alert"
	"github.com/ucp-audit/ucp-audit/alert/output"
	"github.com/ucp-audit/ucp-audit/atomicfile"
	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/driver/delivery"
	"github.com/ucp-audit/ucp-audit/driver/pipeline"
	"github.com/ucp-audit/ucp-audit/node"
	"github.com/ucp-audit/ucp-audit/spool"
)

// Alerting: the node configuration's "alerts" section runs here (package
// alert decides, package alert/output formats and sends). Every record
// written to the node's audit file is observed by the alert Engine (the
// trail calls observe after each write). The alerts it raises wait in a
// queue for one goroutine, which formats each for its output, appends it
// to that output's spool (StateDir/alerts/<output>/spool), records an
// alert-fired self record, and lets a delivery worker send it, at least
// once, with the retries, gap records and destination-down records of any
// destination. The same goroutine writes the self records that cannot be
// written where they arise (a failing audit file, a seal record that
// could not be kept): when the audit file does not take one, alerting
// still sees it.

// Tuning of alerting.
const (
	// alertTick is how often the Engine's timers (a destination that
	// stays down) are looked at.
	alertTick = 2 * time.Second
	// alertQueue bounds the alerts and records waiting for the goroutine;
	// past it they are counted and said in the next alert-fired record.
	alertQueue = 10000
	// alertSpoolSize bounds each output's spool; a full one drops the
	// oldest alerts, recorded as a gap.
	alertSpoolSize = 64 << 20
)

// alerting is the driver's alerting; its zero value is unusable (see
// newAlerting).
type alerting struct {
	d      *Driver
	engine atomic.Pointer[alert.Engine] // nil: no alerting

	mu      sync.Mutex // guards queue, records, dropped and closed; never held while writing
	queue   []alert.Alert
	records []auditlog.Self // self records to write (see recordLater)
	dropped int             // alerts and records not queued (alertQueue)
	closed  bool

	outMu   sync.Mutex // guards outputs and applied: apply, and run while it appends
	outputs map[string]*alertOutput
	applied *node.Alerts
	once    sync.Once // close

	wake chan struct{} // a send says the queue has something
	stop chan struct{} // closed by close
	done chan struct{} // closed when run returns

	seq      uint64 // the last alert's seq (see loadSeq); run's only
	warn     rate.Sometimes
	failing  rate.Sometimes // one sink-failing record a minute
	chainErr rate.Sometimes // one chain-error record a minute
}

// alertOutput is one output and the delivery of its spool.
type alertOutput struct {
	out alert.Output
	dl  *delivery.Delivery
}

// newAlerting sets up a (made before d's files, so that their callbacks can
// name it) for d; start starts its goroutine once d's trail is open: until
// then, what it is given waits.
func newAlerting(d *Driver, a *alerting) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.d, a.outputs = d, map[string]*alertOutput{}
	a.wake, a.stop, a.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	a.warn = rate.Sometimes{Interval: time.Minute}
	a.failing = rate.Sometimes{Interval: time.Minute}
	a.chainErr = rate.Sometimes{Interval: time.Minute}
	a.seq = a.loadSeq()
}

func (a *alerting) start() { go a.run() }

// dir is where the alert outputs' spools and the seq are.
func (a *alerting) dir() string { return filepath.Join(a.d.opts.StateDir, "alerts") }

// outputDest is an alert output's name as a destination: in its spool
// cursor, records and metrics.
func outputDest(name string) string { return "alert:" + name }

var plainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// outputDir is the directory of an output's spool: its name when that is
// a plain file name, else a hash of it.
func (a *alerting) outputDir(name string) string {
	if !plainName.MatchString(name) {
		sum := sha256.Sum256([]byte(name))
		name = "h-" + hex.EncodeToString(sum[:8])
	}
	return filepath.Join(a.dir(), name)
}

// apply makes al (nil: none) the alerting in force: a new Engine (groups,
// counts and throttles start again) and a delivery for each output. The
// deliveries of the outputs before stop at their last commit; an output
// that stays resumes from there. An output that cannot be set up (a CA or
// secret file that does not load) is refused and recorded; the others run.
func (a *alerting) apply(al *node.Alerts) {
	a.outMu.Lock()
	defer a.outMu.Unlock()
	if a.isClosed() || a.applied.Equal(al) {
		return
	}
	a.stopOutputsLocked()
	a.applied = al
	if al == nil || len(al.Rules.Outputs()) == 0 {
		a.engine.Store(nil)
		return
	}
	for _, out := range al.Rules.Outputs() {
		if err := a.openOutputLocked(out); err != nil {
			a.d.log.Error("alert output not started", "output", out.Name, "url", out.Redacted(), "error", err)
			ev := a.d.selfEvent(auditlog.SelfConfigRejected, nil)
			ev.Destination = outputDest(out.Name)
			ev.Detail = fmt.Sprintf("alert output %q (%s): %v: its alerts are not sent", out.Name, out.Redacted(), err)
			a.recordLater(ev)
		}
	}
	a.engine.Store(alert.NewEngine(al.Rules, alert.Options{
		Host: a.d.opts.Host,
		OnEvalError: func(rule string, err error, suppressed uint64) {
			a.d.log.Warn("an alert rule failed to evaluate; it did not fire", "rule", rule, "error", err, "more", suppressed)
		},
	}))
	a.signal()
}

func (a *alerting) openOutputLocked(out alert.Output) error {
	fwd, err := output.New(out)
	if err != nil {
		return err
	}
	cfg := config.Config{SpoolMaxSize: alertSpoolSize, SpoolFull: spool.Drop}
	dl, err := a.d.openDelivery(a.outputDir(out.Name), cfg, dockerlog.Info{}, []delivery.Target{delivery.NewTarget(outputDest(out.Name), fwd)}, false)
	if err != nil {
		return err
	}
	a.outputs[out.Name] = &alertOutput{out: out, dl: dl}
	return nil
}

func (a *alerting) stopOutputsLocked() {
	for name, o := range a.outputs {
		o.dl.Stop()
		delete(a.outputs, name)
	}
}

// observe runs the Engine over one record just written to the audit file
// (without its newline); the alerts wait for the goroutine. It is called
// with the trail's lock held and must not write to it.
func (a *alerting) observe(line []byte) {
	e := a.engine.Load()
	if e == nil {
		return
	}
	if alerts := e.Observe(line, time.Now()); len(alerts) > 0 {
		a.enqueue(alerts, nil)
	}
}

// recordLater queues a self record for the goroutine to write: for those
// that arise where the trail cannot be written (inside a write that
// failed, with a file's lock held).
func (a *alerting) recordLater(ev auditlog.Self) { a.enqueue(nil, &ev) }

func (a *alerting) enqueue(alerts []alert.Alert, ev *auditlog.Self) {
	a.mu.Lock()
	n := len(a.queue) + len(a.records)
	switch {
	case a.closed:
	case n+len(alerts) > alertQueue:
		a.dropped += len(alerts)
	case ev != nil && n >= alertQueue:
		a.dropped++
	case ev != nil:
		a.records = append(a.records, *ev)
	default:
		a.queue = append(a.queue, alerts...)
	}
	a.mu.Unlock()
	a.signal()
}

func (a *alerting) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

func (a *alerting) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// sinkFailing notes that writing or syncing one of the trail's files
// failed: a sink-failing record, at most one a minute.
func (a *alerting) sinkFailing(err error) {
	a.failing.Do(func() {
		ev := a.d.selfEvent(auditlog.SelfSinkFailing, nil)
		ev.Detail = err.Error()
		a.recordLater(ev)
	})
}

// chainError notes that the chain could not be kept (the record of a
// seal): a chain-error record, at most one a minute.
func (a *alerting) chainError(path string, err error) {
	if a.d == nil {
		return // files are opened only once d is set up
	}
	a.chainErr.Do(func() {
		ev := a.d.selfEvent(auditlog.SelfChainError, nil)
		ev.Detail = fmt.Sprintf("%s: %v", path, err)
		a.recordLater(ev)
	})
}

// run is the goroutine: it delivers what is queued, and what the Engine's
// timers raise, until close; then it delivers what is left once more.
func (a *alerting) run() {
	defer close(a.done)
	t := time.NewTicker(alertTick)
	defer t.Stop()
	var unwritten []auditlog.Self // records the audit file did not take yet
	for {
		stopping := false
		select {
		case <-a.wake:
		case <-t.C:
		case <-a.stop:
			stopping = true
		}
		a.mu.Lock()
		alerts, records, dropped := a.queue, a.records, a.dropped
		a.queue, a.records, a.dropped = nil, nil, 0
		a.mu.Unlock()
		if e := a.engine.Load(); e != nil {
			alerts = append(alerts, e.Tick(time.Now())...)
		}
		unwritten = a.writeAll(unwritten, false)
		unwritten = append(unwritten, a.writeAll(records, true)...)
		if len(unwritten) > maxUnwritten {
			a.d.log.Error("self records the audit file did not take were dropped", "records", len(unwritten)-maxUnwritten)
			unwritten = unwritten[len(unwritten)-maxUnwritten:]
		}
		a.deliver(alerts, dropped)
		if stopping {
			return
		}
	}
}

// maxUnwritten bounds the self records kept for the audit file while it
// does not take them.
const maxUnwritten = 1000

// writeAll writes records to the audit file and returns those it did not
// take, to be tried again on the next round. New records (first) that the
// file does not take are observed all the same, so that alerting sees
// them, once.
func (a *alerting) writeAll(records []auditlog.Self, first bool) []auditlog.Self {
	var left []auditlog.Self
	for i, ev := range records {
		if len(left) > 0 {
			// The file failed this round: the rest waits, in order.
			left = append(left, records[i:]...)
			if first {
				for _, ev := range records[i:] {
					a.observeRecord(ev)
				}
			}
			break
		}
		if err := a.d.trail.writeSelf(ev); err != nil {
			a.warn.Do(func() {
				a.d.log.Warn("cannot record a self-audit event yet; trying again", "event", ev.Type, "error", err)
			})
			left = append(left, ev)
			if first {
				a.observeRecord(ev)
			}
		}
	}
	return left
}

func (a *alerting) observeRecord(ev auditlog.Self) {
	if line, err := auditlog.MarshalSelf(ev); err == nil {
		a.observe(line)
	}
}

// write writes a self record to the audit file; when the file does not
// take it, alerting sees it all the same.
func (a *alerting) write(ev auditlog.Self) {
	if err := a.d.trail.writeSelf(ev); err != nil {
		a.d.log.Warn("cannot record a self-audit event", "event", ev.Type, "error", err)
		a.observeRecord(ev)
	}
}

// deliver appends each alert to its output's spool, makes them durable,
// and records each in the trail.
func (a *alerting) deliver(alerts []alert.Alert, dropped int) {
	if len(alerts) == 0 && dropped == 0 {
		return
	}
	a.outMu.Lock()
	defer a.outMu.Unlock() // apply waits: the outputs stay as they are meanwhile
	touched := map[*alertOutput]bool{}
	for i, al := range alerts {
		o := a.outputs[al.Output]
		if o == nil {
			a.warn.Do(func() {
				a.d.log.Warn("an alert's output is not running; the alert is recorded, not sent", "rule", al.Rule, "output", al.Output)
			})
		}
		ev := a.d.selfEvent(auditlog.SelfAlertFired, nil)
		ev.ContainerID, ev.ContainerName = al.Record.ContainerID, al.Record.ContainerName
		ev.Rule, ev.Destination, ev.Severity = al.Rule, outputDest(al.Output), string(al.Severity)
		ev.AlertID, ev.AuditID = output.ID(al), al.Record.AuditID
		ev.Detail = al.Summary()
		if i == 0 && dropped > 0 {
			ev.Detail += fmt.Sprintf(" (%d alerts and records were not raised: more than %d waited)", dropped, alertQueue)
		}
		if o != nil {
			if err := a.append(o, al); err != nil {
				ev.Detail += "; not sent: " + err.Error()
			} else {
				touched[o] = true
			}
		}
		a.d.opts.Metrics.AlertFired(al.Rule)
		a.write(ev)
	}
	for o := range touched {
		if err := o.dl.Spool().Sync(); err != nil {
			a.d.log.Error("alert spool sync", "output", o.out.Name, "error", err)
		}
	}
	if len(alerts) > 0 {
		a.saveSeq()
	}
}

// append formats al for its output and adds it to the output's spool; a
// full spool drops the oldest alerts, recorded as a gap.
func (a *alerting) append(o *alertOutput, al alert.Alert) error {
	ev, err := output.Event(o.out.Type, al)
	if err != nil {
		return err
	}
	a.seq++
	ev.Seq = a.seq
	gaps, err := o.dl.Spool().Append(context.Background(), ev)
	for _, g := range gaps {
		a.gap(auditlog.Gap{Destination: g.Destination, Lost: g.Lost, FirstSeq: g.FirstSeq, LastSeq: g.LastSeq,
			Reason: fmt.Sprintf("alert spool full (%d bytes): oldest unsent alerts discarded", alertSpoolSize)})
	}
	var we *spool.WriteError
	if errors.As(err, &we) {
		return fmt.Errorf("the alert spool could not write it: %w", we.Err)
	}
	return err
}

// gap records alerts an output will never get.
func (a *alerting) gap(g auditlog.Gap) {
	a.d.opts.Metrics.Lost(g.Destination, g.Lost)
	out := a.d.outputs()
	if _, err := pipeline.RecordGap(g, dockerlog.Info{}, out.audit, out.quarantine); err != nil {
		a.d.log.Error("recording lost alerts failed", "gap", g, "error", err)
	}
	a.d.log.Warn("alerts lost for an output", "output", g.Destination, "lost", g.Lost, "reason", g.Reason)
}

// The seq of alerts goes on across restarts (a gap record names the seqs
// an output lost): StateDir/alerts/seq.json.
type alertSeq struct {
	Seq uint64 `json:"seq"`
}

func (a *alerting) seqPath() string { return filepath.Join(a.dir(), "seq.json") }

func (a *alerting) loadSeq() uint64 {
	b, err := os.ReadFile(a.seqPath())
	var s alertSeq
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		a.d.log.Warn("alert seq unreadable: numbering starts again", "error", err)
	}
	return s.Seq
}

func (a *alerting) saveSeq() {
	b, _ := json.Marshal(alertSeq{Seq: a.seq})
	err := os.MkdirAll(a.dir(), 0o700)
	if err == nil {
		err = atomicfile.WriteFile(a.seqPath(), b, 0o600)
	}
	if err != nil {
		a.warn.Do(func() { a.d.log.Warn("alert seq not saved", "error", err) })
	}
}

// close delivers what is queued, stops the goroutine and the outputs'
// deliveries at their last commit.
func (a *alerting) close() {
	a.once.Do(func() {
		close(a.stop)
		<-a.done
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		a.engine.Store(nil)
		a.outMu.Lock()
		a.stopOutputsLocked()
		a.outMu.Unlock()
	})
}
