package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// trailDir is the fixed test trail: audit.log.2.gz, audit.log.1 and
// audit.log, 28 events and a self, a gap and a seal record.
const trailDir = "testdata/trail"

// testNow is the clock of the golden tests: relative --since and --until
// count back from it.
var testNow = time.Date(2024, 3, 3, 18, 0, 0, 0, time.UTC)

func testEnv(stdout, stderr *bytes.Buffer) hostEnv {
	return hostEnv{stdout: stdout, stderr: stderr, now: func() time.Time { return testNow }}
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file %s:\n--- got\n%s\n--- want\n%s", t.Name(), file, got, want)
	}
}

// goldenCase is one run of a command whose output is compared with
// testdata/golden/PREFIX-NAME.
type goldenCase struct {
	name string
	args []string
}

// runGolden runs each case with run; each must exit 0 with nothing on
// stderr.
func runGolden(t *testing.T, prefix string, run func(context.Context, []string, hostEnv) int, tests []goldenCase) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(context.Background(), tt.args, testEnv(&out, &errb)); code != 0 || errb.Len() > 0 {
				t.Fatalf("exit %d, stderr %q", code, errb.String())
			}
			golden(t, prefix+"-"+tt.name, out.Bytes())
		})
	}
}

func TestQueryGolden(t *testing.T) {
	runGolden(t, "query", runQuery, []goldenCase{
		{"all.jsonl", []string{trailDir}},
		{"all.table", []string{"-o", "table", trailDir}},
		{"live-file.table", []string{"--output=table", trailDir + "/audit.log"}},
		{"rotated-gz.table", []string{"-o", "table", trailDir + "/audit.log.2.gz"}},
		{"user-mallory.jsonl", []string{"--user", "mallory", trailDir}},
		{"user-uid.table", []string{trailDir, "--user", "A11CE000-1111-4222-8333-444455556666", "-o", "table"}},
		{"code-4xx.table", []string{"--code", "4xx", "-o", "table", trailDir}},
		{"code-list.table", []string{"--code", "401,500", "-o", "table", trailDir}},
		{"day.table", []string{"--since", "2024-03-02", "--until", "2024-03-03", "-o", "table", trailDir}},
		{"since-relative.table", []string{"--since", "10h", "-o", "table", trailDir}},
		{"since-days.table", []string{"--since", "1d12h", "--until", "2024-03-03T08:00:00.5Z", "-o", "table", trailDir}},
		{"kind-verbs.table", []string{"--kind", "KUBERNETES", "--verb", "list", "--verb", "GET", "-o", "table", trailDir}},
		{"path-glob.table", []string{"--path", "/api/v1/namespaces/*/secrets", "--path", "/v1.*/secrets*", "-o", "table", trailDir}},
		{"path-any-segments.table", []string{"--path", "/**/secrets/**", "--path", "/api/v1/namespaces/*/pods/**", "-o", "table", trailDir}},
		{"container-name.table", []string{"--container", "ucp-kube-apiserver", "--verb", "get", "-o", "table", trailDir}},
		{"container-id.table", []string{"--container", "3F1C9A", "--kind", "ucp", "-o", "table", trailDir}},
		{"grep.table", []string{"--grep", "SECRETS", "--host", "manager-1", "-o", "table", trailDir}},
		{"no-match.jsonl", []string{"--host", "manager-2", trailDir}},
		{"audit-id.table", []string{"--audit-id", "7A000006-0000-4000-8000-000000000006,7a00001a-0000-4000-8000-000000000026", "-o", "table", trailDir}},
		{"source-ip.table", []string{"--source-ip", "10.0.0.14", "--source-ip", "10.0.0.10/31", "--kind", "kubernetes", "-o", "table", trailDir}},
		{"namespace.table", []string{"--namespace", "kube-system,staging", "-o", "table", trailDir}},
		{"namespace-none.table", []string{"--namespace", "-", "--kind", "kubernetes", "-o", "table", trailDir}},
		{"all.csv", []string{"-o", "csv", trailDir}},
		{"namespace.csv", []string{"--namespace", "kube-system", "--output=csv", trailDir}},
		{"double-dash.table", []string{"-o", "table", "--user", "carol", "--", trailDir + "/audit.log"}},
	})
}

