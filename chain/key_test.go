package chain_test

import (
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/chain"
)

// The testdata keys were made for these tests with
//
//	openssl genpkey -algorithm ed25519 -out openssl-ed25519.pem
//	openssl pkey -in openssl-ed25519.pem -pubout -out openssl-ed25519.pub.pem
//	openssl pkey -pubin -in openssl-ed25519.pub.pem -outform DER | sha256sum
//	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out openssl-p256.pem
func TestLoadOpenSSLKeys(t *testing.T) {
	priv, err := chain.LoadPrivateKey("testdata/openssl-ed25519.pem")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := chain.LoadPublicKey("testdata/openssl-ed25519.pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Error("the public key does not match the private key")
	}
	fp, err := os.ReadFile("testdata/openssl-ed25519.fingerprint")
	if err != nil {
		t.Fatal(err)
	}
	if got := chain.Fingerprint(pub); got != strings.TrimSpace(string(fp)) {
		t.Errorf("Fingerprint = %s, want (sha256sum of the DER) %s", got, fp)
	}
	if chain.Fingerprint(pub[:5]) != "" {
		t.Error("Fingerprint of a short key is not empty")
	}
}

func TestLoadKeyErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	privPEM, _ := os.ReadFile("testdata/openssl-ed25519.pem")
	pubPEM, _ := os.ReadFile("testdata/openssl-ed25519.pub.pem")
	for _, tc := range []struct {
		name    string
		load    func(string) error
		path    string
		err     error
		message string
	}{
		{"missing", loadPriv, filepath.Join(dir, "none.pem"), fs.ErrNotExist, "none.pem"},
		{"not PEM", loadPriv, write("text.pem", "hello\n"), chain.ErrKey, "no PEM block"},
		{"public as private", loadPriv, "testdata/openssl-ed25519.pub.pem", chain.ErrKey, `is "PUBLIC KEY", want "PRIVATE KEY"`},
		{"private as public", loadPub, "testdata/openssl-ed25519.pem", chain.ErrKey, `is "PRIVATE KEY", want "PUBLIC KEY"`},
		{"P-256", loadPriv, "testdata/openssl-p256.pem", chain.ErrKey, "not an Ed25519 private key"},
		{"two blocks", loadPriv, write("two.pem", string(privPEM)+string(privPEM)), chain.ErrKey, "more than one PEM block"},
		{"garbage DER", loadPub, write("bad.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), chain.ErrKey, "bad.pem"},
		{"headers", loadPub, write("enc.pem", strings.Replace(string(pubPEM), "-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1)), chain.ErrKey, "headers"},
	} {
		err := tc.load(tc.path)
		if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), filepath.Base(tc.path)) {
			t.Errorf("%s: error %v, want %v mentioning %q and the file", tc.name, err, tc.err, tc.message)
		}
	}
}

func loadPriv(p string) error { _, err := chain.LoadPrivateKey(p); return err }
func loadPub(p string) error  { _, err := chain.LoadPublicKey(p); return err }

func TestGenerateKey(t *testing.T) {
	dir := t.TempDir()
	privPath, pubPath := filepath.Join(dir, "seal.key"), filepath.Join(dir, "seal.pub")
	if err := chain.GenerateKey(privPath, pubPath); err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{privPath: 0o600, pubPath: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm() &^ 0o022; got != mode&^0o022 || fi.Mode().Perm()&0o077 != 0 && path == privPath {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	priv, err := chain.LoadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := chain.LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) || len(priv) != ed25519.PrivateKeySize {
		t.Error("the generated keys do not match")
	}

	// Neither file is overwritten, and nothing is left behind.
	if err := chain.GenerateKey(privPath, filepath.Join(dir, "other.pub")); !errors.Is(err, fs.ErrExist) {
		t.Errorf("GenerateKey over a private key: %v", err)
	}
	other := filepath.Join(dir, "other.key")
	if err := chain.GenerateKey(other, pubPath); !errors.Is(err, fs.ErrExist) {
		t.Errorf("GenerateKey over a public key: %v", err)
	}
	for _, p := range []string{other, filepath.Join(dir, "other.pub")} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
	if again, _ := chain.LoadPrivateKey(privPath); !again.Equal(priv) {
		t.Error("the private key was overwritten")
	}
}
