package logopt

import (
	"errors"
	"strings"
	"testing"

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
	pki := peers.NewPKI(t, t.TempDir())
	cfg, err := TLS{CAFile: pki.CAFile, SkipVerify: "false"}.Client("x")
	if err != nil || cfg.RootCAs == nil || cfg.InsecureSkipVerify {
		t.Fatalf("Client = %+v, %v", cfg, err)
	}
	cfg, err = TLS{CertFile: pki.CertFile, KeyFile: pki.KeyFile, SkipVerify: "true"}.Client("x")
	if err != nil || len(cfg.Certificates) != 1 || !cfg.InsecureSkipVerify {
		t.Fatalf("Client with a certificate = %+v, %v", cfg, err)
	}
	for _, tt := range []struct {
		o    TLS
		want string
	}{
		{TLS{SkipVerify: "maybe"}, `log-opt "x-tls-skip-verify": invalid value "maybe": not a boolean (want true or false)`},
		{TLS{CAFile: "/nonexistent/ca.pem"}, `log-opt "x-tls-ca-cert": invalid value "/nonexistent/ca.pem": no such file or directory (want a file the plugin can read`},
		{TLS{CertFile: pki.CertFile}, `log-opt "x-tls-key": invalid value "": a client certificate needs both -tls-cert and -tls-key`},
		{TLS{KeyFile: pki.KeyFile}, `log-opt "x-tls-cert": invalid value ""`},
		{TLS{CAFile: pki.KeyFile}, `log-opt "x-tls-ca-cert": invalid value "` + pki.KeyFile + `": `},
	} {
		if _, err := tt.o.Client("x"); !errors.Is(err, ErrInvalidValue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.o, err, tt.want)
		}
	}
}
