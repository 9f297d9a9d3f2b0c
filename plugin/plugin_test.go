package plugin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/dockerlog"
)

type fakeDriver struct {
	started, stopped string
	info             dockerlog.Info
	read             dockerlog.ReadConfig
	err              error
}

func (f *fakeDriver) StartLogging(file string, info dockerlog.Info) error {
	f.started, f.info = file, info
	return f.err
}

func (f *fakeDriver) StopLogging(file string) error { f.stopped = file; return f.err }

func (f *fakeDriver) ReadLogs(info dockerlog.Info, cfg dockerlog.ReadConfig) (io.ReadCloser, error) {
	f.info, f.read = info, cfg
	if f.err != nil {
		return nil, f.err
	}
	return io.NopCloser(strings.NewReader("frames")), nil
}

func serve(t *testing.T, d Driver) *http.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "p.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go NewHandler(d).Serve(l)
	t.Cleanup(func() { l.Close() })
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

func post(t *testing.T, c *http.Client, path, body string) (int, string) {
	t.Helper()
	resp, err := c.Post("http://plugin"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestAPI(t *testing.T) {
	f := &fakeDriver{}
	c := serve(t, f)
	tests := []struct {
		path, body string
		wantCode   int
		wantBody   string
	}{
		{"/Plugin.Activate", "{}", 200, `{"Implements": ["LogDriver"]}`},
		{"/LogDriver.Capabilities", "{}", 200, `{"Cap":{"ReadLogs":true}}`},
		{"/LogDriver.StartLogging", `{"File":"/run/docker/logging/abc","Info":{"ContainerID":"abc","Config":{"audit-level":"metadata"}}}`, 200, `{"Err":""}`},
		{"/LogDriver.StopLogging", `{"File":"/run/docker/logging/abc"}`, 200, `{"Err":""}`},
		{"/LogDriver.ReadLogs", `{"Info":{"ContainerID":"abc"},"Config":{"Tail":3,"Follow":true}}`, 200, `frames`},
		{"/LogDriver.StartLogging", `not json`, 400, ``},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, body := post(t, c, tt.path, tt.body)
			if code != tt.wantCode || (tt.wantBody != "" && body != tt.wantBody) {
				t.Errorf("got %d %q, want %d %q", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
	if f.started != "/run/docker/logging/abc" || f.stopped != f.started || f.info.ContainerID != "abc" || f.read.Tail != 3 || !f.read.Follow {
		t.Errorf("driver saw %+v", f)
	}
}

// Driver errors reach dockerd as {"Err": text}: that text is what
// `docker run` prints.
func TestAPIErrors(t *testing.T) {
	c := serve(t, &fakeDriver{err: errors.New(`ucp-audit: log-opt "x": unknown option`)})
	if _, body := post(t, c, "/LogDriver.StartLogging", `{"File":"f","Info":{}}`); body != `{"Err":"ucp-audit: log-opt \"x\": unknown option"}` {
		t.Errorf("StartLogging: %s", body)
	}
	if code, body := post(t, c, "/LogDriver.ReadLogs", `{"Info":{}}`); code != 500 || !strings.Contains(body, "unknown option") {
		t.Errorf("ReadLogs: %d %s", code, body)
	}
}
