package audit

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The fast parser must give exactly the event the encoding/json one
// (parseSlow, also used for every line the fast path refuses) gives: same
// accessors, same policy decisions and byte-identical Encode output, at
// every level.

var diffEnrichment = Enrichment{
	ContainerID: "c0ffee", ContainerName: "ucp-controller", Image: "img\u2028<&>", Host: "h\"\\\x01",
	Stream: "stdout", ReceivedAt: time.Date(2024, 3, 2, 10, 4, 5, 120000000, time.FixedZone("X", 3600)), Seq: 42,
}

// checkSame runs line through both parsers under policy level lvl and
// fails on any difference.
func checkSame(t *testing.T, line []byte, lvl Level) {
	t.Helper()
	if !LooksLikeAudit(line) || !utf8.Valid(line) {
		return
	}
	buf := bytes.Clone(line)
	e, ok := parseFast(buf)
	if !ok {
		return // Parse uses parseSlow for it
	}
	re, err := parseSlow(line)
	if err != nil {
		t.Fatalf("fast path took a line encoding/json refuses (%v)\n%q", err, line)
	}
	for i := range buf { // the event must not depend on the caller's buffer
		buf[i] = 'X'
	}
	type acc struct {
		id, stage, uri, verb, user, human string
		lvl                               int
		at                                time.Time
	}
	got := acc{e.AuditID(), e.Stage(), e.RequestURI(), e.Verb(), e.Username(), e.HumanUser(), int(e.Level()), e.ReceivedAt()}
	want := acc{re.AuditID(), re.Stage(), re.RequestURI(), re.Verb(), re.Username(), re.HumanUser(), int(re.Level()), re.ReceivedAt()}
	if got != want {
		t.Fatalf("accessors\n got %+v\nwant %+v\n%q", got, want, line)
	}
	ig, err := NewIgnore(DefaultIgnoreList)
	if err != nil {
		t.Fatal(err)
	}
	p := Policy{Level: lvl, Ignore: ig}
	ok, why := p.Allows(e)
	rok, rwhy := p.Allows(re)
	if ok != rok || why != rwhy {
		t.Fatalf("Allows = %v %q, want %v %q", ok, why, rok, rwhy)
	}
	en := diffEnrichment
	for round := range 2 { // Apply may run twice
		p.Apply(e)
		p.Apply(re)
		if e.Redacted() != re.Redacted() {
			t.Fatalf("round %d: Redacted = %v, want %v\n%q", round, e.Redacted(), re.Redacted(), line)
		}
		out, err := e.Encode(en)
		rout, rerr := re.Encode(en)
		if err != nil || rerr != nil {
			t.Fatalf("Encode: %v, slow: %v", err, rerr)
		}
		if !bytes.Equal(out, rout) {
			t.Fatalf("round %d: Encode differs\n got %s\nwant %s\nline %q", round, out, rout, line)
		}
		en.Seq++
	}
}

