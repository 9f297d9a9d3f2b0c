//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// daemon is a dockerd of the test's own: its own data root, exec root,
// socket, containerd namespaces and cgroup parent, so that restarting it
// leaves the suite's daemon alone. Its plugin writes to directories of the
// test (settable mount sources), never to the suite's.
type daemon struct {
	t    *testing.T
	dir  string   // data and exec roots, log
	host string   // -H value
	args []string // more dockerd flags
	cmd  *exec.Cmd
	done chan struct{}
}

func newDaemon(t *testing.T) *daemon {
	t.Helper()
	// Short: the plugin's socket goes under the exec root, and a unix
	// socket path has at most 108 bytes.
	dir, err := os.MkdirTemp("", "ud")
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, dir: dir, host: "unix://" + filepath.Join(dir, "d.sock")}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "dockerd.log")); err == nil {
				t.Logf("second dockerd log (last 4 KB):\n%s", b[max(0, len(b)-4096):])
			}
		}
		// Overlay mounts of its containers are gone once it stopped.
		os.RemoveAll(dir)
	})
	d.start()
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	logf, err := os.OpenFile(filepath.Join(d.dir, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	defer logf.Close()
	d.cmd = exec.Command("dockerd", append([]string{
		"--data-root", filepath.Join(d.dir, "root"),
		"--exec-root", filepath.Join(d.dir, "x"),
		"--pidfile", filepath.Join(d.dir, "dockerd.pid"),
		"-H", d.host,
		"--bridge=none", "--iptables=false",
		"--containerd-namespace", "ucp-audit-e2e",
		"--containerd-plugins-namespace", "ucp-audit-e2e-plugins",
		"--cgroup-parent", "ucp-audit-e2e",
	}, d.args...)...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("starting a second dockerd: %v", err)
	}
	d.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(d.cmd, d.done)
	if !peers.WaitUntil(60*time.Second, func() bool {
		_, _, err := docker(nil, "-H", d.host, "info")
		return err == nil
	}) {
		d.t.Fatal("the second dockerd did not answer within 60 s")
	}
}

// stop shuts dockerd down as an init system does: SIGTERM, and wait. It
// stops its containers and plugins first.
func (d *daemon) stop() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		d.t.Error("the second dockerd did not stop within 60 s of SIGTERM")
	}
	d.cmd = nil
}

func (d *daemon) docker(args ...string) string {
	d.t.Helper()
	return mustDocker(d.t, append([]string{"-H", d.host}, args...)...)
}

