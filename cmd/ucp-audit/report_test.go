package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/review"
	"github.com/ucp-audit/ucp-audit/review/htmlreport"
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
		{"all.html", []string{"--format", "html", trailDir}},
	})
}

// TestReportHTMLCharts checks the HTML report's structure for the test
// trail: the bars of each chart, as the e2e suite checks them in a browser.
func TestReportHTMLCharts(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want map[string]int
	}{
		// 18 hours with events; 5 users, 3 API families, 3 failed codes, the
		// 10 busiest endpoints and (other).
		{[]string{"--format", "html", trailDir}, map[string]int{"timeline": 18, "users": 5, "kinds": 3, "failed": 3, "endpoints": 11}},
		// From 2 March: 13 hours; 2 users and (other); 2 failed codes.
		{[]string{"--format", "html", "--top", "2", "--since", "2024-03-02", trailDir}, map[string]int{"timeline": 13, "users": 3, "kinds": 3, "failed": 2, "endpoints": 3}},
	} {
		var out, errb bytes.Buffer
		if code := runReport(context.Background(), tc.args, testEnv(&out, &errb)); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		if got := htmlreport.ChartBars(out.String()); !maps.Equal(got, tc.want) {
			t.Errorf("report %q: bars %v, want %v", tc.args, got, tc.want)
		}
	}
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

// TestReportNewSectionsAddUp checks that the day and chargeback sections of
// the CSV report add up to the events, whatever --top, and that the gap
// section names each gap record's destination and seq range.
func TestReportNewSectionsAddUp(t *testing.T) {
	dir := t.TempDir()
	trail, err := os.ReadFile(filepath.Join(trailDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	gaps := `{"ucp-audit/gap":{"container-id":"8d2e","container-name":"","destination":"logstash beats://siem:5044","first-seq":100,"last-seq":199,"lost":100,"reason":"destination-down","time":"2024-03-03T12:00:00Z"}}` + "\n" +
		`{"ucp-audit/gap":{"container-id":"8d2e","destination":"syslog","first-seq":7,"last-seq":7,"lost":1,"time":"2024-03-03T13:00:00Z"}}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "audit.log"), append(trail, gaps...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, top := range []string{"0", "1", "2", "10"} {
		var out, errb bytes.Buffer
		if code := runReport(context.Background(), []string{"--format", "csv", "--top", top, dir}, testEnv(&out, &errb)); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		rows, err := csv.NewReader(&out).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		sums, keys := map[string]int{}, map[string][]string{}
		for _, r := range rows[1:] {
			n, err := strconv.Atoi(r[2])
			if err != nil {
				t.Fatalf("CSV row %q: %v", r, err)
			}
			sums[r[0]] += n
			keys[r[0]] = append(keys[r[0]], r[1])
		}
		for _, s := range []string{"day", "chargeback"} {
			if sums[s] != sums["user"] || sums[s] == 0 {
				t.Errorf("--top %s: CSV section %s adds up to %d, want the %d events", top, s, sums[s], sums["user"])
			}
		}
		if sums["gap"] != 101 {
			t.Errorf("--top %s: CSV section gap adds up to %d, want the 101 events lost", top, sums["gap"])
		}
		want := []string{"logstash beats://siem:5044 8d2e 100-199", "syslog 8d2e 7-7"}
		if top == "1" {
			want[1] = "(other)"
		}
		if !reflect.DeepEqual(keys["gap"], want) {
			t.Errorf("--top %s: gap keys %q, want %q", top, keys["gap"], want)
		}
	}
	var out, errb bytes.Buffer
	if code := runReport(context.Background(), []string{"--top", "1", dir}, testEnv(&out, &errb)); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{
		"WARNING: events that will never reach a destination",
		"2024-03-03T12:00:00Z  logstash beats://siem:5044  8d2e       100-199  100   destination-down\n",
		"(other)  1\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table report lacks %q:\n%s", want, out.String())
		}
	}
}
