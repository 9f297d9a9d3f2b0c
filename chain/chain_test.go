package chain_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestAppendTooLong: a record whose line would pass MaxLine is refused
// (Verify and Recover would not read it); one a little shorter is chained.
func TestAppendTooLong(t *testing.T) {
	for _, tc := range []struct {
		size int
		err  error
	}{
		{auditlog.MaxLine - 1024, nil},
		{auditlog.MaxLine, auditlog.ErrLineTooLong},
	} {
		p := []byte(`{"a":"` + strings.Repeat("x", tc.size-8) + `"}`)
		var h chain.Head
		out, err := h.Append(nil, p)
		if !errors.Is(err, tc.err) {
			t.Errorf("Append of %d bytes: error %v, want %v", len(p), err, tc.err)
		}
		if err == nil && len(out) > auditlog.MaxLine {
			t.Errorf("Append of %d bytes made a line of %d, over MaxLine", len(p), len(out))
		}
	}
}

func TestAppend(t *testing.T) {
	for _, tc := range []struct {
		p    string
		line string // the line for N = 1, without the hashes; "" with err
		err  error
	}{
		{`{}`, `{"ucp-audit/chain":{"n":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"H"}}`, nil},
		{`{"a":1}`, `{"a":1,"ucp-audit/chain":{"n":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"H"}}`, nil},
		{`{"a":"ucp-audit/chain"}`, `{"a":"ucp-audit/chain","ucp-audit/chain":{"n":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"H"}}`, nil},
		{``, "", chain.ErrNotObject},
		{`{`, "", chain.ErrNotObject},
		{`[1]`, "", chain.ErrNotObject},
		{`{"a":1} `, "", chain.ErrNotObject},
		{"{\"a\":\"\n\"}", "", chain.ErrNotObject},
		{`{"ucp-audit/chain":{}}`, "", chain.ErrReserved},
		// Nested: harmless (the reader anchors on the last chain field),
		// and an event's requestObject may carry any key.
		{`{"a":{"ucp-audit/chain":1}}`, `{"a":{"ucp-audit/chain":1},"ucp-audit/chain":{"n":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"H"}}`, nil},
		{`{"ucp-audit/seal":{"reason":"close"}}`, "", chain.ErrReserved},
	} {
		var h chain.Head
		dst := []byte("prefix ")
		out, err := h.Append(dst, []byte(tc.p))
		if !errors.Is(err, tc.err) {
			t.Errorf("Append(%q) error %v, want %v", tc.p, err, tc.err)
			continue
		}
		if err != nil {
			if string(out) != "prefix " || h != (chain.Head{}) {
				t.Errorf("Append(%q) failed but changed dst %q or head %+v", tc.p, out, h)
			}
			continue
		}
		hash := chain.Sum([32]byte{}, 1, []byte(tc.p))
		want := "prefix " + strings.Replace(tc.line, `"H"`, `"`+hexs(hash)+`"`, 1)
		if string(out) != want {
			t.Errorf("Append(%q) =\n%s\nwant\n%s", tc.p, out, want)
		}
		if h != (chain.Head{N: 1, Hash: hash, Records: 1}) {
			t.Errorf("head after Append(%q) = %+v", tc.p, h)
		}
	}
}

func hexs(b [32]byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}

func TestSum(t *testing.T) {
	// The hash input spelled out: domain, prev, N big-endian, p.
	prev := [32]byte{1, 2, 3}
	in := append([]byte("ucp-audit chain v1\x00"), prev[:]...)
	in = append(in, 0, 0, 0, 0, 0, 0, 1, 2)
	in = append(in, `{"a":1}`...)
	if got, want := chain.Sum(prev, 258, []byte(`{"a":1}`)), sha256Sum(in); got != want {
		t.Errorf("Sum = %x, want %x", got, want)
	}
}

