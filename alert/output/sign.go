package output

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// The webhook's headers.
const (
	// SignatureHeader is "sha256=" and the lower-case hex HMAC-SHA256 of
	// the raw body, keyed with the output's secret.
	SignatureHeader = "X-UCP-Audit-Signature-256"
	// TimestampHeader is when the POST was sent, in Unix seconds. It is
	// not signed (a retry sends the same signed body later); the body's
	// firedAt and id are.
	TimestampHeader = "X-UCP-Audit-Timestamp"
)

// MinSecret is the shortest webhook secret accepted, in bytes.
const MinSecret = 16

// ErrBadSecret: a webhook secret is missing, too short, or its file
// cannot be read. The error never holds the secret.
var ErrBadSecret = errors.New("bad webhook secret")

// Sign returns the signature header's value for body under secret:
// "sha256=<hex>".
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header (the value of SignatureHeader) is the
// signature of body under secret, in constant time. A receiver calls it
// on the raw body, before decoding it.
func Verify(secret, body []byte, header string) bool {
	want := Sign(secret, body)
	return hmac.Equal([]byte(strings.TrimSpace(header)), []byte(want))
}

// ReadSecret reads a webhook secret file: its content with surrounding
// white space (a final newline) removed, at least MinSecret bytes. Errors
// name the file, never its content.
func ReadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSecret, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinSecret {
		return nil, fmt.Errorf("%w: %s holds %d bytes, want at least %d (such as the output of openssl rand -hex 32)", ErrBadSecret, path, len(b), MinSecret)
	}
	return b, nil
}
