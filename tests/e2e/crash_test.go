//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// pluginPID returns the pid of the plugin process (its command is
// /ucp-audit inside the plugin's rootfs), or 0.
func pluginPID(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("pgrep", "-x", "ucp-audit").Output()
	if err != nil {
		return 0
	}
	f := strings.Fields(string(out))
	if len(f) != 1 {
		t.Fatalf("expected one plugin process, found %q", out)
	}
	pid, _ := strconv.Atoi(f[0])
	return pid
}

// waitNewPlugin waits until dockerd has restarted the plugin as a process
// other than old.
func waitNewPlugin(t *testing.T, old int) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if pid := pluginPID(t); pid != 0 && pid != old {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatal("dockerd did not restart the plugin within 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// seqStats reads a container's events in path: the distinct seq numbers,
// the auditID/stage keys seen, duplicates, and records of loss (gap
// records, and input-lost self-audit events).
type seqStats struct {
	seqs       map[int]bool
	keys       map[Key]int
	maxSeq     int
	duplicates int
	gaps       int
}

func readSeqStats(t *testing.T, path, containerID string) seqStats {
	t.Helper()
	st := seqStats{seqs: map[int]bool{}, keys: map[Key]int{}}
	for _, p := range withRotated(path) {
		st.read(t, p, containerID)
	}
	return st
}

// withRotated returns path's rotated files, oldest first, then path: 100 MB
// of events rotate audit.log.
func withRotated(path string) []string {
	rotated, _ := filepath.Glob(path + ".[0-9]*")
	slices.SortFunc(rotated, func(a, b string) int {
		na, _ := strconv.Atoi(a[len(path)+1:])
		nb, _ := strconv.Atoi(b[len(path)+1:])
		return nb - na
	})
	return append(rotated, path)
}

func (st *seqStats) read(t *testing.T, path, containerID string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: not JSON: %v", path, err)
		}
		if _, ok := r[auditlog.GapKey]; ok {
			st.gaps++
			continue
		}
		if self, ok := r[auditlog.SelfKey].(map[string]any); ok {
			if self["type"] == "input-lost" && self["container-id"] == containerID {
				st.gaps++ // a record that container output was lost
			}
			continue
		}
		a, _ := r["annotations"].(map[string]any)
		if a == nil || a["ucp-audit/container-id"] != containerID {
			continue
		}
		seq, _ := strconv.Atoi(a["ucp-audit/seq"].(string))
		k := Key{r["auditID"].(string), r["stage"].(string)}
		st.keys[k]++
		if st.keys[k] > 1 {
			st.duplicates++
		}
		st.seqs[seq] = true
		st.maxSeq = max(st.maxSeq, seq)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestCrashKill9 kills the plugin process three times while a container
// writes 200,000 audit events. dockerd restarts it, the new process
// re-attaches to the FIFO, and every event arrives with contiguous seq
// numbers (duplicates of the same seq around a crash are allowed).
func TestCrashKill9(t *testing.T) {
	d, release := ownTrail(t)
	args := []string{"-n", "33334", "-big", "0", "-malformed=false", "-ignored=false", "-stderr=false", "-ordinary", "0"}
	want := emit(t, args...).Forwarded()
	c, stderr, err := startContainer(t, pluginName, nil, args...)
	if err != nil {
		t.Fatalf("docker run: %v\n%s", err, stderr)
	}
	pid := pluginPID(t)
	for i := 0; i < 3; i++ {
		time.Sleep(1500 * time.Millisecond)
		if pid == 0 {
			t.Fatal("no plugin process")
		}
		if err := exec.Command("kill", "-9", strconv.Itoa(pid)).Run(); err != nil {
			t.Fatalf("kill -9 %d: %v", pid, err)
		}
		t.Logf("killed the plugin (pid %d)", pid)
		pid = waitNewPlugin(t, pid)
	}
	waitExit(t, c)
	deadline := time.Now().Add(3 * time.Minute)
	var st seqStats
	for {
		st = readSeqStats(t, d.Audit, c.ID)
		if len(st.keys) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	missing := 0
	for _, w := range want {
		if st.keys[w.Key()] == 0 {
			missing++
		}
	}
	holes := 0
	for s := 1; s <= st.maxSeq; s++ {
		if !st.seqs[s] {
			holes++
		}
	}
	t.Logf("%d events expected, %d distinct arrived, %d duplicates, %d missing, seq 1..%d with %d holes, %d gap records",
		len(want), len(st.keys), st.duplicates, missing, st.maxSeq, holes, st.gaps)
	if missing > 0 && st.gaps == 0 {
		t.Errorf("%d events lost across kill -9 without a gap record", missing)
	}
	if holes > 0 {
		t.Errorf("seq numbering has %d holes", holes)
	}
	// The trail, written across three kills and closed, verifies clean.
	release()
	mustVerifyClean(t, d.Path)
}

// TestUpgradeKeepsUndelivered: events spooled for a destination that is
// down survive `make install` over the running installation and are
// delivered by the new plugin once the destination is up.
func TestUpgradeKeepsUndelivered(t *testing.T) {
	beats := peers.NewBeats(t)
	d, release := ownTrail(t)
	args := []string{"-n", "20", "-big", "0", "-malformed=false", "-ignored=false", "-stderr=false"}
	want := emit(t, args...).Forwarded()
	c := runContainer(t, pluginName, []string{"logstash-address=beats://" + beats.Addr}, args...)
	waitRecords(t, d.Audit, c, len(want))
	mustMake(t, "install")
	beats.Start()
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := map[string]bool{}
		for _, raw := range beats.Events() {
			var ev struct {
				AuditID string `json:"auditID"`
				Stage   string `json:"stage"`
			}
			if json.Unmarshal([]byte(raw), &ev) == nil {
				got[ev.AuditID+"/"+ev.Stage] = true
			}
		}
		missing := 0
		for _, w := range want {
			if !got[w.AuditID+"/"+w.Stage] {
				missing++
			}
		}
		if missing == 0 {
			// Closed by the old plugin, resumed by the new, and
			// closed: the trail verifies.
			release()
			mustVerifyClean(t, d.Path)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d spooled events never delivered after the upgrade", missing, len(want))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var _ = fmt.Sprint
