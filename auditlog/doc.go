// Package auditlog owns the format of the audit trail's files: audit.log,
// quarantine.log and their rotations. The writers (the driver, package
// sink/file, package chain) and the readers (verify, query and report) take
// the format from here; it imports no other package of this module.
//
// A file is JSON lines: one compact JSON object per line, ended by "\n", at
// most MaxLine bytes. In audit.log a line is an audit event (an object with
// "auditID"), or one of the plugin's own records: an object with a top-level
// key under ReservedPrefix (SelfKey: Self; GapKey: Gap; SealKey: a seal).
// Every line of a chained file ends with a ChainKey field; the [chain]
// package documentation specifies it and the seals. A seal, a self record,
// an event and a gap record (hashes shortened):
//
//	{"ucp-audit/seal":{"reason":"open","time":"2024-03-02T10:04:00Z","file":1,"keep":5,"records":1},"ucp-audit/chain":{"n":1,"prev":"0000…","hash":"85c4…"}}
//	{"ucp-audit/self":{"type":"stream-attached","time":"2024-03-02T10:04:00.5Z","host":"mgr-1","version":"1.4.0","container-id":"3f1c9a7b","container-name":"ucp-controller"},"ucp-audit/chain":{"n":2,"prev":"85c4…","hash":"1a33…"}}
//	{"annotations":{"ucp-audit/container-id":"3f1c9a7b","ucp-audit/seq":"1"},"auditID":"0b7c1a52","kind":"docker-swarm","level":"metadata","stage":"RequestReceived","verb":"GET","ucp-audit/chain":{"n":3,"prev":"1a33…","hash":"41c2…"}}
//	{"ucp-audit/gap":{"time":"2024-03-02T10:09:12.25Z","container-id":"3f1c9a7b","container-name":"ucp-controller","destination":"logstash beats://siem:5044","lost":120,"first-seq":880,"last-seq":999,"reason":"spool full"},"ucp-audit/chain":{"n":4,"prev":"41c2…","hash":"9a00…"}}
//
// quarantine.log holds Quarantine records (a container's line that could
// not be written as an event, or a count of lost input, with the reason)
// and gap records flat, with a summary (QuarantineGap); its lines are
// chained and sealed the same way. The Marshal functions write each record
// as its one line; the driver decides when.
//
// Rotation renames audit.log to audit.log.1, audit.log.1 to audit.log.2 and
// so on (Rotated); an operator may gzip a rotated file (audit.log.2.gz).
// Files finds the sets of files on disk, Open reads one, plain or gzip, and
// LineReader reads its lines.
//
// [chain]: https://pkg.go.dev/github.com/ucp-audit/ucp-audit/chain
package auditlog
