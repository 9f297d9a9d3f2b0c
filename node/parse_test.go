package node

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/alert"
	"github.com/ucp-audit/ucp-audit/audit"
)

func TestParseSeedDocument(t *testing.T) {
	// UCP's logging configuration, as its documentation shows it.
	c, err := Parse([]byte(`{"logLevel": "INFO", "auditLevel": "metadata", "supportDumpIncludeAuditLogs": false}`), Env{})
	if err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != "INFO" || c.AuditLevel != audit.LevelMetadata || c.AuditLevelText != "metadata" || c.SupportDumpIncludeAuditLogs {
		t.Errorf("got %+v", c)
	}
	if c.Trail != Default(Env{}).Trail {
		t.Errorf("trail %+v, want the default", c.Trail)
	}
}

func TestParseDefaults(t *testing.T) {
	for _, doc := range []string{"", " \n", "{}"} {
		c, err := Parse([]byte(doc), Env{LogDir: "/l", StateDir: "/s"})
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		if c.Trail.AuditFile != "/l/audit.log" || c.Trail.QuarantineFile != "/l/quarantine.log" || c.AuditLevel != audit.LevelRequest ||
			c.Caps.MaxLineSize != DefaultMaxLineSize || len(c.Producers) != 1 || c.Producers[0].Image != "ucp-controller" {
			t.Errorf("%q: got %+v", doc, c)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		check     func(Config) bool
	}{
		{"empty audit level is none", `{"auditLevel": ""}`, func(c Config) bool { return c.AuditLevel == audit.LevelNone && c.AuditLevelText == "" }},
		{"level any case", `{"auditLevel": "Request", "logLevel": "warning"}`, func(c Config) bool { return c.AuditLevel == audit.LevelRequest && c.SlogLevel().String() == "WARN" }},
		{"sizes", `{"trail": {"maxSize": "256k", "maxFiles": 5}, "caps": {"maxLineSize": 65536, "storeSize": "2g", "storeTotal": "20g"}}`, func(c Config) bool {
			return c.Trail.MaxSize == 256<<10 && c.Trail.MaxFiles == 5 && c.Caps.MaxLineSize == 64<<10 && c.Caps.StoreSize == 2<<30 && c.Caps.StoreTotal == 20<<30
		}},
		{"no rotation", `{"trail": {"maxSize": -1}}`, func(c Config) bool { return c.Trail.MaxSize == -1 }},
		{"no rotation as a string", `{"trail": {"maxSize": "-1"}}`, func(c Config) bool { return c.Trail.MaxSize == -1 }},
		{"files", `{"trail": {"auditFile": "/var/log/ucp-audit/a/../site.log", "quarantineFile": "/var/log/ucp-audit/q/site.log"}}`, func(c Config) bool {
			return c.Trail.AuditFile == "/var/log/ucp-audit/site.log" && c.Trail.QuarantineFile == "/var/log/ucp-audit/q/site.log"
		}},
		{"producers", `{"producers": [{"image": "mirantis/ucp-controller", "name": "ucp-controller"}, {"imageID": "sha256:` + strings.Repeat("ab", 32) + `"}]}`, func(c Config) bool {
			return len(c.Producers) == 2 && c.Producers[0].Name == "ucp-controller" && c.Producers[1].ImageID != ""
		}},
		{"no producers", `{"producers": []}`, func(c Config) bool { return len(c.Producers) == 0 }},
		{"seal key", `{"sealKey": "/var/lib/ucp-audit/keys/seal.key"}`, func(c Config) bool { return c.SealKey == "/var/lib/ucp-audit/keys/seal.key" }},
		{"api", `{"api": {"certFile": "/var/lib/ucp-audit/api/cert.pem", "keyFile": "/var/lib/ucp-audit/api/key.pem", "clientCAFile": "/var/lib/ucp-audit/api/ca.pem", "allowedSubjects": ["CN=admin"]}}`, func(c Config) bool {
			return c.API.CertFile != "" && len(c.API.AllowedSubjects) == 1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc), Env{})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("got %+v", c)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		doc, want string
		is        error
	}{
		{`[]`, `ucp-audit: node configuration: not a JSON object`, ErrNotObject},
		{`{"auditlevel": "request"}`, `ucp-audit: node configuration "auditlevel": unknown key (known: logLevel, auditLevel,`, ErrUnknownKey},
		{`{"AuditLevel": "request"}`, `"AuditLevel": unknown key`, ErrUnknownKey},
		{`{"trail": {"size": 1}}`, `ucp-audit: node configuration "trail.size": unknown key (known: auditFile, quarantineFile, maxSize, maxFiles, compress)`, ErrUnknownKey},
		{`{"auditLevel": "bogus"}`, `ucp-audit: node configuration "auditLevel": invalid value "bogus": unknown level (want none, metadata or request ("" is none, as in UCP))`, ErrInvalidValue},
		{`{"auditLevel": 1}`, `"auditLevel": invalid value 1: wrong type: not a string`, ErrInvalidValue},
		{`{"logLevel": "loud"}`, `"logLevel": invalid value "loud": unknown level (want DEBUG, INFO, WARN or ERROR)`, ErrInvalidValue},
		{`{"supportDumpIncludeAuditLogs": "yes"}`, `"supportDumpIncludeAuditLogs": invalid value "yes"`, ErrInvalidValue},
		{`{"trail": {"maxSize": "lots"}}`, `"trail.maxSize": invalid value "lots": not a size`, ErrInvalidValue},
		{`{"trail": {"maxSize": "1k"}}`, `"trail.maxSize": invalid value "1k": out of range`, ErrInvalidValue},
		{`{"trail": {"maxFiles": 1}}`, `"trail.maxFiles": invalid value 1: out of range (want a whole number from 2 to 1000)`, ErrInvalidValue},
		{`{"trail": {"auditFile": "/tmp/audit.log"}}`, `"trail.auditFile": invalid value "/tmp/audit.log": not below the directory /var/log/ucp-audit`, ErrInvalidValue},
		{`{"trail": {"auditFile": "/var/log/ucp-audit/../audit.log"}}`, `"trail.auditFile": invalid value`, ErrInvalidValue},
		{`{"trail": {"auditFile": "audit.log"}}`, `"trail.auditFile": invalid value "audit.log": not an absolute path`, ErrInvalidValue},
		{`{"trail": {"auditFile": "/var/log/ucp-audit/audit.log.1"}}`, `"trail.auditFile": invalid value "/var/log/ucp-audit/audit.log.1": named like a rotated file`, ErrInvalidValue},
		{`{"trail": {"auditFile": "/var/log/ucp-audit/x.log", "quarantineFile": "/var/log/ucp-audit/x.log"}}`, `"trail.quarantineFile": invalid value "/var/log/ucp-audit/x.log" (want a path other than trail.auditFile)`, ErrInvalidValue},
		{`{"trail": {"quarantineFile": "/var/log/ucp-audit/audit.log/x"}}`, `"trail.quarantineFile": invalid value "/var/log/ucp-audit/audit.log/x" (want a path that is not below the other file)`, ErrInvalidValue},
		{`{"trail": "x"}`, `"trail": invalid value "x" (want an object)`, ErrInvalidValue},
		{`{"caps": {"maxLineSize": "1g"}}`, `"caps.maxLineSize": invalid value "1g": out of range`, ErrInvalidValue},
		{`{"caps": {"storeSize": "20g"}}`, `"caps.storeTotal": invalid value 10737418240 (want at least caps.storeSize)`, ErrInvalidValue},
		{`{"sealKey": "/etc/shadow"}`, `"sealKey": invalid value "/etc/shadow": not below the directory /var/lib/ucp-audit`, ErrInvalidValue},
		{`{"producers": [{}]}`, `"producers[0]": invalid value {} (want a rule with at least one of image, imageID, name)`, ErrInvalidValue},
		{`{"producers": [{"image": "["}]}`, `"producers[0].image": invalid value "[": not a valid pattern`, ErrInvalidValue},
		{`{"producers": [{"imageID": "abc"}]}`, `"producers[0].imageID": invalid value "abc": not "sha256:"`, ErrInvalidValue},
		{`{"producers": [{"repo": "x"}]}`, `"producers[0].repo": unknown key (known: image, imageID, name)`, ErrUnknownKey},
		{`{"producers": {"image": "x"}}`, `"producers": invalid value {"image":"x"}: wrong type: not a list`, ErrInvalidValue},
		{`{"api": {"certFile": "/var/lib/ucp-audit/c.pem"}}`, `"api.keyFile": invalid value "" (want set with the other api keys`, ErrInvalidValue},
		{`{"api": {"certFile": "/var/lib/ucp-audit/c.pem", "keyFile": "/var/lib/ucp-audit/k.pem", "clientCAFile": "/var/lib/ucp-audit/ca.pem"}}`, `"api.allowedSubjects": invalid value [] (want at least one subject`, ErrInvalidValue},
		{`{"auditLevel": "request", "auditLevel": "none"}`, `"auditLevel": given twice`, nil},
		{`{"auditLevel": "request"} {}`, `not one JSON value`, nil},
		{`{"auditLevel": `, `not JSON`, nil},
	} {
		_, err := Parse([]byte(tc.doc), Env{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %s", tc.doc, err, tc.want)
			continue
		}
		var ke *KeyError
		if !errors.As(err, &ke) {
			t.Errorf("%s: %T is not a *KeyError", tc.doc, err)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v does not wrap %v", tc.doc, err, tc.is)
		}
	}
}

func TestParseTooLarge(t *testing.T) {
	doc := `{"producers": [` + strings.Repeat(`{"image": "x"},`, MaxDocument/14) + `{"image": "x"}]}`
	if _, err := Parse([]byte(doc), Env{}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("got %v", err)
	}
}

// The whole document of the defaults parses back to the same configuration.
func TestDocumentRoundTrip(t *testing.T) {
	c := Default(Env{})
	c.API = API{CertFile: "/var/lib/ucp-audit/c", KeyFile: "/var/lib/ucp-audit/k", ClientCAFile: "/var/lib/ucp-audit/ca", AllowedSubjects: []string{"CN=a"}}
	c.Trail.MaxSize = -1
	back, err := Parse(c.JSON(), Env{})
	if err != nil {
		t.Fatalf("%v\n%s", err, c.JSON())
	}
	if string(back.JSON()) != string(c.JSON()) {
		t.Errorf("got\n%s\nwant\n%s", back.JSON(), c.JSON())
	}
}

func TestKeysMatchDocument(t *testing.T) {
	var walk func(prefix string, v any, out *[]string)
	walk = func(prefix string, v any, out *[]string) {
		m, ok := v.(map[string]any)
		if !ok {
			*out = append(*out, strings.TrimSuffix(prefix, "."))
			return
		}
		for k, x := range m {
			walk(prefix+k+".", x, out)
		}
	}
	var got []string
	walk("", Default(Env{}).Document(), &got)
	keys := map[string]bool{}
	for _, k := range Keys() {
		keys[k] = true
	}
	for _, k := range got {
		if !keys[k] {
			t.Errorf("Document has %q, Keys does not", k)
		}
		delete(keys, k)
	}
	for k := range keys {
		if !strings.HasPrefix(k, "producers[]") {
			t.Errorf("Keys has %q, Document does not", k)
		}
	}
}

func TestMergeAndSet(t *testing.T) {
	doc := []byte(`{"auditLevel": "request", "trail": {"maxFiles": 5, "maxSize": "1m"}}`)
	for _, tc := range []struct {
		name string
		do   func() ([]byte, error)
		want string
	}{
		{"merge partial", func() ([]byte, error) { return Merge(doc, []byte(`{"trail": {"maxFiles": 7}, "logLevel": "DEBUG"}`)) },
			`{"auditLevel":"request","logLevel":"DEBUG","trail":{"maxFiles":7,"maxSize":"1m"}}`},
		{"merge null removes", func() ([]byte, error) { return Merge(doc, []byte(`{"trail": {"maxSize": null}}`)) },
			`{"auditLevel":"request","trail":{"maxFiles":5}}`},
		{"merge seed", func() ([]byte, error) {
			return Merge(doc, []byte(`{"logLevel": "INFO", "auditLevel": "metadata", "supportDumpIncludeAuditLogs": false}`))
		}, `{"auditLevel":"metadata","logLevel":"INFO","supportDumpIncludeAuditLogs":false,"trail":{"maxFiles":5,"maxSize":"1m"}}`},
		{"merge into nothing", func() ([]byte, error) { return Merge(nil, []byte(`{"auditLevel": "none"}`)) }, `{"auditLevel":"none"}`},
		{"set", func() ([]byte, error) {
			return Set(doc, []string{"auditLevel=metadata", "trail.maxFiles=30", "caps.maxLineSize=8m", "producers=[{\"name\":\"ucp-controller\"}]", "sealKey="})
		}, `{"auditLevel":"metadata","caps":{"maxLineSize":"8m"},"producers":[{"name":"ucp-controller"}],"sealKey":"","trail":{"maxFiles":30,"maxSize":"1m"}}`},
		{"set null", func() ([]byte, error) { return Set(doc, []string{"trail=null"}) }, `{"auditLevel":"request"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.do()
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(got, &v); err != nil {
				t.Fatal(err)
			}
			compact, _ := json.Marshal(v)
			if string(compact) != tc.want {
				t.Errorf("got  %s\nwant %s", compact, tc.want)
			}
		})
	}
	if _, err := Set(doc, []string{"noequals"}); err == nil {
		t.Error("Set without = succeeded")
	}
	if _, err := Merge(doc, []byte(`[1]`)); !errors.Is(err, ErrNotObject) {
		t.Errorf("Merge of a list: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, FileName)
	c, _, found, err := Load(p, Env{})
	if err != nil || found || c.AuditLevel != audit.LevelRequest {
		t.Fatalf("missing: %v %v %+v", err, found, c)
	}
	if err := os.WriteFile(p, []byte(`{"auditLevel":"metadata"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, _, found, err = Load(p, Env{}); err != nil || !found || c.AuditLevel != audit.LevelMetadata {
		t.Fatalf("got %v %v %+v", err, found, c)
	}
	if _, _, _, err := Load(dir, Env{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"logLevel": "INFO", "auditLevel": "metadata", "supportDumpIncludeAuditLogs": false}`))
	f.Add(Default(Env{}).JSON())
	f.Add([]byte(`{"producers": [{"image": "a/*", "name": "x"}], "trail": {"maxSize": 12}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := Parse(doc, Env{})
		if err != nil {
			var ke *KeyError
			var ae *alert.KeyError
			if !errors.As(err, &ke) && !errors.As(err, &ae) {
				t.Fatalf("%T %v", err, err)
			}
			return
		}
		// What parses writes back as a document that parses to the same.
		back, err := Parse(c.JSON(), Env{})
		if err != nil {
			t.Fatalf("%v\n%s", err, c.JSON())
		}
		if string(back.JSON()) != string(c.JSON()) {
			t.Fatalf("round trip:\n%s\n%s", c.JSON(), back.JSON())
		}
	})
}
