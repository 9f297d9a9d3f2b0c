// Package pipeline owns the per-line path of one container's stream: it
// tails the container's store (package ingest) from a persisted state,
// reassembles the lines dockerd split into 16 KiB partial frames, and runs
// every complete line through the audit package into the container's
// audit file and, for remote destinations, its spool. Lines that look
// like audit but fail are quarantined.
//
//   - pipeline.go: the run loop, one frame (entry) and one line (handle);
//   - reassemble.go: partial frames back into lines, bounded by
//     max-line-size;
//   - checkpoint.go: syncing the outputs, then saving how far it got;
//   - state.go: the state saved at each checkpoint (state.json), from
//     which a restart resumes without losing or repeating a line;
//   - spool.go: handing events to the spool, linked into the container's
//     own chain;
//   - records.go: the self, gap and quarantine records it writes (their
//     shapes are package auditlog's).
package pipeline
