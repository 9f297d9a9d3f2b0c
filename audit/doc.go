// Package audit owns the audit event model of ucp-audit: it classifies a
// ucp-controller log line, parses and validates the Kubernetes-style audit
// event it wraps, applies the policy (level ceiling and ignore list),
// redacts secret material and adds the enrichment annotations.
//
// Everything here is a pure function of its inputs: no I/O, no goroutines,
// no global state besides read-only tables.
//
// The line shape is a logrus JSON record wrapping the event:
//
//	{"audit":{...event...},"level":"info","msg":"audit","time":"..."}
//
// The event may be the v1beta1 shape that UCP 3.x writes (metadata and
// timestamp present, kind naming the API family) or audit.k8s.io/v1.
// Fields this package does not validate are kept as raw JSON and written
// back unchanged (compacted).
package audit
