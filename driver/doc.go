// Package driver owns the per-container log streams of the plugin: the
// Driver that dockerd's calls reach through package plugin, and the
// lifecycle of every stream.
//
// For every container the driver runs two goroutines that it starts, stops
// and waits for:
//
//   - the reader (package ingest) drains the container's FIFO and appends
//     each raw LogEntry frame to the container's store, a bounded set of
//     segment files under the state directory. Nothing else happens on
//     this path, so the FIFO is emptied as fast as the disk takes appends,
//     whatever the audit pipeline or a sink is doing.
//   - the pipeline (package pipeline) tails the store from a persisted
//     state, reassembles lines that dockerd split into 16 KiB partial
//     frames, and runs every complete line through the audit package into
//     the sinks. Lines that look like audit but fail are quarantined.
//
// Remote destinations get the events through a delivery (package
// delivery), which outlives the stream until every destination has
// everything. The store is also what `docker logs` reads (ReadLogs), so
// the plugin serves every line the container wrote, audit or not.
//
// Files: driver.go (the Driver: New, StartLogging, StopLogging, Close),
// stream.go (one stream: wiring, stop, suspend, kill), recover.go
// (re-attaching streams and resuming deliveries after a restart),
// housekeeping.go (sealing idle files, pruning old stores), readlogs.go
// and self.go (the driver's self-audit records).
package driver
