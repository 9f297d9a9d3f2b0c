package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/review"
	"github.com/ucp-audit/ucp-audit/review/htmlreport"
)

// report runs `ucp-audit report` and returns its exit code.
func report(args []string) int { return hostCommand(runReport, args) }

const reportUsage = `usage: ucp-audit report [flags] [PATH...]

Summarises the audit events of PATH (default ` + defaultTrail + `) that match
every filter given (the same filters as ucp-audit query): events per day,
user, verb, API family, resource and response code, the failed and denied
calls, the busiest endpoints, a chargeback table of events per user and
namespace, and the first and last event; and warns of the gap records read
(events that will never reach a remote destination).

Flags:
`

// The other row: what --top left out.
const otherKey = review.Other

func runReport(ctx context.Context, args []string, env hostEnv) int {
	fs, sel := commandFlags("report")
	var format string
	var top int
	fs.StringVar(&format, "format", "table", "output `FORMAT`: table, csv (rows section,key,count), json, or html (one self-contained page with charts)")
	fs.IntVar(&top, "top", 10, "list at most `N` busiest endpoints, failed-call rows, gap records, and chargeback users and namespaces (0: all)")
	run, code, ok := setUp(fs, reportUsage, sel, args, env, func() error {
		if format != "table" && format != "csv" && format != "json" && format != "html" {
			return fmt.Errorf("--format %q: want table, csv or json, or html", format)
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
	}, sum.AddRecord)
	rep := sum.Report(top)
	bw := bufio.NewWriter(env.stdout)
	var err error
	switch format {
	case "json":
		err = writeReportJSON(bw, rep)
	case "csv":
		err = writeReportCSV(bw, rep)
	case "html":
		err = htmlreport.Write(bw, htmlreport.Page{
			Generated: env.now(), Paths: run.paths, Filters: givenFilters(fs), Top: top,
			Report: rep, Timeline: sum.Timeline(),
		})
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

// givenFilters lists the flags given on the command line, but --format,
// as "--name value", for the HTML report's heading.
func givenFilters(fs *flag.FlagSet) []string {
	var out []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "format" {
			out = append(out, "--"+f.Name+" "+f.Value.String())
		}
	})
	return out
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

// gapKey is a gap record as one CSV key: destination, container and seq
// range.
func gapKey(g auditlog.Gap) string {
	return fmt.Sprintf("%s %s %d-%d", orNone(g.Destination), gapContainer(g), g.FirstSeq, g.LastSeq)
}

// gapContainer names a gap record's container: its name, else its ID.
func gapContainer(g auditlog.Gap) string {
	if n := strings.TrimPrefix(g.ContainerName, "/"); n != "" {
		return n
	}
	return orNone(g.ContainerID)
}

func orNone(s string) string {
	if s == "" {
		return review.None
	}
	return s
}

// writeReportCSV writes one flat table, section,key,count; see docs/auditors.md.
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
	for _, d := range rep.Days {
		row("day", d.Key, d.Count)
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
	cb := rep.Chargeback
	for _, r := range cb.Rows {
		for i, n := range r.Counts {
			if n > 0 {
				row("chargeback", r.User+" "+cb.Namespaces[i], n)
			}
		}
	}
	for _, g := range rep.Gaps {
		cw.Write([]string{"gap", gapKey(g), strconv.FormatUint(g.Lost, 10)})
	}
	if rep.GapsOther > 0 {
		cw.Write([]string{"gap", otherKey, strconv.FormatUint(rep.GapsOther, 10)})
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
	if err := gapTable(tw, rep); err != nil {
		return err
	}
	rows := make([]string, len(rep.Days))
	for i, d := range rep.Days {
		rows[i] = fmt.Sprintf("%s\t%d", d.Key, d.Count)
	}
	if err := tableSection(tw, "Events per day (UTC)", "DATE\tEVENTS", rows, 0, 0); err != nil {
		return err
	}
	for _, s := range countSections(rep) {
		rows = make([]string, len(s.rows))
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
	if err := chargebackTable(tw, rep.Chargeback); err != nil {
		return err
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

// gapTable warns of the gap records, when there are any: events of a
// container that will never reach a destination.
func gapTable(tw *tabwriter.Writer, rep review.Report) error {
	if len(rep.Gaps) == 0 {
		return nil
	}
	rows := make([]string, len(rep.Gaps))
	for i, g := range rep.Gaps {
		rows[i] = fmt.Sprintf("%s\t%s\t%s\t%d-%d\t%d\t%s", cell(g.Time, 35), cell(g.Destination, 60), cell(gapContainer(g), 32), g.FirstSeq, g.LastSeq, g.Lost, cell(g.Reason, 60))
	}
	var other int
	if rep.GapsOther > 0 {
		other = int(min(rep.GapsOther, math.MaxInt))
	}
	return tableSection(tw, "WARNING: events that will never reach a destination (gap records, whatever the filters)",
		"TIME\tDESTINATION\tCONTAINER\tSEQ\tLOST\tREASON", rows, 3, other)
}

// chargebackTable writes the events per user (rows) and namespace
// (columns), with their totals.
func chargebackTable(tw *tabwriter.Writer, cb review.Chargeback) error {
	var b strings.Builder
	b.WriteString("USER")
	for _, ns := range cb.Namespaces {
		b.WriteString("\t" + cell(ns, 32))
	}
	b.WriteString("\tTOTAL")
	header := b.String()
	line := func(name string, counts []int, total int) string {
		b.Reset()
		b.WriteString(cell(name, 32))
		for _, n := range counts {
			fmt.Fprintf(&b, "\t%d", n)
		}
		fmt.Fprintf(&b, "\t%d", total)
		return b.String()
	}
	var rows []string
	for _, r := range cb.Rows {
		rows = append(rows, line(r.User, r.Counts, r.Total))
	}
	if len(rows) > 0 {
		rows = append(rows, line("TOTAL", cb.Totals, cb.Total))
	}
	return tableSection(tw, "Events per user and namespace (chargeback; - is cluster-scoped or none)", header, rows, 0, 0)
}
