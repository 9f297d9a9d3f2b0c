package htmlreport

import (
	"bytes"
	"html"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/review"
)

var t0 = time.Date(2024, 3, 2, 10, 0, 0, 0, time.UTC)

// render summarises events (and the gap records lines) and writes the page.
func render(t *testing.T, p Page, events []*review.Event, gaps ...string) string {
	t.Helper()
	s := review.NewSummary()
	for _, e := range events {
		s.Add(e)
	}
	for _, g := range gaps {
		typ, _, _ := review.Parse([]byte(g))
		s.AddRecord(&review.Record{Raw: []byte(g), Type: typ})
	}
	p.Report, p.Timeline = s.Report(p.Top), s.Timeline()
	var b bytes.Buffer
	if err := Write(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func event(user, verb, uri, kind string, code int, at time.Time) *review.Event {
	return &review.Event{AuditID: user + verb + uri, User: review.User{Username: user}, Verb: verb, RequestURI: uri, Kind: kind, Code: code, Time: at}
}

// The elements and attributes the page may have: anything else in it would
// have come from a value that was not escaped.
var (
	allowedTags = set("html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "p", "code", "section",
		"table", "tr", "th", "td", "dl", "div", "dt", "dd", "br", "svg", "line", "rect", "text", "footer")
	allowedAttrs = set("lang", "charset", "http-equiv", "content", "name", "class", "id", "colspan",
		"data-chart", "viewBox", "role", "aria-label", "x", "y", "width", "height", "x1", "y1", "x2", "y2", "text-anchor")
	tagRE  = regexp.MustCompile(`<(/?)([A-Za-z][A-Za-z0-9-]*)([^>]*)>`)
	attrRE = regexp.MustCompile(`\s([^\s=/]+)(?:="[^"]*")?`)
)

func set(s ...string) map[string]bool {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return m
}

// checkMarkup fails unless every tag and attribute of page is one the
// template writes, and counts the elements by name.
func checkMarkup(t *testing.T, page string) map[string]int {
	t.Helper()
	if !strings.HasPrefix(page, "<!DOCTYPE html>\n") {
		t.Fatalf("page does not start with its doctype:\n%.200s", page)
	}
	counts := map[string]int{}
	for _, m := range tagRE.FindAllStringSubmatch(page[len("<!DOCTYPE html>"):], -1) {
		if !allowedTags[m[2]] {
			t.Errorf("element <%s%s> is not one the template writes", m[2], m[3])
		}
		if m[1] == "/" {
			continue
		}
		counts[m[2]]++
		if rest := attrRE.ReplaceAllStringFunc(m[3], func(a string) string {
			if name := attrRE.FindStringSubmatch(a)[1]; !allowedAttrs[name] {
				t.Errorf("attribute %q in <%s%s> is not one the template writes", name, m[2], m[3])
			}
			return ""
		}); strings.TrimSpace(rest) != "" {
			t.Errorf("<%s%s>: %q is not an attribute", m[2], m[3], rest)
		}
	}
	return counts
}

// TestWriteEscapes renders values an attacker can choose (a user name, a
// path, a namespace, a gap record's destination …) made to break out of
// text, of attributes and of SVG, and checks that the page shows them as
// text and has no element or attribute but the template's.
func TestWriteEscapes(t *testing.T) {
	hostile := []string{
		`<script>alert(1)</script>`,
		`"><svg onload=alert(2)>`,
		`' onmouseover='alert(3)`,
		`</title><script>alert(4)</script>`,
		`</text><foreignObject><iframe src="javascript:alert(5)"></iframe></foreignObject><text>`,
		`]]><!--<img src=x onerror=alert(6)>-->`,
		`</style><style>body{background:url(https://evil.example/x)}</style>`,
		`&lt;script&gt;alert(7)&lt;/script&gt;`,
	}
	var events []*review.Event
	for i, h := range hostile {
		e := event(h, h, "/api/v1/namespaces/"+h+"/pods/"+h, h, 403, t0.Add(time.Duration(i)*time.Hour))
		e.AuditID = h
		events = append(events, e, event("alice", "get", h, "k", 200, t0))
	}
	gap := `{"ucp-audit/gap":{"container-id":"x","container-name":"<script>alert(8)</script>","destination":"\"><svg onload=alert(9)>","first-seq":1,"last-seq":2,"lost":2,"reason":"</td><script>alert(10)</script>","time":"<b>t</b>"}}`
	page := render(t, Page{Generated: t0, Paths: []string{hostile[0]}, Filters: []string{"--user " + hostile[1]}}, events, gap)

	counts := checkMarkup(t, page)
	if counts["script"] != 0 || counts["style"] != 1 || counts["svg"] != 5 {
		t.Errorf("elements %v: want no script, one style, 5 svg", counts)
	}
	low := strings.ToLower(page)
	for _, bad := range []string{"<script", "<iframe", "<img", "<foreignobject", "<style>body{", "<b>", "<!--"} {
		if strings.Contains(low, bad) {
			t.Errorf("page has %q as markup", bad)
		}
	}
	// Each value is shown, as text: unescaping the page gives it back.
	text := html.UnescapeString(page)
	for _, h := range append(hostile, "<script>alert(8)</script>", `"><svg onload=alert(9)>`, "</td><script>alert(10)</script>") {
		if !strings.Contains(text, shorten(h, labelRunes)) {
			t.Errorf("the page does not show %q", h)
		}
	}
	if !strings.Contains(page, `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`) {
		t.Error("the page has no Content-Security-Policy forbidding scripts and fetches")
	}
}

// TestWriteCharts checks the charts' bars: one per hour (or day) with
// events, per user, API family, failed response code and endpoint, with an
// (other) bar for what --top left out.
func TestWriteCharts(t *testing.T) {
	var events []*review.Event
	for i, u := range []string{"alice", "alice", "alice", "bob", "bob", "carol", "dave"} {
		events = append(events, event(u, "get", "/api/v1/namespaces/ns"+string(rune('a'+i%3))+"/pods", []string{"kubernetes", "ucp"}[i%2], []int{200, 403, 500}[i%3], t0.Add(time.Duration(i%4)*time.Hour)))
	}
	tests := []struct {
		name   string
		top    int
		events []*review.Event
		want   map[string]int
		charts map[string]string // a label each chart must show
	}{
		{"all", 0, events, map[string]int{"timeline": 4, "users": 4, "kinds": 2, "failed": 2, "endpoints": 3}, map[string]string{"timeline": "per hour"}},
		{"top 2", 2, events, map[string]int{"timeline": 4, "users": 3, "kinds": 2, "failed": 2, "endpoints": 3}, nil},
		{"days", 0, append(slices.Clone(events), event("erin", "get", "/x", "ucp", 200, t0.Add(80*time.Hour))), map[string]int{"timeline": 2, "users": 5, "kinds": 2, "failed": 2, "endpoints": 4}, map[string]string{"timeline": "per day"}},
		{"no events", 10, nil, map[string]int{"timeline": 0, "users": 0, "kinds": 0, "failed": 0, "endpoints": 0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := render(t, Page{Generated: t0, Paths: []string{"audit.log"}, Top: tt.top}, tt.events)
			counts := checkMarkup(t, page)
			bars := ChartBars(page)
			if !maps.Equal(bars, tt.want) {
				t.Errorf("bars per chart %v, want %v", bars, tt.want)
			}
			total := 0
			for _, n := range tt.want {
				total += n
			}
			if counts["rect"] != total || counts["svg"] != 5 {
				t.Errorf("%d rect and %d svg elements, want %d and 5", counts["rect"], counts["svg"], total)
			}
			for _, want := range tt.charts {
				if !strings.Contains(page, want) {
					t.Errorf("page lacks %q", want)
				}
			}
		})
	}
}

func TestShorten(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcdef", 5, "ab…ef"},
		{"ééééééé", 4, "é…éé"},
	} {
		if got := shorten(tt.in, tt.n); got != tt.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
