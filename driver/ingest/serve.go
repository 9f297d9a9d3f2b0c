package ingest

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/docker/docker/api/types/plugins/logdriver"

	"github.com/ucp-audit/ucp-audit/dockerlog"
)

// Serve writes the store's lines to w as LogEntry frames, the way
// dockerd's json-file driver would print them: a line ends with "\n"
// unless it is a partial chunk that is not the last. With cfg.Follow it
// goes on until the store's writer detaches, cfg.Until passes, or ctx
// ends. An error of w ends it without an error: the reader went away.
func Serve(ctx context.Context, st *Store, cfg dockerlog.ReadConfig, w io.Writer) error {
	from := st.First()
	if cfg.Tail >= 0 {
		var err error
		if from, err = tailStart(st, cfg); err != nil {
			return err
		}
	}
	r := st.Reader(from)
	defer r.Close()
	var (
		e   logdriver.LogEntry
		out logdriver.LogEntry
		buf []byte
	)
	for {
		changed, writing := st.Watch()
		frame, err := r.Next()
		if err == nil {
			if derr := DecodeFrame(frame, &e); derr != nil {
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
			if buf, err = AppendFrame(buf[:0], &out); err != nil {
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
func tailStart(st *Store, cfg dockerlog.ReadConfig) (Position, error) {
	end := st.End()
	if cfg.Tail == 0 {
		return end, nil
	}
	ring := make([]Position, cfg.Tail)
	n := 0
	r := st.Reader(st.First())
	defer r.Close()
	var e logdriver.LogEntry
	for r.pos.Before(end) {
		at := r.pos
		frame, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Position{}, err
		}
		if DecodeFrame(frame, &e) != nil {
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
