// Package syslog owns the syslog destination of forwarded audit events: a
// sink.Forwarder that writes each event as one syslog message to a remote
// (or local socket) syslog server, in RFC 5424 or RFC 3164 format, over UDP,
// TCP, TCP+TLS (RFC 5425), RELP, or a unix stream or datagram socket.
//
// # Options
//
// The package owns its log-opts (Destination, config.go): syslog-address
// (ParseAddress), syslog-format, syslog-facility, Docker's tag (a template
// of the container's facts, rendered as APP-NAME) and syslog-tls-ca-cert,
// -cert, -key and -skip-verify. A syslog-* option needs syslog-address, and
// a TLS option a tcp+tls address. They configure a Remote, whose New builds
// the Forwarder for one container.
//
// # Message
//
// Severity is informational (6), so PRI is facility*8+6. MSG is the enriched
// event JSON (sink.Event.Line) byte for byte. The header carries the event's
// own time (sink.Event.Time, in UTC; never the time of sending, see
// moby#21793), the node's hostname and the tag (APP-NAME):
//
//	rfc5424:      <PRI>1 2006-01-02T15:04:05Z HOST APP - audit [ucp-audit@32473 auditID="…" seq="…"] MSG
//	rfc5424micro: <PRI>1 2006-01-02T15:04:05.000000Z HOST APP - audit [ucp-audit@32473 …] MSG
//	rfc3164:      <PRI>Jan  2 15:04:05 HOST TAG: MSG
//
// The timestamp precisions follow Docker's syslog driver. PROCID is "-",
// MSGID is "audit" ("ucp-audit" for a record of the plugin's own: a gap or
// self record forwarded so that a SIEM sees losses, which has no auditID and
// no seq). The structured data element ucp-audit@32473 carries the
// event's auditID (omitted when empty; '"', '\' and ']' escaped with a
// backslash, RFC 5424 §6.3.3) and seq (omitted when 0); it is "-" when both
// are missing. 32473 is the private enterprise number reserved for
// documentation (RFC 5612): ucp-audit has no number of its own. A zero event
// time is the NILVALUE "-" in RFC 5424. There is no UTF-8 BOM before MSG
// (receivers such as rsyslog keep it in the raw message).
//
// HOSTNAME and APP-NAME are made valid: every character that is not printable
// US-ASCII without space becomes "_", and they are cut to 255 and 48 bytes
// (RFC 5424). Empty fields are the NILVALUE "-". In RFC 3164 the TAG is cut
// to 32 bytes and ':', '[' and ']' become "_" too; RFC 3164 has no
// structured data, so auditID and seq are only in the JSON there. The RFC
// 3164 size limit of 1024 bytes is not enforced (receivers accept more).
//
// # Transports and delivery
//
//   - udp, unixgram: one message per datagram, no framing, no
//     acknowledgement. Send returns nil once every datagram is handed to the
//     kernel; a datagram can still be lost on the way (at-most-once). A
//     message larger than Options.MaxUDPSize is never cut: Send returns a
//     *sink.TooLargeError (errors.Is sink.ErrTooLarge) naming the event's seq
//     and sends nothing of the batch.
//   - tcp, tcp+tls, unix: RFC 6587 octet counting ("LEN SP MSG"). Send writes
//     the whole batch and returns nil once it is written to the connection.
//     There is no acknowledgement, so these transports cannot promise
//     at-least-once: a connection that breaks after the write loses what
//     the kernels had buffered. Before reusing an idle connection, Send
//     checks that the peer has not closed it, which avoids the common loss
//     after a receiver restart, but not all of it.
//   - relp: RELP (rsyslog's imrelp) over plain TCP. Every message is
//     acknowledged by the receiver, and Send returns nil only when every
//     message of the batch was answered "200 OK" (at-least-once: after an
//     error the caller sends the batch again, and the receiver may get some
//     messages twice). Up to 128 messages are outstanding at a time.
//
// Acknowledged reports true only for relp.
//
// On any error the connection is closed and the next Send dials again (with
// Options.DialTimeout). Reads and writes have a deadline of
// Options.WriteTimeout from each read or write, capped by the ctx deadline;
// a cancelled ctx or Close makes an in-flight Send return at once. Errors
// name the destination, as in `syslog "relp://127.0.0.1:2514": …`.
package syslog