func TestSeal(t *testing.T) {
	priv, pub := testKey(3)
	s := &chain.Sealer{Key: priv, Keep: 5, Now: fixedClock()}
	var h chain.Head
	type step struct {
		reason chain.Reason
		record bool // Append a record instead
		want   chain.Seal
		head   chain.Head // File, Records, Sealed
	}
	fp := chain.Fingerprint(pub)
	for i, st := range []step{
		{reason: chain.ReasonOpen, want: chain.Seal{Reason: chain.ReasonOpen, File: 1, Keep: 5, Key: fp, Records: 1}, head: chain.Head{File: 1, Records: 1, Sealed: chain.ReasonOpen}},
		{record: true, head: chain.Head{File: 1, Records: 2}},
		{reason: chain.ReasonResume, want: chain.Seal{Reason: chain.ReasonResume, File: 1, Keep: 5, Key: fp, Records: 3}, head: chain.Head{File: 1, Records: 3, Sealed: chain.ReasonResume}},
		{reason: chain.ReasonClose, want: chain.Seal{Reason: chain.ReasonClose, File: 1, Keep: 5, Key: fp, Records: 4}, head: chain.Head{File: 1, Records: 4, Sealed: chain.ReasonClose}},
		{reason: chain.ReasonResume, want: chain.Seal{Reason: chain.ReasonResume, Clean: true, File: 1, Keep: 5, Key: fp, Records: 5}, head: chain.Head{File: 1, Records: 5, Sealed: chain.ReasonResume}},
		{reason: chain.ReasonRotate, want: chain.Seal{Reason: chain.ReasonRotate, File: 1, Keep: 5, Key: fp, Records: 6}, head: chain.Head{File: 1, Records: 6, Sealed: chain.ReasonRotate}},
		{reason: chain.ReasonOpen, want: chain.Seal{Reason: chain.ReasonOpen, File: 2, Keep: 5, Key: fp, Records: 1}, head: chain.Head{File: 2, Records: 1, Sealed: chain.ReasonOpen}},
		{reason: chain.ReasonInterval, want: chain.Seal{Reason: chain.ReasonInterval, File: 2, Keep: 5, Key: fp, Records: 2}, head: chain.Head{File: 2, Records: 2, Sealed: chain.ReasonInterval}},
	} {
		prev := h
		var line []byte
		var err error
		if st.record {
			line, err = h.Append(nil, []byte(`{"x":1}`))
		} else {
			line, err = h.Seal(nil, st.reason, s)
		}
		if err != nil {
			t.Fatal(err)
		}
		p, l, err := chain.ParseLine(line)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if l.N != prev.N+1 || l.Prev != prev.Hash || l.Hash != h.Hash || !l.Valid(p) {
			t.Errorf("step %d: link %+v does not follow head %+v", i, l, prev)
		}
		got := chain.Head{File: h.File, Records: h.Records, Sealed: h.Sealed}
		if got != st.head {
			t.Errorf("step %d: head %+v, want %+v", i, got, st.head)
		}
		if st.record {
			if l.Sig != nil {
				t.Errorf("step %d: a record is signed", i)
			}
			continue
		}
		seal, err := chain.ParseSeal(p)
		if err != nil {
			t.Fatalf("step %d: ParseSeal(%s): %v", i, p, err)
		}
		st.want.Time = seal.Time
		if seal != st.want || seal.Time.Location() != seal.Time.UTC().Location() {
			t.Errorf("step %d: seal %+v, want %+v", i, seal, st.want)
		}
		if !ed25519.Verify(pub, l.Hash[:], l.Sig) {
			t.Errorf("step %d: bad signature", i)
		}
	}

	h = chain.Head{}
	if _, err := h.Seal(nil, "later", nil); !errors.Is(err, chain.ErrReason) {
		t.Errorf("Seal with a bad reason: %v", err)
	}
	if _, err := h.Seal(nil, chain.ReasonOpen, &chain.Sealer{Key: priv[:10]}); !errors.Is(err, chain.ErrKey) {
		t.Errorf("Seal with a short key: %v", err)
	}
	if h != (chain.Head{}) {
		t.Errorf("failed Seals changed the head: %+v", h)
	}
	// A nil Sealer seals unsigned, now.
	line, err := h.Seal(nil, chain.ReasonOpen, nil)
	if err != nil || bytes.Contains(line, []byte(`"sig"`)) || bytes.Contains(line, []byte(`"key"`)) {
		t.Errorf("unsigned seal %s, %v", line, err)
	}
}

