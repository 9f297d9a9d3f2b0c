package chain_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/chain"
)

func recoverBytes(b []byte) (chain.Head, error) {
	return chain.Recover(bytes.NewReader(b), int64(len(b)))
}

func TestRecoverGenerated(t *testing.T) {
	dir := t.TempDir()
	w := genSet(t, dir, nil, "a")
	b, err := os.ReadFile(filepath.Join(dir, live))
	if err != nil {
		t.Fatal(err)
	}
	h, err := recoverBytes(b)
	if err != nil || h != w.h {
		t.Fatalf("Recover = %+v, %v, want %+v", h, err, w.h)
	}
	if h.Sealed != chain.ReasonClose || h.File != 6 || h.Records != 10 {
		t.Errorf("Recover = %+v, want file 6, 10 records, closed", h)
	}
	// A torn tail is ignored.
	if h, err := recoverBytes(append(b, `{"audit":`...)); err != nil || h != w.h {
		t.Errorf("Recover with a torn tail = %+v, %v", h, err)
	}
}

// TestRecoverLongLines crosses Recover's read chunks: records after the
// last seal are larger than a chunk.
func TestRecoverLongLines(t *testing.T) {
	items := []any{chain.ReasonOpen, `{"a":1}`, chain.ReasonInterval}
	for i := range 4 {
		items = append(items, `{"big":"`+strings.Repeat(string(rune('a'+i)), 100<<10+i*7)+`"}`, `{"small":1}`)
	}
	b, h := chainBytes(t, items...)
	got, err := recoverBytes(b)
	if err != nil || got != h {
		t.Fatalf("Recover = %+v, %v, want %+v", got, err, h)
	}
	if got.Records != 11 || got.Sealed != "" {
		t.Errorf("Recover = %+v, want 11 records, not sealed", got)
	}
}

func TestRecoverErrors(t *testing.T) {
	var h chain.Head
	seal, _ := h.Seal(nil, chain.ReasonOpen, nil)
	rec, _ := h.Append(nil, []byte(`{"a":1}`))
	var other chain.Head
	otherRec, _ := other.Append(nil, []byte(`{"b":2}`))
	nl := func(lines ...[]byte) []byte { return append(bytes.Join(lines, []byte("\n")), '\n') }
	for _, tc := range []struct {
		name string
		file []byte
		err  error
	}{
		{"empty", nil, chain.ErrEmpty},
		{"only a torn line", seal, chain.ErrEmpty},
		{"not chained", nl(seal, []byte(`{"a":1}`)), chain.ErrNoChain},
		{"edited last line", nl(seal, bytes.Replace(rec, []byte(`"a":1`), []byte(`"a":2`), 1)), chain.ErrMalformed},
		{"no seal", nl(rec), chain.ErrMalformed},
		{"last line of another chain", nl(seal, otherRec), chain.ErrMalformed},
		{"a line too many after the seal", nl(seal, []byte(`{"x":1}`), rec), chain.ErrMalformed},
	} {
		if _, err := recoverBytes(tc.file); !errors.Is(err, tc.err) {
			t.Errorf("%s: Recover error %v, want %v", tc.name, err, tc.err)
		}
	}
}
