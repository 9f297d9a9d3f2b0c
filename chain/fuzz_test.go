package chain_test

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/ucp-audit/ucp-audit/chain"
)

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// FuzzParseLine: ParseLine never panics, accepts only lines in the exact
// form (they rebuild byte for byte), and Append then ParseLine returns p
// exactly.
func FuzzParseLine(f *testing.F) {
	priv, _ := testKey(5)
	var h chain.Head
	seal, _ := h.Seal(nil, chain.ReasonOpen, &chain.Sealer{Key: priv})
	rec, _ := h.Append(nil, []byte(`{"a":1}`))
	lost, _ := h.SealChecked(nil, chain.ReasonResume, &chain.Sealer{Key: priv}, chain.Head{N: 9, Hash: [32]byte{1}, File: 1}, chain.Head{})
	for _, s := range [][]byte{seal, rec, lost, []byte(`{}`), []byte(`{"a":"b"}`), []byte(`{"ucp-audit/chain":{"n":1}}`), []byte(`{"a":{"ucp-audit/chain":{"n":1,"prev":"00","hash":"00"}},"b":1}`)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if p, l, err := chain.ParseLine(data); err == nil {
			if !bytes.Equal(formatLine(p, l), data) {
				t.Fatalf("ParseLine(%q) = %q, %+v: does not rebuild the line", data, p, l)
			}
		}
		h := chain.Head{N: 41, Hash: [32]byte{9}}
		line, err := h.Append(nil, data)
		if err != nil {
			return
		}
		p, l, err := chain.ParseLine(line)
		if err != nil || !bytes.Equal(p, data) || l.N != 42 || l.Prev != ([32]byte{9}) || l.Hash != h.Hash || !l.Valid(p) || l.Sig != nil {
			t.Fatalf("ParseLine(Append(%q)) = %q, %+v, %v", data, p, l, err)
		}
	})
}

// FuzzRecover: Recover never panics on any file content, and what it
// returns is consistent with the file's last line.
func FuzzRecover(f *testing.F) {
	b, _ := chainBytes(f, chain.ReasonOpen, `{"a":1}`)
	f.Add(b)
	f.Add(b[:len(b)-5])
	var h chain.Head
	lost, _ := h.SealChecked(nil, chain.ReasonOpen, nil, chain.Head{N: 9, Hash: [32]byte{1}, File: 3}, chain.Head{})
	f.Add(append(lost, '\n'))
	f.Add([]byte("{}\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := chain.Recover(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		end := bytes.LastIndexByte(data, '\n')
		last := data[bytes.LastIndexByte(data[:end], '\n')+1 : end]
		_, l, err := chain.ParseLine(last)
		if err != nil || got.N != l.N || got.Hash != l.Hash || got.File == 0 || got.Records == 0 {
			t.Fatalf("Recover(%q) = %+v, but the last line is %+v, %v", data, got, l, err)
		}
	})
}
