//go:build e2e

package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

// The node configuration and the trust boundary (issue 11): the trail is
// the administrator's, set through `ucp-audit config` or the HTTPS API;
// containers shape only their own events.

// seedDocument is UCP's logging document, as its documentation shows it.
const seedDocument = `{"logLevel": "INFO", "auditLevel": "metadata", "supportDumpIncludeAuditLogs": false}`

// selfRecords returns the self records of type typ in the audit file path.
func selfRecords(t *testing.T, path, typ string) []auditlog.Self {
	t.Helper()
	var out []auditlog.Self
	for _, r := range readJSONLines(t, path, `"type":"`+typ+`"`) {
		v, ok := r.Event[auditlog.SelfKey]
		if !ok {
			continue
		}
		b, _ := json.Marshal(v)
		var s auditlog.Self
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		if s.Type == typ {
			out = append(out, s)
		}
	}
	return out
}

// waitSelf waits up to 30 s for more than n self records of type typ in
// the audit file path, and returns them.
func waitSelf(t *testing.T, path, typ string, n int) []auditlog.Self {
	t.Helper()
	var recs []auditlog.Self
	if !peers.WaitUntil(30*time.Second, func() bool { recs = selfRecords(t, path, typ); return len(recs) > n }) {
		t.Fatalf("no new %s record in %s within 30 s (%d there)", typ, path, len(recs))
	}
	return recs
}

// configApply runs `ucp-audit config apply -` with doc on stdin.
func configApply(t *testing.T, doc string) {
	t.Helper()
	cmd := exec.Command(verifyBin(), "config", "apply", "--file", nodeFile, "-")
	cmd.Stdin = strings.NewReader(doc)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ucp-audit config apply: %v\n%s", err, out)
	}
}

// resetKeys removes top-level keys of the node configuration at the end of
// the test, and waits until the plugin has applied that.
func resetKeys(t *testing.T, keys ...string) {
	t.Cleanup(func() {
		n := len(selfRecords(t, suite.Audit, auditlog.SelfConfigChanged))
		var unset []string
		for _, k := range keys {
			unset = append(unset, k+"=null")
		}
		if err := configSet(unset...); err != nil {
			t.Error(err)
			return
		}
		waitSelf(t, suite.Audit, auditlog.SelfConfigChanged, n)
	})
}

// TestNodeSeedDocument: UCP's logging document, applied as is with `config
// apply`, is recorded as a config-changed record with the old and new
// configuration, and its auditLevel is the node's ceiling: a container
// asking for request level gets metadata.
func TestNodeSeedDocument(t *testing.T) {
	d := sharedTrail()
	resetKeys(t, "logLevel", "auditLevel", "supportDumpIncludeAuditLogs")
	n := len(selfRecords(t, d.Audit, auditlog.SelfConfigChanged))
	configApply(t, seedDocument)
	recs := waitSelf(t, d.Audit, auditlog.SelfConfigChanged, n)
	last := recs[len(recs)-1]
	var before, after map[string]any
	if err := json.Unmarshal(last.Old, &before); err != nil {
		t.Fatalf("config-changed old: %v: %s", err, last.Old)
	}
	if err := json.Unmarshal(last.New, &after); err != nil {
		t.Fatalf("config-changed new: %v: %s", err, last.New)
	}
	if after["auditLevel"] != "metadata" || before["auditLevel"] == "metadata" || after["supportDumpIncludeAuditLogs"] != false {
		t.Errorf("config-changed record: old %s new %s", last.Old, last.New)
	}
	if out, err := exec.Command(verifyBin(), "config", "get", "--file", nodeFile, "auditLevel").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "metadata" {
		t.Errorf("config get auditLevel: %v %s", err, out)
	}

	args := []string{"-seed", "61", "-n", "2", "-big", "1", "-malformed=false", "-ignored=false", "-stderr=false"}
	em := emit(t, args...)
	c := runContainer(t, pluginName, []string{"audit-level=request"}, args...)
	recs2 := waitRecords(t, d.Audit, c, len(em.Forwarded()))
	checkExactlyOnce(t, recs2, em.Forwarded())
	for _, r := range recs2 {
		if _, ok := r.Event["requestObject"]; ok {
			t.Fatalf("%v carries its requestObject above the node's auditLevel ceiling", r.Key())
		}
	}
}

