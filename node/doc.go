// Package node owns the node configuration of ucp-audit: the one JSON
// document, kept by the node's administrator below the plugin's state
// directory (/var/lib/ucp-audit/node.json, mode 0600), that says what
// belongs to the node rather than to a container.
//
// The node owns the audit trail's files (names, rotation size and count),
// the seal key, the audit-level ceiling, the caps on what one container may
// make the plugin hold (the longest line, its docker-logs store, its spool,
// and their totals), which containers are audit producers, and the HTTPS
// configuration API. A container's log-opts shape only its own events and
// its own store, within these (package config).
//
// The document is parsed once into a typed Config (Parse): defaults first,
// then every key, with an error that names the key by its dotted path
// ("trail.maxSize"), unknown keys refused, then cross-field checks. Keys
// are matched exactly (encoding/json alone would match "AuditLevel" to
// auditLevel). UCP's own logging document, {"logLevel": "INFO",
// "auditLevel": "metadata", "supportDumpIncludeAuditLogs": false}, is a
// valid document as it is.
//
// Changes are whole-document replacements written atomically (Save); the
// host CLI merges partial documents and KEY=VALUE settings over the current
// one first (Merge, Set). The running plugin notices a new document with a
// Watcher and applies it to running and new streams.
package node
