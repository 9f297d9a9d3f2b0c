package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/review"
)

func TestReportGolden(t *testing.T) {
	runGolden(t, "report", runReport, []goldenCase{
		{"all.table", []string{trailDir}},
		{"all.csv", []string{"--format", "csv", trailDir}},
		{"all.json", []string{"--format=json", trailDir}},
		{"top3.table", []string{"--top", "3", trailDir}},
		{"top3.csv", []string{trailDir, "--format", "csv", "--top", "3"}},
		{"day-kubernetes.json", []string{"--format", "json", "--since", "2024-03-02", "--until", "2024-03-03", "--kind", "kubernetes", trailDir}},
		{"no-match.table", []string{"--user", "nobody", trailDir}},
		{"no-match.json", []string{"--format", "json", "--user", "nobody", trailDir}},
	})
}

// TestReportFormatsAgree checks that the CSV and JSON reports hold the same
// counts, and that each CSV section's counts add up to the events.
func TestReportFormatsAgree(t *testing.T) {
	var js, cs, errb bytes.Buffer
	if code := runReport(context.Background(), []string{"--format", "json", "--top", "2", trailDir}, testEnv(&js, &errb)); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if code := runReport(context.Background(), []string{"--format", "csv", "--top", "2", trailDir}, testEnv(&cs, &errb)); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rep review.Report
	if err := json.Unmarshal(js.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&cs).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "section,key,count" {
		t.Errorf("CSV header %q", got)
	}
	sums := map[string]int{}
	for _, r := range rows[1:] {
		n, err := strconv.Atoi(r[2])
		if err != nil {
			t.Fatalf("CSV row %q: %v", r, err)
		}
		sums[r[0]] += n
	}
	for _, s := range []string{"user", "verb", "kind", "resource", "code", "endpoint"} {
		if sums[s] != rep.Events {
			t.Errorf("CSV section %s adds up to %d, want the %d events", s, sums[s], rep.Events)
		}
	}
	if sums["failed"] != rep.Failed {
		t.Errorf("CSV section failed adds up to %d, want %d", sums["failed"], rep.Failed)
	}
	if rep.Events != 28 || rep.Denied != 6 || rep.Failed != 8 || rep.Records != (review.Records{Self: 1, Gap: 1, Seal: 1}) {
		t.Errorf("report %+v", rep)
	}
}

func TestReportFlagErrors(t *testing.T) {
	tests := []struct {
		args    []string
		code    int
		wantErr string
	}{
		{[]string{"--format", "xlsx", trailDir}, 2, `ucp-audit report: --format "xlsx": want table, csv or json`},
		{[]string{"--top", "-1", trailDir}, 2, `ucp-audit report: --top -1: want 0 (all) or more`},
		{[]string{"--top", "many", trailDir}, 2, `ucp-audit report: invalid value "many" for flag -top`},
		{[]string{"--since", "7 days", trailDir}, 2, `ucp-audit report: --since "7 days": want RFC 3339 time`},
		{[]string{"--code", "600", trailDir}, 2, `--code "600": want a status code`},
		{[]string{"-f", trailDir}, 2, `flag provided but not defined: -f`},
		{[]string{"testdata/no-such-file.log"}, 1, `ucp-audit report: stat testdata/no-such-file.log: no such file or directory`},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := runReport(context.Background(), tt.args, testEnv(&out, &errb))
		if code != tt.code || !strings.Contains(errb.String(), tt.wantErr) {
			t.Errorf("report %q: exit %d, stderr %q; want exit %d, stderr with %q", tt.args, code, errb.String(), tt.code, tt.wantErr)
		}
	}
}
