package driver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/node"
)

// TestPruneStoreTotal: while the stores together exceed caps.storeTotal,
// the janitor removes the stores of stopped containers, the longest
// stopped first; a running container's store stays whatever its size.
func TestPruneStoreTotal(t *testing.T) {
	h := newHarnessWith(t, func(o *Options, _ *hooks) {
		c, err := node.Parse([]byte(`{"caps": {"storeSize": "1m", "storeTotal": "1m"}}`), node.Env{LogDir: o.LogDir, StateDir: o.StateDir})
		if err != nil {
			t.Fatal(err)
		}
		o.Node, o.Retention = c, time.Hour
	}, nil)
	line := strings.Repeat("o", 1000)
	fill := func() {
		for i := 0; i < 450; i++ { // about 450 KB of store
			h.write("stdout", line)
		}
		h.write("stdout", "end")
		h.waitFor("the lines stored", func() bool { return hasLine(dockerLogs(t, h), "end") })
	}
	store := func(id string) string { return filepath.Join(h.d.opts.StateDir, "containers", id) }
	ids := []string{strings.Repeat("a1", 32), strings.Repeat("b2", 32), strings.Repeat("c3", 32)}
	h.stop() // the harness's own container, with an empty store
	for i, id := range ids {
		h.id = id
		h.start(nil)
		fill()
		if i < 2 {
			h.stop()
			time.Sleep(10 * time.Millisecond) // distinct stop times
		}
	}
	// a1 and b2 stopped (a1 first), c3 running: about 1.35 MB in all.
	h.d.prune(time.Now())
	if _, err := os.Stat(store(ids[0])); !os.IsNotExist(err) {
		t.Errorf("the longest stopped container's store is still there (%v)", err)
	}
	for _, id := range ids[1:] {
		if _, err := os.Stat(store(id)); err != nil {
			t.Errorf("store %.4s…: %v", id, err)
		}
	}
	h.stop()
}
