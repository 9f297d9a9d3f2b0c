package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ucp-audit/ucp-audit/review"
)

// report runs `ucp-audit report` and returns its exit code.
func report(args []string) int { return hostCommand(runReport, args) }

const reportUsage = `usage: ucp-audit report [flags] [PATH...]

Summarises the audit events of PATH (default ` + defaultTrail + `) that match
every filter given (the same filters as ucp-audit query): events per user,
verb, API family, resource and response code, the failed and denied calls,
the busiest endpoints, and the first and last event.

Flags:
`

// The other row: what --top left out.
const otherKey = "(other)"

func runReport(ctx context.Context, args []string, env hostEnv) int {
	fs, sel := commandFlags("report")
	var format string
	var top int
	fs.StringVar(&format, "format", "table", "output `FORMAT`: table, csv (rows section,key,count) or json")
	fs.IntVar(&top, "top", 10, "list at most `N` busiest endpoints and failed-call rows (0: all)")
	run, code, ok := setUp(fs, reportUsage, sel, args, env, func() error {
		if format != "table" && format != "csv" && format != "json" {
			return fmt.Errorf("--format %q: want table, csv or json", format)
		}
		if top < 0 {
			return fmt.Errorf("--top %d: want 0 (all) or more", top)
		}
		return nil
	})
	if !ok {
		return code
	}
	sum := review.NewSummary()
	r := &review.Reader{Sets: run.sets}
	code = readTrail(ctx, "report", r, &run.filter, env, func(rec *review.Record) error {
		sum.Add(rec.Event)
		return nil
	}, sum.Skip)
	rep := sum.Report(top)
	bw := bufio.NewWriter(env.stdout)
	var err error
	switch format {
	case "json":
		err = writeReportJSON(bw, rep)
	case "csv":
		err = writeReportCSV(bw, rep)
	default:
		err = writeReportTable(bw, rep)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit report: writing the output: %v\n", err)
		code = 1
	}
	return code
}

func writeReportJSON(w io.Writer, rep review.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(rep)
}

// markKey is a first or last event as one CSV key: time and auditID.
func markKey(m *review.Mark) string {
	return m.Time.Format(time.RFC3339Nano) + " " + m.AuditID
}

// failedKey is a failed-call row as one CSV key.
func failedKey(f review.FailedCall) string {
	return fmt.Sprintf("%d %s %s %s", f.Code, f.User, f.Verb, f.Endpoint)
}

// writeReportCSV writes one flat table, section,key,count; see the README.
func writeReportCSV(w io.Writer, rep review.Report) error {
	cw := csv.NewWriter(w)
	row := func(section, key string, n int) { cw.Write([]string{section, key, strconv.Itoa(n)}) }
	cw.Write([]string{"section", "key", "count"})
	for _, s := range []struct {
		key string
		n   int
	}{{"events", rep.Events}, {"events-without-time", rep.EventsWithoutTime}, {"denied", rep.Denied}, {"failed", rep.Failed}} {
		row("summary", s.key, s.n)
	}
	if rep.First != nil {
		row("first", markKey(rep.First), 1)
		row("last", markKey(rep.Last), 1)
	}
	for _, s := range countSections(rep) {
		for _, c := range s.rows {
			row(s.csv, c.Key, c.Count)
		}
		if s.other > 0 {
			row(s.csv, otherKey, s.other)
		}
		if s.csv == "code" {
			for _, f := range rep.FailedCalls {
				row("failed", failedKey(f.FailedCall), f.Count)
			}
			if rep.FailedCallsOther > 0 {
				row("failed", otherKey, rep.FailedCallsOther)
			}
		}
	}
	for _, r := range []struct {
		key string
		n   int
	}{{"self", rep.Records.Self}, {"gap", rep.Records.Gap}, {"seal", rep.Records.Seal}, {"other", rep.Records.Other}} {
		row("record", r.key, r.n)
	}
	cw.Flush()
	return cw.Error()
}

// countSection is one key,count section of the report.
type countSection struct {
	title, column, csv string
	rows               []review.Count
	other              int
}

func countSections(rep review.Report) []countSection {
	return []countSection{
		{"Events per user", "USER", "user", rep.Users, 0},
		{"Events per verb", "VERB", "verb", rep.Verbs, 0},
		{"Events per API family", "KIND", "kind", rep.Kinds, 0},
		{"Events per namespace/resource", "RESOURCE", "resource", rep.Resources, 0},
		{"Events per response code", "CODE", "code", rep.Codes, 0},
		{"Busiest endpoints", "ENDPOINT", "endpoint", rep.Endpoints, rep.EndpointsOther},
	}
}

func writeReportTable(w io.Writer, rep review.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Events:\t%d\n", rep.Events)
	if rep.EventsWithoutTime > 0 {
		fmt.Fprintf(tw, "Events without a time:\t%d\n", rep.EventsWithoutTime)
	}
	if rep.First != nil {
		fmt.Fprintf(tw, "First:\t%s\t%s\n", rep.First.Time.Format(time.RFC3339Nano), cell(rep.First.AuditID, 64))
		fmt.Fprintf(tw, "Last:\t%s\t%s\n", rep.Last.Time.Format(time.RFC3339Nano), cell(rep.Last.AuditID, 64))
	}
	fmt.Fprintf(tw, "Denied (401, 403):\t%d\n", rep.Denied)
	fmt.Fprintf(tw, "Failed (400 and above):\t%d\n", rep.Failed)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range countSections(rep) {
		rows := make([]string, len(s.rows))
		for i, c := range s.rows {
			rows[i] = fmt.Sprintf("%s\t%d", cell(c.Key, 100), c.Count)
		}
		if err := tableSection(tw, s.title, s.column+"\tEVENTS", rows, 0, s.other); err != nil {
			return err
		}
		if s.csv != "code" {
			continue
		}
		rows = make([]string, len(rep.FailedCalls))
		for i, f := range rep.FailedCalls {
			rows[i] = fmt.Sprintf("%d\t%s\t%s\t%s\t%d", f.Code, cell(f.User, 32), cell(f.Verb, 16), cell(f.Endpoint, 100), f.Count)
		}
		if err := tableSection(tw, "Failed and denied calls (400 and above)", "CODE\tUSER\tVERB\tENDPOINT\tEVENTS", rows, 3, rep.FailedCallsOther); err != nil {
			return err
		}
	}
	rc := rep.Records
	_, err := fmt.Fprintf(w, "\nNot events (all files read, not filtered): %d self, %d gap, %d seal, %d other records\n", rc.Self, rc.Gap, rc.Seal, rc.Other)
	return err
}

// tableSection writes one block of the table report: a blank line, the
// title, the header and the rows (cells separated by tabs), or "(none)";
// then, when other > 0, the (other) row after otherAt empty cells.
func tableSection(tw *tabwriter.Writer, title, header string, rows []string, otherAt, other int) error {
	fmt.Fprintf(tw, "\n%s\n%s\n", title, header)
	for _, r := range rows {
		fmt.Fprintln(tw, r)
	}
	if other > 0 {
		fmt.Fprintf(tw, "%s%s\t%d\n", strings.Repeat("\t", otherAt), otherKey, other)
	}
	if len(rows) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	return tw.Flush()
}
