// Package plugin is the Docker plugin HTTP API of ucp-audit and nothing
// else: it decodes each request, calls the Driver and writes the reply.
package plugin

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/docker/go-plugins-helpers/sdk"

	"github.com/ucp-audit/ucp-audit/dockerlog"
)

// Manifest is the answer to /Plugin.Activate.
const Manifest = `{"Implements": ["LogDriver"]}`

// Driver is what the API calls. Its methods must be safe for concurrent
// use: dockerd may call them in parallel. ReadLogs hands the caller a
// reader it must close.
type Driver interface {
	StartLogging(file string, info dockerlog.Info) error
	StopLogging(file string) error
	ReadLogs(info dockerlog.Info, cfg dockerlog.ReadConfig) (io.ReadCloser, error)
}

type startRequest struct {
	File string         `json:"File"`
	Info dockerlog.Info `json:"Info"`
}

type stopRequest struct {
	File string `json:"File"`
}

type readRequest struct {
	Info   dockerlog.Info       `json:"Info"`
	Config dockerlog.ReadConfig `json:"Config"`
}

type response struct {
	Err string `json:"Err"`
}

type capabilities struct {
	Cap struct {
		ReadLogs bool `json:"ReadLogs"`
	} `json:"Cap"`
}

// NewHandler returns the plugin's handler, ready to Serve on the socket
// dockerd connects to.
func NewHandler(d Driver) sdk.Handler {
	h := sdk.NewHandler(Manifest)
	h.HandleFunc("/LogDriver.StartLogging", func(w http.ResponseWriter, r *http.Request) {
		var req startRequest
		if sdk.DecodeRequest(w, r, &req) != nil {
			return
		}
		reply(w, d.StartLogging(req.File, req.Info))
	})
	h.HandleFunc("/LogDriver.StopLogging", func(w http.ResponseWriter, r *http.Request) {
		var req stopRequest
		if sdk.DecodeRequest(w, r, &req) != nil {
			return
		}
		reply(w, d.StopLogging(req.File))
	})
	h.HandleFunc("/LogDriver.Capabilities", func(w http.ResponseWriter, r *http.Request) {
		var c capabilities
		c.Cap.ReadLogs = true
		sdk.EncodeResponse(w, c, false)
	})
	h.HandleFunc("/LogDriver.ReadLogs", func(w http.ResponseWriter, r *http.Request) {
		var req readRequest
		if sdk.DecodeRequest(w, r, &req) != nil {
			return
		}
		rc, err := d.ReadLogs(req.Info, req.Config)
		if err != nil {
			sdk.EncodeResponse(w, response{Err: err.Error()}, true)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Type", sdk.DefaultContentTypeV1_1)
		w.WriteHeader(http.StatusOK)
		// Flush every frame: `docker logs -f` shows lines as they come.
		_, _ = io.Copy(flushWriter{w}, rc)
	})
	return h
}

// reply answers with {"Err": ""} or the error text, which dockerd shows to
// the user as is.
func reply(w http.ResponseWriter, err error) {
	var res response
	if err != nil {
		res.Err = err.Error()
	}
	w.Header().Set("Content-Type", sdk.DefaultContentTypeV1_1)
	_ = json.NewEncoder(w).Encode(res)
}

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}
