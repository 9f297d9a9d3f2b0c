package driver

import (
	"context"
	"fmt"
	"io"

	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/driver/ingest"
)

// ReadLogs streams the container's stored lines as LogEntry frames, the
// way dockerd's json-file driver would print them: a line ends with "\n"
// unless it is a partial chunk that is not the last. With Follow it goes
// on until the container's stream ends or the reader is closed.
//
// The caller must Close the returned reader.
func (d *Driver) ReadLogs(info dockerlog.Info, cfg dockerlog.ReadConfig) (io.ReadCloser, error) {
	if err := validID(info.ContainerID); err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	var st *ingest.Store
	if s := d.byID[info.ContainerID]; s != nil {
		st = s.st
	}
	d.mu.Unlock()
	if st == nil {
		dir := d.containerDir(info.ContainerID)
		if !ingest.StoreExists(dir) {
			return nil, fmt.Errorf("container %s: %w", info.ContainerID, ErrNoLogs)
		}
		var err error
		// Sizes do not matter to a store nobody writes.
		if st, err = ingest.OpenStore(dir, 1, 1<<30); err != nil {
			return nil, err
		}
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(d.ctx)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer cancel()
		pw.CloseWithError(ingest.Serve(ctx, st, cfg, pw))
	}()
	return &logReader{PipeReader: pr, cancel: cancel}, nil
}

type logReader struct {
	*io.PipeReader
	cancel context.CancelFunc
}

// Close ends the serving goroutine, also while it waits to follow.
func (r *logReader) Close() error {
	r.cancel()
	return r.PipeReader.Close()
}
