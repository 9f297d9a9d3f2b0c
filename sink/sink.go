// Package sink owns the interfaces between the pipeline and the
// destinations of enriched audit events: Sink, which the JSON-lines file
// implements (sink/file, for audit.log and quarantine.log), and Forwarder
// with its Event, which every remote destination implements.
//
// # Remote destinations
//
// A remote destination is one package below sink (sink/syslog,
// sink/logstash). It owns its log-opts: the keys, their parsing with errors
// that name the key (package logopt), and the checks of the keys against
// each other. It owns its Forwarder too, and exports one Destination value
// that ties them together. Package sink/destinations lists these values,
// one line each. Package config accepts exactly their keys and holds what
// they configure as Remotes. Delivery builds a Forwarder from each Remote
// and keys its spool cursor by the Remote's Name. Neither config nor
// delivery knows a destination by name.
//
// Registration is a list, not init functions that fill a global map (as
// moby's log drivers do). An exported value cannot fail, so nothing panics
// outside main, and nothing depends on the order in which packages are
// initialized. Which destinations exist, and in which order their options
// are checked and their forwarders built, can be read in one function.
//
// A new destination is therefore one new package plus one line in
// destinations.All. A test may give config its own list instead
// (config.Env.Destinations): config/registry_test.go defines a destination
// in that one file and registers it with one line.
//
// Every Forwarder runs the conformance suite sinktest.Forwarder (ack,
// retry across an outage, Close during Send, refusal of an event too
// large) for each of its transports, against a real loopback peer from
// tests/peers.
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
