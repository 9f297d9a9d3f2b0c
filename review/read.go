package review

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

// DefaultPoll is how often Reader looks for more in a followed file when
// Reader.Poll is zero.
const DefaultPoll = 250 * time.Millisecond

// Reader reads the records of rotation sets: each set's files oldest first,
// the sets in order. With Follow it then goes on reading the live file of
// every set that has one (Index 0, last) as it grows, across rotations:
// when the live file is renamed away and a new one created, it reads the
// rest of the old file, then the new one from its start.
type Reader struct {
	Sets   []auditlog.Set
	Follow bool
	Poll   time.Duration // Follow: the wait between looks; DefaultPoll when 0
	// MaxLine is the longest line read; auditlog.MaxLine when 0.
	MaxLine int
	// Idle, when set, is called in Follow mode after every pass over the
	// live files, before waiting; the caller flushes its output there. An
	// error stops Run and is returned.
	Idle func() error
}

// stopError carries an error of the callback, which ends Run.
type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }

// Run calls fn with every record, in file order; fn must not keep
// rec.Raw. Blank lines are skipped. A file that cannot be opened or read
// to its end is an error naming it; Run goes on with the next file and
// returns the errors joined. An error from fn ends Run and is returned
// as it is. Cancelling ctx ends Run: without Follow ctx.Err() is among
// the errors returned; with Follow it is the normal way to stop and is
// not.
func (r *Reader) Run(ctx context.Context, fn func(rec *Record) error) error {
	var errs []error
	var tails []*tail
	defer func() {
		for _, t := range tails {
			t.f.Close()
		}
	}()
	for _, s := range r.Sets {
		for i, name := range s.Files {
			if ctx.Err() != nil {
				break
			}
			if r.Follow && s.Live() && i == len(s.Files)-1 {
				t, err := r.openTail(s.Base)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				tails = append(tails, t)
				if err := r.drain(ctx, t.name, t.lr, fn); err != nil {
					if se, ok := err.(stopError); ok {
						return se.err
					}
					errs = append(errs, err)
				}
				continue
			}
			if err := r.readFile(ctx, name, fn); err != nil {
				if se, ok := err.(stopError); ok {
					return se.err
				}
				errs = append(errs, err)
			}
		}
	}
	if !r.Follow {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	poll := r.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for len(tails) > 0 {
		if ctx.Err() != nil {
			break
		}
		for _, t := range tails {
			if err := r.step(ctx, t, fn); err != nil {
				if se, ok := err.(stopError); ok {
					return se.err
				}
				errs = append(errs, err)
			}
		}
		if r.Idle != nil {
			if err := r.Idle(); err != nil {
				return err
			}
		}
		timer.Reset(poll)
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
	}
	return errors.Join(errs...)
}

// readFile reads one whole file, compressed or not.
func (r *Reader) readFile(ctx context.Context, name string, fn func(*Record) error) error {
	rc, err := auditlog.Open(name)
	if err != nil {
		return err
	}
	defer rc.Close()
	lr := auditlog.NewLineReader(rc, r.MaxLine)
	if err := r.drain(ctx, name, lr, fn); err != nil {
		return err
	}
	return r.rest(name, lr, fn)
}

// drain reads lr to its current end, keeping an unfinished last line.
func (r *Reader) drain(ctx context.Context, name string, lr *auditlog.LineReader, fn func(*Record) error) error {
	for n := 0; ; n++ {
		if n%4096 == 4095 && ctx.Err() != nil {
			return nil
		}
		line, err := lr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil && !errors.Is(err, auditlog.ErrLineTooLong) {
			return fmt.Errorf("%s: line %d: %w", name, lr.Line()+1, err)
		}
		if err := emit(name, lr.Line(), line, err, fn); err != nil {
			return err
		}
	}
}

// rest emits lr's unfinished last line, if any.
func (r *Reader) rest(name string, lr *auditlog.LineReader, fn func(*Record) error) error {
	line, ok, err := lr.Rest()
	if !ok {
		return nil
	}
	return emit(name, lr.Line(), line, err, fn)
}

func emit(name string, n int, line []byte, lineErr error, fn func(*Record) error) error {
	rec := Record{File: name, Line: n}
	switch {
	case lineErr != nil:
		rec.Type, rec.Err = TypeInvalid, lineErr
	case len(bytes.TrimSpace(line)) == 0:
		return nil
	default:
		rec.Raw = line
		rec.Type, rec.Event, rec.Err = Parse(line)
	}
	if err := fn(&rec); err != nil {
		return stopError{err}
	}
	return nil
}

// tail is a followed live file.
type tail struct {
	base string   // the live file's path
	name string   // what f is, for records and errors
	f    *os.File // the file open now: base, or what base was before a rotation
	lr   *auditlog.LineReader
}

func (r *Reader) openTail(base string) (*tail, error) {
	f, err := os.Open(base)
	if err != nil {
		return nil, err
	}
	return &tail{base: base, name: base, f: f, lr: auditlog.NewLineReader(f, r.MaxLine)}, nil
}

// step reads what was appended to t and handles a rotation or truncation
// of its live file.
func (r *Reader) step(ctx context.Context, t *tail, fn func(*Record) error) error {
	if err := r.drain(ctx, t.name, t.lr, fn); err != nil {
		return err
	}
	cur, err := os.Stat(t.base)
	if err != nil {
		// Renamed away and not yet created again: keep reading the old
		// file until the new one appears.
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	open, err := t.f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	if os.SameFile(cur, open) {
		if cur.Size() < t.lr.Offset() {
			// Truncated in place: start again from its beginning.
			if _, err := t.f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			t.lr = auditlog.NewLineReader(t.f, r.MaxLine)
		}
		return nil
	}
	// Rotated: what was written to the old file before the rename, then
	// its unfinished last line, then the new file.
	if err := r.drain(ctx, t.name, t.lr, fn); err != nil {
		return err
	}
	if err := r.rest(t.name, t.lr, fn); err != nil {
		return err
	}
	t.f.Close()
	f, err := os.Open(t.base)
	if err != nil {
		// Gone again already: read the empty /dev/null until the next
		// step finds a new live file (it is not the same file, so that
		// step opens it).
		t.f, _ = os.Open(os.DevNull)
		t.lr = auditlog.NewLineReader(t.f, r.MaxLine)
		return nil
	}
	t.f, t.name, t.lr = f, t.base, auditlog.NewLineReader(f, r.MaxLine)
	return r.drain(ctx, t.name, t.lr, fn)
}
