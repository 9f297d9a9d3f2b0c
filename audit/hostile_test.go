package audit

import (
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// hostileLine returns a request-level event whose requestObject is req.
func hostileLine(req string) string {
	return `{"audit":{"auditID":"a","level":"request","stage":"ResponseComplete","requestURI":"/x","verb":"POST",` +
		`"user":{"username":"u"},"requestReceivedTimestamp":"2024-03-02T10:04:05Z","requestObject":` + req + `}}`
}

// nested returns depth objects {"a":…} around leaf.
func nested(depth int, leaf string) string {
	return strings.Repeat(`{"a":`, depth) + leaf + strings.Repeat(`}`, depth)
}

// Invalid UTF-8 anywhere in an audit line is refused, not repaired:
// encoding/json would decode it as U+FFFD in the validated fields but write
// the raw bytes back, so the forwarded event would differ from the one
// validated and would not be JSON text. The driver quarantines the line
// with raw-base64.
func TestParseRejectsInvalidUTF8(t *testing.T) {
	for name, line := range map[string]string{
		"in auditID":      strings.Replace(hostileLine(`{}`), `"auditID":"a"`, `"auditID":"a`+"\xff"+`"`, 1),
		"in payload":      hostileLine(`{"name":"a` + "\xc3\x28" + `"}`),
		"in a key":        hostileLine(`{"na` + "\xed\xa0\x80" + `me":1}`), // a UTF-16 surrogate
		"in wrapper":      strings.Replace(hostileLine(`{}`), `}}`, `},"msg":"`+"\xfe"+`"}`, 1),
		"truncated rune":  hostileLine(`{"name":"` + "\xe2\x82" + `"}`),
		"overlong (0xC0)": hostileLine(`{"name":"` + "\xc0\xaf" + `"}`),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(line))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Fatalf("Parse = %v, want a UTF-8 ValidationError", err)
			}
			if !strings.Contains(err.Error(), "offset ") {
				t.Fatalf("error %q names no offset", err)
			}
		})
	}
	// Valid multi-byte UTF-8 and \u escapes (even of a lone surrogate,
	// which is valid JSON text) are accepted and written back unchanged.
	line := hostileLine(`{"name":"héllo ☃ 𝄞","esc":"\ud800\u00e9"}`)
	e := mustParse(t, []byte(line))
	Policy{Level: LevelRequest}.Apply(e)
	out, err := e.Encode(Enrichment{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"requestObject":{"name":"héllo ☃ 𝄞","esc":"\ud800\u00e9"}`) {
		t.Errorf("payload altered: %s", out)
	}
	// A line that is not audit at all is still ErrNotAudit, whatever its bytes.
	if _, err := Parse([]byte("plain \xff text")); !errors.Is(err, ErrNotAudit) {
		t.Errorf("non-audit invalid UTF-8: %v", err)
	}
}

// Nesting up to encoding/json's limit (10,000 levels, counting the logrus
// wrapper and the audit object) is accepted and forwarded; deeper nesting
// is refused with a reason, never a crash.
func TestParseDeepNesting(t *testing.T) {
	_, err := Parse([]byte(hostileLine(nested(10000, "1"))))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "exceeded max depth") {
		t.Fatalf("10,000 levels in requestObject: %v", err)
	}
	_, err = Parse([]byte(hostileLine(strings.Repeat("[", 1<<20) + strings.Repeat("]", 1<<20))))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("a million levels: %v", err)
	}
	// 9,997 levels is the deepest requestObject that parses (wrapper, audit,
	// requestObject's own object: 10,000).
	line := hostileLine(nested(9997, `{"password":"leak"}`))
	e := mustParse(t, []byte(line))
	Policy{Level: LevelRequest}.Apply(e)
	out, err := e.Encode(Enrichment{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "leak") {
		t.Error("a secret at depth 9,997 was not redacted")
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("output does not decode: %v", err)
	}
	if _, err := Parse([]byte(`{"audit":` + string(out) + `}`)); err != nil {
		t.Fatalf("the output, wrapped again, does not parse: %v", err)
	}
}

// Redaction makes one pass over a payload: a deeply nested payload around
// a large value must cost about its size, not depth × size (which was
// minutes of CPU for one 4 MiB line, stalling the container's pipeline).
// Checked by the bytes allocated, which do not depend on the machine's
// speed: one pass allocates a few copies of the line, depth × size would
// be gigabytes. BenchmarkApplyDeepNesting shows the time.
func TestApplyDeepNestingIsLinear(t *testing.T) {
	line := deepLine()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e := mustParse(t, line)
	Policy{Level: LevelRequest}.Apply(e)
	out, err := e.Encode(Enrichment{})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if strings.Contains(string(out), "xxxx") {
		t.Error("token at depth 3,000 not redacted")
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32*uint64(len(line)) {
		t.Errorf("Parse+Apply+Encode of a %d-byte payload nested 3,000 deep allocated %d MiB: not one pass", len(line), alloc>>20)
	}
}

// A request body of millions of small values (any user of the API can send
// one at level request) costs a few copies of the line, not a node per
// value: an array of scalars has no nodes, and a payload past maxNodes
// values is withheld whole instead of inspected.
func TestHostileManyValuesBounded(t *testing.T) {
	for name, tc := range map[string]struct {
		payload  string
		redacted bool
	}{
		"2M numbers": {"[" + strings.Repeat("0,", 2_000_000) + "0]", false},
		"1M objects": {"[" + strings.Repeat("{},", 1_000_000) + "{}]", true},
		"1M members": {`{"x":[` + strings.Repeat(`{"a":1},`, 500_000) + `{"password":"p"}]}`, true},
	} {
		t.Run(name, func(t *testing.T) {
			line := []byte(hostileLine(tc.payload))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			e := mustParse(t, line)
			Policy{Level: LevelRequest}.Apply(e)
			out, err := e.Encode(Enrichment{})
			if err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 10*uint64(len(line))+64<<20 {
				t.Errorf("Parse+Apply+Encode of a %d-byte payload allocated %d MiB", len(line), alloc>>20)
			}
			var got struct {
				RequestObject json.RawMessage   `json:"requestObject"`
				Annotations   map[string]string `json:"annotations"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if tc.redacted {
				if string(got.RequestObject) != `"<redacted>"` || got.Annotations[AnnotationRedacted] != "requestObject" {
					t.Errorf("payload of %d values not withheld: %.80s, %q", strings.Count(tc.payload, ",")+1, got.RequestObject, got.Annotations[AnnotationRedacted])
				}
			} else if string(got.RequestObject) != tc.payload {
				t.Errorf("payload changed: %.80s", got.RequestObject)
			}
		})
	}
}

