// Package api serves the node's HTTPS configuration API: GET and PUT
// /api/ucp/config/logging with UCP's logging document,
// {"logLevel": "INFO", "auditLevel": "metadata", "supportDumpIncludeAuditLogs": false},
// so that UCP's documented client-bundle procedure (curl with --cert, --key
// and --cacert) works against a node running ucp-audit.
//
// Only clients that present a certificate issued by a CA of the node
// configuration's api.clientCAFile, with a subject its api.allowedSubjects
// allows, are served; everyone else is refused during the TLS handshake,
// and the refusal is reported (Server.Refused) so that the trail records
// it. An accepted PUT merges the three keys into the node configuration,
// which is validated and written atomically, then applied at once
// (Server.Changed), naming the client certificate's subject.
package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ucp-audit/ucp-audit/node"
)

// Path is the API's one endpoint, as in UCP.
const Path = "/api/ucp/config/logging"

// maxBody bounds a PUT's body; the document has three keys.
const maxBody = 64 << 10

// maxPEM bounds each certificate, key or CA file read.
const maxPEM = 1 << 20

// Logging is UCP's logging document: the node configuration's keys that
// the API reads and writes.
type Logging struct {
	LogLevel                    string `json:"logLevel"`
	AuditLevel                  string `json:"auditLevel"`
	SupportDumpIncludeAuditLogs bool   `json:"supportDumpIncludeAuditLogs"`
}

var loggingKeys = []string{"logLevel", "auditLevel", "supportDumpIncludeAuditLogs"}

// Server serves the API. Its fields are set before Serve and not changed.
type Server struct {
	// Load reads the node configuration document in force and its parse.
	Load func() (node.Config, []byte, error)
	// Save validates doc as a whole node configuration document and
	// replaces the document atomically.
	Save func(doc []byte) (node.Config, error)
	// Changed is called after a PUT saved a new document: who is the
	// client certificate's subject.
	Changed func(old, new node.Config, who string)
	// Refused is called when a client is refused (a certificate from
	// another CA, a subject not allowed, a bad document): who is the
	// certificate's subject when there was one. It is rate-limited.
	Refused func(who, why string)
	// RefusalEvery spaces the reports of refusals (a client can try as
	// often as it likes); 0 is one a second.
	RefusalEvery time.Duration
	Log          *slog.Logger

	mu  sync.Mutex // serialises PUTs: read, merge, save
	tls atomic.Pointer[tlsState]

	rmu        sync.Mutex
	lastReport time.Time
	unreported int // refusals since the last report
}

// tlsState is what the listener serves with: loaded from files named in
// the node configuration.
type tlsState struct {
	cert     tls.Certificate
	pool     *x509.CertPool
	subjects []string
}

// Configure loads the listener's certificate, key and client CAs named by
// a, replacing what was loaded before. On an error what was loaded stays.
func (s *Server) Configure(a node.API) error {
	if a.CertFile == "" {
		return errors.New("api: the node configuration sets no api.certFile, api.keyFile and api.clientCAFile")
	}
	certPEM, err := readPEM("api.certFile", a.CertFile)
	if err != nil {
		return err
	}
	keyPEM, err := readPEM("api.keyFile", a.KeyFile)
	if err != nil {
		return err
	}
	caPEM, err := readPEM("api.clientCAFile", a.ClientCAFile)
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("api: api.certFile %s and api.keyFile: %w", a.CertFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("api: api.clientCAFile %s: no PEM certificate in it", a.ClientCAFile)
	}
	s.tls.Store(&tlsState{cert: cert, pool: pool, subjects: slices.Clone(a.AllowedSubjects)})
	return nil
}

// readPEM reads a regular file of at most maxPEM bytes.
func readPEM(key, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("api: %s: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("api: %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("api: %s %s: not a regular file", key, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPEM+1))
	if err != nil {
		return nil, fmt.Errorf("api: %s: %w", key, err)
	}
	if len(b) > maxPEM {
		return nil, fmt.Errorf("api: %s %s: larger than %d bytes", key, path, maxPEM)
	}
	return b, nil
}

// tlsConfig is the listener's TLS configuration: the client must present
// a certificate, which verify checks against the state in force.
func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequestClientCert, // verify refuses, and reports, a client without one
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			st := s.tls.Load()
			if st == nil {
				return nil, errNotConfigured
			}
			return &st.cert, nil
		},
		VerifyConnection: s.verify,
	}
}

