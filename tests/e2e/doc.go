// Package e2e is ucp-audit's end-to-end suite. It runs against a real
// dockerd with the plugin installed by `make install`, and only builds with
// the e2e build tag:
//
//	go test -race -tags e2e -count=1 -v -timeout 20m ./tests/e2e/
//
// Without a dockerd the suite is skipped, unless UCP_AUDIT_E2E_REQUIRED=1 or
// CI=true, which make it fail. UCP_AUDIT_E2E_NO_INSTALL=1 skips `make
// install` and tests the plugin already installed.
//
// Containers always run with --network none.
//
// TestReportHTMLRenders renders the HTML report in headless Chromium
// (Debian's chromium package): without one on PATH it is skipped, or fails
// when the suite is required. Its browser check (browser_test.go) also
// builds with the browser tag alone, without the suite's TestMain, for a
// check by hand with a test of one's own.
package e2e
