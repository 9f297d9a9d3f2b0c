package driver

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
	"github.com/ucp-audit/ucp-audit/node"
)

// nodeConfig parses a node configuration document for h's directories;
// {log} and {state} in doc stand for them.
func nodeConfig(t testing.TB, h *harness, doc string) node.Config {
	t.Helper()
	doc = strings.NewReplacer("{log}", h.logDir, "{state}", h.d.opts.StateDir).Replace(doc)
	c, err := node.Parse([]byte(doc), node.Env{LogDir: h.logDir, StateDir: h.d.opts.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// selfOf returns the self records of type typ in the file name.
func selfOf(h *harness, name, typ string) []auditlog.Self {
	h.t.Helper()
	var out []auditlog.Self
	for _, r := range h.records(name, true) {
		b, _ := json.Marshal(r["ucp-audit/self"])
		var s auditlog.Self
		if err := json.Unmarshal(b, &s); err != nil {
			h.t.Fatal(err)
		}
		if s.Type == typ {
			out = append(out, s)
		}
	}
	return out
}

// verifyFile verifies the file name in the log dir as an auditor would:
// sealed to its end (closed), signed with pub when pub is set.
func verifyFile(t *testing.T, h *harness, name string, opts chain.VerifyOptions) chain.Result {
	t.Helper()
	sets, err := auditlog.Files(filepath.Join(h.logDir, name))
	if err != nil {
		t.Fatal(err)
	}
	r := chain.Verify(sets[0], opts)
	if !r.OK() {
		t.Fatalf("%s does not verify: %v", name, r.Err)
	}
	return r
}

// seqs returns the auditIDs and seqs of the events in the file name.
func seqs(h *harness, name string) string {
	var out []string
	for _, ev := range h.file(name) {
		out = append(out, fmt.Sprintf("%s#%s", ev["auditID"], annotations(ev)["ucp-audit/seq"]))
	}
	return strings.Join(out, " ")
}

// sealKey makes a key pair, the private key as {state}/seal.key, and
// returns the public key.
func sealKey(t *testing.T, h *harness) ed25519.PublicKey {
	t.Helper()
	priv, pub := filepath.Join(h.d.opts.StateDir, "seal.key"), filepath.Join(t.TempDir(), "seal.pub")
	if err := chain.GenerateKey(priv, pub); err != nil {
		t.Fatal(err)
	}
	pk, err := chain.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// TestSetNodeMovesTheTrail: the node configuration names other files:
// events go on there, numbered on; the old files are closed with their
// seals, and the move is recorded in both trails, with who made it.
func TestSetNodeMovesTheTrail(t *testing.T) {
	h := newHarness(t, nil)
	writeEvents(h, "before", 2)
	h.waitFor("2 events", func() bool { return len(h.file("audit.log")) == 2 })

	c := nodeConfig(t, h, `{"trail": {"auditFile": "{log}/moved/audit.log", "quarantineFile": "{log}/moved/quarantine.log"}}`)
	if err := h.d.SetNode(c, "CN=admin"); err != nil {
		t.Fatal(err)
	}
	writeEvents(h, "after", 2)
	h.waitFor("2 events in the moved trail", func() bool { return len(h.file("moved/audit.log")) == 2 })
	h.stop()

	if got, want := seqs(h, "audit.log"), "before-0#1 before-1#2"; got != want {
		t.Errorf("old trail: %s, want %s", got, want)
	}
	if got, want := seqs(h, "moved/audit.log"), "after-0#3 after-1#4"; got != want {
		t.Errorf("moved trail: %s, want %s", got, want)
	}
	// The old file ends with its close seal: it verifies without an
	// unsealed tail.
	verifyFile(t, h, "audit.log", chain.VerifyOptions{})
	for _, name := range []string{"audit.log", "moved/audit.log"} {
		cc := selfOf(h, name, auditlog.SelfConfigChanged)
		if len(cc) != 1 {
			t.Fatalf("%s: %d config-changed records, want 1", name, len(cc))
		}
		if cc[0].Subject != "CN=admin" || !strings.Contains(string(cc[0].New), "moved/audit.log") || strings.Contains(string(cc[0].Old), "moved/audit.log") {
			t.Errorf("%s: config-changed record: subject %q old %s new %s", name, cc[0].Subject, cc[0].Old, cc[0].New)
		}
	}
	if got := h.d.Node().Trail.AuditFile; got != filepath.Join(h.logDir, "moved", "audit.log") {
		t.Errorf("trail in force: %s", got)
	}
}

// TestSetNodeKeyAndTrailTogether: a change that moves the trail and sets
// a seal key ends the old files unsigned, as they were, and starts the new
// ones signed; moving back and removing the key ends those signed. Neither
// trail ever turns signing off, which verify would refuse.
func TestSetNodeKeyAndTrailTogether(t *testing.T) {
	h := newHarness(t, nil)
	pk := sealKey(t, h)
	writeEvents(h, "a", 1)
	h.waitFor("1 event", func() bool { return len(h.file("audit.log")) == 1 })

	signed := nodeConfig(t, h, `{"sealKey": "{state}/seal.key", "trail": {"auditFile": "{log}/signed/audit.log", "quarantineFile": "{log}/signed/quarantine.log"}}`)
	if err := h.d.SetNode(signed, ""); err != nil {
		t.Fatal(err)
	}
	writeEvents(h, "b", 1)
	h.waitFor("1 event in the signed trail", func() bool { return len(h.file("signed/audit.log")) == 1 })
	if r := verifyFile(t, h, "audit.log", chain.VerifyOptions{}); r.Signed {
		t.Error("the old trail has signed seals: it changed keys on its way out")
	}

	if err := h.d.SetNode(nodeConfig(t, h, `{}`), ""); err != nil {
		t.Fatal(err)
	}
	writeEvents(h, "c", 1)
	h.waitFor("an event in the old trail again", func() bool { return len(h.file("audit.log")) == 2 })
	h.stop()
	r := verifyFile(t, h, "signed/audit.log", chain.VerifyOptions{Keys: []ed25519.PublicKey{pk}})
	if r.SignedFrom == 0 {
		t.Error("the signed trail verifies, but not as signed")
	}
	if r := verifyFile(t, h, "audit.log", chain.VerifyOptions{AllowUnsealedTail: true}); r.Signed {
		t.Error("the old trail, resumed without a key, has signed seals")
	}
}

// TestSetNodeKeyInPlace: a key set while the trail stays where it is
// writes a key seal, signed, that vouches for what came before.
func TestSetNodeKeyInPlace(t *testing.T) {
	h := newHarness(t, nil)
	pk := sealKey(t, h)
	writeEvents(h, "a", 2)
	h.waitFor("2 events", func() bool { return len(h.file("audit.log")) == 2 })
	if err := h.d.SetNode(nodeConfig(t, h, `{"sealKey": "{state}/seal.key"}`), ""); err != nil {
		t.Fatal(err)
	}
	h.stop()
	h.d.Close() // the close seal ends the file
	if r := verifyFile(t, h, "audit.log", chain.VerifyOptions{Keys: []ed25519.PublicKey{pk}}); r.SignedFrom == 0 {
		t.Error("not signed after the key seal")
	}
}

// TestSetNodeRefusesAnUnreadableKey: a seal key that cannot be loaded is
// refused and recorded; the configuration in force stays.
func TestSetNodeRefusesAnUnreadableKey(t *testing.T) {
	h := newHarness(t, nil)
	bad := filepath.Join(h.d.opts.StateDir, "not-a-key.pem")
	if err := os.WriteFile(bad, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := h.d.Node()
	err := h.d.SetNode(nodeConfig(t, h, `{"sealKey": "{state}/not-a-key.pem", "auditLevel": "metadata"}`), "")
	if err == nil || !strings.Contains(err.Error(), `"sealKey"`) {
		t.Fatalf("SetNode: %v, want an error naming sealKey", err)
	}
	if got := h.d.Node(); string(got.JSON()) != string(before.JSON()) {
		t.Errorf("the configuration in force changed:\n%s", got.JSON())
	}
	h.waitFor("the refusal recorded", func() bool { return len(selfOf(h, "audit.log", auditlog.SelfConfigRejected)) == 1 })
}

// TestSetNodeProducers: a running stream follows the node's producers:
// once its image is no longer one, its audit-looking lines stay in its
// docker logs and one record says so at the end; they never reach the
// trail.
func TestSetNodeProducers(t *testing.T) {
	h := newHarness(t, nil)
	writeEvents(h, "trusted", 2)
	h.waitFor("2 events", func() bool { return len(h.file("audit.log")) == 2 })
	if err := h.d.SetNode(nodeConfig(t, h, `{"producers": [{"image": "example/controller"}]}`), ""); err != nil {
		t.Fatal(err)
	}
	writeEvents(h, "untrusted", 3)
	h.write("stdout", "a last ordinary line")
	h.waitFor("the lines in docker logs", func() bool { return hasLine(dockerLogs(t, h), "a last ordinary line") })
	h.stop()
	if got, want := seqs(h, "audit.log"), "trusted-0#1 trusted-1#2"; got != want {
		t.Errorf("trail: %s, want %s", got, want)
	}
	h.waitFor("the untrusted-audit-lines record", func() bool { return len(selfOf(h, "audit.log", auditlog.SelfUntrusted)) == 1 })
	if rec := selfOf(h, "audit.log", auditlog.SelfUntrusted)[0]; !strings.Contains(rec.Detail, "3 audit-looking lines") {
		t.Errorf("untrusted-audit-lines record: %s", rec.Detail)
	}
	if !hasLine(dockerLogs(t, h), auditLine("untrusted-0", "/v1.41/services")) {
		t.Error("an untrusted line is not in docker logs")
	}
}

// TestNonProducerNeverFeedsTheTrail: a container whose image is not a
// producer cannot put a record into the trail by printing audit lines,
// whatever its name; dockerd's logs still have them.
func TestNonProducerNeverFeedsTheTrail(t *testing.T) {
	h := newHarness(t, nil)
	h.stop()
	h.id, h.image = strings.Repeat("cd", 32), "example/app:1" // named /ucp-controller all the same
	h.start(nil)
	writeEvents(h, "forged", 2)
	h.write("stdout", `{"ucp-audit/self":{"type":"plugin-started"}}`)
	h.write("stdout", "done")
	h.waitFor("the lines in docker logs", func() bool { return hasLine(dockerLogs(t, h), "done") })
	h.stop()
	if got := seqs(h, "audit.log"); got != "" {
		t.Errorf("a non-producer's lines reached the trail: %s", got)
	}
	h.waitFor("the untrusted-audit-lines record", func() bool { return len(selfOf(h, "audit.log", auditlog.SelfUntrusted)) == 1 })
	for _, s := range selfOf(h, "audit.log", auditlog.SelfStreamAttached) {
		if s.ContainerID == h.id {
			t.Error("a non-producer's stream is recorded as attached to the trail")
		}
	}
}
