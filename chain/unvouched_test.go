package chain_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/chain"
)

// reopenWritten is reopen with the writer's record of its last written
// record too.
func (w *sim) reopenWritten(sealed, written chain.Head) {
	w.t.Helper()
	size := w.openLive()
	h, err := chain.Recover(w.f, size)
	if err != nil {
		w.t.Fatal(err)
	}
	w.h = h
	line, err := w.h.SealChecked(nil, chain.ReasonResume, w.s, sealed, written)
	if err != nil {
		w.t.Fatal(err)
	}
	w.writeLine(line)
}

// TestVerifyUnvouched: records appended, correctly chained, after the last
// record the writer wrote (while it was stopped) are reported at the
// resume seal that follows them, with and without a key; the seal does not
// vouch for them. Records the writer wrote after its last seal are not.
func TestVerifyUnvouched(t *testing.T) {
	priv, pub := testKey(3)
	for _, tc := range []struct {
		name    string
		forged  int  // records appended while the writer is stopped
		crashed bool // the writer stopped without its close seal, after events
		signed  bool
		detail  string
	}{
		{name: "one forged record after the close seal", forged: 1, detail: "record 10 follows the last record the plugin wrote (record 9"},
		{name: "forged records, signed", forged: 3, signed: true, detail: "records 10 to 12 follow the last record the plugin wrote (record 9"},
		{name: "forged after a crash", forged: 2, crashed: true, detail: "records 10 to 11 follow the last record the plugin wrote (record 9"},
		{name: "nothing appended"},
		{name: "a crash, nothing appended", crashed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var key []byte
			opts := chain.VerifyOptions{}
			if tc.signed {
				key, opts.Key = priv, pub
			}
			w := newSim(t, filepath.Join(dir, live), 3, key, "a")
			w.start()
			w.run(3, chain.ReasonInterval, 3) // records 1 to 8: open, 3 events, interval, 3 events
			if tc.crashed {
				w.events(1) // record 9, then the writer is killed: no close seal
			} else {
				w.seal(chain.ReasonClose) // record 9
			}
			written := w.h
			sealed := written
			if tc.crashed {
				sealed = chain.Head{} // its last seal is older: no loss either way
			}
			// Forged records, chained correctly after the writer's last.
			for range tc.forged {
				line, err := w.h.Append(nil, []byte(`{"audit":{"auditID":"forged","verb":"POST","requestURI":"/secrets/create","user":{"username":"admin"}}}`))
				if err != nil {
					t.Fatal(err)
				}
				w.writeLine(line)
			}
			w.f.Close()
			w.reopenWritten(sealed, written)
			w.run(2, chain.ReasonClose)
			w.f.Close()
			r := chain.Verify(dirSet(t, dir), opts)
			var p *chain.Problem
			switch {
			case tc.forged == 0 && r.Err != nil:
				t.Fatalf("Verify: %v", r.Err)
			case tc.forged == 0:
				return
			case !errors.As(r.Err, &p):
				t.Fatalf("Verify = %v, want %s", r.Err, chain.KindUnvouched)
			}
			if p.Kind != chain.KindUnvouched || !strings.Contains(p.Detail, tc.detail) || !strings.Contains(p.Detail, "not written by it") {
				t.Errorf("Verify: %v\nwant %s with %q", p, chain.KindUnvouched, tc.detail)
			}
		})
	}
}

func TestParseSealUnvouched(t *testing.T) {
	const hash = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"
	seal := func(reason, clean, tail string) string {
		return `{"ucp-audit/seal":{"reason":"` + reason + `",` + clean + `"time":"2024-05-01T12:00:01Z","file":2,"keep":4,"records":7` + tail + `}}`
	}
	valid := seal("resume", `"clean":true,`, `,"unvouched":{"after":8,"last":9,"hash":"`+hash+`"}`)
	s, err := chain.ParseSeal([]byte(valid))
	if want := (chain.Unvouched{After: 8, Last: 9, Hash: [32]byte(bytes.Repeat([]byte{11}, 32))}); err != nil || s.Unvouched != want {
		t.Fatalf("ParseSeal(%s) = %+v, %v", valid, s, err)
	}
	for _, p := range []string{
		seal("interval", "", `,"unvouched":{"after":8,"last":9,"hash":"`+hash+`"}`),
		seal("resume", `"clean":true,`, `,"unvouched":{"after":9,"last":9,"hash":"`+hash+`"}`),
		seal("resume", `"clean":true,`, `,"unvouched":{"after":8,"last":9,"hash":"`+hash[:60]+`"}`),
		seal("resume", `"clean":true,`, `,"unvouched":{"last":9,"after":8,"hash":"`+hash+`"}`),
		seal("resume", `"clean":true,`, `,"unvouched":null`),
	} {
		if _, err := chain.ParseSeal([]byte(p)); !errors.Is(err, chain.ErrMalformed) {
			t.Errorf("ParseSeal(%s) error %v, want ErrMalformed", p, err)
		}
	}
}
