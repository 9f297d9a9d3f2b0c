// Package logstash owns the sink.Forwarder that delivers enriched audit
// events to Logstash: the destination address syntax (ParseAddress), the
// transport options (Options) and one Forwarder per transport (New).
//
// # Options
//
// The package owns its log-opts (Destination, config.go): logstash-address,
// logstash-compression-level (beats and beats+tls only) and
// logstash-tls-ca-cert, -cert, -key and -skip-verify (TLS schemes only).
// Any of them needs logstash-address. They configure a Remote, whose New
// builds the Forwarder.
//
// # Transports and their delivery guarantee
//
// beats://host:port, beats+tls://host:port — the Logstash beats input
// (Lumberjack protocol v2, github.com/elastic/go-lumber's client/v2). A batch
// is one window; every event travels as its own JSON data frame holding the
// event's bytes exactly as given (zlib-compressed, by default at level 3).
// Send returns nil only once Logstash has acknowledged every event of the
// batch, which it does once the events are in its queue: at-least-once
// delivery (across a Logstash crash too, with queue.type: persisted). While
// Logstash is blocked (back-pressure) it sends keep-alive ACKs; each ACK,
// keep-alive or partial, restarts the Timeout, so a slow but alive Logstash
// holds the batch until it is acknowledged or ctx is done, while a silent
// one fails it after Timeout.
//
// http://host[:port]/path, https://… — the Logstash http input. A batch is
// one POST of NDJSON (each event followed by "\n"), Content-Type
// application/x-ndjson. A 2xx answer, which the http input gives once the
// events are queued, acknowledges the batch: at-least-once. 429 (busy) and
// 5xx fail the batch as ErrUnavailable, other statuses (including
// redirects, which are not followed) as ErrUnexpectedStatus; the caller
// retries either. The input must decode the body as lines, e.g.
// additional_codecs => { "application/x-ndjson" => "json_lines" }.
//
// tcp://host:port, tls://host:port — the Logstash tcp input with codec
// json_lines. Each event is written followed by "\n" on a long-lived
// connection. There is no acknowledgement: Send returns nil once the bytes
// are handed to the kernel (or TLS), so events written just before a
// connection or Logstash failure can be lost without any error. These
// transports CANNOT promise at-least-once delivery; their Forwarders
// report Acknowledged() == false.
//
// Every transport dials lazily, on the first Send, and after any failed
// Send drops the connection so that the next Send redials. On Linux, a kept
// beats, tcp or tls connection is checked (without blocking) before each
// Send, and redialled if the peer has closed it meanwhile (a Logstash
// restart, or the beats input's client_inactivity_timeout). Close makes an
// in-flight Send return promptly with ErrClosed. http and https ignore the
// HTTP_PROXY environment: audit events go straight to the destination.
//
// The caller's ctx bounds a whole Send; Timeout bounds each step (see
// Options.Timeout). A beats Send to a Logstash that stays blocked but alive
// therefore lasts until ctx is done: give Send a ctx with a deadline.
//
// Events whose Line holds a newline cannot be framed by NDJSON or
// json_lines: Send on http, https, tcp and tls rejects such a batch, before
// sending any of it, with a *sink.TooLargeError (sink.ErrTooLarge) naming
// the event. The pipeline writes compact JSON, which never holds one.
//
// Errors name the destination, e.g.
// `logstash "beats://127.0.0.1:5044": …`, and wrap the cause with %w: the
// sentinel errors of this package, context.Canceled or
// context.DeadlineExceeded when ctx ended the Send, and the network error.
package logstash
