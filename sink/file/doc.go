// Package file implements the rotating, fsync'd, shared JSON-lines file used
// for audit.log and quarantine.log.
//
// # Lines
//
// Each Write appends p followed by "\n" as one unit, under the file's mutex:
// a line is never split across files nor interleaved with another writer's
// line, whatever its size (lines larger than the 64 KiB write buffer go out
// whole). A p containing a newline is rejected with ErrNewline, because it
// would corrupt the JSON-lines format.
//
// # Durability (fsync policy)
//
// The caller decides when events must be durable: Write only buffers (and
// writes to the page cache when the buffer fills), Sync flushes the buffer and
// fsyncs the file. The driver calls Sync when it has caught up with a
// container's output and at least every 1 MiB. In addition the sink fsyncs:
//   - the current file before it is renamed away by rotation, and the
//     directory after the renames and the creation of the fresh file;
//   - the directory whenever it creates the file;
//   - the file when the last reference is released (Close) and at
//     Registry.Close.
//
// After a failed flush or fsync the data already handed to the kernel may be
// lost, so the file is marked failed: Write and Sync return that error until
// the file recovers (recover.go): at most once a second, the next Write or
// Sync cuts the file back to its last durable size, writes again what it
// accepted since (kept byte for byte), seals the break with a resume seal and
// fsyncs; OnRecovered says so. Other errors (a failed rename or open during
// rotation, a failed reopen) are returned by the Write that hit them, that
// line is NOT written, and the next Write tries again.
//
// # Rotation
//
// With MaxSize > 0, a Write that would make the file exceed MaxSize bytes
// first rotates: flush + fsync the current file, close it, delete
// path.(MaxFiles-1), rename path.(MaxFiles-2)→path.(MaxFiles-1) …
// path.1→path.2, path→path.1, open a fresh path and fsync the directory
// (covering the renames and the new file). If some path.k is missing, only
// path.1 … path.(k-1) are shifted (the gap absorbs the shift) and nothing is
// deleted, so the cost is proportional to the files actually present. A
// file therefore never exceeds MaxSize, except when a single line (with its
// newline) is larger than MaxSize: such a line is written whole, alone, into
// a fresh file (rotating first if the current file is not empty), and the
// next line rotates again. The size of an existing file opened for appending
// counts towards MaxSize.
//
// With Compress, rotated files from path.2 on are gzipped (path.2.gz …)
// right after the rotation, while the file's lock is held (gzip's fastest
// level: about a second per 100 MB on one core; the streams' journals absorb
// the pause). path.1 stays plain: the chain of a new file is recovered from
// its end, and a reader following the live file finishes it. A compressed
// file is written to path.k.gz.tmp, fsync'd and renamed before path.k is
// removed, so a crash leaves at worst both, and the next rotation removes
// the plain one. A rotated file shifts under whichever name it has;
// package auditlog's readers (verify, query, report) read both.
//
// # Crashes
//
// A file whose last line has no newline when it is opened was torn by a
// crash in the middle of a write; that line is cut off. It was written after
// the last Sync, and the driver writes everything after its last checkpoint
// (which follows a Sync) again, so the line comes back whole.
//
// # Sharing
//
// A Registry shares one open file per cleaned path between streams (several
// containers may log to the same audit file). Paths are compared after
// filepath.Clean only; two different paths that reach the same file through a
// symlink are not detected.
//
// # Tamper evidence
//
// A Registry made with NewSealedRegistry writes every file as a hash chain
// (package chain): each line carries its number and the hash linking it to
// the line before, across rotations, and seal lines mark where each file
// opens, resumes after a restart or crash, is rotated away and is closed,
// and appear at least every Sealing.Interval while lines are written
// (checked at each Write and Sync, and by SealIdle, which the caller runs
// periodically for files that went quiet). Seals are signed when Sealing.Key is
// set. On open the chain is recovered from the file's last complete line
// (after the torn tail is cut), or from path.1 when the file is empty, so
// restarts and crashes continue it. A file that cannot be continued (not
// chained, or its end damaged) starts a new chain after it: the break stays
// visible to a verifier. With sealing a file may exceed MaxSize by its
// seals (each under 500 bytes: the rotate seal, and interval, resume or
// close seals written after a line that filled it).
//
// With Sealing.StateDir set, the sink also keeps, per path, a record of
// the chain's head as of the last seal it knows reached the file (its N,
// hash and file number) as JSON, {"path":P,"n":N,"hash":"H","file":F},
// in StateDir/X.json, X being the first 16 bytes of the SHA-256 of the
// cleaned path P in hex; it is replaced atomically (a temporary file,
// fsync'd, renamed). It is written only after the buffer
// holding the seal was flushed and the file fsync'd (at Sync, at rotation
// and at close), never for a seal still buffered, so a crash never leaves
// the record ahead of the file; and only when there is a newer seal, so at
// most once per seal. On open, when the head recovered from the file (or
// from path.1) is behind that record, sealed records were cut off or the
// newest files deleted since: the resume or open seal then carries "lost"
// (chain.Head.SealChecked) and a verifier reports it. A record that cannot
// be written is tried again at the next flush; it never fails the file.
// A record that cannot be read or names another path counts as none.
//
// The package starts no goroutines: everything happens synchronously under
// the locks, so nothing is left running after Close.
package file