func TestParseSeal(t *testing.T) {
	valid := `{"ucp-audit/seal":{"reason":"interval","time":"2024-05-01T12:00:01Z","file":2,"keep":4,"records":7}}`
	if _, err := chain.ParseSeal([]byte(valid)); err != nil {
		t.Fatalf("ParseSeal(%s): %v", valid, err)
	}
	for _, tc := range []struct {
		p   string
		err error
	}{
		{`{"audit":{}}`, chain.ErrNotSeal},
		{`{"ucp-audit/seal":1}`, chain.ErrMalformed},
		{`{"ucp-audit/seal":{"reason":"nap","time":"2024-05-01T12:00:01Z","file":2,"keep":4,"records":7}}`, chain.ErrMalformed},
		{`{"ucp-audit/seal":{"time":"2024-05-01T12:00:01Z","reason":"interval","file":2,"keep":4,"records":7}}`, chain.ErrMalformed},
		{`{"ucp-audit/seal":{"reason":"interval","time":"2024-05-01T12:00:01Z","file":2,"keep":4,"records":7,"x":1}}`, chain.ErrMalformed},
		{`{"ucp-audit/seal":{"reason":"interval","clean":true,"time":"2024-05-01T12:00:01Z","file":2,"keep":4,"records":7}}`, chain.ErrMalformed},
		{`{"ucp-audit/seal":{"reason":"resume","time":"2024-05-01T12:00:01Z","file":2,"keep":4,"records":7}}`, chain.ErrMalformed},
		{`{"ucp-audit/seal":{"reason":"interval","time":"yesterday","file":2,"keep":4,"records":7}}`, chain.ErrMalformed},
		{`{"ucp-audit/seal":{"reason":"interval","time":"2024-05-01T14:00:01+02:00","file":2,"keep":4,"records":7}}`, chain.ErrMalformed},
		{`{"ucp-audit/seal":{"reason":"interval","time":"2024-05-01T12:00:01Z","file":0,"keep":4,"records":7}}`, chain.ErrMalformed},
		{`{"ucp-audit/seal":{"reason":"interval","time":"2024-05-01T12:00:01Z","file":2,"keep":-1,"records":7}}`, chain.ErrMalformed},
		{`{"ucp-audit/seal":{"reason":"interval","time":"2024-05-01T12:00:01Z","file":2,"keep":4,"records":7}} `, chain.ErrMalformed},
	} {
		if _, err := chain.ParseSeal([]byte(tc.p)); !errors.Is(err, tc.err) {
			t.Errorf("ParseSeal(%s) error %v, want %v", tc.p, err, tc.err)
		}
	}
}

