package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// baseEvent returns a valid v1beta1-shaped (UCP 3.x) audit object.
func baseEvent() map[string]any {
	return map[string]any{
		"auditID":                  "0b7c1a52-4f0e-4c0a-9f3e-6a1d2b3c4d5e",
		"kind":                     "docker-swarm",
		"level":                    "metadata",
		"metadata":                 map[string]any{"creationTimestamp": nil},
		"requestReceivedTimestamp": "2024-03-02T10:04:05.123456Z",
		"requestURI":               "/v1.41/services?filters=%7B%7D",
		"sourceIPs":                []any{"10.0.0.7:51234"},
		"stage":                    "RequestReceived",
		"stageTimestamp":           nil,
		"timestamp":                nil,
		"user": map[string]any{
			"extra":    map[string]any{"licenseKey": []any{"AbCdEf0123456789_example"}, "username": []any{"bob"}},
			"uid":      "6f1e",
			"username": "6f1e",
		},
		"verb": "GET",
	}
}

// wrap returns ev as a logrus line.
func wrap(t testing.TB, ev any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"audit": ev, "level": "info", "msg": "audit", "time": "2024-03-02T10:04:05Z"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustParse parses a line that must be valid.
func mustParse(t testing.TB, line []byte) *Event {
	t.Helper()
	e, err := Parse(line)
	if err != nil {
		t.Fatalf("Parse(%s): %v", line, err)
	}
	return e
}

// decodeOut decodes Encode output for inspection.
func decodeOut(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, b)
	}
	return m
}