// TestDockerdRestart runs the plugin as the engine's default log driver
// (daemon.json's "log-driver", as on a UCP manager) and restarts
// dockerd under it: once after a container has finished, once while one is
// still writing, with a --restart always controller that dockerd starts
// again. dockerd stops the running containers and calls StopLogging before
// it stops the plugin; when it comes back it enables the plugin again.
// Every event written before the restart is in audit.log, numbered without
// a gap or a repeat, docker logs still serves the containers' output from
// the new plugin process, and containers started again go on with their
// numbering.
func TestDockerdRestart(t *testing.T) {
	d := newDaemon(t)
	outDir, stDir := tempUnder(t, logDir), tempUnder(t, stateDir)
	d.docker("plugin", "create", pluginName, filepath.Join(repoRoot, "build", "plugin"))
	d.docker("plugin", "set", pluginName, "audit-log-dir.source="+outDir, "state-dir.source="+stDir)
	d.docker("plugin", "enable", "--timeout", "0", pluginName)
	if err := importEmitterImage(emitterBin, "-H", d.host); err != nil {
		t.Fatal(err)
	}
	// The engine-wide default, through daemon.json as on a UCP manager
	// (docs/install.md): dockerd checks the driver at start, so the plugin
	// is installed first. Its log-opts reach every container.
	conf := filepath.Join(d.dir, "daemon.json")
	if err := os.WriteFile(conf, []byte(`{"log-driver": "`+pluginName+`", "log-opts": {"max-size": "20m", "max-file": "3"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d.stop()
	d.args = []string{"--config-file", conf}
	d.start()
	waitPluginEnabled(t, d)
	if drv := strings.TrimSpace(d.docker("info", "--format", "{{.LoggingDriver}}")); drv != pluginName {
		t.Fatalf("dockerd's default log driver is %q", drv)
	}
	audit := filepath.Join(outDir, "audit.log")

	// 0. The controller, restarted by dockerd whenever it exits.
	ctlArgs := []string{"-seed", "71", "-n", "20", "-big", "0", "-malformed=false", "-ignored=false", "-stderr=false", "-ordinary", "0", "-sleep", "20ms"}
	ctlRun := len(emit(t, ctlArgs...).Forwarded())
	ctl := strings.TrimSpace(d.docker(append([]string{"run", "-d", "--name", "controller", "--restart", "always", "--network", "none", emitterImage, "/emitter"}, ctlArgs...)...))
	if !peers.WaitUntil(60*time.Second, func() bool { return readSeqStats(t, audit, ctl).maxSeq >= 2*ctlRun }) {
		t.Fatal("the controller's events, restarted once, do not reach audit.log")
	}

	// 1. A container that has finished.
	doneArgs := []string{"-n", "100", "-big", "1", "-malformed=false", "-ignored=false", "-stderr=false"}
	doneEm := emit(t, doneArgs...)
	d.docker(append([]string{"run", "--name", "finished", "--network", "none", emitterImage, "/emitter"}, doneArgs...)...)
	// 2. One still writing when dockerd goes down (about 40 s of output;
	// dockerd's shutdown stops it long before).
	runArgs := []string{"-n", "5000", "-big", "0", "-malformed=false", "-ignored=false", "-stderr=false", "-ordinary", "0", "-sleep", "1ms"}
	runEm := emit(t, runArgs...)
	running := strings.TrimSpace(d.docker(append([]string{"run", "-d", "--name", "running", "--network", "none", emitterImage, "/emitter"}, runArgs...)...))
	finished := strings.TrimSpace(d.docker("inspect", "--format", "{{.Id}}", "finished"))
	if !peers.WaitUntil(30*time.Second, func() bool { return readSeqStats(t, audit, running).maxSeq >= 100 }) {
		t.Fatal("the running container's events do not reach audit.log")
	}

	start := time.Now()
	ctlBefore := readSeqStats(t, audit, ctl).maxSeq
	d.stop()
	t.Logf("dockerd stopped in %v", time.Since(start).Round(time.Millisecond))
	d.start()
	waitPluginEnabled(t, d)

	// The controller: started again by dockerd, numbered on, no hole.
	if !peers.WaitUntil(60*time.Second, func() bool { return readSeqStats(t, audit, ctl).maxSeq >= ctlBefore+ctlRun }) {
		t.Fatalf("the controller's events after the dockerd restart do not reach audit.log (seq %d before)", ctlBefore)
	}
	d.docker("update", "--restart", "no", "controller")
	d.docker("stop", "controller")
	ctlSt := readSeqStats(t, audit, ctl)
	checkSeqs(t, "controller", ctlSt, ctlSt.maxSeq)

	// The finished container: all its events, once each, 1..n.
	fin := readSeqStats(t, audit, finished)
	checkSeqs(t, "finished", fin, len(doneEm.Forwarded()))
	// The stopped one: a prefix of its output, 1..k, nothing after a hole.
	run := readSeqStats(t, audit, running)
	checkSeqs(t, "running", run, run.maxSeq)
	if fin.duplicates+run.duplicates > 0 {
		t.Errorf("duplicates across a clean dockerd restart: %d and %d", fin.duplicates, run.duplicates)
	}
	for i, w := range runEm.Forwarded()[:run.maxSeq] {
		if run.keys[w.Key()] != 1 {
			t.Fatalf("running: event %d (%v) not in audit.log once, but the ones after it are", i+1, w.Key())
		}
	}
	t.Logf("running container: %d of %d events written before dockerd stopped it", run.maxSeq, len(runEm.Forwarded()))

	// docker logs, now served by the new plugin process.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _, err := docker(ctx, "-H", d.host, "logs", "finished")
	if err != nil {
		t.Fatal(err)
	}
	if out != doneEm.Stdout {
		t.Errorf("docker logs after the restart: %d bytes, want the %d the container wrote", len(out), len(doneEm.Stdout))
	}
	out, _, err = docker(ctx, "-H", d.host, "logs", "running")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, `"auditID"`); n != run.maxSeq {
		t.Errorf("docker logs of the stopped container has %d audit lines, audit.log %d", n, run.maxSeq)
	}

	// Started again, the finished container numbers on.
	d.docker("start", "-a", "finished")
	peers.WaitUntil(30*time.Second, func() bool { return readSeqStats(t, audit, finished).maxSeq >= 2*len(doneEm.Forwarded()) })
	again := readSeqStats(t, audit, finished)
	checkSeqs(t, "finished, started again", again, 2*len(doneEm.Forwarded()))
}

// waitPluginEnabled waits until d's plugin is enabled after d started.
func waitPluginEnabled(t *testing.T, d *daemon) {
	t.Helper()
	if !peers.WaitUntil(30*time.Second, func() bool {
		out, _, err := docker(nil, "-H", d.host, "plugin", "inspect", "--format", "{{.Enabled}}", pluginName)
		return err == nil && strings.TrimSpace(out) == "true"
	}) {
		t.Fatal("the plugin is not enabled after dockerd started")
	}
}

// checkSeqs checks that a container's events carry seq 1..n, each once.
func checkSeqs(t *testing.T, what string, st seqStats, n int) {
	t.Helper()
	holes := 0
	for s := 1; s <= st.maxSeq; s++ {
		if !st.seqs[s] {
			holes++
		}
	}
	if st.maxSeq != n || holes > 0 || st.gaps > 0 {
		t.Errorf("%s: seq 1..%d with %d holes and %d records of loss; want 1..%d",
			what, st.maxSeq, holes, st.gaps, n)
	}
}
