package htmlreport

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ucp-audit/ucp-audit/review"
)

// chart is one SVG chart, laid out in the coordinates of its viewBox:
// one rect per bar (class "bar"), and its labels and axes.
type chart struct {
	ID, Title     string
	Width, Height int
	Bars          []bar
	Labels        []label
	Axes          []axis
}

// bar is one rect, with its tooltip.
type bar struct {
	X, Y, W, H string
	Tip        string
	Other      bool // the row of what the cut left out
}

// label is one text element; Anchor is start, middle or end.
type label struct {
	X, Y, Anchor, Text string
}

// axis is one line.
type axis struct{ X1, Y1, X2, Y2 string }

// Sizes of the charts, in viewBox units (they scale to the page width).
const (
	chartWidth = 960
	rowHeight  = 22 // a bar chart's row
	barHeight  = 16
	labelWidth = 380 // a bar chart's labels, left of the bars
	countWidth = 70  // a bar chart's counts, right of the bars
	labelRunes = 56  // longer labels are cut in the middle

	timelineHeight = 240
	plotLeft       = 56 // the timeline's y labels
	plotRight      = 12
	plotTop        = 12
	plotBottom     = 36 // the timeline's x labels
)

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// barChart draws rows as horizontal bars, longest for the largest count.
func barChart(id, title string, rows []review.Count) *chart {
	c := &chart{ID: id, Title: title, Width: chartWidth, Height: max(len(rows), 1)*rowHeight + 8}
	if len(rows) == 0 {
		c.Labels = []label{{num(labelWidth), num(rowHeight - 6), "start", "(none)"}}
		return c
	}
	most := 0
	for _, r := range rows {
		most = max(most, r.Count)
	}
	span := float64(chartWidth - labelWidth - countWidth)
	for i, r := range rows {
		y := float64(4 + i*rowHeight)
		w := max(span*float64(r.Count)/float64(most), 1)
		c.Bars = append(c.Bars, bar{
			X: num(labelWidth), Y: num(y + (rowHeight-barHeight)/2), W: num(w), H: num(barHeight),
			Tip: fmt.Sprintf("%s: %d", r.Key, r.Count), Other: r.Key == review.Other,
		})
		c.Labels = append(c.Labels,
			label{num(labelWidth - 8), num(y + rowHeight - 7), "end", shorten(r.Key, labelRunes)},
			label{num(labelWidth + w + 6), num(y + rowHeight - 7), "start", strconv.Itoa(r.Count)})
	}
	c.Axes = []axis{{num(labelWidth), "2", num(labelWidth), num(float64(c.Height - 2))}}
	return c
}

// timelineChart draws the timeline as vertical bars on a time axis from
// its From to its To.
func timelineChart(t review.Timeline) *chart {
	unit, layout := "hour", "2006-01-02 15:04"
	if t.Step >= 24*time.Hour {
		unit, layout = "day", time.DateOnly
	}
	c := &chart{ID: "timeline", Title: "Events per " + unit + " (UTC)", Width: chartWidth, Height: timelineHeight}
	plotW := float64(chartWidth - plotLeft - plotRight)
	plotH := float64(timelineHeight - plotTop - plotBottom)
	base := float64(plotTop) + plotH
	c.Axes = []axis{
		{num(plotLeft), num(plotTop), num(plotLeft), num(base)},
		{num(plotLeft), num(base), num(plotLeft + plotW), num(base)},
	}
	if len(t.Buckets) == 0 {
		c.Labels = []label{{num(plotLeft + plotW/2), num(plotTop + plotH/2), "middle", "(no events with a time)"}}
		return c
	}
	most := 0
	for _, b := range t.Buckets {
		most = max(most, b.Count)
	}
	total := float64(t.To.Sub(t.From))
	slot := plotW * float64(t.Step) / total
	for _, b := range t.Buckets {
		h := max(plotH*float64(b.Count)/float64(most), 1)
		x := plotLeft + plotW*float64(b.Start.Sub(t.From))/total
		c.Bars = append(c.Bars, bar{
			X: num(x + slot*0.1), Y: num(base - h), W: num(max(slot*0.8, 1)), H: num(h),
			Tip: fmt.Sprintf("%s: %d", b.Start.Format(layout), b.Count),
		})
	}
	c.Labels = []label{
		{num(plotLeft - 6), num(plotTop + 10), "end", strconv.Itoa(most)},
		{num(plotLeft - 6), num(base), "end", "0"},
		{num(plotLeft), num(base + 22), "start", t.From.Format(layout)},
		{num(plotLeft + plotW), num(base + 22), "end", t.To.Format(layout)},
	}
	return c
}

// shorten cuts s to n runes in the middle, so that both ends of a long
// endpoint show.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	rs := []rune(s)
	head := (n - 1) / 2
	return string(rs[:head]) + "…" + string(rs[len(rs)-(n-1-head):])
}

var (
	chartStart = regexp.MustCompile(`<svg\b[^>]*\bdata-chart="([^"]*)"[^>]*>`)
	barRect    = regexp.MustCompile(`<rect\b[^>]*\bclass="bar[ "]`)
)

// ChartBars counts the bars (rect elements of class "bar") of each chart
// (an svg element with a data-chart attribute) in page: the HTML Write
// wrote, or a browser's serialization of its DOM. It is how tests check
// that the charts are drawn.
func ChartBars(page string) map[string]int {
	out := map[string]int{}
	for _, m := range chartStart.FindAllStringSubmatchIndex(page, -1) {
		body := page[m[1]:]
		if end := strings.Index(body, "</svg>"); end >= 0 {
			body = body[:end]
		}
		out[page[m[2]:m[3]]] = len(barRect.FindAllStringIndex(body, -1))
	}
	return out
}