func TestLooksLikeAudit(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{`{"audit":{"auditID":"x"},"level":"info"}`, true},
		{`{"level":"info","audit":{}}`, true},
		{`  {"msg":"m", "audit" : null}`, true},
		{`{"msg":"contains auditID in text"}`, true},
		{`auditID=1 plain`, true},
		{`{"level":"info","msg":"Starting","time":"t"}`, false},
		{`plain text`, false},
		{``, false},
		{`{"msg":"\"audit\": nested in a string"}`, false},
		{`{"x":{"audit":{}}}`, false},
		{`{"x":["audit"],"y":"audit"}`, false},
		{`{"audits":1}`, false},
		{`["audit"]`, false},
		{`{"a":"b\\","audit":1}`, true},
		{`{"a":"b\"","audit":1}`, true},
		{`{"audit"`, true},
		{`{"a`, false},
	}
	for _, tt := range tests {
		if got := LooksLikeAudit([]byte(tt.line)); got != tt.want {
			t.Errorf("LooksLikeAudit(%s) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

func TestParseValid(t *testing.T) {
	v1 := `{"time":"2024-03-02T10:04:05Z","msg":"audit","audit":{"verb":"create","user":{"username":"alice","groups":["g"],"extra":{"username":["Alice"],"scopes":null}},` +
		`"stage":"responsecomplete","sourceIPs":["10.0.0.9"],"requestURI":"/api/v1/namespaces/default/pods","requestReceivedTimestamp":"2024-03-02T10:07:00+02:00",` +
		`"level":"REQUEST","kind":"Event","auditID":"id-1","apiVersion":"audit.k8s.io/v1","annotations":{"a":"b"},"future":{"z":[1.50,2e3],"a":"\u003c"}},"level":"info"}`
	e := mustParse(t, []byte(v1))
	checks := []struct{ name, got, want string }{
		{"AuditID", e.AuditID(), "id-1"},
		{"Stage", e.Stage(), "ResponseComplete"},
		{"Level", e.Level().String(), "request"},
		{"RequestURI", e.RequestURI(), "/api/v1/namespaces/default/pods"},
		{"Verb", e.Verb(), "create"},
		{"Username", e.Username(), "alice"},
		{"HumanUser", e.HumanUser(), "Alice"},
		{"ReceivedAt", e.ReceivedAt().UTC().Format(time.RFC3339Nano), "2024-03-02T08:07:00Z"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	out, err := e.Encode(Enrichment{})
	if err != nil {
		t.Fatal(err)
	}
	// Unknown fields and field values survive byte for byte (compacted).
	for _, want := range []string{`"future":{"z":[1.50,2e3],"a":"\u003c"}`, `"level":"REQUEST"`, `"stage":"responsecomplete"`,
		`"requestReceivedTimestamp":"2024-03-02T10:07:00+02:00"`, `"kind":"Event"`, `"extra":{"username":["Alice"],"scopes":null}`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}

	// v1beta1 without fractional seconds, no extra: HumanUser is "".
	ev := baseEvent()
	ev["requestReceivedTimestamp"] = "2024-03-02T10:04:05Z"
	ev["apiVersion"] = "audit.k8s.io/v1beta1"
	ev["user"] = map[string]any{"username": "u", "extra": nil}
	ev["annotations"] = nil
	e = mustParse(t, wrap(t, ev))
	if e.HumanUser() != "" || e.Stage() != "RequestReceived" || e.Level() != LevelMetadata {
		t.Errorf("got human %q stage %q level %v", e.HumanUser(), e.Stage(), e.Level())
	}
	if !e.ReceivedAt().Equal(time.Date(2024, 3, 2, 10, 4, 5, 0, time.UTC)) {
		t.Errorf("ReceivedAt = %v", e.ReceivedAt())
	}
}

func TestParseNotAudit(t *testing.T) {
	for _, line := range []string{``, `plain`, `{"level":"info","msg":"x"}`, `{"x":{"audit":{"auditI":1}}}`} {
		if _, err := Parse([]byte(line)); !errors.Is(err, ErrNotAudit) {
			t.Errorf("Parse(%q) = %v, want ErrNotAudit", line, err)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	set := func(path string, v any) func(map[string]any) {
		return func(ev map[string]any) {
			m := ev
			parts := strings.Split(path, ".")
			for _, p := range parts[:len(parts)-1] {
				m = m[p].(map[string]any)
			}
			m[parts[len(parts)-1]] = v
		}
	}
	del := func(path string) func(map[string]any) {
		return func(ev map[string]any) {
			m := ev
			parts := strings.Split(path, ".")
			for _, p := range parts[:len(parts)-1] {
				m = m[p].(map[string]any)
			}
			delete(m, parts[len(parts)-1])
		}
	}
	tests := []struct {
		name   string
		mutate func(map[string]any)
		field  string
		want   string // the full error message
	}{
		{"reserved chain field", set("ucp-audit/chain", map[string]any{"n": 1}), "ucp-audit/chain", `invalid audit event: field "ucp-audit/chain": the "ucp-audit/" prefix is reserved for the plugin's own fields`},
		{"reserved gap field", set("ucp-audit/gap", map[string]any{}), "ucp-audit/gap", `invalid audit event: field "ucp-audit/gap": the "ucp-audit/" prefix is reserved for the plugin's own fields`},
		{"auditID missing", del("auditID"), "auditID", `invalid audit event: field "auditID": missing`},
		{"auditID empty", set("auditID", ""), "auditID", `invalid audit event: field "auditID": empty`},
		{"auditID number", set("auditID", 7), "auditID", `invalid audit event: field "auditID": must be a string, got number`},
		{"auditID null", set("auditID", nil), "auditID", `invalid audit event: field "auditID": must be a string, got null`},
		{"level missing", del("level"), "level", `invalid audit event: field "level": missing`},
		{"level bad", set("level", "verbose"), "level", `invalid audit event: field "level": invalid value "verbose": want "Metadata" or "Request"`},
		{"level none", set("level", "None"), "level", `invalid audit event: field "level": invalid value "None": want "Metadata" or "Request"`},
		{"level bool", set("level", true), "level", `invalid audit event: field "level": must be a string, got boolean`},
		{"stage missing", del("stage"), "stage", `invalid audit event: field "stage": missing`},
		{"stage bad", set("stage", "Done"), "stage", `invalid audit event: field "stage": invalid value "Done": want RequestReceived, ResponseStarted, ResponseComplete or Panic`},
		{"requestURI missing", del("requestURI"), "requestURI", `invalid audit event: field "requestURI": missing`},
		{"requestURI empty", set("requestURI", ""), "requestURI", `invalid audit event: field "requestURI": empty`},
		{"requestURI array", set("requestURI", []any{"/x"}), "requestURI", `invalid audit event: field "requestURI": must be a string, got array`},
		{"verb missing", del("verb"), "verb", `invalid audit event: field "verb": missing`},
		{"verb empty", set("verb", ""), "verb", `invalid audit event: field "verb": empty`},
		{"user missing", del("user"), "user", `invalid audit event: field "user": missing`},
		{"user string", set("user", "bob"), "user", `invalid audit event: field "user": must be an object, got string`},
		{"username missing", del("user.username"), "user.username", `invalid audit event: field "user.username": missing`},
		{"username empty", set("user.username", ""), "user.username", `invalid audit event: field "user.username": empty`},
		{"username object", set("user.username", map[string]any{}), "user.username", `invalid audit event: field "user.username": must be a string, got object`},
		{"extra array", set("user.extra", []any{}), "user.extra", `invalid audit event: field "user.extra": must be an object, got array`},
		{"extra value string", set("user.extra.username", "bob"), "user.extra.username", `invalid audit event: field "user.extra.username": must be an array of strings, got string`},
		{"extra value mixed", set("user.extra.licenseKey", []any{"a", 1}), "user.extra.licenseKey", `invalid audit event: field "user.extra.licenseKey": must be an array of strings, got array with a non-string element`},
		{"timestamp missing", del("requestReceivedTimestamp"), "requestReceivedTimestamp", `invalid audit event: field "requestReceivedTimestamp": missing`},
		{"timestamp bad", set("requestReceivedTimestamp", "yesterday"), "requestReceivedTimestamp", `invalid audit event: field "requestReceivedTimestamp": invalid value "yesterday": not RFC 3339`},
		{"timestamp no zone", set("requestReceivedTimestamp", "2024-03-02T10:04:05"), "requestReceivedTimestamp", `invalid audit event: field "requestReceivedTimestamp": invalid value "2024-03-02T10:04:05": not RFC 3339`},
		{"timestamp number", set("requestReceivedTimestamp", 1709373845), "requestReceivedTimestamp", `invalid audit event: field "requestReceivedTimestamp": must be a string, got number`},
		{"apiVersion bad", set("apiVersion", "audit.k8s.io/v2"), "apiVersion", `invalid audit event: field "apiVersion": invalid value "audit.k8s.io/v2": want "audit.k8s.io/v1" or "audit.k8s.io/v1beta1"`},
		{"apiVersion number", set("apiVersion", 1), "apiVersion", `invalid audit event: field "apiVersion": must be a string, got number`},
		{"annotations array", set("annotations", []any{"a"}), "annotations", `invalid audit event: field "annotations": must be an object, got array`},
		{"annotation value", set("annotations", map[string]any{"k": 1}), "annotations.k", `invalid audit event: field "annotations.k": must be a string, got number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := baseEvent()
			tt.mutate(ev)
			_, err := Parse(wrap(t, ev))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			ve, ok := errors.AsType[*ValidationError](err)
			if !ok {
				t.Fatalf("err %T is not a *ValidationError", err)
			}
			if ve.Field != tt.field {
				t.Errorf("Field = %q, want %q", ve.Field, tt.field)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestParseInvalidLine(t *testing.T) {
	tests := []struct{ line, want string }{
		{`{"audit":{"auditID":`, `invalid audit event: not JSON: unexpected end of JSON input`},
		{`{"audit":null}`, `invalid audit event: top-level "audit" is not an object`},
		{`{"audit":"auditID"}`, `invalid audit event: top-level "audit" is not an object`},
		{`{"audit":[1]}`, `invalid audit event: top-level "audit" is not an object`},
		{`{"auditID":"x","verb":"GET"}`, `invalid audit event: no top-level "audit" object (line contains auditID)`},
		{`["auditID"]`, `invalid audit event: not a JSON object`},
		{`level=info msg="auditID=1"`, `invalid audit event: not JSON: invalid character 'l' looking for beginning of value`},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.line))
		if !errors.Is(err, ErrInvalid) || err.Error() != tt.want {
			t.Errorf("Parse(%s):\n got %v\nwant %s", tt.line, err, tt.want)
		}
	}
}

func TestValidationErrorValueTruncated(t *testing.T) {
	ev := baseEvent()
	ev["stage"] = strings.Repeat("é", 200)
	_, err := Parse(wrap(t, ev))
	ve, ok := errors.AsType[*ValidationError](err)
	if !ok || len(ve.Value) > maxValueLen+len("…") || !strings.HasSuffix(ve.Value, "…") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want Level
		ok   bool
	}{
		{"none", LevelNone, true}, {"NONE", LevelNone, true}, {"metadata", LevelMetadata, true},
		{"Metadata", LevelMetadata, true}, {" request ", LevelRequest, true}, {"REQUEST", LevelRequest, true},
		{"", 0, false}, {"requests", 0, false}, {"1", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if !tt.ok && !errors.Is(err, ErrBadLevel) {
			t.Errorf("ParseLevel(%q) err = %v, want ErrBadLevel", tt.in, err)
		}
	}
	for l, s := range map[Level]string{LevelNone: "none", LevelMetadata: "metadata", LevelRequest: "request", 9: "Level(9)"} {
		if l.String() != s {
			t.Errorf("Level(%d).String() = %q, want %q", int(l), l.String(), s)
		}
	}
}

func TestIgnore(t *testing.T) {
	def, err := NewIgnore(DefaultIgnoreList)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		uri  string
		want bool
	}{
		{"/_ping", true},
		{"/v1.41/_ping", true},
		{"/v1.41/_ping?x=1", true},
		{"/_ping#frag", true},
		{"/auth", true},
		{"/auth/login", false},
		{"/auth/", false},
		{"/auth?x", true},
		{"/version", true},
		{"/v1.41/version", true},
		{"/versions/x", true},
		{"/versionsomething", true},
		{"/v1.41", false},
		{"/", false},
		{"/api/v1/pods", false},
		{"/v1/_ping", false},
		{"/v1.41x/_ping", false},
		{"/v1./_ping", false},
		{"/v1.41/v1.41/_ping", false},
		{"/%5Fping", false},
		{"/info", true},
		{"/info/x", false},
		{"/containers/json", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := def.Match(tt.uri); got != tt.want {
			t.Errorf("default.Match(%q) = %v, want %v", tt.uri, got, tt.want)
		}
	}
	root, err := ParseIgnore("/")
	if err != nil {
		t.Fatal(err)
	}
	for uri, want := range map[string]bool{"/v1.41": true, "/v1.41/": true, "/": true, "/x": false} {
		if got := root.Match(uri); got != want {
			t.Errorf(`"/".Match(%q) = %v, want %v`, uri, got, want)
		}
	}
	// An entry written with a version prefix drops it, like the paths.
	versioned, err := ParseIgnore("/v1.41/services*,/v1.30/nodes")
	if err != nil {
		t.Fatal(err)
	}
	for uri, want := range map[string]bool{"/v1.41/services/x": true, "/v1.25/services": true, "/nodes": true, "/v1.41/nodes/n1": false} {
		if got := versioned.Match(uri); got != want {
			t.Errorf("versioned.Match(%q) = %v, want %v", uri, got, want)
		}
	}
	if versioned.String() != "/services*,/nodes" {
		t.Errorf("versioned.String() = %q", versioned.String())
	}
	var zero Ignore
	if zero.Match("/_ping") || zero.String() != "" {
		t.Error("zero Ignore matches")
	}
}

func TestParseIgnore(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"", "", ""},
		{" , ,", "", ""},
		{" /_ping , /version* ,,/auth", "/_ping,/version*,/auth", ""},
		{strings.Join(DefaultIgnoreList, ","), strings.Join(DefaultIgnoreList, ","), ""},
		{"/a,foo", "", `invalid ignore list: entry "foo": must start with "/"`},
		{"/a*b", "", `invalid ignore list: entry "/a*b": "*" is only allowed as the last character`},
		{"/**", "", `invalid ignore list: entry "/**": "*" is only allowed as the last character`},
		{"*", "", `invalid ignore list: entry "*": must start with "/"`},
		{"/a?b", "", `invalid ignore list: entry "/a?b": must not contain "?" or "#"`},
	}
	for _, tt := range tests {
		ig, err := ParseIgnore(tt.in)
		if tt.err != "" {
			if !errors.Is(err, ErrBadIgnore) || err.Error() != tt.err {
				t.Errorf("ParseIgnore(%q) err = %v, want %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || ig.String() != tt.want {
			t.Errorf("ParseIgnore(%q) = %q, %v; want %q", tt.in, ig.String(), err, tt.want)
		}
	}
}

func TestAllows(t *testing.T) {
	ig, err := ParseIgnore("/_ping,/version*")
	if err != nil {
		t.Fatal(err)
	}
	withURI := func(uri string) *Event {
		ev := baseEvent()
		ev["requestURI"] = uri
		return mustParse(t, wrap(t, ev))
	}
	tests := []struct {
		p      Policy
		uri    string
		ok     bool
		reason string
	}{
		{Policy{Level: LevelMetadata, Ignore: ig}, "/containers/json", true, ""},
		{Policy{Level: LevelRequest, Ignore: ig}, "/v1.41/_ping", false, "ignored: /_ping"},
		{Policy{Level: LevelRequest, Ignore: ig}, "/v1.41/version?x", false, "ignored: /version*"},
		{Policy{Level: LevelNone, Ignore: ig}, "/containers/json", false, "audit-level none"},
		{Policy{Level: LevelNone}, "/_ping", false, "audit-level none"},
		{Policy{Level: LevelMetadata}, "/_ping", true, ""},
	}
	for _, tt := range tests {
		ok, reason := tt.p.Allows(withURI(tt.uri))
		if ok != tt.ok || reason != tt.reason {
			t.Errorf("Allows(%v, %q) = %v, %q; want %v, %q", tt.p.Level, tt.uri, ok, reason, tt.ok, tt.reason)
		}
	}
}

// applied parses ev, applies p and returns the encoded output decoded.
func applied(t *testing.T, p Policy, ev map[string]any) map[string]any {
	t.Helper()
	e := mustParse(t, wrap(t, ev))
	p.Apply(e)
	out, err := e.Encode(Enrichment{})
	if err != nil {
		t.Fatal(err)
	}
	return decodeOut(t, out)
}

func annotations(m map[string]any) map[string]any {
	a, _ := m["annotations"].(map[string]any)
	return a
}

func TestApplyCeiling(t *testing.T) {
	ev := baseEvent()
	ev["level"] = "Request"
	ev["requestObject"] = map[string]any{"Image": "nginx"}
	ev["responseObject"] = map[string]any{"Id": "abc"}

	got := applied(t, Policy{Level: LevelMetadata}, ev)
	if _, ok := got["requestObject"]; ok {
		t.Error("requestObject kept at metadata ceiling")
	}
	if _, ok := got["responseObject"]; ok {
		t.Error("responseObject kept at metadata ceiling")
	}
	if a := annotations(got); a[AnnotationLevelCeiling] != "metadata" {
		t.Errorf("annotations = %v", a)
	}
	if got["level"] != "Request" {
		t.Errorf("event level rewritten: %v", got["level"])
	}

	got = applied(t, Policy{Level: LevelRequest}, ev)
	if _, ok := got["requestObject"]; !ok {
		t.Error("requestObject dropped at request level")
	}
	if _, ok := annotations(got)[AnnotationLevelCeiling]; ok {
		t.Error("ceiling annotation at request level")
	}

	// Nothing to remove: no annotation.
	got = applied(t, Policy{Level: LevelMetadata}, baseEvent())
	if _, ok := annotations(got)[AnnotationLevelCeiling]; ok {
		t.Error("ceiling annotation without payload")
	}
}

func TestApplyLicenseKey(t *testing.T) {
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "sha256:" + hex.EncodeToString(sum[:])[:16]
	}
	ev := baseEvent()
	ev["user"].(map[string]any)["extra"].(map[string]any)["licenseKey"] = []any{"key-one", "key-two"}
	e := mustParse(t, wrap(t, ev))
	p := Policy{Level: LevelRequest}
	p.Apply(e)
	p.Apply(e) // hashes once only
	out, err := e.Encode(Enrichment{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "key-one") || strings.Contains(string(out), "key-two") {
		t.Fatalf("license key leaked: %s", out)
	}
	extra := decodeOut(t, out)["user"].(map[string]any)["extra"].(map[string]any)
	keys := extra["licenseKey"].([]any)
	if keys[0] != hash("key-one") || keys[1] != hash("key-two") {
		t.Errorf("licenseKey = %v, want [%s %s]", keys, hash("key-one"), hash("key-two"))
	}
	if extra["username"].([]any)[0] != "bob" {
		t.Errorf("extra.username changed: %v", extra["username"])
	}
}

func TestApplyRedaction(t *testing.T) {
	tests := []struct {
		name      string
		uri       string
		objectRef map[string]any
		req, resp any
		wantReq   string // compact JSON; "" means unchanged
		wantResp  string
		paths     string // AnnotationRedacted; "" means absent
	}{
		{
			name: "docker secret create", uri: "/v1.41/secrets/create",
			req:     map[string]any{"Name": "s", "Data": "c2VjcmV0", "Labels": map[string]any{}},
			wantReq: `{"Data":"<redacted>","Labels":{},"Name":"s"}`, paths: "requestObject.Data",
		},
		{
			name: "docker secret update", uri: "/secrets/abc123/update?version=5",
			req:     map[string]any{"Name": "s", "Data": "c2VjcmV0"},
			wantReq: `{"Data":"<redacted>","Name":"s"}`, paths: "requestObject.Data",
		},
		{
			name: "docker config create keeps Data", uri: "/v1.41/configs/create",
			req: map[string]any{"Name": "c", "Data": "Y29uZmln"},
		},
		{
			name: "secret path with extra segment keeps Data", uri: "/secrets/a/b/update",
			req: map[string]any{"Data": "x"},
		},
		{
			name: "swarm join", uri: "/v1.41/swarm/join",
			req:     map[string]any{"JoinToken": "SWMTKN-1-x", "RemoteAddrs": []any{"10.0.0.7:2377"}},
			wantReq: `{"JoinToken":"<redacted>","RemoteAddrs":["10.0.0.7:2377"]}`, paths: "requestObject.JoinToken",
		},
		{
			name: "swarm inspect tokens", uri: "/swarm",
			resp:     map[string]any{"JoinTokens": map[string]any{"Worker": "w", "Manager": "m"}, "ID": "x"},
			wantResp: `{"ID":"x","JoinTokens":"<redacted>"}`, paths: "responseObject.JoinTokens",
		},
		{
			name: "swarm unlock", uri: "/swarm/unlock",
			req:     map[string]any{"UnlockKey": "SWMKEY-1-x"},
			wantReq: `{"UnlockKey":"<redacted>"}`, paths: "requestObject.UnlockKey",
		},
		{
			name: "login", uri: "/auth/login",
			req:      map[string]any{"username": "bob", "password": "hunter2"},
			resp:     map[string]any{"auth_token": "t", "IdentityToken": "i"},
			wantReq:  `{"password":"<redacted>","username":"bob"}`,
			wantResp: `{"IdentityToken":"<redacted>","auth_token":"<redacted>"}`,
			paths:    "requestObject.password,responseObject.IdentityToken,responseObject.auth_token",
		},
		{
			name: "key variants nested in arrays", uri: "/x",
			req:     map[string]any{"a": []any{map[string]any{"Client-Secret": map[string]any{"x": 1}, "PRIVATE_KEY": []any{"k"}, "pass_wd": "p", "tokens": "kept"}}},
			wantReq: `{"a":[{"Client-Secret":"<redacted>","PRIVATE_KEY":"<redacted>","pass_wd":"<redacted>","tokens":"kept"}]}`,
			paths:   `requestObject.a[0].Client-Secret,requestObject.a[0].PRIVATE_KEY,requestObject.a[0].pass_wd`,
		},
		{
			name: "null and already redacted stay", uri: "/x",
			req: map[string]any{"password": nil, "token": "<redacted>"},
		},
		{
			name: "k8s secret by objectRef", uri: "/api/v1/namespaces/default/secrets",
			objectRef: map[string]any{"resource": "secrets", "namespace": "default"},
			req:       map[string]any{"metadata": map[string]any{"name": "db"}, "data": map[string]any{"tls.crt": "eA==", "user": "dQ=="}, "stringData": map[string]any{"pw": "x", "empty": nil}},
			wantReq:   `{"data":{"tls.crt":"<redacted>","user":"<redacted>"},"metadata":{"name":"db"},"stringData":{"empty":null,"pw":"<redacted>"}}`,
			paths:     `requestObject.data.user,requestObject.data["tls.crt"],requestObject.stringData.pw`,
		},
		{
			name: "k8s secret by kind", uri: "/apis/x",
			req:     map[string]any{"kind": "List", "items": []any{map[string]any{"kind": "Secret", "data": map[string]any{"a": "b"}}}},
			wantReq: `{"items":[{"data":{"a":"<redacted>"},"kind":"Secret"}],"kind":"List"}`,
			paths:   "requestObject.items[0].data.a",
		},
		{
			name: "k8s secret data not an object", uri: "/x",
			req:     map[string]any{"kind": "Secret", "data": "weird"},
			wantReq: `{"data":"<redacted>","kind":"Secret"}`, paths: "requestObject.data",
		},
		{
			name: "k8s secret list", uri: "/api/v1/secrets",
			resp:     map[string]any{"kind": "SecretList", "items": []any{map[string]any{"data": map[string]any{"k": "v"}}, map[string]any{"data": nil}}},
			wantResp: `{"items":[{"data":{"k":"<redacted>"}},{"data":null}],"kind":"SecretList"}`,
			paths:    "responseObject.items[0].data.k",
		},
		{
			name: "k8s secret json patch", uri: "/api/v1/namespaces/default/secrets/db",
			objectRef: map[string]any{"resource": "secrets"},
			req:       []any{map[string]any{"op": "add", "path": "/data/k", "value": "dg=="}},
			wantReq:   `[{"op":"add","path":"/data/k","value":"<redacted>"}]`,
			paths:     "requestObject[0].value",
		},
		{
			name: "configmap data kept", uri: "/api/v1/namespaces/default/configmaps",
			objectRef: map[string]any{"resource": "configmaps"},
			req:       map[string]any{"kind": "ConfigMap", "data": map[string]any{"k": "v"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := baseEvent()
			ev["level"] = "request"
			ev["requestURI"] = tt.uri
			if tt.objectRef != nil {
				ev["objectRef"] = tt.objectRef
			}
			if tt.req != nil {
				ev["requestObject"] = tt.req
			}
			if tt.resp != nil {
				ev["responseObject"] = tt.resp
			}
			e := mustParse(t, wrap(t, ev))
			Policy{Level: LevelRequest}.Apply(e)
			out, err := e.Encode(Enrichment{})
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			check := func(field string, orig any, want string) {
				if orig == nil {
					return
				}
				if want == "" {
					b, _ := json.Marshal(orig)
					want = string(b)
				}
				if string(got[field]) != want {
					t.Errorf("%s:\n got %s\nwant %s", field, got[field], want)
				}
			}
			check("requestObject", tt.req, tt.wantReq)
			check("responseObject", tt.resp, tt.wantResp)
			var ann map[string]string
			if err := json.Unmarshal(got["annotations"], &ann); err != nil {
				t.Fatal(err)
			}
			if ann[AnnotationRedacted] != tt.paths {
				t.Errorf("redacted annotation = %q, want %q", ann[AnnotationRedacted], tt.paths)
			}
		})
	}
}

func TestApplyDuplicateKeys(t *testing.T) {
	// With duplicate keys the last one wins (as in encoding/json); the
	// payload is re-encoded so consumers cannot see the earlier value.
	line := `{"audit":{"auditID":"a","level":"request","stage":"ResponseComplete","requestURI":"/x","verb":"POST",` +
		`"user":{"username":"u","username":"v"},"requestReceivedTimestamp":"2024-03-02T10:04:05Z",` +
		`"requestObject":{"password":"<redacted>","password":"leak","x":{"a":1,"a":2}}}}`
	e := mustParse(t, []byte(line))
	Policy{Level: LevelRequest}.Apply(e)
	out, err := e.Encode(Enrichment{})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, bad := range []string{"leak", `"a":1`, `"username":"u"`} {
		if strings.Contains(s, bad) {
			t.Errorf("output contains %s: %s", bad, s)
		}
	}
	if !strings.Contains(s, `"requestObject":{"password":"<redacted>","x":{"a":2}}`) {
		t.Errorf("requestObject not normalised: %s", s)
	}

	// Unchanged payloads keep their bytes and key order.
	line = strings.Replace(line, `"password":"<redacted>","password":"leak","x":{"a":1,"a":2}`, `"z":1,"a":[1.0]`, 1)
	e = mustParse(t, []byte(line))
	Policy{Level: LevelRequest}.Apply(e)
	out, _ = e.Encode(Enrichment{})
	if !strings.Contains(string(out), `"requestObject":{"z":1,"a":[1.0]}`) {
		t.Errorf("unchanged payload rewritten: %s", out)
	}
}

// TestEncodeExtra: the labels and environment a container's options select
// are annotations in key order among the others, keys escaped as needed, and
// the line is what encoding/json makes of the event as maps.
func TestEncodeExtra(t *testing.T) {
	e := mustParse(t, wrap(t, baseEvent()))
	en := Enrichment{ContainerID: "cid", ContainerName: "c", Image: "i", Host: "h", Stream: "stdout", ReceivedAt: time.Unix(0, 0), Seq: 1,
		Extra: []Annotation{{Key: AnnotationEnvPrefix + "MODE", Value: "prod"}, {Key: AnnotationLabelPrefix + `a"b`, Value: "<x>"}, {Key: AnnotationLabelPrefix + "tier", Value: "front"}}}
	out, err := e.Encode(en)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, out)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(buf.String(), "\n"); string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	a := annotations(m)
	if a[AnnotationEnvPrefix+"MODE"] != "prod" || a[AnnotationLabelPrefix+`a"b`] != "<x>" || a[AnnotationLabelPrefix+"tier"] != "front" || a[AnnotationSeq] != "1" {
		t.Errorf("annotations %v", a)
	}
}

func TestEncode(t *testing.T) {
	ev := baseEvent()
	ev["annotations"] = map[string]any{"authorization.k8s.io/decision": "allow", "ucp-audit/seq": "forged", "ucp-audit/redacted": "forged"}
	e := mustParse(t, wrap(t, ev))
	en := Enrichment{
		ContainerID: "cid", ContainerName: "ucp-controller", Image: "docker/ucp-controller:3.7.0", Host: "m1",
		Stream: "stderr", ReceivedAt: time.Date(2024, 3, 2, 11, 0, 0, 5, time.FixedZone("X", 3600)), Seq: 42,
	}
	out, err := e.Encode(en)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(string(out), "\n") {
		t.Error("trailing newline")
	}
	m := decodeOut(t, out)
	want := map[string]any{
		"authorization.k8s.io/decision": "allow",
		AnnotationContainerID:           "cid",
		AnnotationContainerName:         "ucp-controller",
		AnnotationImage:                 "docker/ucp-controller:3.7.0",
		AnnotationHost:                  "m1",
		AnnotationReceivedAt:            "2024-03-02T10:00:00.000000005Z",
		AnnotationStream:                "stderr",
		AnnotationSeq:                   "42",
		AnnotationUser:                  "bob",
	}
	got := annotations(m)
	if len(got) != len(want) {
		t.Errorf("annotations = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("annotation %s = %v, want %v", k, got[k], v)
		}
	}
	for _, k := range []string{"requestReceivedTimestamp", "timestamp", "stageTimestamp", "level", "requestURI", "metadata", "sourceIPs"} {
		a, _ := json.Marshal(ev[k])
		b, _ := json.Marshal(m[k])
		if string(a) != string(b) {
			t.Errorf("%s changed: %s -> %s", k, a, b)
		}
	}
	// Deterministic, and Encode does not modify the event.
	again, _ := e.Encode(en)
	if string(again) != string(out) {
		t.Error("Encode is not deterministic")
	}
	other, _ := e.Encode(Enrichment{Seq: 1})
	if strings.Contains(string(other), `"cid"`) {
		t.Error("Encode kept state from an earlier call")
	}

	// No human user: no ucp-audit/user; annotations created from null.
	ev = baseEvent()
	ev["user"] = map[string]any{"username": "u"}
	ev["annotations"] = nil
	e = mustParse(t, wrap(t, ev))
	out, _ = e.Encode(en)
	got = annotations(decodeOut(t, out))
	if _, ok := got[AnnotationUser]; ok || got[AnnotationSeq] != "42" {
		t.Errorf("annotations = %v", got)
	}
}