// TestConfigAPI: UCP's documented procedure against the node: GET and PUT
// /api/ucp/config/logging over HTTPS with a client bundle's certificate.
// A certificate of another CA, or of the CA with a subject not allowed, is
// refused, and the refusal is in the trail; an accepted PUT is recorded
// with the client's subject.
func TestConfigAPI(t *testing.T) {
	d := sharedTrail()
	dir := remoteDir(t)
	pki := peers.NewPKI(t, dir) // the listener's certificate, and the client CA
	adminCert, adminKey, _ := pki.Client(t, dir, "admin", pkix.Name{CommonName: "admin", Organization: []string{"ucp"}})
	_, _, intruder := pki.Client(t, dir, "intruder", pkix.Name{CommonName: "intruder"})
	other := peers.NewPKI(t, t.TempDir())
	_, _, stranger := other.Client(t, t.TempDir(), "admin", pkix.Name{CommonName: "admin"})

	resetKeys(t, "api", "logLevel", "auditLevel", "supportDumpIncludeAuditLogs")
	n := len(selfRecords(t, d.Audit, auditlog.SelfConfigChanged))
	if err := configSet("api.certFile="+pki.CertFile, "api.keyFile="+pki.KeyFile, "api.clientCAFile="+pki.CAFile, `api.allowedSubjects=["CN=admin"]`); err != nil {
		t.Fatal(err)
	}
	waitSelf(t, d.Audit, auditlog.SelfConfigChanged, n)
	addr := fmt.Sprintf("127.0.0.1:%d", peers.FreeTCPPort(t))
	setPluginEnv(t, "API_ADDRESS", addr)
	url := "https://" + addr + "/api/ucp/config/logging"

	// The client bundle's files, as curl --cert cert.pem --key key.pem
	// --cacert ca.pem uses them.
	bundle, err := tls.LoadX509KeyPair(adminCert, adminKey)
	if err != nil {
		t.Fatal(err)
	}
	client := func(cert tls.Certificate) *http.Client {
		cfg := pki.ClientTLS()
		cfg.Certificates = []tls.Certificate{cert}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	}
	var body []byte
	if !peers.WaitUntil(30*time.Second, func() bool {
		resp, err := client(bundle).Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("GET %s as CN=admin did not answer 200 within 30 s", url)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil || got["auditLevel"] == nil || got["logLevel"] == nil {
		t.Fatalf("GET: %v: %s", err, body)
	}

	n = len(selfRecords(t, d.Audit, auditlog.SelfConfigChanged))
	req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader(seedDocument))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client(bundle).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT as CN=admin: %s: %s", resp.Status, b)
	}
	recs := waitSelf(t, d.Audit, auditlog.SelfConfigChanged, n)
	if s := recs[len(recs)-1]; !strings.Contains(s.Subject, "CN=admin") || !bytes.Contains(s.New, []byte(`"auditLevel":"metadata"`)) {
		t.Errorf("config-changed record of the PUT: subject %q new %s", s.Subject, s.New)
	}

	// Refused: each refusal is reported (one a second at most).
	for _, tc := range []struct {
		name string
		cert tls.Certificate
		why  string
	}{
		{"subject not allowed", intruder, "api.allowedSubjects"},
		{"another CA", stranger, "api.clientCAFile"},
	} {
		time.Sleep(1100 * time.Millisecond)
		n := len(selfRecords(t, d.Audit, auditlog.SelfConfigRejected))
		resp, err := client(tc.cert).Get(url)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: GET answered %s", tc.name, resp.Status)
			continue
		}
		recs := waitSelf(t, d.Audit, auditlog.SelfConfigRejected, n)
		if r := recs[len(recs)-1]; !strings.Contains(r.Detail, tc.why) {
			t.Errorf("%s: refusal record: subject %q detail %q", tc.name, r.Subject, r.Detail)
		}
	}
}

