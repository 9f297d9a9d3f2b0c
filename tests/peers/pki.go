package peers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throwaway CA and a server certificate for 127.0.0.1, written as
// PEM files.
type PKI struct {
	CAFile   string // the CA certificate
	CertFile string // the server certificate, signed by the CA
	KeyFile  string // the server's private key (PKCS #8)
	Pool     *x509.CertPool

	server tls.Certificate
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

// ServerTLS is the configuration of a loopback peer serving the
// certificate.
func (p *PKI) ServerTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.server}}
}

// ClientTLS is the configuration of a client that trusts the CA only.
func (p *PKI) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: p.Pool}
}

// NewPKI writes ca.pem, server.pem and server.key into dir (mode 0644 for
// the certificates, 0600 for the key).
func NewPKI(t testing.TB, dir string) *PKI {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Helper()
			t.Fatal(err)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ucp-audit e2e test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	ca, err := x509.ParseCertificate(caDER)
	must(err)
	p := &PKI{Pool: x509.NewCertPool(), ca: ca, caKey: caKey, serial: 1,
		CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server.key")}
	p.Pool.AddCert(ca)
	certPEM, keyPEM, err := p.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	})
	must(err)
	must(os.WriteFile(p.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644))
	must(os.WriteFile(p.CertFile, certPEM, 0o644))
	must(os.WriteFile(p.KeyFile, keyPEM, 0o600))
	p.server, err = tls.X509KeyPair(certPEM, keyPEM)
	must(err)
	return p
}

// issue signs a certificate for a new key: tmpl gives its subject, names
// and extended key usage.
func (p *PKI) issue(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	p.serial++
	now := time.Now()
	tmpl.SerialNumber = big.NewInt(p.serial)
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// Client issues a client certificate (for client authentication) with
// subject, writes it and its key into dir as NAME.pem and NAME.key, as a
// UCP client bundle holds cert.pem and key.pem, and returns it.
func (p *PKI) Client(t testing.TB, dir, name string, subject pkix.Name) (certFile, keyFile string, cert tls.Certificate) {
	t.Helper()
	certPEM, keyPEM, err := p.issue(&x509.Certificate{Subject: subject, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err == nil {
		cert, err = tls.X509KeyPair(certPEM, keyPEM)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err == nil {
		err = os.WriteFile(certFile, certPEM, 0o644)
	}
	if err == nil {
		err = os.WriteFile(keyFile, keyPEM, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}
