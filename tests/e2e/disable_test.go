//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// TestDisableEnableWhileLogging disables the plugin with -f while a
// container is writing, and enables it again: the container only waits
// (its output waits in the pipe), and once the plugin is back it
// re-attaches, so every event arrives once, numbered without a gap.
func TestDisableEnableWhileLogging(t *testing.T) {
	d, release := ownTrail(t)
	args := []string{"-n", "500", "-big", "1", "-malformed=false", "-ignored=false", "-stderr=false", "-ordinary", "0", "-sleep", "1ms"}
	want := emit(t, args...).Forwarded()
	c, stderr, err := startContainer(t, pluginName, nil, args...)
	if err != nil {
		t.Fatalf("docker run: %v\n%s", err, stderr)
	}
	if !peers.WaitUntil(30*time.Second, func() bool { return readSeqStats(t, d.Audit, c.ID).maxSeq >= 100 }) {
		t.Fatal("no events before the disable")
	}
	enabled := false
	t.Cleanup(func() {
		if !enabled {
			docker(nil, "plugin", "enable", "--timeout", "0", pluginName)
		}
	})
	mustDocker(t, "plugin", "disable", "-f", pluginName)
	before := readSeqStats(t, d.Audit, c.ID).maxSeq
	time.Sleep(2 * time.Second) // the container writes into the pipe meanwhile
	mustDocker(t, "plugin", "enable", "--timeout", "0", pluginName)
	enabled = true
	waitExit(t, c)
	var st seqStats
	peers.WaitUntil(60*time.Second, func() bool {
		st = readSeqStats(t, d.Audit, c.ID)
		return len(st.keys) >= len(want)
	})
	missing := 0
	for _, w := range want {
		if st.keys[w.Key()] == 0 {
			missing++
		}
	}
	t.Logf("%d events before the disable; %d of %d arrived, %d duplicates, seq 1..%d", before, len(st.keys), len(want), st.duplicates, st.maxSeq)
	if missing > 0 {
		t.Errorf("%d events lost across disable/enable", missing)
	}
	checkSeqs(t, "after disable/enable", st, st.maxSeq)
	if st.maxSeq < len(want) {
		t.Errorf("seq ends at %d for %d events", st.maxSeq, len(want))
	}
	if out := mustDocker(t, "plugin", "inspect", "--format", "{{.Enabled}}", pluginName); strings.TrimSpace(out) != "true" {
		t.Errorf("plugin enabled: %s", out)
	}
	// Closed at the disable, resumed at the enable, closed at the
	// release: the trail verifies.
	release()
	mustVerifyClean(t, d.Path)
}