func TestParseLine(t *testing.T) {
	priv, _ := testKey(4)
	var h chain.Head
	open, _ := h.Seal(nil, chain.ReasonOpen, &chain.Sealer{Key: priv, Keep: 2})
	rec, _ := h.Append(nil, []byte(`{"a":"b"}`))
	empty, _ := h.Append(nil, []byte(`{}`))
	for _, line := range [][]byte{open, rec, empty} {
		p, l, err := chain.ParseLine(line)
		if err != nil {
			t.Fatalf("ParseLine(%s): %v", line, err)
		}
		if !l.Valid(p) || !bytes.Equal(formatLine(p, l), line) {
			t.Errorf("ParseLine(%s) = %s, %+v: does not rebuild the line", line, p, l)
		}
	}
	s := string(rec)
	field := s[strings.Index(s, `"ucp-audit/chain"`):]
	for _, tc := range []struct {
		name, line string
		err        error
	}{
		{"no field", `{"a":"b"}`, chain.ErrNoChain},
		{"empty", ``, chain.ErrNoChain},
		{"field not last", s[:len(s)-1] + `,"x":1}`, chain.ErrMalformed},
		{"trailing newline", s + "\n", chain.ErrMalformed},
		{"trailing space", s + " ", chain.ErrMalformed},
		{"no comma", `{"a":"b"` + field, chain.ErrMalformed},
		{"comma after brace", `{,` + field, chain.ErrMalformed},
		{"not an object", `[` + field, chain.ErrMalformed},
		{"n with a leading zero", strings.Replace(s, `"n":2`, `"n":02`, 1), chain.ErrMalformed},
		{"n zero", strings.Replace(s, `"n":2`, `"n":0`, 1), chain.ErrMalformed},
		{"n negative", strings.Replace(s, `"n":2`, `"n":-2`, 1), chain.ErrMalformed},
		{"n too large", strings.Replace(s, `"n":2`, `"n":18446744073709551616`, 1), chain.ErrMalformed},
		{"uppercase hex", s[:strings.Index(s, `"prev":"`)+8] + "A" + s[strings.Index(s, `"prev":"`)+9:], chain.ErrMalformed},
		{"short hash", s[:len(s)-4] + `"}}`, chain.ErrMalformed},
		{"long hash", s[:len(s)-3] + `0"}}`, chain.ErrMalformed},
		{"space", strings.Replace(s, `,"hash"`, `, "hash"`, 1), chain.ErrMalformed},
		{"other field", strings.Replace(s, `"}}`, `","x":"y"}}`, 1), chain.ErrMalformed},
		{"short sig", strings.Replace(s, `"}}`, `","sig":"AAAA"}}`, 1), chain.ErrMalformed},
		{"sig not base64", strings.Replace(s, `"}}`, `","sig":"`+strings.Repeat("*", 88)+`"}}`, 1), chain.ErrMalformed},
	} {
		if _, _, err := chain.ParseLine([]byte(tc.line)); !errors.Is(err, tc.err) {
			t.Errorf("%s: ParseLine(%s) error %v, want %v", tc.name, tc.line, err, tc.err)
		}
	}
}

// TestGolden pins the exact bytes of a small signed chain: a fixed key, a
// fixed clock, a restart.
func TestGolden(t *testing.T) {
	priv, pub := testKey(7)
	s := &chain.Sealer{Key: priv, Keep: 3, Now: fixedClock()}
	var h chain.Head
	var b []byte
	add := func(line []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		b = append(line, '\n')
	}
	add(h.Seal(b, chain.ReasonOpen, s))
	add(h.Append(b, []byte(`{}`)))
	add(h.Append(b, []byte(`{"audit":{"user":"alice","verb":"GET","requestURI":"/info"},"level":"info","msg":"audit"}`)))
	add(h.Seal(b, chain.ReasonInterval, s))
	add(h.Append(b, []byte(`{"a":"ucp-audit/chain","b":"ü\"}"}`)))
	add(h.Seal(b, chain.ReasonClose, s))
	r, err := chain.Recover(bytes.NewReader(b), int64(len(b)))
	if err != nil || r != h {
		t.Fatalf("Recover = %+v, %v, want %+v", r, err, h)
	}
	add(r.Seal(b, chain.ReasonResume, s))
	add(r.Append(b, []byte(`{"audit":{"user":"bob"}}`)))
	add(r.Seal(b, chain.ReasonClose, s))

	golden := filepath.Join("testdata", "signed.golden")
	if *update {
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("the chain differs from %s (run go test -update after an intended format change):\n%s", golden, b)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "audit.log"), want, 0o600)
	if r := chain.Verify(dirSet(t, dir), chain.VerifyOptions{Key: pub}); !r.OK() || r.Records != 9 || r.Seals != 5 {
		t.Errorf("Verify(golden) = %+v", r)
	}
}

func BenchmarkAppend(b *testing.B) {
	p := []byte(`{"audit":{"kind":"docker","verb":"GET","requestURI":"/containers/json?all=1","user":{"name":"admin","id":"2b6d9f1e-8c2a-4b7f-9d3e-1a5c7e9b0f24"}}`)
	p = append(p, `,"container":{"id":"`...)
	p = append(p, strings.Repeat("0123456789abcdef", 24)...)
	p = append(p, `"},"level":"info","msg":"audit"}`...)
	p = append(p[:0:0], p[:600-len(`"}`)]...)
	p = append(p, `"}`...)
	if len(p) != 600 {
		b.Fatalf("p is %d bytes", len(p))
	}
	var h chain.Head
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		var err error
		if dst, err = h.Append(dst[:0], p); err != nil {
			b.Fatal(err)
		}
	}
}
