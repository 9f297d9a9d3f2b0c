//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// withMetrics sets the plugin's METRICS_ADDRESS for the test and restores
// it afterwards. Setting needs the plugin disabled; it is enabled again with
// --timeout 0 as make install does.
func withMetrics(t *testing.T) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", peers.FreeTCPPort(t))
	set := func(v string) {
		mustDocker(t, "plugin", "disable", "-f", pluginName)
		mustDocker(t, "plugin", "set", pluginName, "METRICS_ADDRESS="+v)
		mustDocker(t, "plugin", "enable", "--timeout", "0", pluginName)
	}
	set(addr)
	t.Cleanup(func() { set("") })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := scrape(addr); err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatal("metrics listener did not come up")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrape reads /metrics into name{labels} → value.
func scrape(addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("%s: %s", resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// TestLoad50 runs 50 containers at once, each writing 10,000 audit events
// among ordinary lines, into one shared audit file. Every event arrives,
// the plugin's peak RSS is reported, and goroutines, open files and
// streams return to their baseline once the containers are removed. The
// metrics endpoint is read throughout.
func TestLoad50(t *testing.T) {
	addr := withMetrics(t)
	d, _ := ownTrail(t) // hundreds of MB: the suite's trail stays small
	// The baseline is taken with the test's own trail open: what the
	// containers leave behind is the question, not the trail's files.
	base, err := scrape(addr)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-n", "1667", "-big", "0", "-malformed=false", "-ignored=false", "-stderr=false", "-ordinary", "200"}
	want := emit(t, args...).Forwarded()
	const n = 50
	var peak float64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if m, err := scrape(addr); err == nil {
				peak = max(peak, m["process_resident_memory_bytes"])
			}
			select {
			case <-stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	cs := make([]Container, n)
	var sw sync.WaitGroup
	for i := range cs {
		sw.Add(1)
		go func() {
			defer sw.Done()
			c, stderr, err := startContainer(t, pluginName, nil, args...)
			if err != nil {
				t.Errorf("docker run: %v\n%s", err, stderr)
			}
			cs[i] = c
		}()
	}
	sw.Wait()
	if t.Failed() {
		close(stop)
		wg.Wait()
		t.FailNow()
	}
	for _, c := range cs {
		waitExit(t, c)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		counts := countByContainer(t, d.Audit)
		short := 0
		for _, c := range cs {
			if counts[c.ID] < len(want) {
				short++
			}
		}
		if short == 0 {
			for _, c := range cs {
				if counts[c.ID] != len(want) {
					t.Errorf("container %s: %d events, want %d", c.Name, counts[c.ID], len(want))
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d containers still miss events", short, n)
		}
		time.Sleep(time.Second)
	}
	close(stop)
	wg.Wait()
	t.Logf("peak plugin RSS with %d streams: %.1f MiB", n, peak/(1<<20))
	for _, c := range cs {
		mustDocker(t, "rm", "-f", c.ID)
	}
	// Back to the baseline (a little slack for the Go runtime's own).
	deadline = time.Now().Add(30 * time.Second)
	for {
		m, err := scrape(addr)
		if err != nil {
			t.Fatal(err)
		}
		// Streams of earlier tests that still run in the background (a
		// destination down, say) are in the baseline: this test's own
		// must all have ended.
		ok := m["ucp_audit_streams_active"] <= base["ucp_audit_streams_active"] && m["ucp_audit_fifos_open"] <= base["ucp_audit_fifos_open"] &&
			m["go_goroutines"] <= base["go_goroutines"]+5 && m["process_open_fds"] <= base["process_open_fds"]+5
		if ok {
			t.Logf("after: goroutines %v (baseline %v), open fds %v (baseline %v)", m["go_goroutines"], base["go_goroutines"], m["process_open_fds"], base["process_open_fds"])
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not back to baseline: streams %v (baseline %v), fifos %v (baseline %v), goroutines %v (baseline %v), fds %v (baseline %v)",
				m["ucp_audit_streams_active"], base["ucp_audit_streams_active"], m["ucp_audit_fifos_open"], base["ucp_audit_fifos_open"], m["go_goroutines"], base["go_goroutines"], m["process_open_fds"], base["process_open_fds"])
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// countByContainer counts the audit events per container in path and its
// rotated files, without decoding every line (they hold hundreds of MB).
func countByContainer(t *testing.T, path string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, p := range withRotated(path) {
		countInto(t, p, out)
	}
	return out
}

func countInto(t *testing.T, path string, out map[string]int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	key := []byte(`"ucp-audit/container-id":"`)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		i := bytes.Index(line, key)
		if i < 0 {
			continue
		}
		rest := line[i+len(key):]
		if j := bytes.IndexByte(rest, '"'); j > 0 {
			out[string(rest[:j])]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}
