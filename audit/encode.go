package audit

import (
	"strconv"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

// Annotation keys this package sets. Their prefix, reservedPrefix, is
// reserved: Parse drops incoming annotations that use it, and refuses an
// event with a top-level key under it (the trail's own records use those).
const (
	AnnotationContainerID   = "ucp-audit/container-id"
	AnnotationContainerName = "ucp-audit/container-name"
	AnnotationImage         = "ucp-audit/image"
	AnnotationImageID       = "ucp-audit/image-id" // the image's ID (sha256:…), only if known
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

	reservedPrefix = auditlog.ReservedPrefix
)

// Annotation prefixes of the container's labels and environment variables
// that its labels and env log-opts select (Enrichment.Extra).
const (
	AnnotationLabelPrefix = "ucp-audit/label/"
	AnnotationEnvPrefix   = "ucp-audit/env/"
)

// Annotation is one annotation of the enrichment beyond the fixed ones.
type Annotation struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Enrichment is what the plugin knows about where the line came from.
type Enrichment struct {
	ContainerID, ContainerName, Image, Host string
	ImageID                                 string    // the image's ID (digest); "" when unknown
	Stream                                  string    // "stdout" or "stderr"
	ReceivedAt                              time.Time // when the plugin read the line
	Seq                                     uint64    // the container's delivered-event number, 1, 2, 3...
	// Extra are more annotations, sorted by key, each under
	// AnnotationLabelPrefix or AnnotationEnvPrefix: the container's labels
	// and environment its options select.
	Extra []Annotation
}

// Encode returns the event (without the logrus wrapper) as one compact JSON
// object with sorted keys and no trailing newline, with the enrichment
// annotations added. Existing annotations are kept; no other field is
// changed. The event itself is not modified.
//
// The output is byte for byte what encoding/json (HTML escaping off) makes
// of the event as maps: keys sorted, strings escaped as encoding/json
// escapes them, raw values compacted. It is written directly, without
// reflection: the fields are kept sorted and their raw JSON is copied.
func (e *Event) Encode(en Enrichment) ([]byte, error) {
	var tbuf [40]byte
	var sbuf [20]byte
	human := e.HumanUser()
	// The enrichment annotations in key order; a nil b means the value is s.
	type annotation struct {
		key string
		s   string
		b   []byte
	}
	all := [...]annotation{
		{key: AnnotationContainerID, s: en.ContainerID},
		{key: AnnotationContainerName, s: en.ContainerName},
		{key: AnnotationHost, s: en.Host},
		{key: AnnotationImage, s: en.Image},
		{key: AnnotationImageID, s: en.ImageID},
		{key: AnnotationReceivedAt, b: en.ReceivedAt.UTC().AppendFormat(tbuf[:0], time.RFC3339Nano)},
		{key: AnnotationSeq, b: strconv.AppendUint(sbuf[:0], en.Seq, 10)},
		{key: AnnotationStream, s: en.Stream},
		{key: AnnotationUser, s: human},
	}
	// The image ID and the human user are set only if there is one.
	var enr [len(all)]annotation
	nenr := 0
	for _, a := range all {
		if a.s == "" && a.b == nil && (a.key == AnnotationImageID || a.key == AnnotationUser) {
			continue
		}
		enr[nenr] = a
		nenr++
	}

	size := 64
	for _, a := range e.annotations {
		size += len(a.key) + len(a.value) + 6
	}
	for _, x := range enr[:nenr] {
		size += len(x.key) + len(x.s) + len(x.b) + 6
	}
	for _, x := range en.Extra {
		size += len(x.Key) + len(x.Value) + 6
	}
	for _, f := range e.fields {
		size += len(f.key) + len(f.raw) + 4
	}
	for _, f := range e.user {
		size += len(f.key) + len(f.raw) + 4
	}
	if e.licenseHashed {
		size += e.extraSize()
	}
	b := make([]byte, 0, size)

	// The top-level keys in order, "annotations" and "user" rebuilt.
	fs := e.fields
	i := 0
	b = append(b, '{')
	for ; i < len(fs) && fs[i].key < "annotations"; i++ {
		b = appendField(b, fs[i])
		b = append(b, ',')
	}
	if i < len(fs) && fs[i].key == "annotations" {
		i++
	}

	// Existing annotations merged with the enrichment, which wins a tie as
	// it did when written into the same map after them.
	b = append(b, `"annotations":{`...)
	// Extra's keys are under prefixes neither the event (Parse drops its
	// reserved keys) nor the fixed enrichment uses: they never tie.
	ann, extra, j := e.annotations, en.Extra, 0
	for n := 0; len(ann) > 0 || len(extra) > 0 || j < nenr; n++ {
		if n > 0 {
			b = append(b, ',')
		}
		if len(extra) > 0 && (len(ann) == 0 || extra[0].Key < ann[0].key) && (j == nenr || extra[0].Key < enr[j].key) {
			b = appendString(b, extra[0].Key) // a label's key may hold anything
			b = append(b, ':')
			b = appendString(b, extra[0].Value)
			extra = extra[1:]
			continue
		}
		if j == nenr || len(ann) > 0 && ann[0].key < enr[j].key {
			b = appendString(b, ann[0].key)
			b = append(b, ':')
			b = appendString(b, ann[0].value)
			ann = ann[1:]
			continue
		}
		if len(ann) > 0 && ann[0].key == enr[j].key {
			ann = ann[1:]
		}
		b = appendPlain(b, enr[j].key) // our keys need no escaping
		b = append(b, ':')
		if enr[j].b != nil {
			b = appendPlain(b, enr[j].b) // nor digits and time punctuation
		} else {
			b = appendString(b, enr[j].s)
		}
		j++
	}
	b = append(b, '}')

	for ; i < len(fs) && fs[i].key < "user"; i++ {
		b = append(b, ',')
		b = appendField(b, fs[i])
	}
	if i < len(fs) && fs[i].key == "user" {
		i++
	}
	b = append(b, `,"user":{`...)
	for k, f := range e.user {
		if k > 0 {
			b = append(b, ',')
		}
		if f.key == "extra" && e.licenseHashed { // rewritten by Apply
			b = appendString(b, f.key)
			b = append(b, ':')
			b = appendExtra(b, e.extra)
			continue
		}
		b = appendField(b, f)
	}
	b = append(b, '}')
	for ; i < len(fs); i++ {
		b = append(b, ',')
		b = appendField(b, fs[i])
	}
	return append(b, '}'), nil
}

// appendField appends "key":value, the value compacted.
func appendField(b []byte, f field) []byte {
	if f.plainKey {
		b = appendPlain(b, f.key)
	} else {
		b = appendString(b, f.key)
	}
	b = append(b, ':')
	if f.space {
		return appendCompact(b, f.raw)
	}
	return append(b, f.raw...)
}

// appendPlain appends s between quotes: a string that needs no escaping.
func appendPlain[T ~string | ~[]byte](b []byte, s T) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