// setPluginEnv sets a plugin setting for the test and clears it at its end.
// Setting needs the plugin disabled; it is enabled again with --timeout 0
// as make install does.
func setPluginEnv(t *testing.T, key, value string) {
	t.Helper()
	set := func(v string) {
		mustDocker(t, "plugin", "disable", "-f", pluginName)
		mustDocker(t, "plugin", "set", pluginName, key+"="+v)
		mustDocker(t, "plugin", "enable", "--timeout", "0", pluginName)
	}
	set(value)
	t.Cleanup(func() { set("") })
}

// TestForgedEventsFromNonProducer: a container that is not an audit
// producer (its image is not a ucp-controller) prints well-formed audit
// events: none reaches the trail, its docker logs has them all, and one
// record says its audit-looking lines were not trusted.
func TestForgedEventsFromNonProducer(t *testing.T) {
	d := sharedTrail()
	args := []string{"-seed", "62", "-n", "3", "-big", "1", "-malformed=false", "-stderr=false"}
	em := emit(t, args...)
	n := len(selfRecords(t, d.Audit, auditlog.SelfUntrusted))
	c, stderr, err := startContainerFrom(t, otherImage, pluginName, nil, args...)
	if err != nil {
		t.Fatalf("docker run: %v\n%s", err, stderr)
	}
	waitExit(t, c)
	recs := waitSelf(t, d.Audit, auditlog.SelfUntrusted, n)
	if r := recs[len(recs)-1]; r.ContainerID != c.ID || !strings.Contains(r.Detail, otherImage) {
		t.Errorf("untrusted-audit-lines record: %+v", r)
	}
	if got := auditRecords(t, d.Audit, c); len(got) != 0 {
		t.Errorf("%d forged events of a non-producer in the trail", len(got))
	}
	for _, s := range selfRecords(t, d.Audit, auditlog.SelfStreamAttached) {
		if s.ContainerID == c.ID {
			t.Error("a non-producer's stream is recorded as feeding the trail")
		}
	}
	if out, _ := logs(t, c); out != em.Stdout {
		t.Errorf("docker logs of the non-producer: %s", diffSummary(out, em.Stdout))
	}
}

// TestSupportDump: `ucp-audit support-dump DIR` writes versions, the node
// configuration, verify's result and a README; the trail only when the
// node configuration's supportDumpIncludeAuditLogs says so.
func TestSupportDump(t *testing.T) {
	dump := func() string {
		dir := filepath.Join(t.TempDir(), "dump")
		out, err := exec.Command(verifyBin(), "support-dump", "--file", nodeFile, dir).CombinedOutput()
		if err != nil {
			t.Fatalf("support-dump: %v\n%s", err, out)
		}
		for _, f := range []string{"README.txt", "versions.txt", "node-config.json", "verify.txt"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("support dump: %v", err)
			}
		}
		return dir
	}
	dir := dump()
	if b, _ := os.ReadFile(filepath.Join(dir, "node-config.json")); !bytes.Contains(b, []byte(suite.Audit)) {
		t.Errorf("node-config.json does not name the trail in force (%s):\n%s", suite.Audit, b)
	}
	if _, err := os.Stat(filepath.Join(dir, "trail")); !os.IsNotExist(err) {
		t.Errorf("the trail is in the dump without supportDumpIncludeAuditLogs (%v)", err)
	}

	resetKeys(t, "supportDumpIncludeAuditLogs")
	n := len(selfRecords(t, suite.Audit, auditlog.SelfConfigChanged))
	if err := configSet("supportDumpIncludeAuditLogs=true"); err != nil {
		t.Fatal(err)
	}
	// Applied before the test's end resets it: a change undone within one
	// poll of the plugin is no change at all.
	waitSelf(t, suite.Audit, auditlog.SelfConfigChanged, n)
	dir = dump()
	if files, _ := filepath.Glob(filepath.Join(dir, "trail", "*audit.log*")); len(files) == 0 {
		entries, _ := os.ReadDir(filepath.Join(dir, "trail"))
		t.Errorf("no audit file in the dump's trail/ with supportDumpIncludeAuditLogs: %v", entries)
	}
}