// verify accepts a client certificate issued by a configured CA for client
// authentication, whose subject is allowed.
func (s *Server) verify(cs tls.ConnectionState) error {
	st := s.tls.Load()
	if st == nil {
		return errNotConfigured
	}
	if len(cs.PeerCertificates) == 0 {
		s.refuse("", "no client certificate")
		return errors.New("a client certificate is required")
	}
	leaf := cs.PeerCertificates[0]
	who := leaf.Subject.String()
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: st.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		s.refuse(who, "client certificate not issued by a CA of api.clientCAFile: "+err.Error())
		return errors.New("client certificate not accepted")
	}
	if !allowed(st.subjects, leaf.Subject.String(), leaf.Subject.CommonName) {
		s.refuse(who, "subject not in api.allowedSubjects")
		return errors.New("client certificate not accepted")
	}
	return nil
}

// allowed reports whether a subject matches an entry: the whole RFC 2253
// subject, or "CN=" and the common name.
func allowed(entries []string, subject, cn string) bool {
	for _, e := range entries {
		if e == subject || (strings.HasPrefix(e, "CN=") && !strings.Contains(e, ",") && e[3:] == cn) {
			return true
		}
	}
	return false
}

// refuse reports a refusal, at most once per RefusalEvery; the ones in
// between are counted into the next report.
func (s *Server) refuse(who, why string) {
	every := s.RefusalEvery
	if every <= 0 {
		every = time.Second
	}
	s.rmu.Lock()
	s.unreported++
	now := time.Now()
	report := now.Sub(s.lastReport) >= every
	n := s.unreported
	if report {
		s.lastReport, s.unreported = now, 0
	}
	s.rmu.Unlock()
	if !report {
		return
	}
	if s.Log != nil {
		s.Log.Warn("configuration API: client refused", "subject", who, "reason", why, "refusals", n)
	}
	if n > 1 {
		why = fmt.Sprintf("%s (and %d more refusals since the last report)", why, n-1)
	}
	if s.Refused != nil {
		s.Refused(who, why)
	}
}

// Handler serves Path. It expects connections verified by the listener.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(Path, func(w http.ResponseWriter, r *http.Request) {
		who := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			who = r.TLS.PeerCertificates[0].Subject.String()
		}
		switch r.Method {
		case http.MethodGet:
			c, _, err := s.Load()
			if err != nil {
				httpError(w, http.StatusInternalServerError, err)
				return
			}
			writeJSON(w, logging(c))
		case http.MethodPut, http.MethodPost:
			s.put(w, r, who)
		default:
			w.Header().Set("Allow", "GET, PUT")
			httpError(w, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed", r.Method))
		}
	})
	return mux
}

func (s *Server) put(w http.ResponseWriter, r *http.Request, who string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err == nil && len(body) > maxBody {
		err = fmt.Errorf("body larger than %d bytes", maxBody)
	}
	var patch map[string]any
	if err == nil {
		var v any
		if v, err = node.Decode(body); err == nil {
			var ok bool
			if patch, ok = v.(map[string]any); !ok {
				err = node.ErrNotObject
			}
		}
	}
	if err == nil {
		for k := range patch {
			if !slices.Contains(loggingKeys, k) {
				err = &node.KeyError{Key: k, Err: node.ErrUnknownKey, Want: strings.Join(loggingKeys, ", ")}
				break
			}
		}
	}
	if err != nil {
		s.refuse(who, "PUT "+Path+": "+err.Error())
		httpError(w, http.StatusBadRequest, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, doc, err := s.Load()
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	merged, err := node.Merge(doc, body)
	var c node.Config
	if err == nil {
		c, err = s.Save(merged)
	}
	if err != nil {
		var ke *node.KeyError
		if errors.As(err, &ke) {
			s.refuse(who, "PUT "+Path+": "+err.Error())
			httpError(w, http.StatusBadRequest, err)
			return
		}
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	if s.Changed != nil {
		s.Changed(old, c, who)
	}
	writeJSON(w, logging(c))
}

func logging(c node.Config) Logging {
	return Logging{LogLevel: c.LogLevel, AuditLevel: c.AuditLevelText, SupportDumpIncludeAuditLogs: c.SupportDumpIncludeAuditLogs}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
}

// errNotConfigured refuses every handshake until Configure succeeded.
var errNotConfigured = errors.New("api: the node configuration sets no api.certFile, api.keyFile and api.clientCAFile")

// Serve listens on addr until ctx is done, then shuts the server down
// (waiting for requests in flight). Until Configure succeeds, every
// connection is refused.
func (s *Server) Serve(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	return s.ServeListener(ctx, l)
}

// ServeListener is Serve on a listener the caller opened; it closes l.
func (s *Server) ServeListener(ctx context.Context, l net.Listener) error {
	// Handshake failures are reported by verify; net/http's own log of
	// them goes to the plugin's log at debug level.
	errLog := log.New(io.Discard, "", 0)
	if s.Log != nil {
		errLog = slog.NewLogLogger(s.Log.Handler(), slog.LevelDebug)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.tlsConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          errLog,
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.ServeTLS(l, "", "")
	cancel()
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("api: %w", err)
}
