// Package sink owns the Sink interface every destination of enriched audit
// events implements (see sink/file for the JSON-lines file used for
// audit.log and quarantine.log).
package sink

import "errors"

// ErrRefused is wrapped by a Write error when the sink refuses p as it is
// (not a line it can write, whatever the retries): nothing was written,
// and the caller must not retry the same bytes.
var ErrRefused = errors.New("line refused")

// Sink is a destination for enriched audit events.
//
// Call order: any number of Write calls, Sync whenever the caller needs the
// events written so far to be durable, then Close once. Write and Sync after
// Close return an error.
//
// Concurrency: safe for concurrent use by several streams; each line written
// by one Write call arrives whole and is never interleaved with another
// writer's line.
//
// Ownership: Write does not retain p after it returns.
type Sink interface {
	// Write appends one event. p is one complete JSON object WITHOUT a
	// trailing newline; the sink adds "\n". An error wrapping ErrRefused
	// says p can never be written; other errors may pass.
	Write(p []byte) error
	// Sync makes every event written so far durable.
	Sync() error
	// Close releases the sink. It is called once; Write and Sync after
	// Close return an error.
	Close() error
}
