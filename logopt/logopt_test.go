package logopt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/tests/peers"
)

type conf struct {
	n   int
	tls TLS
}

var table = Table[conf]{
	"x-count": func(c *conf, v string) (string, error) {
		n, err := Count(v, 1, 9)
		c.n = n
		return "a whole number from 1 to 9", err
	},
}.With(TLSOptions("x", func(c *conf) *TLS { return &c.tls }))

func TestTable(t *testing.T) {
	if got := strings.Join(table.Keys(), ","); got != "x-count,x-tls-ca-cert,x-tls-cert,x-tls-key,x-tls-skip-verify" {
		t.Errorf("Keys = %s", got)
	}
	var c conf
	if err := table.SetAll(&c, map[string]string{"x-count": "3", "x-tls-cert": "/c"}); err != nil || c.n != 3 || c.tls.CertFile != "/c" {
		t.Fatalf("SetAll: %v, %+v", err, c)
	}
	for _, tt := range []struct {
		opts     map[string]string
		sentinel error
		want     string
	}{
		{map[string]string{"x-count": "0", "a": "1"}, ErrUnknownOption, `ucp-audit: log-opt "a": unknown option (known: x-count, x-tls-ca-cert, `},
		{map[string]string{"x-count": "10"}, ErrInvalidValue, `ucp-audit: log-opt "x-count": invalid value "10": out of range (want a whole number from 1 to 9)`},
	} {
		err := table.SetAll(&c, tt.opts)
		var oe *OptionError
		if !errors.Is(err, tt.sentinel) || !errors.As(err, &oe) || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.opts, err, tt.want)
		}
	}
}

func TestRequireAddress(t *testing.T) {
	opts := map[string]string{"x-address": "a", "x-tls-key": "k", "x-zone": "z", "other": "o"}
	if err := RequireAddress("x", opts, true, true); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		set, isTLS bool
		want       string
	}{
		{false, false, `log-opt "x-tls-key": invalid value "k": set without "x-address"`},
		{true, false, `log-opt "x-tls-key": invalid value "k": "a" is not a TLS address`},
	} {
		if err := RequireAddress("x", opts, tt.set, tt.isTLS); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("set %v, TLS %v: %v, want %q", tt.set, tt.isTLS, err, tt.want)
		}
	}
}

func TestTLSClient(t *testing.T) {
	dir := t.TempDir()
	pki := peers.NewPKI(t, dir)
	cfg, err := TLS{CAFile: pki.CAFile, SkipVerify: "false"}.Client("x", dir)
	if err != nil || cfg.RootCAs == nil || cfg.InsecureSkipVerify {
		t.Fatalf("Client = %+v, %v", cfg, err)
	}
	cfg, err = TLS{CertFile: pki.CertFile, KeyFile: pki.KeyFile, SkipVerify: "true"}.Client("x", dir)
	if err != nil || len(cfg.Certificates) != 1 || !cfg.InsecureSkipVerify {
		t.Fatalf("Client with a certificate = %+v, %v", cfg, err)
	}
	for _, tt := range []struct {
		o    TLS
		want string
	}{
		{TLS{SkipVerify: "maybe"}, `log-opt "x-tls-skip-verify": invalid value "maybe": not a boolean (want true or false)`},
		{TLS{CAFile: dir + "/nonexistent.pem"}, `log-opt "x-tls-ca-cert": invalid value "` + dir + `/nonexistent.pem": no such file or directory (want a PEM file below ` + dir + `, where the plugin can read it)`},
		{TLS{CertFile: pki.CertFile}, `log-opt "x-tls-key": invalid value "": a client certificate needs both -tls-cert and -tls-key`},
		{TLS{KeyFile: pki.KeyFile}, `log-opt "x-tls-cert": invalid value ""`},
		{TLS{CAFile: pki.KeyFile}, `log-opt "x-tls-ca-cert": invalid value "` + pki.KeyFile + `": `},
	} {
		if _, err := tt.o.Client("x", dir); !errors.Is(err, ErrInvalidValue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.o, err, tt.want)
		}
	}
}

// A log-opt never makes the plugin read a file outside the certificate
// directory, or anything but a small regular file: /dev/zero read without
// end, a FIFO blocks, the plugin's own state (its seal key) is not a TLS
// key to lend.
func TestTLSClientFiles(t *testing.T) {
	dir := t.TempDir()
	pki := peers.NewPKI(t, dir)
	outside := peers.NewPKI(t, t.TempDir())
	link := filepath.Join(dir, "link.pem")
	if err := os.Symlink(outside.CAFile, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	devLink := filepath.Join(dir, "zero.pem")
	if err := os.Symlink("/dev/zero", devLink); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"/dev/zero", "not below " + dir},
		{outside.CAFile, "not below " + dir},
		{link, "not below " + dir},
		{devLink, "not below " + dir},
		{fifo, "not a regular file"},
		{dir, "not below " + dir},
		{sub, "not a regular file"},
		{big, "larger than 1048576 bytes"},
		{"ca.pem", "not an absolute path"},
		{dir + "/../" + filepath.Base(dir) + "/../x.pem", "no such file"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := TLS{CAFile: tc.path}.Client("x", dir)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrInvalidValue) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"x-tls-ca-cert"`) {
				t.Errorf("%s: %v, want %q", tc.path, err, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Client did not return", tc.path)
		}
	}
	if _, err := (TLS{CAFile: pki.CAFile}).Client("x", dir); err != nil {
		t.Errorf("a CA below the directory: %v", err)
	}
}
