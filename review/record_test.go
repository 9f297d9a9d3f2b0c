package review

import (
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Type
		err  error
	}{
		{"event", `{"auditID":"a","kind":"kubernetes","verb":"list"}`, TypeEvent, nil},
		{"event with chain", `{"auditID":"a","ucp-audit/chain":{"h":"x"}}`, TypeEvent, nil},
		{"self", `{"ucp-audit/self":{"type":"plugin-started"}}`, TypeSelf, nil},
		{"gap", `{"ucp-audit/gap":{"lost":2}}`, TypeGap, nil},
		{"seal", `{"ucp-audit/seal":{"h":"x"}}`, TypeSeal, nil},
		{"seal with chain", `{"ucp-audit/chain":{},"ucp-audit/seal":{}}`, TypeSeal, nil},
		{"other plugin record", `{"ucp-audit/future":1,"auditID":"a"}`, TypeOther, nil},
		{"two plugin keys", `{"ucp-audit/seal":1,"ucp-audit/gap":1}`, TypeGap, nil},
		{"quarantine record", `{"reason":"invalid","raw":"x","time":"2024-03-02T10:00:00Z"}`, TypeOther, nil},
		{"empty object", `{}`, TypeOther, nil},
		{"array", `[1,2]`, TypeInvalid, ErrNotJSON},
		{"null", `null`, TypeInvalid, ErrNotJSON},
		{"string", `"auditID"`, TypeInvalid, ErrNotJSON},
		{"truncated", `{"auditID":"a"`, TypeInvalid, ErrNotJSON},
		{"text", `level=info msg=hello`, TypeInvalid, ErrNotJSON},
	}
	for _, tt := range tests {
		typ, e, err := Parse([]byte(tt.line))
		if typ != tt.want || !errors.Is(err, tt.err) || (e != nil) != (typ == TypeEvent) {
			t.Errorf("%s: Parse = %v, %v, %v; want %v, %v", tt.name, typ, e != nil, err, tt.want, tt.err)
		}
	}
}

