package audit

import (
	"bytes"
	"encoding/json"
	"maps"
	"strconv"
	"time"
)

// Annotation keys this package sets. The "ucp-audit/" prefix is reserved:
// Parse drops incoming annotations that use it.
const (
	AnnotationContainerID   = "ucp-audit/container-id"
	AnnotationContainerName = "ucp-audit/container-name"
	AnnotationImage         = "ucp-audit/image"
	AnnotationHost          = "ucp-audit/host"
	AnnotationReceivedAt    = "ucp-audit/received-at" // RFC 3339, nanoseconds, UTC
	AnnotationStream        = "ucp-audit/stream"
	AnnotationSeq           = "ucp-audit/seq"  // decimal
	AnnotationUser          = "ucp-audit/user" // user.extra.username[0], only if set
	AnnotationLevelCeiling  = "ucp-audit/level-ceiling"
	// AnnotationRedacted holds the comma-separated, sorted JSON paths that
	// Apply redacted, e.g. `requestObject.Data,requestObject.data["tls.crt"]`.
	// Keys that are not plain words are quoted; a key holding "," would
	// still read as two paths.
	AnnotationRedacted = "ucp-audit/redacted"

	reservedPrefix = "ucp-audit/"
)

// Enrichment is what the plugin knows about where the line came from.
type Enrichment struct {
	ContainerID, ContainerName, Image, Host string
	Stream                                  string    // "stdout" or "stderr"
	ReceivedAt                              time.Time // when the plugin read the line
	Seq                                     uint64    // the container's delivered-event number, 1, 2, 3...
}

// Encode returns the event (without the logrus wrapper) as one compact JSON
// object with sorted keys and no trailing newline, with the enrichment
// annotations added. Existing annotations are kept; no other field is
// changed. The event itself is not modified.
func (e *Event) Encode(en Enrichment) ([]byte, error) {
	ann := make(map[string]string, len(e.annotations)+8)
	maps.Copy(ann, e.annotations)
	ann[AnnotationContainerID] = en.ContainerID
	ann[AnnotationContainerName] = en.ContainerName
	ann[AnnotationImage] = en.Image
	ann[AnnotationHost] = en.Host
	ann[AnnotationReceivedAt] = en.ReceivedAt.UTC().Format(time.RFC3339Nano)
	ann[AnnotationStream] = en.Stream
	ann[AnnotationSeq] = strconv.FormatUint(en.Seq, 10)
	if u := e.HumanUser(); u != "" {
		ann[AnnotationUser] = u
	}

	out := maps.Clone(e.fields)
	var err error
	if out["annotations"], err = marshal(ann); err != nil {
		return nil, err
	}
	if out["user"], err = marshal(e.user); err != nil {
		return nil, err
	}
	return marshal(out)
}

// marshal encodes v compactly without HTML escaping ("<redacted>" stays
// readable) and without a trailing newline.
func marshal(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