// TestQueryPassesLinesThrough checks that -o json prints each event line
// byte for byte as it is in the files (the ucp-audit/chain field
// included), in file order, and nothing else.
func TestQueryPassesLinesThrough(t *testing.T) {
	var want bytes.Buffer
	for _, name := range []string{"audit.log.2.gz", "audit.log.1", "audit.log"} {
		rc, err := auditlog.Open(filepath.Join(trailDir, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(rc)
		for sc.Scan() {
			if !bytes.HasPrefix(sc.Bytes(), []byte(`{"ucp-audit/`)) {
				want.Write(sc.Bytes())
				want.WriteByte('\n')
			}
		}
		rc.Close()
	}
	var out, errb bytes.Buffer
	if code := runQuery(context.Background(), []string{trailDir}, testEnv(&out, &errb)); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !bytes.Equal(out.Bytes(), want.Bytes()) {
		t.Errorf("output is not the event lines of the files:\n%s", out.String())
	}
	if !bytes.Contains(out.Bytes(), []byte(`"ucp-audit/chain":{`)) {
		t.Error("the ucp-audit/chain fields were not passed through")
	}
}

// TestQueryCSV checks that -o csv quotes what needs it (RFC 4180): values
// with commas, quotes and newlines read back as they were in the event.
func TestQueryCSV(t *testing.T) {
	dir := t.TempDir()
	line := `{"auditID":"id,1","verb":"get","requestURI":"/api/v1/namespaces/a/pods?x=\"1\",y","user":{"username":"eve\nmallory"},` +
		`"sourceIPs":["10.0.0.7:1","fd00::7"],"annotations":{"ucp-audit/container-name":"/c\"d"},"stageTimestamp":"2024-03-02T10:00:00.5Z"}` + "\n" +
		`{"auditID":"id-2"}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "audit.log"), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := runQuery(context.Background(), []string{"-o", "csv", dir}, testEnv(&out, &errb)); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		csvHeader,
		{"2024-03-02T10:00:00.5Z", "eve\nmallory", "get", "", "", `/api/v1/namespaces/a/pods?x="1",y`, `c"d`, "id,1", "10.0.0.7:1 fd00::7", "a"},
		{"", "", "", "", "", "", "", "id-2", "", ""},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows\n%q\nwant\n%q", rows, want)
	}
}

func TestQueryFlagErrors(t *testing.T) {
	tests := []struct {
		args    []string
		code    int
		wantErr string
	}{
		{[]string{"--since", "yesterdayx", trailDir}, 2, `ucp-audit query: --since "yesterdayx": want RFC 3339 time, a date (2006-01-02) or a duration before now (90m, 2h, 7d)`},
		{[]string{"--until", "-2h", trailDir}, 2, `--until "-2h": want RFC 3339 time`},
		{[]string{"--since", "2024-03-02T10:00:00", trailDir}, 2, `--since "2024-03-02T10:00:00": want RFC 3339`},
		{[]string{"--since", "2024-03-03", "--until", "2024-03-02", trailDir}, 2, `--since "2024-03-03" (2024-03-03T00:00:00Z) is not before --until "2024-03-02"`},
		{[]string{"--code", "4x", trailDir}, 2, `--code "4x": want a status code (403) or a class (4xx)`},
		{[]string{"--code", "403,6xx", trailDir}, 2, `--code "6xx"`},
		{[]string{"--path", "/api/[", trailDir}, 2, `--path "/api/[": syntax error in pattern`},
		{[]string{"--path", "/**/[", trailDir}, 2, `--path "/**/[": segment "[": syntax error in pattern`},
		{[]string{"--source-ip", "10.0.0.7:51234", trailDir}, 2, `--source-ip "10.0.0.7:51234": want an IP address (10.0.0.7, fd00::7) or a CIDR prefix (10.0.0.0/8)`},
		{[]string{"--source-ip", "10.0.0.0/33", trailDir}, 2, `--source-ip "10.0.0.0/33": want an IP address`},
		{[]string{"-o", "xml", trailDir}, 2, `ucp-audit query: -o "xml": want json or table`},
		{[]string{"--nope", trailDir}, 2, `ucp-audit query: flag provided but not defined: -nope (ucp-audit query -h lists the flags)`},
		{[]string{trailDir, "--since"}, 2, `flag needs an argument: -since`},
		{[]string{"-f", trailDir + "/audit.log.1"}, 2, `--follow: no live file to follow in testdata/trail/audit.log.1`},
		{[]string{"testdata/no-such-dir"}, 1, `ucp-audit query: stat testdata/no-such-dir: no such file or directory`},
		{[]string{"testdata/golden"}, 1, `ucp-audit query: testdata/golden: no audit files (no *.log files)`},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := runQuery(context.Background(), tt.args, testEnv(&out, &errb))
		if code != tt.code || !strings.Contains(errb.String(), tt.wantErr) {
			t.Errorf("query %q: exit %d, stderr %q; want exit %d, stderr with %q", tt.args, code, errb.String(), tt.code, tt.wantErr)
		}
		if out.Len() > 0 {
			t.Errorf("query %q: printed %q", tt.args, out.String())
		}
	}
}

func TestQueryHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runQuery(context.Background(), []string{"-h"}, testEnv(&out, &errb)); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"usage: ucp-audit query", "-since TIME", "-follow", "-container C"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

// TestQueryBadLines checks that lines that are not JSON objects, and
// unreadable files, are skipped with a message naming the first of them
// and exit code 1, while the good events are still printed.
func TestQueryBadLines(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(filepath.Join(trailDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := bytes.Cut(good, []byte("\n"))
	content := "not json\n" + string(first) + "\n\n[1,2]\n" + string(first) + "\n{\"truncated\":"
	if err := os.WriteFile(filepath.Join(dir, "audit.log"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "audit.log.1.gz"), []byte("\x1f\x8bnot gzip"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := runQuery(context.Background(), []string{dir}, testEnv(&out, &errb))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if want := string(first) + "\n" + string(first) + "\n"; out.String() != want {
		t.Errorf("printed %q, want the two good lines", out.String())
	}
	for _, want := range []string{
		"ucp-audit query: " + filepath.Join(dir, "audit.log.1.gz") + ": gzip: invalid header\n",
		"ucp-audit query: 3 lines were not JSON objects and were skipped (first: " + filepath.Join(dir, "audit.log") + ":1)\n",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr %q lacks %q", errb.String(), want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and a reader, which can
// wait for text to appear.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the buffer holds n lines or ctx ends.
func (s *syncBuffer) waitFor(ctx context.Context, n int) string {
	for {
		got := s.String()
		if strings.Count(got, "\n") >= n {
			return got
		}
		select {
		case <-ctx.Done():
			return got
		case <-s.changed:
		}
	}
}

// TestQueryFollow follows a live file through appends, a write to the old
// file after it was renamed away, a new live file, and an unfinished line
// completed later.
func TestQueryFollow(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "audit.log")
	lines := eventLines(t, 5)
	appendTo := func(name string, s string) {
		t.Helper()
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	appendTo(live, lines[0]+"\n")
	older, err := os.ReadFile(filepath.Join(trailDir, "audit.log.1"))
	if err != nil {
		t.Fatal(err)
	}
	appendTo(filepath.Join(dir, "audit.log.1"), string(older)) // read first; --since leaves it out

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	out := newSyncBuffer()
	var errb bytes.Buffer
	done := make(chan int, 1)
	env := hostEnv{stdout: out, stderr: &errb, now: func() time.Time { return testNow }, poll: 5 * time.Millisecond}
	go func() {
		done <- runQuery(runCtx, []string{"-f", "--since", "2024-03-03", dir}, env)
	}()
	expect := func(want ...string) {
		t.Helper()
		got := out.waitFor(ctx, len(want))
		if got != strings.Join(want, "\n")+"\n" {
			t.Fatalf("followed output:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
		}
	}
	expect(lines[0])

	appendTo(live, lines[1]+"\n")
	expect(lines[0], lines[1])

	// An unfinished line is not printed until its newline comes.
	half := len(lines[2]) / 2
	appendTo(live, lines[2][:half])
	appendTo(live, lines[2][half:]+"\n")
	expect(lines[0], lines[1], lines[2])

	// Rotation: the writer still appends to the old file after the rename,
	// then the new live file starts.
	old := filepath.Join(dir, "audit.log.1")
	if err := os.Rename(old, filepath.Join(dir, "audit.log.2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(live, old); err != nil {
		t.Fatal(err)
	}
	appendTo(old, lines[3]+"\n")
	appendTo(live, lines[4]+"\n")
	expect(lines[0], lines[1], lines[2], lines[3], lines[4])

	stop()
	select {
	case code := <-done:
		if code != 0 || errb.Len() > 0 {
			t.Errorf("exit %d, stderr %q", code, errb.String())
		}
	case <-ctx.Done():
		t.Fatal("query -f did not stop when its context was cancelled")
	}
}

// eventLines returns the first n event lines of the test trail's live
// file.
func eventLines(t *testing.T, n int) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(trailDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < n {
		t.Fatalf("%s has %d lines, want %d", trailDir, len(lines), n)
	}
	return lines[:n]
}

func TestCell(t *testing.T) {
	tests := []struct {
		in    string
		width int
		want  string
	}{
		{"", 10, "-"},
		{"alice", 10, "alice"},
		{"a\tb\nc\x1b[31m", 20, "a?b?c?[31m"},
		{"0123456789", 10, "0123456789"},
		{"0123456789ab", 10, "0123…789ab"},
		{"ééééééééééé", 5, "éé…éé"},
	}
	for _, tt := range tests {
		if got := cell(tt.in, tt.width); got != tt.want {
			t.Errorf("cell(%q, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
		}
	}
}
