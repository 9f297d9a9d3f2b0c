//go:build e2e && bench

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// TestBench is `make bench`: the fake controller prints BENCH_N (300,000)
// metadata audit lines under each log driver, interleaved, BENCH_ROUNDS (5)
// times, then BENCH_N/60 request events of 20-40 KiB under json-file, the
// discard plugin and ucp-audit (file); the medians are written to BENCH_OUT
// (build/bench.md). It measures, never asserts: machines are noisy, and
// BENCHMARKS.md reads the numbers.
//
//   - json-file: Docker's default driver;
//   - syslog: Docker's built-in syslog driver to a local rsyslog over TCP;
//   - discard: tests/discard, a plugin that decodes frames and drops them,
//     the floor of any log-driver plugin;
//   - ucp-audit: the file sink only;
//   - ucp-audit+remote: file, RELP to rsyslog and Beats to go-lumber.
//
// Per run: run-to-exit (docker run -d to docker wait), the time from the
// exit until the last event is in every destination, the CPU seconds of the
// plugin process and of dockerd per 100,000 events, and the plugin's peak
// RSS (VmHWM, reset before each run).
func TestBench(t *testing.T) {
	n := envInt(t, "BENCH_N", 300000)
	rounds := envInt(t, "BENCH_ROUNDS", 5)
	out := os.Getenv("BENCH_OUT")
	// BENCH_ONLY, a regular expression, picks workloads by name (to
	// measure one change quickly); empty: all of them.
	var only *regexp.Regexp
	if v := os.Getenv("BENCH_ONLY"); v != "" {
		var err error
		if only, err = regexp.Compile(v); err != nil {
			t.Fatalf("BENCH_ONLY: %v", err)
		}
	}
	if out == "" {
		out = filepath.Join(repoRoot, "build", "bench.md")
	}
	installDiscard(t)
	rs := peers.StartRsyslog(t, t.TempDir())
	d, _ := ownTrail(t, "trail.maxSize=-1") // one file, whatever the runs write
	var b bytes.Buffer
	host, _ := os.Hostname()
	cpus, _ := exec.Command("nproc").Output()
	dv, _ := exec.Command("docker", "version", "--format", "{{.Server.Version}}").Output()
	fmt.Fprintf(&b, "Run %s on %s (%s CPUs, Docker %s), %d rounds, medians.\n",
		time.Now().UTC().Format(time.RFC3339), host, strings.TrimSpace(string(cpus)), strings.TrimSpace(string(dv)), rounds)
	for _, w := range []benchWorkload{
		{name: "metadata events", args: []string{"-n", strconv.Itoa((n + 5) / 6), "-big", "0"}, all: true},
		// Request-level events of 20 and 40 KiB, which dockerd splits into
		// 16 KiB partial frames: a sixtieth as many lines, about as many bytes.
		{name: "request events (20-40 KiB, partial frames)", args: []string{"-n", "0", "-big", strconv.Itoa(max(n/120, 1))}},
		// A fast producer: 6,000 distinct metadata events and one ordinary
		// line every ten, made once and printed over and over, so that the
		// producer's own CPU does not hide the plugin's share (issue 15).
		{name: "fast producer: metadata events", args: []string{"-n", "1000", "-big", "0", "-ordinary", "600", "-repeat", strconv.Itoa(max(n/6000, 1))}, all: true},
		// What the other containers write when ucp-audit is the engine's
		// default: plain log lines (logrus JSON, logfmt, text), printed as
		// fast.
		{name: "fast producer: plain lines", args: []string{"-n", "0", "-big", "0", "-ordinary", "3000", "-repeat", strconv.Itoa(max(n/3000, 1))}},
		// A UCP API user's worst case for the plugin's memory: request
		// payloads of 4 MB that are JSON arrays of two million zeros. The
		// peak RSS column is what issue 11 bounds (128 MiB).
		{name: "4 MB array payloads", args: []string{"-n", "0", "-big", "0", "-arrays", "10"}},
	} {
		if only != nil && !only.MatchString(w.name) {
			continue
		}
		benchWorkloadRun(t, w, rounds, rs, d, &b)
	}
	t.Logf("\n%s", b.String())
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err == nil {
		if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
			t.Error(err)
		}
		t.Logf("written to %s", out)
	}
}

// benchWorkload is one emitter workload; all runs it under every driver,
// otherwise only json-file, the discard plugin and ucp-audit (file).
type benchWorkload struct {
	name string
	args []string
	all  bool
}