func deepLine() []byte {
	big := `"` + strings.Repeat("x", 1<<20) + `"`
	return []byte(hostileLine(nested(3000, `{"token":`+big+`}`)))
}

func BenchmarkApplyDeepNesting(b *testing.B) {
	line := deepLine()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		e, err := Parse(line)
		if err != nil {
			b.Fatal(err)
		}
		Policy{Level: LevelRequest}.Apply(e)
		if _, err := e.Encode(Enrichment{}); err != nil {
			b.Fatal(err)
		}
	}
}

// The one-pass decoder keeps what the old per-level decoding did: raw
// scalars, escapes in keys, duplicate detection at any depth, and an
// untouched payload keeps its bytes.
func TestRedactorDecodeEquivalent(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"z":1,"a":[1.0, -2e3 ,true,null,"s\"\\"]}`, `{"z":1,"a":[1.0,-2e3,true,null,"s\"\\"]}`}, // untouched: kept (Encode compacts)
		{` { "pass\u0077ord" : "x" } `, `{"password":"<redacted>"}`},
		{`{"a":{"b":1,"b":2}}`, `{"a":{"b":2}}`},                     // nested duplicate: normalised
		{`{"a":1,"\u0061":2}`, `{"a":2}`},                            // duplicate through an escape
		{`[{"x":{}},[],{"y":[[[]]]}]`, `[{"x":{}},[],{"y":[[[]]]}]`}, // empty containers
		{`{"k":"\u007d\u005d,"}`, `{"k":"\u007d\u005d,"}`},
		// Arrays of scalars are kept as their text, compacted when the
		// payload is written again; scalars before an object are kept.
		{`{"a":[ 1 , "x, ]" ,null],"token":"t"}`, `{"a":[1,"x, ]",null],"token":"<redacted>"}`},
		{`[1, "s", {"password":"p"}, 2, [3, {"secret_key":"k"}], [4 ,5]]`, `[1,"s",{"password":"<redacted>"},2,[3,{"secret_key":"<redacted>"}],[4,5]]`},
		{`{"b":[1,2],"a":[ ],"c":[[1],[ "x" ]],"token":1}`, `{"a":[],"b":[1,2],"c":[[1],["x"]],"token":"<redacted>"}`},
	} {
		e := mustParse(t, []byte(hostileLine(tt.in)))
		Policy{Level: LevelRequest}.Apply(e)
		out, err := e.Encode(Enrichment{})
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if string(got["requestObject"]) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.in, got["requestObject"], tt.want)
		}
	}
	// Direct: malformed input (never produced by Parse) is left as raw.
	for _, bad := range []string{`{"a":1`, `{"a" 1}`, `[1 2]`, `{"a":1}x`, `"abc`, ``} {
		var r redactor
		if got, ok := r.decode(json.RawMessage(bad)).(json.RawMessage); !ok || string(got) != bad {
			t.Errorf("decode(%q) = %#v, want the raw bytes", bad, got)
		}
	}
}

