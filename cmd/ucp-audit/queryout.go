package main

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ucp-audit/ucp-audit/review"
)

// eventWriter writes query's output, one selected event at a time; flush
// writes what it holds back to the underlying writer.
type eventWriter interface {
	write(rec *review.Record) error
	flush() error
}

// rawWriter writes each event's line as it is in the file (-o json).
type rawWriter struct{ w *bufio.Writer }

func (r rawWriter) write(rec *review.Record) error {
	r.w.Write(rec.Raw)
	return r.w.WriteByte('\n')
}

func (rawWriter) flush() error { return nil }

// tableWriter writes aligned columns for people (-o table).
type tableWriter struct {
	tw   *tabwriter.Writer
	rows int
}

func newTableWriter(w *bufio.Writer) *tableWriter {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tUSER\tVERB\tCODE\tKIND\tREQUEST URI\tCONTAINER")
	return &tableWriter{tw: tw}
}

func (t *tableWriter) write(rec *review.Record) error {
	e := rec.Event
	_, err := fmt.Fprintf(t.tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", tableTime(e.Time), cell(e.HumanUser(), 32), cell(e.Verb, 16),
		codeCell(e.Code), cell(e.Kind, 16), cell(e.RequestURI, uriWidth), cell(strings.TrimPrefix(e.ContainerName(), "/"), 32))
	// Aligned in blocks, so that a long output is not all held.
	if t.rows++; t.rows%1000 == 0 {
		err = t.tw.Flush()
	}
	return err
}

func (t *tableWriter) flush() error { return t.tw.Flush() }

// csvHeader names query's CSV columns: the table's, then auditID, the
// source addresses and the namespace.
var csvHeader = []string{"time", "user", "verb", "code", "kind", "requestURI", "container", "auditID", "sourceIPs", "namespace"}

// csvWriter writes RFC 4180 rows for spreadsheets and scripts (-o csv):
// values as they are in the event, empty when absent; the time in UTC
// with all its digits, the source addresses separated by spaces.
type csvWriter struct{ cw *csv.Writer }

func newCSVWriter(w *bufio.Writer) csvWriter {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	return csvWriter{cw}
}

func (c csvWriter) write(rec *review.Record) error {
	e := rec.Event
	var t, code string
	if !e.Time.IsZero() {
		t = e.Time.UTC().Format(time.RFC3339Nano)
	}
	if e.Code != 0 {
		code = fmt.Sprint(e.Code)
	}
	return c.cw.Write([]string{t, e.HumanUser(), e.Verb, code, e.Kind, e.RequestURI, strings.TrimPrefix(e.ContainerName(), "/"),
		e.AuditID, strings.Join(e.SourceIPs, " "), e.Namespace()})
}

func (c csvWriter) flush() error {
	c.cw.Flush()
	return c.cw.Error()
}

// uriWidth is the widest request URI the table shows.
const uriWidth = 60

// tableTime formats an event time for tables: UTC, milliseconds.
func tableTime(t time.Time) string {
	if t.IsZero() {
		return review.None
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func codeCell(code int) string {
	if code == 0 {
		return review.None
	}
	return fmt.Sprint(code)
}

// cell makes s fit a table cell: "-" when empty, control and other
// unprintable characters (tabs, newlines, terminal escapes) shown as "?",
// and at most width characters, cut in the middle with "…" so that both
// the start and the end of a long URI show.
func cell(s string, width int) string {
	if s == "" {
		return review.None
	}
	clean := strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	n := utf8.RuneCountInString(clean)
	if n <= width {
		return clean
	}
	rs := []rune(clean)
	head := (width - 1) / 2
	tail := width - 1 - head
	return string(rs[:head]) + "…" + string(rs[n-tail:])
}