// benchWorkloadRun runs w under the drivers, interleaved, rounds times, and
// appends the table of medians to b.
func benchWorkloadRun(t *testing.T, w benchWorkload, rounds int, rs *peers.Rsyslog, d Dir, b *bytes.Buffer) {
	syslogLines := &lineCounter{path: filepath.Join(rs.Dir, "msgs.log")}
	// The workload's own flags come last: they win.
	args := append([]string{"-malformed=false", "-ignored=false", "-stderr=false", "-ordinary", "0"}, w.args...)
	em := emit(t, args...)
	events := len(em.Forwarded())
	lines := len(em.StdoutLines())
	t.Logf("workload %s: %d audit lines, %d lines in all (%d MB) per run", w.name, events, lines, len(em.Stdout)>>20)
	// CPU is per 100,000 audit events, or per 100,000 lines when there are
	// none (plain lines).
	perUnit, unit := events, "events"
	if events == 0 {
		perUnit, unit = lines, "lines"
	}
	type config struct {
		name, driver string
		opts         func(run int) []string
		plugin       string // process name of the plugin, "" for built-in drivers
		beats        bool
	}
	var beats *peers.Beats
	configs := []config{
		{"json-file", "json-file", func(int) []string { return nil }, "", false},
		{"syslog (built-in, TCP to rsyslog)", "syslog", func(int) []string {
			return []string{fmt.Sprintf("syslog-address=tcp://127.0.0.1:%d", rs.TCPPort), "syslog-format=rfc5424"}
		}, "", false},
		{"discard plugin", "ucp-audit-discard", func(int) []string { return nil }, "discard", false},
		{"ucp-audit (file)", pluginName, func(int) []string { return nil }, "ucp-audit", false},
		{"ucp-audit (file+RELP+Beats)", pluginName, func(int) []string {
			return []string{fmt.Sprintf("syslog-address=relp://127.0.0.1:%d", rs.RELPPort), "logstash-address=beats://" + beats.Addr}
		}, "ucp-audit", true},
	}
	if !w.all {
		configs = slices.DeleteFunc(configs, func(c config) bool { return c.driver == "syslog" || c.beats })
	}
	if v := os.Getenv("BENCH_DRIVERS"); v != "" {
		// A regular expression on the drivers' names in the table, to
		// measure one change quickly; empty: all of them.
		re, err := regexp.Compile(v)
		if err != nil {
			t.Fatalf("BENCH_DRIVERS: %v", err)
		}
		configs = slices.DeleteFunc(configs, func(c config) bool { return !re.MatchString(c.name) })
	}
	type sample struct{ exit, durable, pluginCPU, dockerdCPU, rss float64 }
	results := make([][]sample, len(configs))
	run := 0
	for r := 0; r < rounds; r++ {
		for i, c := range configs {
			run++
			if c.beats {
				beats = peers.StartBeats(t)
			}
			opts := c.opts(run)
			pluginPID := 0
			if c.plugin != "" {
				pluginPID = pidOf(t, c.plugin)
				os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pluginPID), []byte("5"), 0) // reset VmHWM
			}
			dockerdPID := pidOf(t, "dockerd")
			cpu0, dcpu0 := cpuSeconds(t, pluginPID), cpuSeconds(t, dockerdPID)
			syslogBefore := syslogLines.count(t)
			trailBefore := trailEnd(t, d.Audit) // the run's events come after it

			start := time.Now()
			c0, stderr, err := startContainer(t, c.driver, opts, args...)
			if err != nil {
				t.Fatalf("%s: docker run: %v\n%s", c.name, err, stderr)
			}
			waitExit(t, c0)
			exited := time.Now()

			// Durable in every destination.
			var done func() bool
			switch {
			case c.driver == "json-file":
				done = func() bool { return true } // written before the copier returns
			case c.driver == "syslog":
				done = func() bool { return syslogLines.count(t)-syslogBefore >= lines }
			case c.plugin == "discard":
				done = func() bool { return true }
			default:
				// The container's events in the node's trail, read on
				// from where the last run's ended.
				file := &lineCounter{path: d.Audit, match: []byte(`"ucp-audit/container-id":"` + c0.ID + `"`), off: trailBefore}
				done = func() bool {
					if file.count(t) < events {
						return false
					}
					if c.beats {
						return syslogLines.count(t)-syslogBefore >= events && beats.Count() >= events
					}
					return true
				}
			}
			if !peers.WaitUntilEvery(10*time.Minute, 5*time.Millisecond, done) {
				t.Fatalf("%s: events not all delivered within 10 min of the exit", c.name)
			}
			durable := time.Now()
			s := sample{
				exit:       exited.Sub(start).Seconds(),
				durable:    durable.Sub(exited).Seconds(),
				pluginCPU:  (cpuSeconds(t, pluginPID) - cpu0) / float64(perUnit) * 100000,
				dockerdCPU: (cpuSeconds(t, dockerdPID) - dcpu0) / float64(perUnit) * 100000,
				rss:        float64(peakRSS(t, pluginPID)) / (1 << 20),
			}
			results[i] = append(results[i], s)
			t.Logf("round %d %-30s exit %.2fs durable +%.3fs plugin CPU %.3fs/100k dockerd CPU %.3fs/100k RSS %.0f MiB",
				r+1, c.name, s.exit, s.durable, s.pluginCPU, s.dockerdCPU, s.rss)
			mustDocker(t, "rm", "-f", c0.ID)
			if c.beats {
				beats.Stop()
				beats = nil
			}
		}
	}

	median := func(i int, f func(sample) float64) float64 {
		var v []float64
		for _, s := range results[i] {
			v = append(v, f(s))
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	fmt.Fprintf(b, "\n### %s: %d audit lines, %d lines in all (%d MB) per run\n\n", w.name, events, lines, len(em.Stdout)>>20)
	fmt.Fprintf(b, "| driver | run-to-exit (s) | × discard | × json-file | × syslog | durable after exit (s) | plugin CPU s/100k %s | dockerd CPU s/100k %s | plugin peak RSS (MiB) |\n|---|---|---|---|---|---|---|---|---|\n", unit, unit)
	exitOf := func(i int) float64 { return median(i, func(s sample) float64 { return s.exit }) }
	ratio := func(i int, driver string) string {
		for j, c := range configs {
			if c.driver == driver {
				return fmt.Sprintf("%.2f", exitOf(i)/exitOf(j))
			}
		}
		return "–"
	}
	for i, c := range configs {
		rss := "–"
		cpu := "–"
		if c.plugin != "" {
			rss = fmt.Sprintf("%.0f", median(i, func(s sample) float64 { return s.rss }))
			cpu = fmt.Sprintf("%.3f", median(i, func(s sample) float64 { return s.pluginCPU }))
		}
		fmt.Fprintf(b, "| %s | %.2f | %s | %s | %s | %.3f | %s | %.3f | %s |\n", c.name, exitOf(i), ratio(i, "ucp-audit-discard"), ratio(i, "json-file"), ratio(i, "syslog"),
			median(i, func(s sample) float64 { return s.durable }), cpu, median(i, func(s sample) float64 { return s.dockerdCPU }), rss)
	}
}

// trailEnd returns the size of the audit file path: what a run appends
// comes after it.
func trailEnd(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// installDiscard builds tests/discard and installs it as the plugin
// ucp-audit-discard (removed at the end), from a directory rootfs holding
// only the binary.
func installDiscard(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "run", "docker", "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(rootfs, "discard"), "./tests/discard")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building tests/discard: %v\n%s", err, b)
	}
	conf := `{"description":"discard: decodes log frames and drops them (benchmark floor)","entrypoint":["/discard"],` +
		`"interface":{"types":["docker.logdriver/1.0"],"socket":"discard.sock"},"network":{"type":"host"}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	docker(nil, "plugin", "rm", "-f", "ucp-audit-discard")
	mustDocker(t, "plugin", "create", "ucp-audit-discard", dir)
	mustDocker(t, "plugin", "enable", "ucp-audit-discard")
	t.Cleanup(func() { docker(nil, "plugin", "rm", "-f", "ucp-audit-discard") })
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// pidOf returns the pid of the one process named name.
func pidOf(t *testing.T, name string) int {
	t.Helper()
	out, err := exec.Command("pgrep", "-x", name).Output()
	f := strings.Fields(string(out))
	if err != nil || len(f) != 1 {
		t.Fatalf("want one process %q, found %q (%v)", name, out, err)
	}
	pid, _ := strconv.Atoi(f[0])
	return pid
}

// cpuSeconds is the user+system CPU time of pid (0 for pid 0).
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command (which may hold spaces) end with ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// peakRSS is VmHWM of pid in bytes (0 for pid 0).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// lineCounter counts the lines of a growing file, reading only what was
// added since the last call (0 while it does not exist); with match set,
// only the whole lines containing it.
type lineCounter struct {
	path  string
	match []byte
	off   int64
	n     int
	buf   []byte
	carry []byte // the start of a line not yet whole
}

func (c *lineCounter) count(t *testing.T) int {
	t.Helper()
	f, err := os.Open(c.path)
	if err != nil {
		return c.n
	}
	defer f.Close()
	if c.buf == nil {
		c.buf = make([]byte, 1<<20)
	}
	for {
		k, err := f.ReadAt(c.buf, c.off)
		c.off += int64(k)
		if c.match == nil {
			c.n += bytes.Count(c.buf[:k], []byte{'\n'})
		} else {
			data := append(c.carry, c.buf[:k]...)
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					break
				}
				if bytes.Contains(data[:i], c.match) {
					c.n++
				}
				data = data[i+1:]
			}
			c.carry = append(c.carry[:0], data...)
		}
		if err == io.EOF {
			return c.n
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
