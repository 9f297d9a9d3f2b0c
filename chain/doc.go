// Package chain makes an audit file tamper-evident: every line carries a
// hash chaining it to the line before, seals mark the files' boundaries and
// regular intervals, and seals may be signed with Ed25519. It is a pure
// library (no goroutines): the file sink writes with Head, the verify
// command checks with Verify.
//
// # Chains
//
// One chain runs through one audit file path: audit.log and its rotations
// (audit.log.1, audit.log.2 …, plain or gzip-compressed) form one chain,
// quarantine.log another. Each line is a record; records are numbered N =
// 1, 2, 3 … along the whole chain, across rotations.
//
// # Line format (v1)
//
// The writer gives each record as a compact JSON object p on one line. The
// line written is p with one more field at the end of its top-level object:
//
//	p[:len(p)-1] + `,"ucp-audit/chain":{"n":N,"prev":"PREV","hash":"HASH"}}`
//
// (for p = `{}`, without the comma). N is decimal without leading zeros,
// PREV and HASH 64 lowercase hex digits. Seals of a signed chain have one
// more field after hash: `,"sig":"SIG"` with SIG the 64-byte Ed25519
// signature in padded standard base64. A line is therefore still one JSON
// object that JSON-lines tools read as before. The field is found and
// removed from the end of the line only (ParseLine), in exactly this form
// and nothing else, so p is recovered byte for byte without parsing JSON.
//
//	HASH_N = SHA-256("ucp-audit chain v1" || 0x00 || PREV_N || N as 8 bytes big-endian || p)
//
// where PREV_N is the raw 32 bytes of HASH_{N-1}, and 32 zero bytes for N =
// 1. PREV is written out so that each line can be checked on its own (its
// hash against its content) and against its neighbour (its PREV against the
// hash of the line before).
//
// # Seals
//
// A seal is a record whose p is
//
//	{"ucp-audit/seal":{"reason":R,"clean":B,"time":T,"file":F,"keep":K,"key":FP,"records":C,"lost":L,"unvouched":U}}
//
// in exactly that field order ("clean" only in resume seals, "key" only in
// signed ones, "lost" and "unvouched" only in open and resume seals that
// report a loss or records the writer did not write). T is the time written (RFC 3339, UTC); F the file's number
// in the chain (1 for the chain's first file, +1 at each rotation: the live
// file keeps its number until it is rotated); K how many files rotation
// keeps, the live one included (0: no rotation); FP the Fingerprint of the
// public key; C the number of lines in this file so far, this seal
// included. L is
//
//	{"after":A,"expected":E,"file":G,"hash":"H"}
//
// written when the writer, opening the file, found the chain ending at
// record A (the seal's N - 1; 0 when no record was left) although, by a
// record it keeps outside the log directory, its last seal that had
// reached the files was record E >= A, of hash H (64 lowercase hex
// digits), in file G: records A+1 to E were cut off or deleted since (or,
// when E = A, the file ending at record A is another one). Seals without
// "lost" are the ones written before it existed, and every seal that
// found nothing missing. U is
//
//	{"after":A,"last":L,"hash":"H"}
//
// written when the writer, opening the file, found records A+1 to L (L is
// the seal's N - 1) after the last record it wrote, A of hash H, by the
// same record outside the log directory (which it updates before any of
// its lines reaches the file): records appended while it was stopped. The
// seal chains to them, as every record chains to the one before, but does
// not vouch for them. The reasons R:
//
//   - "open": the first line of every file (a new chain's first file, or the
//     fresh file after a rotation);
//   - "resume": the writer re-opened an existing file (restart, crash,
//     upgrade) and chains on from its last complete line; "clean" is true
//     when that line was a close seal, false after a crash;
//   - "interval": written periodically, to bound what is unsealed;
//   - "rotate": the last line of a file about to be rotated away;
//   - "close": the writer closed the file;
//   - "key": the writer's signing key changed (turned on, replaced or
//     turned off); the seal is signed with the new key.
//
// With a signing key, every seal's "sig" is Ed25519 over the 32 raw bytes of
// its HASH_N. Ordinary records are never signed: a signature on a seal
// covers, through the chain, every record before it.
//
// # Verification rules
//
// Verify reads a set oldest file first and reports the first problem in
// chain order, as a *Problem with a Kind, the file, the 1-based line and the
// record's N. For each line, in this order:
//
//   - a last line without a newline: truncated (allowed in the live file
//     with AllowUnsealedTail, where it is ignored);
//   - no chain field: inserted (file-replaced when it is the first line of a
//     file after the first); a malformed chain field or seal: modified;
//   - HASH differs from the hash recomputed from the line's p, PREV and N:
//     modified (the content, N, PREV or HASH was edited);
//   - continuity with the last accepted record (expected number E, hash H):
//     N = E and PREV = H is in order. N = E with another PREV: inserted (a
//     forged record, or one from another chain). N > E: reordered when a
//     valid record numbered E to N-1 appears later in the set, else deleted
//     (records E to N-1 are missing); so swapping two lines is reported as
//     reordered at the first of them. N < E: duplicated when the record with
//     that N seen earlier has the same hash, else inserted (a second,
//     different record claiming a number already used);
//   - file boundaries: every file begins with an open seal and every rotated
//     file ends with a rotate seal. A rotated file that does not end so is
//     truncated (line = its lines + 1). At the first line of each later
//     file: an open seal whose file number is not above the previous file's
//     is files-reordered; more than one above is files-reordered when a
//     later file is one of the numbers skipped, else file-missing (naming
//     the missing numbers); one above but not chaining to the previous file's
//     last record (N or PREV) is file-replaced. A first line that is not an
//     open seal but continues the chain is file-replaced; a line after a
//     rotate seal in the same file is file-replaced (two files joined). The
//     oldest file present must begin with its open seal (else deleted: its
//     head was cut); it may start at any N, since rotation prunes old files;
//   - seals: with keys (several across a key change), a seal whose "sig"
//     does not verify, or that names none of the keys, is bad-signature.
//     Unsigned seals are accepted before the set's first signed seal, when
//     one follows (signing was turned on: its signature covers the whole
//     chain before it); an unsigned seal after a signed one, or with none
//     after it, is unsigned. A seal whose "file" or "records" disagrees
//     with its place, an open seal in the middle of a file (inserted), a
//     signature on an ordinary record, a resume seal saying clean after
//     anything but a close seal, or a "lost" whose "after" is not the
//     seal's N - 1 (or that names the record before it): modified;
//   - a valid seal with "lost" reports the loss it records, at the seal:
//     truncated for a resume seal (the live file was cut back), file-missing
//     for an open seal (the newest files were deleted), file-replaced when
//     E = A;
//   - a valid seal with "unvouched" reports records A+1 to L as unvouched,
//     at the seal: they were not written by the writer, whatever their
//     hashes (an "unvouched" whose "last" is not the seal's N - 1 is
//     modified);
//   - pruning: the open seal of file F with keep K > 0 (or the rotate
//     seal of file F-1, which announces its opening) means files
//     max(1, F-K+1) to F must be present; a file number missing below the
//     oldest file present is file-missing (reported at the oldest file's
//     first line). Only those seals count, so raising keep later raises no
//     false alarm. The rule applies to sets that include the live file;
//     lowering keep leaves older files behind that rotation no longer
//     shifts, which verify reports: remove them when lowering it;
//   - the end: the live file (rotation index 0) must end with a seal,
//     whatever its reason, else truncated (line = its lines + 1) unless
//     AllowUnsealedTail. An empty live file after a rotated file that ends
//     with its rotate seal is accepted (a rotation interrupted before the
//     open seal). When the set has no live file and the live path does not
//     exist, that is file-missing (line 0); when it exists, the rotated
//     files named are verified as far as they go. With Fragment (files
//     copied off the node) neither the live file nor the files the keep
//     rule asks for are required.
//
// A gzip file that is cut short is truncated, one whose compressed data is
// corrupt is modified. Verify streams: its memory is the longest line
// (auditlog.MaxLine at most), whatever the number of records; a problem that needs
// context (N > E, or N < E) costs one more read of the set.
//
// # What the chain proves, and what it does not
//
// Without a key, the chain proves that the files are internally consistent:
// any edit, deletion, insertion, reordering or duplication of records, and
// any deletion, replacement or reordering of rotated files, is detected
// unless the attacker recomputes every hash from the change onwards, which
// anyone who can write the files can do. A signing key held away from the
// log directory closes that gap: a rewrite is then detected at the next
// seal (bad-signature), and an attacker without the key cannot make new
// seals, so the live file cannot be extended or re-sealed either. Verify
// then needs only the files and the public key.
//
// Not proven, key or not:
//   - cutting the live file back to exactly the end of an earlier seal, or
//     emptying it right after a rotation, or deleting the newest files
//     together with everything after: what remains is a valid, sealed
//     chain. The files alone cannot show it; something outside them can.
//     The writer keeps one such record (see SealChecked): when it opens
//     the file again, its first seal carries "lost" and Verify reports it.
//     Until then (while the writer keeps the file open, or when its record
//     is lost too) only a copy kept elsewhere shows it, such as the last N
//     and hash of a remote syslog or Logstash copy (which carries the same
//     chain fields) or of a monitoring system, to be compared with
//     Recover's Head;
//   - records after the last seal are only as trustworthy as the hash chain
//     (unsigned): the interval seal bounds how many there are;
//   - deleting whole chains (all files of a path) and the seals' times: a
//     seal's time is the writer's clock, signed but not attested;
//   - that the writer was honest: whoever holds the private key can write
//     any chain.
//
// # Writing
//
// A writer keeps a Head per chain and, under its file's lock, turns each
// record into a line with Head.Append and each seal with Head.Seal, writing
// the returned bytes and a newline: the line's open seal at a new file, a
// rotate seal before rotating, interval seals periodically, a close seal on
// close. On start it calls Recover on the live file's bytes and writes a
// resume seal (see Recover for the cases of a file ending with a rotate
// seal and of an empty live file), with SealChecked when it keeps a record
// of the head as of its last seal that reached the file (that record must
// never be ahead of the file: it is written only once the seal was written
// out, or a crash would raise a false alarm). Keys: LoadPrivateKey, LoadPublicKey,
// GenerateKey and Fingerprint; the private key must stay readable by the
// writer only, and the public key be kept off the node for verification.
package chain
