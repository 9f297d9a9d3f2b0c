// Package driver owns the per-container log streams of the plugin.
//
// For every container the driver runs two goroutines that it starts, stops
// and waits for:
//
//   - the reader drains the container's FIFO and appends each raw LogEntry
//     frame to the container's store, a bounded set of segment files under
//     the state directory. Nothing else happens on this path, so the FIFO
//     is emptied as fast as the disk takes appends, whatever the audit
//     pipeline or a sink is doing.
//   - the pipeline tails the store from a persisted cursor, reassembles
//     lines that dockerd split into 16 KiB partial frames, and runs every
//     complete line through the audit package into the sinks. Lines that
//     look like audit but fail are quarantined.
//
// The store is also what `docker logs` reads (ReadLogs), so the plugin
// serves every line the container wrote, audit or not.
package driver