// Duplicate keys: the last one wins everywhere (as in encoding/json), and
// the forwarded event is built from what was validated, so an earlier
// value never reaches audit.log: not a second auditID, not a second
// requestObject, not an earlier password.
func TestParseDuplicateKeys(t *testing.T) {
	line := `{"audit":{"auditID":"first","auditID":"second","level":"request","stage":"ResponseComplete","requestURI":"/x","verb":"POST",` +
		`"user":{"username":"u"},"requestReceivedTimestamp":"2024-03-02T10:04:05Z",` +
		`"requestObject":{"password":"leak1"},"requestObject":{"password":"leak2","password":"<redacted>","n":1}},"audit":` +
		`{"auditID":"wrapper-last","level":"metadata","stage":"RequestReceived","requestURI":"/y","verb":"GET","user":{"username":"u"},"requestReceivedTimestamp":"2024-03-02T10:04:05Z"}}`
	e := mustParse(t, []byte(line))
	if e.AuditID() != "wrapper-last" {
		t.Fatalf("duplicate top-level audit: auditID %q, want the last object's", e.AuditID())
	}
	line = line[:strings.Index(line, `},"audit":`)] + "}}"
	e = mustParse(t, []byte(line))
	if e.AuditID() != "second" {
		t.Fatalf("auditID %q, want the last one", e.AuditID())
	}
	Policy{Level: LevelRequest}.Apply(e)
	out, err := e.Encode(Enrichment{})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, bad := range []string{"first", "leak1", "leak2"} {
		if strings.Contains(s, bad) {
			t.Errorf("output holds the earlier value %q: %s", bad, s)
		}
	}
	if strings.Count(s, `"auditID"`) != 1 || !strings.Contains(s, `"requestObject":{"n":1,"password":"<redacted>"}`) {
		t.Errorf("output: %s", s)
	}
}

// A top-level key spelled with escapes is the same key to a JSON decoder:
// such a line looks like audit, and Parse decides. An audit event written
// {"\u0061udit":…} is an event; any other line with an escaped key is not
// audit, and not quarantined either.
func TestEscapedTopLevelKeys(t *testing.T) {
	event := strings.Replace(hostileLine(`{}`), `{"audit":`, `{"\u0061udit":`, 1)
	if !LooksLikeAudit([]byte(event)) {
		t.Fatalf("LooksLikeAudit(%s) = false", event)
	}
	e, err := Parse([]byte(event))
	if err != nil || e.AuditID() != "a" {
		t.Fatalf("Parse(%s) = %v, %v", event, e, err)
	}
	for _, line := range []string{`{"m\u0073g":"x","level":"info"}`, `{"level":"info","msg":"a \"quoted\" word"}`} {
		if _, err := Parse([]byte(line)); !errors.Is(err, ErrNotAudit) {
			t.Errorf("Parse(%s) = %v, want ErrNotAudit", line, err)
		}
	}
}

// The image's ID is recorded next to its name when dockerd gave it.
func TestEncodeImageID(t *testing.T) {
	for _, id := range []string{"", "sha256:" + strings.Repeat("ab", 32)} {
		e := mustParse(t, []byte(hostileLine(`{}`)))
		out, err := e.Encode(Enrichment{Image: "mirantis/ucp-controller:3.7", ImageID: id})
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Annotations map[string]string `json:"annotations"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		v, ok := got.Annotations[AnnotationImageID]
		if ok != (id != "") || v != id || got.Annotations[AnnotationImage] != "mirantis/ucp-controller:3.7" {
			t.Errorf("image ID %q: annotations %v", id, got.Annotations)
		}
	}
}
