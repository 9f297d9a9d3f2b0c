// Package htmlreport renders a review.Report as one self-contained HTML
// page: inline CSS, charts as inline SVG drawn here, no script, no font
// and nothing else to fetch (a Content-Security-Policy forbids it too).
// Every value from the trail is the callers' own string, so the page is
// built with html/template, which escapes each in its context.
package htmlreport

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/review"
)

// Page is what the report shows.
type Page struct {
	Generated time.Time // when the report was made
	Paths     []string  // the trail files read
	Filters   []string  // the filters as given ("--user alice"), for the heading
	Top       int       // rows per chart and table (0: all), as Report was cut
	Report    review.Report
	Timeline  review.Timeline
}

//go:embed page.tmpl
var pageTemplate string

var tmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"time": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
}).Parse(pageTemplate))

// Write writes the page for p to w.
func Write(w io.Writer, p Page) error {
	if err := tmpl.Execute(w, newView(p)); err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	return nil
}

// view is what the template renders: the page and its charts, laid out.
type view struct {
	Page
	Gaps       []gapRow
	Timeline   *chart
	Bars       []*chart // events per user, per API family, failed responses, busiest endpoints
	Failed     []review.FailedCount
	Chargeback chargeback
}

// gapRow is a gap record as a warning.
type gapRow struct {
	auditlog.Gap
	Container string // name, else ID
}

func newView(p Page) view {
	r := p.Report
	v := view{Page: p, Failed: r.FailedCalls, Chargeback: newChargeback(r.Chargeback)}
	for _, g := range r.Gaps {
		c := g.ContainerName
		if c == "" {
			c = g.ContainerID
		}
		v.Gaps = append(v.Gaps, gapRow{g, c})
	}
	v.Timeline = timelineChart(p.Timeline)
	var failedCodes []review.Count
	for _, c := range r.Codes {
		if code, err := strconv.Atoi(c.Key); err == nil && code >= 400 {
			failedCodes = append(failedCodes, c)
		}
	}
	v.Bars = []*chart{
		barChart("users", "Events per user", top(r.Users, p.Top)),
		barChart("kinds", "Events per API family", top(r.Kinds, p.Top)),
		barChart("failed", "Denied and failed calls per response code", failedCodes),
		barChart("endpoints", "Busiest endpoints", withOther(r.Endpoints, r.EndpointsOther)),
	}
	return v
}

// top keeps the first n rows (all when n <= 0) and an Other row for the
// rest.
func top(rows []review.Count, n int) []review.Count {
	if n <= 0 || len(rows) <= n {
		return rows
	}
	other := 0
	for _, r := range rows[n:] {
		other += r.Count
	}
	return withOther(rows[:n], other)
}

func withOther(rows []review.Count, other int) []review.Count {
	if other == 0 {
		return rows
	}
	return append(rows[:len(rows):len(rows)], review.Count{Key: review.Other, Count: other})
}

// chargeback is review.Chargeback with a shade per cell.
type chargeback struct {
	review.Chargeback
	Rows []chargebackRow
}

type chargebackRow struct {
	User  string
	Cells []heatCell
	Total int
}

// heatCell is a count and its shade: 0 for none, 1 to 4 by its share of
// the largest cell.
type heatCell struct {
	Count, Shade int
}

func newChargeback(cb review.Chargeback) chargeback {
	most := 0
	for _, r := range cb.Rows {
		for _, n := range r.Counts {
			most = max(most, n)
		}
	}
	out := chargeback{Chargeback: cb}
	for _, r := range cb.Rows {
		row := chargebackRow{User: r.User, Total: r.Total}
		for _, n := range r.Counts {
			shade := 0
			if n > 0 {
				shade = 1 + 3*n/most // 1 to 4
			}
			row.Cells = append(row.Cells, heatCell{n, shade})
		}
		out.Rows = append(out.Rows, row)
	}
	return out
}
