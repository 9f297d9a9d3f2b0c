// Command discard is the floor of any Docker log-driver plugin: it reads
// each container's FIFO, decodes the LogEntry frames and drops them. `make
// bench` runs the fake controller under it, next to ucp-audit and Docker's
// own drivers, to show what the plugin path itself costs.
//
// It is a test tool, built statically and installed by the benchmark as the
// plugin ucp-audit-discard; it is not shipped.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/fifo"
	"github.com/docker/docker/api/types/plugins/logdriver"
	"github.com/docker/go-plugins-helpers/sdk"
	"golang.org/x/sys/unix"
)

type request struct {
	File string `json:"File"`
}

type response struct {
	Err string `json:"Err"`
}

// stream is one container's FIFO and the goroutine draining it.
type stream struct {
	f    io.ReadCloser
	done chan struct{}
}

type server struct {
	mu      sync.Mutex
	streams map[string]*stream
}

func main() {
	s := &server{streams: map[string]*stream{}}
	h := sdk.NewHandler(`{"Implements": ["LoggingDriver"]}`)
	h.HandleFunc("/LogDriver.StartLogging", func(w http.ResponseWriter, r *http.Request) {
		var req request
		if sdk.DecodeRequest(w, r, &req) != nil {
			return
		}
		sdk.EncodeResponse(w, errResponse(s.start(req.File)), false)
	})
	h.HandleFunc("/LogDriver.StopLogging", func(w http.ResponseWriter, r *http.Request) {
		var req request
		if sdk.DecodeRequest(w, r, &req) != nil {
			return
		}
		s.stop(req.File)
		sdk.EncodeResponse(w, response{}, false)
	})
	h.HandleFunc("/LogDriver.Capabilities", func(w http.ResponseWriter, r *http.Request) {
		sdk.EncodeResponse(w, map[string]any{"Cap": map[string]bool{"ReadLogs": false}}, false)
	})
	if err := h.ServeUnix("discard", 0); err != nil {
		log.Fatal(err)
	}
}

func errResponse(err error) response {
	if err != nil {
		return response{Err: err.Error()}
	}
	return response{}
}

func (s *server) start(file string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := fifo.OpenFifo(ctx, file, syscall.O_RDONLY, 0o700)
	if err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	st := &stream{f: f, done: make(chan struct{})}
	s.mu.Lock()
	s.streams[file] = st
	s.mu.Unlock()
	go func() {
		defer close(st.done)
		dec := logdriver.NewLogEntryDecoder(f)
		var e logdriver.LogEntry
		for {
			e.Reset()
			if err := dec.Decode(&e); err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) && !errors.Is(err, fifo.ErrReadClosed) {
					log.Printf("%s: %v", file, err)
				}
				return
			}
		}
	}()
	return nil
}

// stop waits until the FIFO holds nothing (dockerd's copier has written
// everything before StopLogging), then closes it.
func (s *server) stop(file string) {
	s.mu.Lock()
	st := s.streams[file]
	delete(s.streams, file)
	s.mu.Unlock()
	if st == nil {
		return
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && pending(st.f) > 0 {
		time.Sleep(time.Millisecond)
	}
	st.f.Close()
	<-st.done
}

func pending(f io.ReadCloser) int {
	sc, ok := f.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
	return n
}
