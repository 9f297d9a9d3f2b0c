// Package ingest owns what a container's output goes through before the
// audit pipeline sees it, and what `docker logs` reads:
//
//   - frames.go: the length-prefixed LogEntry frames dockerd writes to the
//     FIFO, and a reader that finds them again in a stream out of step;
//   - journal.go: the write-ahead copy of what is taken from the FIFO
//     (splice(2)), so that a kill -9 loses nothing between the pipe and
//     the store;
//   - store.go: the docker-logs store, one container's frames in numbered
//     segment files, which the pipeline tails and `docker logs` reads;
//   - reader.go: the Reader, one goroutine per stream that drains the FIFO
//     through the journal into the store, paced with spool-full=block;
//   - progress.go: what the reader, the pipeline and the driver share: the
//     bytes stored, handled and checkpointed (Progress), and the input the
//     reader could not keep (Loss);
//   - serve.go: `docker logs` served from a store (Serve).
package ingest
