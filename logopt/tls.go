package logopt

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/docker/go-connections/tlsconfig"
)

// TLS holds the values of a destination's four TLS options, as given,
// until Client checks them together.
type TLS struct {
	CAFile, CertFile, KeyFile, SkipVerify string
}

// TLSOptions returns the parsers of prefix-tls-ca-cert, prefix-tls-cert,
// prefix-tls-key and prefix-tls-skip-verify; field picks the TLS of *T they
// fill. They only record the values: Client checks them.
func TLSOptions[T any](prefix string, field func(*T) *TLS) Table[T] {
	set := func(f func(*TLS, string)) Parser[T] {
		return func(t *T, v string) (string, error) {
			f(field(t), v)
			return "", nil
		}
	}
	return Table[T]{
		prefix + "-tls-ca-cert":     set(func(o *TLS, v string) { o.CAFile = v }),
		prefix + "-tls-cert":        set(func(o *TLS, v string) { o.CertFile = v }),
		prefix + "-tls-key":         set(func(o *TLS, v string) { o.KeyFile = v }),
		prefix + "-tls-skip-verify": set(func(o *TLS, v string) { o.SkipVerify = v }),
	}
}

// MaxFileSize bounds each file a TLS option names.
const MaxFileSize = 1 << 20

// Client builds the TLS client configuration, as Docker's own drivers do
// (go-connections' tlsconfig). Every file it names must be a regular file
// of at most MaxFileSize bytes below dir (symbolic links resolved): a
// log-opt must not make the plugin read /dev/zero, a FIFO, or its own
// state. Errors name the offending prefix-tls-… option; they give a
// file's path, never its contents.
func (o TLS) Client(prefix, dir string) (*tls.Config, error) {
	opts := tlsconfig.Options{CAFile: o.CAFile, CertFile: o.CertFile, KeyFile: o.KeyFile}
	if o.SkipVerify != "" {
		b, err := strconv.ParseBool(o.SkipVerify)
		if err != nil {
			return nil, Invalid(prefix+"-tls-skip-verify", o.SkipVerify, "true or false", errors.New("not a boolean"))
		}
		opts.InsecureSkipVerify = b
	}
	for _, f := range []struct{ key, path string }{{"-tls-ca-cert", o.CAFile}, {"-tls-cert", o.CertFile}, {"-tls-key", o.KeyFile}} {
		if f.path == "" {
			continue
		}
		if err := readableFile(f.path, dir); err != nil {
			return nil, Invalid(prefix+f.key, f.path, "a PEM file below "+dir+", where the plugin can read it", err)
		}
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		k := prefix + "-tls-key"
		if o.CertFile == "" {
			k = prefix + "-tls-cert"
		}
		return nil, Invalid(k, "", "", errors.New("a client certificate needs both -tls-cert and -tls-key"))
	}
	cfg, err := tlsconfig.Client(opts)
	if err != nil {
		return nil, Invalid(prefix+"-tls-ca-cert", o.CAFile, "", err)
	}
	return cfg, nil
}

// readableFile checks that path is a regular file of at most MaxFileSize
// bytes below dir, once symbolic links are resolved.
func readableFile(path, dir string) error {
	if !filepath.IsAbs(path) {
		return errors.New("not an absolute path")
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return errors.Unwrap(err)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		realDir = dir
	}
	if rel, err := filepath.Rel(realDir, real); err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("not below %s", dir)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return errors.Unwrap(err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	if fi.Size() > MaxFileSize {
		return fmt.Errorf("larger than %d bytes", MaxFileSize)
	}
	return nil
}
