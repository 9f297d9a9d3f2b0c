package file

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/chain"
)

// forge appends n records to the file at path, chained correctly after its
// last line, as someone who can write the log directory could while the
// plugin is stopped.
func forge(t *testing.T, path string, n int) {
	t.Helper()
	h, err := recoverFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range n {
		line, err := h.Append(nil, []byte(`{"auditID":"forged","verb":"POST","requestURI":"/secrets/create","user":{"username":"admin"}}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(append(line, '\n')); err != nil {
			t.Fatal(err)
		}
	}
}

// A resume seal never vouches for records the plugin did not write:
// records appended while it was stopped, after a clean close or after a
// kill, are reported as unvouched at the resume seal, and what the plugin
// wrote itself (also after its last seal, before a kill) is not.
func TestResumeSealDoesNotVouchForForgedRecords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		killed bool // the first process stops without closing: records after its last seal
		forged int
	}{
		{name: "forged after a clean close", forged: 1},
		{name: "forged after a kill", killed: true, forged: 2},
		{name: "clean close, nothing forged"},
		{name: "kill, nothing forged", killed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newRecordSetup(t, false)
			r := s.run(t, 0, 30)
			if tc.killed {
				// What a kill -9 leaves: every line handed to the kernel
				// is in the file (the page cache survives), the buffer is
				// gone, no close seal.
				f := r.files[s.path]
				f.mu.Lock()
				if err := f.w.Flush(); err != nil {
					t.Fatal(err)
				}
				f.mu.Unlock()
			} else if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			forge(t, s.path, tc.forged)
			s.closed(t, 30, 35)
			res := verifySet(t, s.path, nil)
			var p *chain.Problem
			switch {
			case tc.forged == 0 && res.Err != nil:
				t.Fatalf("verify: %v", res.Err)
			case tc.forged == 0:
				return
			case !errors.As(res.Err, &p) || p.Kind != chain.KindUnvouched:
				t.Fatalf("verify = %v, want %s", res.Err, chain.KindUnvouched)
			}
			if !strings.Contains(p.Detail, "not written by it") {
				t.Errorf("detail: %s", p.Detail)
			}
		})
	}
}
