package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/plugins/logdriver"

	"github.com/ucp-audit/ucp-audit/dockerlog"
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
	var st *store
	if s := d.byID[info.ContainerID]; s != nil {
		st = s.st
	}
	d.mu.Unlock()
	if st == nil {
		dir := d.containerDir(info.ContainerID)
		if !storeExists(dir) {
			return nil, fmt.Errorf("container %s: %w", info.ContainerID, ErrNoLogs)
		}
		var err error
		// Sizes do not matter to a store nobody writes.
		if st, err = openStore(dir, 1, 1<<30); err != nil {
			return nil, err
		}
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(d.ctx)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer cancel()
		pw.CloseWithError(serveLogs(ctx, st, cfg, pw))
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

var errUntil = errors.New("until reached")

func serveLogs(ctx context.Context, st *store, cfg dockerlog.ReadConfig, w io.Writer) error {
	from := st.first()
	if cfg.Tail >= 0 {
		var err error
		if from, err = tailStart(st, cfg); err != nil {
			return err
		}
	}
	r := st.reader(from)
	defer r.Close()
	var (
		e   logdriver.LogEntry
		out logdriver.LogEntry
		buf []byte
	)
	for {
		changed, writing := st.watch()
		frame, err := r.Next()
		if err == nil {
			if derr := decodeFrame(frame, &e); derr != nil {
				continue
			}
			ok, stop := wanted(&e, cfg)
			if stop {
				return nil
			}
			if !ok {
				continue
			}
			out.Reset()
			out.Source, out.TimeNano = e.Source, e.TimeNano
			out.Line = e.Line
			if lineEnds(&e) {
				out.Line = append(e.Line, '\n')
			}
			if buf, err = appendFrame(buf[:0], &out); err != nil {
				return err
			}
			if _, err := w.Write(buf); err != nil {
				return nil // the reader went away
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		if !cfg.Follow || !writing {
			return nil
		}
		var untilC <-chan time.Time
		if !cfg.Until.IsZero() {
			t := time.NewTimer(time.Until(cfg.Until))
			defer t.Stop()
			untilC = t.C
		}
		select {
		case <-changed:
		case <-untilC:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// wanted applies since and until to one entry; stop is set past until.
func wanted(e *logdriver.LogEntry, cfg dockerlog.ReadConfig) (ok, stop bool) {
	t := time.Unix(0, e.TimeNano)
	if !cfg.Until.IsZero() && t.After(cfg.Until) {
		return false, true
	}
	if !cfg.Since.IsZero() && t.Before(cfg.Since) {
		return false, false
	}
	return true, false
}

// tailStart finds the position of the Tail-th last wanted entry.
func tailStart(st *store, cfg dockerlog.ReadConfig) (position, error) {
	end := st.end()
	if cfg.Tail == 0 {
		return end, nil
	}
	ring := make([]position, cfg.Tail)
	n := 0
	r := st.reader(st.first())
	defer r.Close()
	var e logdriver.LogEntry
	for r.pos.before(end) {
		at := r.pos
		frame, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return position{}, err
		}
		if decodeFrame(frame, &e) != nil {
			continue
		}
		ok, stop := wanted(&e, cfg)
		if stop {
			break
		}
		if ok {
			ring[n%cfg.Tail] = at
			n++
		}
	}
	if n == 0 {
		return end, nil
	}
	if n < cfg.Tail {
		return ring[0], nil
	}
	return ring[n%cfg.Tail], nil
}
