//go:build e2e

package e2e

import (
	"context"
	"testing"
)

// TestReportHTMLRenders renders `ucp-audit report --format html` in
// headless Chromium: the charts are drawn (a screenshot that is not blank
// and shows bars) and the DOM has every chart's bars. Without a Chromium
// the test is skipped, or fails when the suite is required (CI=true or
// UCP_AUDIT_E2E_REQUIRED=1).
func TestReportHTMLRenders(t *testing.T) {
	chromium, err := findChromium()
	if err != nil {
		if required() {
			t.Fatalf("the HTML report must be checked in a browser: %v", err)
		}
		t.Skip(err)
	}
	if err := checkReportRenders(context.Background(), verifyBin(), chromium, t.TempDir()); err != nil {
		t.Fatal(err)
	}
}
