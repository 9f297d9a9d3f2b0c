package api

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ucp-audit/ucp-audit/node"
	"github.com/ucp-audit/ucp-audit/tests/peers"
)

type record struct{ kind, who, detail string }

// apiPeer runs a Server on loopback over a node configuration in a temp
// state directory, with a CA whose clients are allowed as CN=admin.
type apiPeer struct {
	t       *testing.T
	env     node.Env
	pki     *peers.PKI
	dir     string
	url     string
	mu      sync.Mutex
	records []record
}

func newAPIPeer(t *testing.T, doc string) *apiPeer {
	t.Helper()
	dir := t.TempDir()
	p := &apiPeer{t: t, dir: dir, env: node.Env{StateDir: dir, LogDir: filepath.Join(dir, "log")}}
	p.pki = peers.NewPKI(t, dir)
	if doc != "" {
		if err := os.WriteFile(p.env.Path(), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := &Server{
		Load: func() (node.Config, []byte, error) {
			c, doc, _, err := node.Load(p.env.Path(), p.env)
			return c, doc, err
		},
		Save: func(doc []byte) (node.Config, error) {
			c, err := node.Parse(doc, p.env)
			if err != nil {
				return c, err
			}
			return c, os.WriteFile(p.env.Path(), doc, 0o600)
		},
		Changed: func(old, new node.Config, who string) {
			p.add(record{"config-changed", who, old.AuditLevelText + " -> " + new.AuditLevelText})
		},
		Refused:      func(who, why string) { p.add(record{"refused", who, why}) },
		RefusalEvery: 1,
	}
	if err := s.Configure(node.API{CertFile: p.pki.CertFile, KeyFile: p.pki.KeyFile, ClientCAFile: p.pki.CAFile, AllowedSubjects: []string{"CN=admin", "CN=ops,O=example"}}); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.url = "https://" + l.Addr().String() + Path
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeListener(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return p
}

func (p *apiPeer) add(r record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.records = append(p.records, r)
}

func (p *apiPeer) take() []record {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.records
	p.records = nil
	return r
}

// client is curl --cert/--key/--cacert: it trusts the CA and presents cert
// (none when nil).
func (p *apiPeer) client(cert *tls.Certificate) *http.Client {
	cfg := p.pki.ClientTLS()
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func (p *apiPeer) do(c *http.Client, method, body string) (int, string, error) {
	req, err := http.NewRequest(method, p.url, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestGetAndPutLogging(t *testing.T) {
	p := newAPIPeer(t, `{"trail": {"maxFiles": 7}}`)
	_, _, admin := p.pki.Client(t, p.dir, "admin", pkix.Name{CommonName: "admin", Organization: []string{"ucp"}})
	c := p.client(&admin)

	code, body, err := p.do(c, http.MethodGet, "")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET: %d %s %v", code, body, err)
	}
	if body != `{"logLevel":"info","auditLevel":"request","supportDumpIncludeAuditLogs":false}`+"\n" {
		t.Errorf("GET: %s", body)
	}
	// UCP's documented document, as is.
	seed := `{"logLevel":"INFO","auditLevel":"metadata","supportDumpIncludeAuditLogs":false}`
	code, body, err = p.do(c, http.MethodPut, seed)
	if err != nil || code != http.StatusOK || body != seed+"\n" {
		t.Fatalf("PUT: %d %s %v", code, body, err)
	}
	got := p.take()
	if len(got) != 1 || got[0] != (record{"config-changed", "CN=admin,O=ucp", "request -> metadata"}) {
		t.Errorf("records %+v", got)
	}
	// The rest of the document stays.
	cfg, _, _, err := node.Load(p.env.Path(), p.env)
	if err != nil || cfg.Trail.MaxFiles != 7 || cfg.LogLevel != "INFO" {
		t.Errorf("document after PUT: %+v %v", cfg, err)
	}
	// A full RFC 2253 subject entry.
	_, _, ops := p.pki.Client(t, p.dir, "ops", pkix.Name{CommonName: "ops", Organization: []string{"example"}})
	if code, body, err := p.do(p.client(&ops), http.MethodGet, ""); err != nil || code != http.StatusOK {
		t.Errorf("GET as CN=ops,O=example: %d %s %v", code, body, err)
	}
}

func TestPutRefusesBadDocuments(t *testing.T) {
	p := newAPIPeer(t, "")
	_, _, admin := p.pki.Client(t, p.dir, "admin", pkix.Name{CommonName: "admin"})
	c := p.client(&admin)
	for _, tc := range []struct{ body, want string }{
		{`{"auditLevel":"loud"}`, `\"auditLevel\": invalid value \"loud\"`},
		{`{"trail":{"maxFiles":3}}`, `\"trail\": unknown key (known: logLevel, auditLevel, supportDumpIncludeAuditLogs)`},
		{`[1]`, `not a JSON object`},
		{`{"auditLevel":`, `not JSON`},
		{strings.Repeat(" ", maxBody+1), `body larger than`},
	} {
		code, body, err := p.do(c, http.MethodPut, tc.body)
		if err != nil || code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("PUT %.40s: %d %s %v, want 400 with %s", tc.body, code, body, err, tc.want)
		}
		got := p.take()
		if len(got) != 1 || got[0].kind != "refused" || got[0].who != "CN=admin" {
			t.Errorf("PUT %.40s: records %+v", tc.body, got)
		}
	}
	if _, err := os.Stat(p.env.Path()); !os.IsNotExist(err) {
		t.Errorf("a refused PUT wrote the document: %v", err)
	}
	if code, _, _ := p.do(c, http.MethodDelete, ""); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", code)
	}
}

func TestRefusedClients(t *testing.T) {
	p := newAPIPeer(t, "")
	other := peers.NewPKI(t, t.TempDir())
	_, _, foreign := other.Client(t, t.TempDir(), "admin", pkix.Name{CommonName: "admin"})
	_, _, bob := p.pki.Client(t, p.dir, "bob", pkix.Name{CommonName: "bob"})
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		who  string
		why  string
	}{
		{"another CA", &foreign, "CN=admin", "not issued by a CA of api.clientCAFile"},
		{"subject not allowed", &bob, "CN=bob", "subject not in api.allowedSubjects"},
		{"no certificate", nil, "", "no client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, err := p.do(p.client(tc.cert), http.MethodPut, `{"auditLevel":"none"}`)
			if err == nil {
				t.Fatalf("served: %d %s", code, body)
			}
			got := p.take()
			if len(got) != 1 || got[0].kind != "refused" || got[0].who != tc.who || !strings.Contains(got[0].detail, tc.why) {
				t.Errorf("records %+v, want one refusal of %q: %s", got, tc.who, tc.why)
			}
		})
	}
	if _, err := os.Stat(p.env.Path()); !os.IsNotExist(err) {
		t.Errorf("a refused client wrote the document: %v", err)
	}
}

func TestRefusalsAreRateLimited(t *testing.T) {
	var got []string
	s := &Server{Refused: func(who, why string) { got = append(got, why) }, RefusalEvery: 1 << 62}
	for range 5 {
		s.refuse("CN=x", "no")
	}
	if len(got) != 1 || got[0] != "no" {
		t.Errorf("got %q", got)
	}
	s.RefusalEvery = 1
	s.refuse("CN=x", "no")
	if len(got) != 2 || got[1] != "no (and 4 more refusals since the last report)" {
		t.Errorf("got %q", got)
	}
}

func TestConfigureErrors(t *testing.T) {
	dir := t.TempDir()
	pki := peers.NewPKI(t, dir)
	var s Server
	for _, tc := range []struct {
		a    node.API
		want string
	}{
		{node.API{}, "sets no api.certFile"},
		{node.API{CertFile: pki.CertFile, KeyFile: pki.KeyFile, ClientCAFile: dir}, "api.clientCAFile " + dir + ": not a regular file"},
		{node.API{CertFile: pki.CertFile, KeyFile: pki.CAFile, ClientCAFile: pki.CAFile}, "api.keyFile"},
		{node.API{CertFile: pki.CertFile, KeyFile: pki.KeyFile, ClientCAFile: pki.KeyFile}, "no PEM certificate"},
		{node.API{CertFile: "/dev/zero", KeyFile: pki.KeyFile, ClientCAFile: pki.CAFile}, "not a regular file"},
	} {
		if err := s.Configure(tc.a); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %s", tc.a, err, tc.want)
		}
	}
}
