//go:build e2e || browser

package e2e

// The browser check of the HTML report, apart from the suite's TestMain
// (which needs a dockerd), so that it also builds with the browser tag
// alone: with a test of one's own calling checkReportRenders,
// go test -tags browser -run ThatTest ./tests/e2e/ runs it without dockerd.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ucp-audit/ucp-audit/review/htmlreport"
)

// chromiumNames are the names the browser is looked up by, in PATH.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome"}

// findChromium returns the path of a Chromium on PATH, or an error naming
// those looked for.
func findChromium() (string, error) {
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no browser on PATH (looked for %v; Debian: apt-get install chromium)", chromiumNames)
}

// rendered is what headless Chromium made of a page.
type rendered struct {
	NonWhite, BarPixels, Pixels int            // of the screenshot
	Bars                        map[string]int // bars per chart in the DOM it dumped
}

// renderPage opens the file page in headless Chromium twice, with no
// network and a fresh profile each time: once for a 1280×2000 screenshot,
// whose pixels it counts, and once to dump the DOM, whose chart bars it
// counts.
func renderPage(ctx context.Context, chromium, page string) (rendered, error) {
	var r rendered
	abs, err := filepath.Abs(page)
	if err != nil {
		return r, err
	}
	pageURL := (&url.URL{Scheme: "file", Path: abs}).String()
	tmp, err := os.MkdirTemp("", "ucp-audit-chromium-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(tmp)
	run := func(name string, args ...string) ([]byte, error) {
		profile := filepath.Join(tmp, name+"-profile")
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, chromium, append([]string{
			"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + profile,
		}, append(args, pageURL)...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%s %s: %w\n%s", chromium, name, err, stderr.Bytes())
		}
		return stdout.Bytes(), nil
	}
	shot := filepath.Join(tmp, "page.png")
	if _, err := run("screenshot", "--screenshot="+shot, "--window-size=1280,2000"); err != nil {
		return r, err
	}
	f, err := os.Open(shot)
	if err != nil {
		return r, fmt.Errorf("the screenshot: %w", err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		return r, fmt.Errorf("the screenshot: %w", err)
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			r.Pixels++
			if cr>>8 < 0xf0 || cg>>8 < 0xf0 || cb>>8 < 0xf0 {
				r.NonWhite++
			}
			// The bars' fill, #4a6fa5, give or take antialiasing.
			if near(cr>>8, 0x4a) && near(cg>>8, 0x6f) && near(cb>>8, 0xa5) {
				r.BarPixels++
			}
		}
	}
	dom, err := run("dump-dom", "--dump-dom")
	if err != nil {
		return r, err
	}
	if len(dom) == 0 {
		return r, errors.New("chromium --dump-dom printed nothing")
	}
	r.Bars = htmlreport.ChartBars(string(dom))
	return r, nil
}

func near(a, b uint32) bool { return a+8 >= b && a <= b+8 }

// writeReportTrail writes a trail of 60 events to dir/audit.log: two per
// hour for 30 hours, of 6 users, 3 API families, 4 response codes (3 of
// them failures) and 12 endpoints, and a gap record; and returns the bars
// each chart of its HTML report must have (with --top 10).
func writeReportTrail(dir string) (map[string]int, error) {
	t0 := time.Date(2024, 3, 1, 6, 0, 0, 0, time.UTC)
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank"}
	kinds := []string{"kubernetes", "docker-swarm", "ucp"}
	codes := []int{200, 403, 500, 401}
	var b bytes.Buffer
	for i := range 60 {
		fmt.Fprintf(&b, `{"auditID":"e2e-%03d","kind":%q,"verb":"get","requestURI":"/api/v1/namespaces/ns%d/pods/p%d","user":{"username":%q},`+
			`"sourceIPs":["10.0.0.%d:5%04d"],"responseStatus":{"code":%d},"stageTimestamp":%q}`+"\n",
			i, kinds[i%3], i%3, i%12, users[i%6], i%7, i, codes[i%4], t0.Add(time.Duration(i)*30*time.Minute).Format(time.RFC3339))
	}
	b.WriteString(`{"ucp-audit/gap":{"container-id":"3f1c","container-name":"ucp-controller","destination":"syslog","first-seq":9,"last-seq":10,"lost":2,"reason":"spool full","time":"2024-03-01T12:00:00Z"}}` + "\n")
	if err := os.WriteFile(filepath.Join(dir, "audit.log"), b.Bytes(), 0o600); err != nil {
		return nil, err
	}
	// 30 hours; the users and API families; 401, 403 and 500; the 10
	// busiest endpoints and (other).
	return map[string]int{"timeline": 30, "users": 6, "kinds": 3, "failed": 3, "endpoints": 11}, nil
}

// checkReportRenders runs `bin report --format html` on a trail of its own
// in dir and renders the page in chromium: the screenshot must not be
// blank and must show bars, and the DOM chromium built must hold every
// chart's bars, as many as the trail calls for.
func checkReportRenders(ctx context.Context, bin, chromium, dir string) error {
	want, err := writeReportTrail(dir)
	if err != nil {
		return err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "report", "--format", "html", filepath.Join(dir, "audit.log"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		return fmt.Errorf("%s report --format html: %v\n%s", bin, err, stderr.Bytes())
	}
	if got := htmlreport.ChartBars(stdout.String()); !maps.Equal(got, want) {
		return fmt.Errorf("the page has bars %v, want %v", got, want)
	}
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, stdout.Bytes(), 0o644); err != nil {
		return err
	}
	r, err := renderPage(ctx, chromium, page)
	if err != nil {
		return err
	}
	var errs []error
	if r.NonWhite < r.Pixels/50 {
		errs = append(errs, fmt.Errorf("the screenshot is blank: %d of %d pixels are not white", r.NonWhite, r.Pixels))
	}
	if r.BarPixels < 2000 {
		errs = append(errs, fmt.Errorf("the screenshot shows no bars: %d pixels of their colour", r.BarPixels))
	}
	if !maps.Equal(r.Bars, want) {
		errs = append(errs, fmt.Errorf("the DOM chromium built has bars %v, want %v", r.Bars, want))
	}
	return errors.Join(errs...)
}
