package chain

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// LoadPrivateKey reads an Ed25519 private key from a PEM file holding one
// PKCS#8 "PRIVATE KEY" block, as `openssl genpkey -algorithm ed25519`
// writes it. Errors name the file and what is wrong with it, and wrap
// ErrKey (or the os error when the file cannot be read).
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	return loadKey[ed25519.PrivateKey](path, "PRIVATE KEY", x509.ParsePKCS8PrivateKey)
}

// LoadPublicKey reads an Ed25519 public key from a PEM file holding one
// PKIX "PUBLIC KEY" block, as `openssl pkey -pubout` writes it. Errors are
// as LoadPrivateKey's.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	return loadKey[ed25519.PublicKey](path, "PUBLIC KEY", x509.ParsePKIXPublicKey)
}

// loadKey reads the one PEM block of type typ in path and parses it into a
// K.
func loadKey[K ed25519.PrivateKey | ed25519.PublicKey](path, typ string, parse func([]byte) (any, error)) (K, error) {
	der, err := readPEM(path, typ)
	if err != nil {
		return nil, err
	}
	k, err := parse(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrKey, err)
	}
	key, ok := k.(K)
	if !ok {
		return nil, fmt.Errorf("%s: %w: a %T, not an Ed25519 %s", path, ErrKey, k, strings.ToLower(typ))
	}
	return key, nil
}

func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, rest := pem.Decode(b)
	switch {
	case block == nil:
		return nil, fmt.Errorf("%s: %w: no PEM block (want %q)", path, ErrKey, typ)
	case block.Type != typ:
		return nil, fmt.Errorf("%s: %w: PEM block is %q, want %q", path, ErrKey, block.Type, typ)
	case len(block.Headers) > 0:
		return nil, fmt.Errorf("%s: %w: PEM block has headers (an encrypted key?)", path, ErrKey)
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, fmt.Errorf("%s: %w: more than one PEM block", path, ErrKey)
	}
	return block.Bytes, nil
}

// GenerateKey creates a new Ed25519 key pair and writes the private key to
// privPath (PKCS#8 PEM, mode 0600) and the public key to pubPath (PKIX
// PEM, mode 0644). It refuses to overwrite either file (the error wraps
// fs.ErrExist) and leaves neither behind on failure.
func GenerateKey(privPath, pubPath string) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(pubPath); err == nil {
		return fmt.Errorf("%s: %w", pubPath, os.ErrExist)
	}
	if err := writeNew(privPath, 0o600, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})); err != nil {
		return err
	}
	if err := writeNew(pubPath, 0o644, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})); err != nil {
		return errors.Join(err, os.Remove(privPath))
	}
	return nil
}

// writeNew creates path (never overwriting it), writes b and syncs it; on
// failure it removes what it created.
func writeNew(path string, mode os.FileMode, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Fingerprint returns the lowercase hex SHA-256 of pub's PKIX DER encoding
// (the bytes of the PEM "PUBLIC KEY" block), which seals carry in their
// "key" field. The same value is
//
//	openssl pkey -pubin -in pub.pem -outform DER | sha256sum
//
// It returns "" for a key that is not ed25519.PublicKeySize bytes long.
func Fingerprint(pub ed25519.PublicKey) string {
	if len(pub) != ed25519.PublicKeySize {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
