package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// Load reads and parses the document at path. A missing document is the
// default configuration, with found false.
func Load(path string, env Env) (c Config, doc []byte, found bool, err error) {
	doc, err = ReadDocument(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(env), nil, false, nil
	}
	if err != nil {
		return Config{}, nil, false, err
	}
	c, err = Parse(doc, env)
	return c, doc, true, err
}

// ReadDocument reads the document at path, refusing anything but a
// regular file of at most MaxDocument bytes.
func ReadDocument(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("node configuration: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("node configuration: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("node configuration %s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("node configuration: %w", err)
	}
	if len(b) > MaxDocument {
		return nil, fmt.Errorf("node configuration %s: larger than %d bytes", path, MaxDocument)
	}
	return b, nil
}

// DefaultPollInterval is how often a Watcher looks at the document: a
// change is applied within about that long.
const DefaultPollInterval = time.Second

// Watcher notices a new document. It compares the document's bytes, so a
// document rewritten unchanged is not a change, and a change within the
// same second as the last one is not missed.
type Watcher struct {
	Path     string
	Env      Env
	Interval time.Duration // <= 0: DefaultPollInterval
	// Changed is called with the new configuration and its document when
	// a document that parses differs from the last one seen.
	Changed func(c Config, doc []byte)
	// Rejected is called when a changed document cannot be read or does
	// not parse; the last good configuration stays in force.
	Rejected func(doc []byte, err error)
}

// settleDelay is how long a changed document must stay the same to count.
const settleDelay = 50 * time.Millisecond

// settled reports whether the document still reads as doc settleDelay
// later.
func (w *Watcher) settled(ctx context.Context, doc []byte) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(settleDelay):
	}
	again, err := ReadDocument(w.Path)
	if errors.Is(err, fs.ErrNotExist) {
		again, err = nil, nil
	}
	return err == nil && bytes.Equal(again, doc)
}

// Run watches until ctx is done. last is the document in force when it
// starts (nil: none). It runs in the caller's goroutine.
func (w *Watcher) Run(ctx context.Context, last []byte) {
	every := w.Interval
	if every <= 0 {
		every = DefaultPollInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		doc, err := ReadDocument(w.Path)
		if errors.Is(err, fs.ErrNotExist) {
			doc, err = nil, nil // removed: the defaults apply
		}
		if err != nil {
			// Unreadable: said once, until it changes again.
			if !failing {
				w.Rejected(nil, err)
			}
			failing = true
			continue
		}
		if !failing && bytes.Equal(doc, last) {
			continue
		}
		// A document being written in place (an editor, a shell's >) may
		// be caught empty or half written: a change counts once it reads
		// the same twice, settleDelay apart.
		if !w.settled(ctx, doc) {
			continue
		}
		failing = false
		last = doc
		c, err := Parse(doc, w.Env)
		if err != nil {
			w.Rejected(doc, err)
			continue
		}
		w.Changed(c, doc)
	}
}
