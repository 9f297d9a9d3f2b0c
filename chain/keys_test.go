package chain_test

import (
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/chain"
)

// TestVerifyKeyChanges: signing turned on in the middle of a chain (the
// "key" seal, signed, vouches for the unsigned records before it), a key
// changed (verify takes both keys), and signing turned off or a signature
// removed after a signed seal (unsigned).
func TestVerifyKeyChanges(t *testing.T) {
	k1, pub1 := testKey(11)
	k2, pub2 := testKey(12)
	type phase struct {
		key    ed25519.PrivateKey
		events int
	}
	for _, tc := range []struct {
		name   string
		phases []phase // each starts with a key seal (after the first), then events and an interval seal
		keys   []ed25519.PublicKey
		kind   chain.Kind // "": verifies
		detail string
	}{
		{name: "signing turned on", phases: []phase{{nil, 3}, {k1, 3}}, keys: []ed25519.PublicKey{pub1}},
		{name: "signing turned on, no key given", phases: []phase{{nil, 3}, {k1, 3}}},
		{name: "unsigned only", phases: []phase{{nil, 3}}, keys: []ed25519.PublicKey{pub1},
			kind: chain.KindUnsigned, detail: "seal 1 (open) is not signed, and no seal signed with the given key follows it"},
		{name: "key changed, both keys given", phases: []phase{{k1, 3}, {k2, 3}}, keys: []ed25519.PublicKey{pub1, pub2}},
		{name: "key changed, old key only", phases: []phase{{k1, 3}, {k2, 3}}, keys: []ed25519.PublicKey{pub1},
			kind: chain.KindBadSignature, detail: "not by a given key"},
		{name: "key changed, new key only", phases: []phase{{k1, 3}, {k2, 3}}, keys: []ed25519.PublicKey{pub2},
			kind: chain.KindBadSignature, detail: "seal 1 (open) was signed by key"},
		{name: "signing turned off", phases: []phase{{k1, 3}, {nil, 3}}, keys: []ed25519.PublicKey{pub1},
			kind: chain.KindUnsigned, detail: "signing was turned off, or its signature removed"},
		{name: "on, then an unsigned tail", phases: []phase{{nil, 2}, {k1, 2}, {nil, 2}}, keys: []ed25519.PublicKey{pub1},
			kind: chain.KindUnsigned, detail: "after seal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w := newSim(t, filepath.Join(dir, live), 3, tc.phases[0].key, "k")
			w.start()
			for i, p := range tc.phases {
				w.s.Key = p.key
				if i > 0 {
					w.seal(chain.ReasonKey)
				}
				w.run(p.events, chain.ReasonInterval)
			}
			w.seal(chain.ReasonClose)
			w.f.Close()
			r := chain.Verify(dirSet(t, dir), chain.VerifyOptions{Keys: tc.keys})
			var p *chain.Problem
			switch {
			case tc.kind == "" && r.Err != nil:
				t.Fatalf("Verify: %v", r.Err)
			case tc.kind == "":
				if !r.Signed || (len(tc.keys) > 0) != (r.SignedFrom > 0) {
					t.Errorf("Signed %v, SignedFrom %d", r.Signed, r.SignedFrom)
				}
				return
			case !errors.As(r.Err, &p):
				t.Fatalf("Verify = %v, want %s", r.Err, tc.kind)
			}
			if p.Kind != tc.kind || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("Verify: %v\nwant %s with %q", p, tc.kind, tc.detail)
			}
		})
	}
}
