//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDockerLogsMatchesJSONFile runs the same output in a json-file and a
// ucp-audit container: docker logs must print the same stdout and stderr,
// with --tail and --timestamps too.
//
// With both streams, which messages the last N are depends on how dockerd
// interleaved the two streams (one copier goroutine each), so --tail is
// checked there by count and suffix; the stdout-only variant compares it
// byte for byte.
func TestDockerLogsMatchesJSONFile(t *testing.T) {
	variants := []struct {
		name   string
		args   []string
		stderr bool
	}{
		{"with-stderr", []string{"-seed", "31", "-n", "5", "-big", "2"}, true},
		{"stdout-only", []string{"-seed", "33", "-n", "5", "-big", "2", "-stderr=false"}, false},
	}
	cases := []struct {
		name       string
		args       []string
		tail       int // -1: all
		timestamps bool
	}{
		{"plain", nil, -1, false},
		{"tail-3", []string{"--tail", "3"}, 3, false},
		{"tail-1", []string{"--tail", "1"}, 1, false},
		{"tail-0", []string{"--tail", "0"}, 0, false},
		{"tail-all", []string{"--tail", "all"}, -1, false},
		{"tail-beyond", []string{"--tail", "10000"}, -1, false},
		{"timestamps", []string{"--timestamps"}, -1, true},
		{"timestamps-tail-5", []string{"--timestamps", "--tail", "5"}, 5, true},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			em := emit(t, v.args...)
			jf := runContainer(t, "json-file", nil, v.args...)
			ua := runContainer(t, pluginName, nil, v.args...)

			// The json-file container checks the harness: it prints what
			// the emitter prints.
			if jo, je := logs(t, jf); jo != em.Stdout || je != em.Stderr {
				t.Fatalf("json-file logs differ from the emitter's output: stdout %s; stderr %s",
					diffSummary(jo, em.Stdout), diffSummary(je, em.Stderr))
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					jo, je := logs(t, jf, tc.args...)
					uo, ue := logs(t, ua, tc.args...)
					if tc.timestamps {
						jo, je = stripTimestamps(t, jo), stripTimestamps(t, je)
						uo, ue = stripTimestamps(t, uo), stripTimestamps(t, ue)
					}
					if v.stderr && tc.tail >= 0 {
						checkTail(t, "json-file", jo, je, em, tc.tail)
						checkTail(t, "ucp-audit", uo, ue, em, tc.tail)
						return
					}
					if uo != jo {
						t.Errorf("stdout differs from json-file: %s", diffSummary(uo, jo))
					}
					if ue != je {
						t.Errorf("stderr differs from json-file: %s", diffSummary(ue, je))
					}
					want := em.Stdout
					if tc.tail >= 0 {
						want = tail(want, tc.tail)
					}
					if uo != want {
						t.Errorf("stdout differs from the emitter's: %s", diffSummary(uo, want))
					}
				})
			}
		})
	}
}

// checkTail checks `docker logs --tail n` of both streams: n messages in
// all, each stream's part a suffix of its full output.
func checkTail(t *testing.T, driver, stdout, stderr string, em Emitted, n int) {
	t.Helper()
	no, ne := len(splitLines(stdout)), len(splitLines(stderr))
	if no+ne != n {
		t.Errorf("%s: --tail %d printed %d stdout + %d stderr lines", driver, n, no, ne)
	}
	if !strings.HasSuffix(em.Stdout, stdout) || (no > 0 && tail(em.Stdout, no) != stdout) {
		t.Errorf("%s: --tail %d stdout is not the end of the output:\n%.500s", driver, n, stdout)
	}
	if !strings.HasSuffix(em.Stderr, stderr) || (ne > 0 && tail(em.Stderr, ne) != stderr) {
		t.Errorf("%s: --tail %d stderr is not the end of the output:\n%.500s", driver, n, stderr)
	}
}

// TestDockerLogsFollow checks that `docker logs -f` keeps receiving past
// dockerd's 30 s plugin client timeout and ends when the container exits.
func TestDockerLogsFollow(t *testing.T) {
	t.Parallel()
	args := []string{"-seed", "32", "-n", "0", "-big", "0", "-malformed=false", "-stderr=false", "-ignored=false", "-ordinary", "41", "-sleep", "1s"}
	em := emit(t, append(args[:len(args)-2:len(args)-2], "-sleep", "0s")...)
	c, _, err := startContainer(t, pluginName, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "logs", "-f", c.ID)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var got []string
	var lastAt time.Duration
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		got = append(got, sc.Text())
		lastAt = time.Since(start)
	}
	waitErr := cmd.Wait()
	ended := time.Since(start)
	if waitErr != nil {
		t.Fatalf("docker logs -f: %v (after %v)\n%s", waitErr, ended.Round(time.Second), stderr.String())
	}
	if lastAt < 35*time.Second {
		t.Errorf("last line received after %v, want at least 35 s of following", lastAt.Round(time.Millisecond))
	}
	waitExit(t, c)
	if ended > lastAt+20*time.Second {
		t.Errorf("docker logs -f ended %v after the last line", (ended - lastAt).Round(time.Millisecond))
	}
	want := em.StdoutLines()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("followed output: %s", diffSummary(strings.Join(got, "\n"), strings.Join(want, "\n")))
	}
}