// diffLines returns the golden inputs, the hostile cases and variants of
// them that exercise rarer spellings.
func diffLines(t testing.TB) [][]byte {
	var lines [][]byte
	files, _ := filepath.Glob("testdata/golden/*.in.jsonl")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines = append(lines, bytes.Clone(sc.Bytes()))
		}
	}
	base := len(lines)
	for _, l := range lines[:base] {
		s := string(l)
		for _, v := range []string{
			strings.ReplaceAll(s, ",", " ,\n\t"),
			strings.ReplaceAll(s, ":", " : "),
			strings.ReplaceAll(s, `"auditID"`, `"audit\u0049D"`),
			strings.ReplaceAll(s, `"user":{`, `"user":{"username":"dup","extra":null,`),
			strings.ReplaceAll(s, `"level":"metadata"`, `"level":"METADATA","level":"Request"`),
			strings.ReplaceAll(s, `"stage":"`, `"stage":"\u0052`),
			strings.ReplaceAll(s, `"verb":"`, `"verb":"\u2028\ud800\"`),
			strings.ReplaceAll(s, `"username":[`, `"username":[null,`),
			strings.ReplaceAll(s, `"username":[`, `"username":["\u003cb>",`),
			strings.ReplaceAll(s, `"licenseKey":[`, `"licenseKey":[],"licenseKey":["k2",`),
			strings.ReplaceAll(s, `"extra":{`, `"extra":{"z":null,"a":[],`),
			strings.ReplaceAll(s, `"audit":{`, `"audit":{"annotations":{"a":"b","ucp-audit/seq":"9","\u00e9":"\n"},`),
			strings.ReplaceAll(s, `"audit":{`, `"audit":{"annotations":null,"apiVersion":"audit.k8s.io/v1",`),
			strings.ReplaceAll(s, `"audit":{`, `"audit":{"apiVersion":null,"zz":[1,2.5e-3,{"a":{}}],"objectRef":{"Resource":"secrets"},`),
			strings.ReplaceAll(s, `"audit":{`, `"audit":{"objectRef":{"resource":"secrets","resource":1},`),
			strings.ReplaceAll(s, `"requestObject":`, `"requestObject":null,"x":`),
			strings.ReplaceAll(s, `"requestObject":{`, `"requestObject":{"password":"<redacted>","b":{"b":1,"b":2},`),
			strings.ReplaceAll(s, `"requestObject":{`, `"requestObject":{"Token":{"a":1},"pass_word":null,"kind":"Secret","data":"x",`),
			strings.ReplaceAll(s, `"requestObject":{`, `"requestObject":{"kind":"SecretList","items":[{"data":{"a":"b"}},3],`),
			strings.ReplaceAll(s, `"requestReceivedTimestamp":"`, `"requestReceivedTimestamp":"x`),
			strings.ReplaceAll(s, `"user":{`, `"user":{"extra":{"a":[1]},`),
			strings.ReplaceAll(s, `"audit":{`, `"audit":{"annotations":{"a":1},`),
			strings.ReplaceAll(s, `"audit":{`, "\"audit\":{\"k\u00e9y\u2028x\":1,\"long key with \u2029 in it\":2,\"annotations\":{\"a-long-key-\u2028\":\"a long value \u2029 \x7f \u00e9\"},"),
			s[:len(s)-1] + `,"audit":{"auditID":"w","level":"metadata","stage":"Panic","requestURI":"/","verb":"V","user":{"username":"u"},"requestReceivedTimestamp":"2024-03-02T10:04:05Z"}}`,
			s[:len(s)-1] + `,"audit":[]}`,
			s + " \n",
			s + "x",
			s[:len(s)-1],
		} {
			lines = append(lines, []byte(v))
		}
	}
	for _, req := range []string{`{}`, `[]`, `null`, `"s"`, `{"a":[{"password":"x"}]}`, nested(50, `{"token":"t"}`),
		`[{"op":"add","value":"v"},{"value":null},{"value":"<redacted>"}]`, `{"z":1,"a":[1.0, -2e3 ,true,null,"s\"\\"]}`,
		`{"pass\u0077ord":"x"}`, `{"Data":"d","data":{"k":"v"}}`, `{"Data":null,"x":{"Data":"y"}}`,
		`{"kind":"Secr\u0065t","data":{"a":null,"b":"<redacted>","c":{"x":1},"d":"\u003credacted>"},"stringData":[1]}`,
		`{"kind":"SecretList","items":{"a":1},"password":"p"}`, `{"kind":"SecretList","items":[[{"data":1}],{"kind":"x","stringData":{"q":2}}]}`,
		`{"a.b":{"to-ken":"x"},"\u00e9\"":{"PASSWORD":"y"},"":{"Unloc\u212aKey":[1]},"x":{"ID_TOKEN":{}}}`,
		`{"b":1,"a":{"z":2,"y":{"token":"t","token":null}},"a":3}`, `[{"op":"replace","path":"/data/x","value":{"k":1}},"s",[]]`} {
		lines = append(lines, []byte(hostileLine(req)))
		lines = append(lines, []byte(strings.Replace(hostileLine(req), `"requestURI":"/x"`, `"requestURI":"/v1.41/secrets/create","objectRef":{"resource":"secrets"}`, 1)))
	}
	return lines
}

func TestFastSameAsSlow(t *testing.T) {
	for _, line := range diffLines(t) {
		for _, lvl := range []Level{LevelNone, LevelMetadata, LevelRequest} {
			checkSame(t, line, lvl)
		}
	}
}

// The fast path must take the lines it is meant for, not leave them all
// to encoding/json.
func TestParseFastTakesValidLines(t *testing.T) {
	for _, line := range diffLines(t)[:7] {
		if _, err := parseSlow(line); err != nil {
			continue
		}
		if _, ok := parseFast(line); !ok {
			t.Errorf("fast path refused %s", line)
		}
	}
	// Nesting: 10,000 levels is encoding/json's limit, and the fast path's.
	if _, ok := parseFast([]byte(hostileLine(nested(9997, `{"password":"leak"}`)))); !ok {
		t.Error("fast path refused 10,000 levels")
	}
	if _, ok := parseFast([]byte(hostileLine(nested(9998, `{"password":"leak"}`)))); ok {
		t.Error("fast path took 10,001 levels")
	}
}

func FuzzFastSameAsSlow(f *testing.F) {
	for _, l := range diffLines(f) {
		f.Add(l, uint8(LevelRequest))
	}
	f.Fuzz(func(t *testing.T, line []byte, lvl uint8) {
		checkSame(t, line, Level(lvl%3))
	})
}
