package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// redactCase is one case of testdata/redact/rules.golden.
type redactCase struct {
	name, method, uri, ref, in, out, paths string
	line                                   int
}

func readRedactCases(t *testing.T) []redactCase {
	t.Helper()
	f, err := os.Open("testdata/redact/rules.golden")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []redactCase
	var c *redactCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		word, rest, _ := strings.Cut(line, " ")
		switch {
		case line == "":
			continue
		case word == "#":
			if c != nil && c.in == "" { // the file's header
				c.name += " " + rest
				continue
			}
			cases = append(cases, redactCase{name: rest, line: n})
			c = &cases[len(cases)-1]
		case c == nil:
			t.Fatalf("rules.golden:%d: %q before a case", n, line)
		case word == "uri":
			c.method, c.uri, _ = strings.Cut(rest, " ")
		case word == "ref":
			c.ref = rest
		case word == "in":
			c.in = rest
		case word == "out":
			c.out = rest
		case word == "paths":
			c.paths = rest
		default:
			t.Fatalf("rules.golden:%d: unknown line %q", n, line)
		}
	}
	return cases[1:] // the first "case" is the file's header
}

func TestRedactionRules(t *testing.T) {
	for _, c := range readRedactCases(t) {
		t.Run(c.name, func(t *testing.T) {
			ref := ""
			if c.ref != "" {
				ref = fmt.Sprintf(`"objectRef":{"resource":%q},`, c.ref)
			}
			line := fmt.Sprintf(`{"audit":{"auditID":"a","level":"request","stage":"ResponseComplete","requestURI":%q,"verb":%q,%s"user":{"username":"u"},"requestReceivedTimestamp":"2024-03-02T10:04:05Z","requestObject":%s}}`,
				c.uri, c.method, ref, c.in)
			e := mustParse(t, []byte(line))
			Policy{Level: LevelRequest}.Apply(e)
			b, err := e.Encode(Enrichment{})
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				RequestObject json.RawMessage   `json:"requestObject"`
				Annotations   map[string]string `json:"annotations"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			paths := got.Annotations[AnnotationRedacted]
			if paths == "" {
				paths = "-"
			}
			if string(got.RequestObject) != c.out || paths != c.paths {
				t.Errorf("rules.golden:%d:\n got out %s\n    paths %s\nwant out %s\n    paths %s", c.line, got.RequestObject, paths, c.out, c.paths)
			}
		})
	}
}

// Every key rule has a case in rules.golden that uses it, and README.md
// lists it.
func TestRedactionRulesDocumented(t *testing.T) {
	keys := map[string]bool{} // every key of every case's payload, normalized
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, v := range x {
				keys[strings.NewReplacer("_", "", "-", "", ".", "").Replace(strings.ToLower(k))] = true
				walk(v)
			}
		case []any:
			for _, v := range x {
				walk(v)
			}
		}
	}
	for _, c := range readRedactCases(t) {
		var v any
		if err := json.Unmarshal([]byte(c.in), &v); err != nil {
			t.Fatalf("rules.golden:%d: %v", c.line, err)
		}
		walk(v)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range keyRules {
		used := keys[r.key]
		if r.match == suffix {
			used = false
			for k := range keys {
				used = used || (strings.HasSuffix(k, r.key) && k != r.key)
			}
		}
		if !used {
			t.Errorf("key rule %q (%c) has no case in rules.golden", r.key, r.match)
		}
		if !strings.Contains(string(readme), "`"+r.key+"`") {
			t.Errorf("key rule %q is not in README.md", r.key)
		}
	}
	for _, w := range secretEnvWords {
		if !strings.Contains(string(readme), "`"+w+"`") {
			t.Errorf("environment word %q is not in README.md", w)
		}
	}
}

// FuzzRedactSecretKeys builds payloads from the fuzzer's bytes, with string
// values under secret keys at any depth (objects, arrays, environment
// lists, a last-applied-configuration annotation), and checks that none of
// them reaches the encoded event.
func FuzzRedactSecretKeys(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte("nested deeply with many keys and arrays"))
	f.Fuzz(func(t *testing.T, choices []byte) {
		g := &payloadGen{b: choices}
		payload := g.object(0)
		line := `{"audit":{"auditID":"a","level":"request","stage":"ResponseComplete","requestURI":"/x","verb":"POST","user":{"username":"u"},"requestReceivedTimestamp":"2024-03-02T10:04:05Z","requestObject":` + payload + `}}`
		e, err := Parse([]byte(line))
		if err != nil {
			t.Fatalf("%v: %s", err, payload)
		}
		Policy{Level: LevelRequest}.Apply(e)
		out, err := e.Encode(Enrichment{})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "SECRET") {
			t.Fatalf("a secret survived:\n in %s\nout %s", payload, out)
		}
	})
}

// payloadGen writes JSON whose shape the choices decide.
type payloadGen struct {
	b []byte
	n int
}

func (g *payloadGen) next() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

var (
	genSecretKeys = []string{"password", "bindPassword", "Session-Token", "api_key", "secret", "AUTHORIZATION", "auth", "x_registry_auth", "db.credential"}
	genPlainKeys  = []string{"name", "spec", "metadata", "items", "value", "labels", "kind"}
)

func (g *payloadGen) object(depth int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range int(g.next()%4) + 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		c := g.next()
		switch {
		case c%5 == 0: // a secret key with a secret string, or a list of them
			g.n++
			k := genSecretKeys[int(c/5)%len(genSecretKeys)]
			if c%2 == 0 {
				fmt.Fprintf(&b, "%q:%q", k, fmt.Sprintf("SECRET%d", g.n))
			} else {
				fmt.Fprintf(&b, "%q:[%q,%q]", k, fmt.Sprintf("SECRET%d", g.n), "SECRETx")
			}
		case c%5 == 1: // an environment list
			g.n++
			fmt.Fprintf(&b, `"Env":["MODE=prod","DB_PASSWORD=SECRET%d"],"env":[{"name":"API_TOKEN","value":"SECRET%d"}]`, g.n, g.n)
		case c%5 == 2 && depth < 6: // an array of objects
			k := genPlainKeys[int(c/5)%len(genPlainKeys)]
			fmt.Fprintf(&b, "%q:[%s,1,%s]", k, g.object(depth+1), g.object(depth+1))
		case c%5 == 3 && depth < 6: // the annotation, holding an object
			nested := g.object(depth + 1)
			fmt.Fprintf(&b, `"kubectl.kubernetes.io/last-applied-configuration":%q`, nested)
		case depth < 6:
			k := genPlainKeys[int(c/5)%len(genPlainKeys)]
			fmt.Fprintf(&b, "%q:%s", fmt.Sprintf("%s%d", k, i), g.object(depth+1))
		default:
			fmt.Fprintf(&b, `"plain%d":"keep"`, i)
		}
	}
	b.WriteByte('}')
	return b.String()
}
