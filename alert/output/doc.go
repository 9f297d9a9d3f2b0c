// Package output owns what an alert looks like on the wire and how it gets
// there: for each output type of package alert, the payload of one alert
// (pure functions: FormatAlertmanager, FormatWebhook, FormatSlack; golden
// files in testdata/) and a sink.Forwarder that POSTs them (New).
//
// The payload of one alert is the Line of one sink.Event (Event), so that
// alerts travel through the spool machinery like audit events: the caller
// spools the formatted payloads, each output reads them with its own
// cursor, and its Forwarder delivers batches:
//
//   - alertmanager: one POST {url}/api/v2/alerts per batch, a JSON array
//     of the batch's alerts (Alertmanager's API v2);
//   - webhook: one POST per alert, the body as it is, signed: header
//     X-UCP-Audit-Signature-256 is "sha256=" and the hex HMAC-SHA256 of
//     the body under the output's secret (as GitHub's X-Hub-Signature-256),
//     and X-UCP-Audit-Timestamp the time of sending (Unix seconds; not
//     signed: the body's firedAt and id are);
//   - slack: one POST per alert, an incoming-webhook message {"text": …}.
//
// A payload holds no request or response payload of the event, only the
// fields Alert.Record has, and never a secret of the configuration: the
// webhook's key only signs, and URLs (Slack's holds a token) appear in
// errors as scheme and host only.
//
// Every Forwarder acknowledges: Send returns nil once the receiver
// answered 2xx to every POST of the batch. 429 and 5xx say "later"
// (ErrUnavailable); other statuses are a configuration problem
// (ErrUnexpectedStatus); the caller retries both. A payload longer than
// MaxPayload, or that is not a JSON object, is refused with a
// *sink.TooLargeError: it can never be delivered.
package output