func TestParseFields(t *testing.T) {
	line := `{"annotations":{"ucp-audit/container-id":"3f1c","ucp-audit/container-name":"ucp-controller","ucp-audit/host":"manager-1","ucp-audit/user":"alice","odd":7},` +
		`"auditID":"id-1","kind":"kubernetes","level":"Metadata","objectRef":{"namespace":"default","resource":"pods","name":"web"},` +
		`"requestURI":"/api/v1/namespaces/default/pods?limit=5","responseStatus":{"code":403,"metadata":{}},"sourceIPs":["10.0.0.7:51234"],` +
		`"stage":"ResponseComplete","user":{"username":"a11ce","uid":"a11ce","groups":["g"],"extra":{"username":["alice"]}},"verb":"list",` +
		`"requestReceivedTimestamp":"2024-03-02T10:04:05.123456Z","stageTimestamp":null}`
	typ, e, err := Parse([]byte(line))
	if typ != TypeEvent || err != nil {
		t.Fatalf("Parse: %v, %v", typ, err)
	}
	checks := []struct{ name, got, want string }{
		{"AuditID", e.AuditID, "id-1"},
		{"Kind", e.Kind, "kubernetes"},
		{"Verb", e.Verb, "list"},
		{"HumanUser", e.HumanUser(), "alice"},
		{"Path", e.Path(), "/api/v1/namespaces/default/pods"},
		{"Resource", e.Resource(), "default/pods"},
		{"ContainerID", e.ContainerID(), "3f1c"},
		{"ContainerName", e.ContainerName(), "ucp-controller"},
		{"Host", e.Host(), "manager-1"},
		{"Time", e.Time.Format(time.RFC3339Nano), "2024-03-02T10:04:05.123456Z"},
		{"ObjectRef.Name", e.ObjectRef.Name, "web"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if e.Code != 403 {
		t.Errorf("Code = %d, want 403", e.Code)
	}
	if _, ok := e.Annotations["odd"]; ok {
		t.Error("a non-string annotation was kept")
	}
}

// TestParseWrongTypes checks that a field of an unexpected type loses only
// itself.
func TestParseWrongTypes(t *testing.T) {
	_, e, err := Parse([]byte(`{"auditID":"a","verb":7,"user":"bob","responseStatus":{"code":"403"},"annotations":[],"requestURI":"/x","stageTimestamp":17}`))
	if err != nil || e == nil {
		t.Fatalf("Parse: %v", err)
	}
	if e.AuditID != "a" || e.RequestURI != "/x" || e.Verb != "" || e.User.Username != "" || e.Code != 0 || !e.Time.IsZero() {
		t.Errorf("event %+v", e)
	}
}

func TestEventTime(t *testing.T) {
	tests := []struct {
		name                string
		stage, received, ts string
		annotation, want    string
	}{
		{"stage first", "2024-03-02T10:00:03Z", "2024-03-02T10:00:02Z", "2024-03-02T10:00:01Z", "2024-03-02T10:00:00Z", "2024-03-02T10:00:03Z"},
		{"received next", "", "2024-03-02T10:00:02.123456Z", "2024-03-02T10:00:01Z", "", "2024-03-02T10:00:02.123456Z"},
		{"timestamp next", "", "", "2024-03-02T10:00:01Z", "2024-03-02T10:00:00Z", "2024-03-02T10:00:01Z"},
		{"annotation last", "", "", "", "2024-03-02T10:00:00.123456789Z", "2024-03-02T10:00:00.123456789Z"},
		{"unparseable passed over", "yesterday", "2024-03-02T10:00:02", "2024-03-02T12:00:01+02:00", "", "2024-03-02T10:00:01Z"},
		{"none", "", "", "", "", "0001-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		e := &Event{StageTimestamp: tt.stage, RequestReceivedTimestamp: tt.received, Timestamp: tt.ts,
			Annotations: map[string]string{"ucp-audit/received-at": tt.annotation}}
		if got := EventTime(e).Format(time.RFC3339Nano); got != tt.want {
			t.Errorf("%s: EventTime = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestHumanUser(t *testing.T) {
	tests := []struct {
		e    Event
		want string
	}{
		{Event{Annotations: map[string]string{"ucp-audit/user": "alice"}, User: User{Username: "id"}}, "alice"},
		{Event{User: User{Username: "id", Extra: map[string][]string{"username": {"bob"}}}}, "bob"},
		{Event{User: User{Username: "id", UID: "uid"}}, "id"},
		{Event{User: User{UID: "uid"}}, "uid"},
		{Event{}, ""},
	}
	for _, tt := range tests {
		if got := tt.e.HumanUser(); got != tt.want {
			t.Errorf("HumanUser(%+v) = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestResource(t *testing.T) {
	tests := []struct {
		uri  string
		ref  ObjectRef
		want string
	}{
		{"/api/v1/namespaces/default/pods", ObjectRef{Namespace: "default", Resource: "pods"}, "default/pods"},
		{"/api/v1/nodes", ObjectRef{Resource: "nodes"}, "nodes"},
		{"/api/v1/namespaces/kube-system/secrets/x", ObjectRef{}, "kube-system/secrets"},
		{"/apis/apps/v1/namespaces/default/deployments?watch=1", ObjectRef{}, "default/deployments"},
		{"/apis/batch/v1beta1/cronjobs", ObjectRef{}, "cronjobs"},
		{"/api/v1/namespaces", ObjectRef{}, "namespaces"},
		{"/v1.41/services/abc/update?version=3", ObjectRef{}, "services"},
		{"/v1.30/configs/create", ObjectRef{}, "configs"},
		{"/services", ObjectRef{}, "services"},
		{"/auth/login", ObjectRef{}, "auth"},
		{"/accounts/", ObjectRef{}, "accounts"},
		{"/api/ucp/config/logging", ObjectRef{}, "api/ucp"},
		{"/api", ObjectRef{}, "api"},
		{"/v1.41", ObjectRef{}, ""},
		{"/", ObjectRef{}, ""},
		{"", ObjectRef{}, ""},
	}
	for _, tt := range tests {
		e := Event{RequestURI: tt.uri, ObjectRef: tt.ref}
		if got := e.Resource(); got != tt.want {
			t.Errorf("Resource(%q, %+v) = %q, want %q", tt.uri, tt.ref, got, tt.want)
		}
	}
}

func TestNamespace(t *testing.T) {
	tests := []struct {
		uri  string
		ref  ObjectRef
		want string
	}{
		{"/api/v1/namespaces/default/pods", ObjectRef{Namespace: "staging"}, "staging"},
		{"/api/v1/namespaces/default/secrets/db?x=1", ObjectRef{}, "default"},
		{"/apis/apps/v1/namespaces/web/deployments/front", ObjectRef{}, "web"},
		{"/api/v1/namespaces/kube-system", ObjectRef{}, "kube-system"}, // the namespace itself
		{"/api/v1/watch/namespaces/default/pods", ObjectRef{}, "default"},
		{"/api/v1/namespaces", ObjectRef{}, ""},
		{"/api/v1/nodes/node-1", ObjectRef{}, ""},
		{"/apis/apps/namespaces/x/deployments", ObjectRef{}, ""}, // no version
		{"/v1.41/namespaces/x/services", ObjectRef{}, ""},
		{"", ObjectRef{}, ""},
	}
	for _, tt := range tests {
		e := Event{RequestURI: tt.uri, ObjectRef: tt.ref}
		if got := e.Namespace(); got != tt.want {
			t.Errorf("Namespace(%q, %+v) = %q, want %q", tt.uri, tt.ref, got, tt.want)
		}
	}
}

func TestIsK8sVersion(t *testing.T) {
	for s, want := range map[string]bool{"v1": true, "v1beta1": true, "v2alpha3": true, "v10": true,
		"v0": false, "v1beta": false, "ucp": false, "v": false, "v1.41": false, "v1gamma1": false} {
		if got := isK8sVersion(s); got != want {
			t.Errorf("isK8sVersion(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"auditID":"a","stageTimestamp":"2024-03-02T10:04:05.123456Z","requestURI":"/api/v1/namespaces/x/pods?a=b","responseStatus":{"code":403}}`,
		`{"auditID":"a","stageTimestamp":null,"timestamp":"2024-03-02T10:04:05Z","annotations":{"ucp-audit/received-at":"2024-03-02T10:04:05.1Z"}}`,
		`{"ucp-audit/self":{}}`, `{"ucp-audit/chain":{},"auditID":"x"}`, `[]`, `{"auditID":1}`, `{"auditID":"a","requestURI":"/v1.41/"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		typ, e, err := Parse(line)
		if (typ == TypeEvent) != (e != nil) || (typ == TypeInvalid) != (err != nil) {
			t.Fatalf("Parse(%q) = %v, %v, %v", line, typ, e, err)
		}
		if e == nil {
			return
		}
		if !e.Time.IsZero() && e.Time.Location() != time.UTC {
			t.Errorf("time %v not in UTC", e.Time)
		}
		_ = e.Resource()
		_ = e.HumanUser()
		_ = e.Namespace()
		var f Filter
		if !f.Match(e) {
			t.Error("the zero filter did not match")
		}
	})
}

// user, objectRef and responseStatus are read by their exact keys, as the
// plugin validated them: a "Username" or "USERNAME" member never shows as
// the user, whatever its position.
func TestParseExactKeys(t *testing.T) {
	for _, tc := range []struct {
		line     string
		user, ns string
		code     int
	}{
		{`{"auditID":"a","user":{"USERNAME":"mallory"},"objectRef":{"Namespace":"kube-system"},"responseStatus":{"Code":403}}`, "", "", 0},
		{`{"auditID":"a","user":{"username":"alice","Username":"mallory"},"objectRef":{"namespace":"default","NAMESPACE":"x"},"responseStatus":{"code":200,"Code":403}}`, "alice", "default", 200},
		{`{"auditID":"a","user":{"Username":"mallory","username":"alice"}}`, "alice", "", 0},
		{`{"auditID":"a","user":{"username":"bob","username":"alice"}}`, "alice", "", 0},
	} {
		typ, e, err := Parse([]byte(tc.line))
		if err != nil || typ != TypeEvent {
			t.Fatalf("%s: %v %v", tc.line, typ, err)
		}
		if e.User.Username != tc.user || e.ObjectRef.Namespace != tc.ns || e.Code != tc.code {
			t.Errorf("%s: user %q, namespace %q, code %d; want %q, %q, %d", tc.line, e.User.Username, e.ObjectRef.Namespace, e.Code, tc.user, tc.ns, tc.code)
		}
	}
}
