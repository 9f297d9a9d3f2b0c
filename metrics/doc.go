// Package metrics owns the plugin's Prometheus metrics, the optional HTTP
// listener (/metrics, /healthz) and the human status summary printed by
// `ucp-audit status`.
//
// The metrics live in their own prometheus.Registry (never the global
// default), together with the Go and process collectors. A nil *Metrics is a
// valid no-op, so packages can be used and tested without metrics.
//
// The listener is off by default; the operator turns it on with
// `docker plugin set ucp-audit METRICS_ADDRESS=127.0.0.1:PORT`. Any host:port
// is accepted, but the endpoints have no authentication, so a loopback
// address is recommended (the plugin runs in the host's network namespace).
//
// # Metrics
//
// No metric carries a container label: the number of containers is
// unbounded, so every series is summed over all containers. Destination
// labels are the plugin's destination names, e.g.
// "syslog relp://127.0.0.1:2514" or "logstash beats://127.0.0.1:5044".
//
//	name                                  type     labels             meaning
//	ucp_audit_build_info                  gauge    version, commit    always 1; identifies the running build
//	ucp_audit_start_time_seconds          gauge    -                  Unix time at which the plugin started
//	ucp_audit_lines_read_total            counter  -                  complete log lines read from the containers' FIFOs (audit or not)
//	ucp_audit_events_total                counter  outcome            audit events by outcome: validated, forwarded, ignored, redacted, quarantined, untrusted (other: any unknown outcome)
//	ucp_audit_delivered_events_total      counter  destination        events acknowledged by a remote destination
//	ucp_audit_delivery_failures_total     counter  destination        failed delivery attempts (the events stay in the spool and are retried)
//	ucp_audit_lost_events_total           counter  destination        events the destination will never get (recorded as gaps)
//	ucp_audit_spool_bytes                 gauge    destination        bytes held in the spools feeding the destination
//	ucp_audit_spool_lag_bytes             gauge    destination        spooled bytes not yet delivered to the destination
//	ucp_audit_streams_active              gauge    -                  container log streams currently attached
//	ucp_audit_fifos_open                  gauge    -                  FIFOs from dockerd currently open
//
// The outcomes of ucp_audit_events_total are stages, not a partition: an
// event that is validated, redacted and forwarded counts once under each.
//
// Several containers usually deliver to the same destination name, each
// from its own spool: each delivery takes a handle with Spool, sets it as its
// spool changes and closes it when it ends. The spool gauges show the sum of
// the open handles, and a destination's gauge series are removed when its
// last handle is closed, so nothing grows with the containers seen.
//
// The Go collector adds go_* (go_goroutines, go_memstats_*, go_gc_*, ...)
// and the process collector adds process_* (process_open_fds,
// process_max_fds, process_resident_memory_bytes, process_cpu_seconds_total,
// process_start_time_seconds, ...). METRICS.md holds the same table.
//
// # Health
//
// /healthz answers 200 "ok" while the function given to SetHealth returns
// nil (or none was given), else 503 with the error's text.
package metrics
