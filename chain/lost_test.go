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

// TestSealChecked: the first seal after an open carries Lost exactly when
// the head recovered from the files is behind the recorded one, and the
// seal round-trips through ParseSeal.
func TestSealChecked(t *testing.T) {
	priv, _ := testKey(6)
	s := &chain.Sealer{Key: priv, Keep: 3, Now: fixedClock()}
	_, h := chainBytes(t, chain.ReasonOpen, `{"a":1}`, chain.ReasonInterval, `{"a":2}`) // N = 4
	other := h
	other.Hash[0] ^= 1
	for _, tc := range []struct {
		name   string
		reason chain.Reason
		sealed chain.Head
		want   chain.Lost
	}{
		{"no record", chain.ReasonResume, chain.Head{}, chain.Lost{}},
		{"record older than the file", chain.ReasonResume, chain.Head{N: 3, Hash: [32]byte{1}, File: 1}, chain.Lost{}},
		{"record at the file's end", chain.ReasonResume, h, chain.Lost{}},
		{"records cut off", chain.ReasonResume, chain.Head{N: 9, Hash: [32]byte{2}, File: 1}, chain.Lost{After: 4, Expected: 9, File: 1, Hash: [32]byte{2}}},
		{"another record 4", chain.ReasonResume, other, chain.Lost{After: 4, Expected: 4, File: 1, Hash: other.Hash}},
		{"newest file gone", chain.ReasonOpen, chain.Head{N: 20, Hash: [32]byte{3}, File: 2}, chain.Lost{After: 4, Expected: 20, File: 2, Hash: [32]byte{3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hh := h
			line, err := hh.SealChecked(nil, tc.reason, s, tc.sealed, chain.Head{})
			if err != nil {
				t.Fatal(err)
			}
			p, l, err := chain.ParseLine(line)
			if err != nil || l.N != 5 || !l.Valid(p) {
				t.Fatalf("ParseLine(%s) = %+v, %v", line, l, err)
			}
			seal, err := chain.ParseSeal(p)
			if err != nil {
				t.Fatalf("ParseSeal(%s): %v", p, err)
			}
			if seal.Reason != tc.reason || seal.Lost != tc.want {
				t.Errorf("seal %+v, want reason %s and lost %+v", seal, tc.reason, tc.want)
			}
			if got := bytes.Contains(p, []byte(`"lost":`)); got != !tc.want.IsZero() {
				t.Errorf("seal %s: \"lost\" present %v", p, got)
			}
			if hh.N != 5 || hh.Sealed != tc.reason {
				t.Errorf("head %+v after the seal", hh)
			}
		})
	}
	hh := h
	if _, err := hh.SealChecked(nil, chain.ReasonInterval, s, chain.Head{N: 9}, chain.Head{}); !errors.Is(err, chain.ErrReason) || hh != h {
		t.Errorf("SealChecked(interval) = %v, head %+v: want ErrReason and the head unchanged", err, hh)
	}
}

func TestParseSealLost(t *testing.T) {
	const hash = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
	seal := func(reason, clean, lost string) string {
		return `{"ucp-audit/seal":{"reason":"` + reason + `",` + clean + `"time":"2024-05-01T12:00:01Z","file":2,"keep":4,"records":7` + lost + `}}`
	}
	lost := func(fields string) string { return `,"lost":{` + fields + `}` }
	valid := seal("resume", `"clean":false,`, lost(`"after":4,"expected":9,"file":1,"hash":"`+hash+`"`))
	s, err := chain.ParseSeal([]byte(valid))
	if want := (chain.Lost{After: 4, Expected: 9, File: 1, Hash: [32]byte(bytes.Repeat([]byte{10}, 32))}); err != nil || s.Lost != want {
		t.Fatalf("ParseSeal(%s) = %+v, %v", valid, s, err)
	}
	for _, p := range []string{
		seal("open", "", lost(`"after":0,"expected":9,"file":3,"hash":"`+hash+`"`)),
		seal("resume", `"clean":true,`, lost(`"after":9,"expected":9,"file":1,"hash":"`+hash+`"`)),
	} {
		if _, err := chain.ParseSeal([]byte(p)); err != nil {
			t.Errorf("ParseSeal(%s): %v", p, err)
		}
	}
	for _, p := range []string{
		seal("interval", "", lost(`"after":4,"expected":9,"file":1,"hash":"`+hash+`"`)),
		seal("close", "", lost(`"after":4,"expected":9,"file":1,"hash":"`+hash+`"`)),
		seal("open", "", lost(`"after":9,"expected":4,"file":1,"hash":"`+hash+`"`)),
		seal("open", "", lost(`"after":0,"expected":0,"file":1,"hash":"`+hash+`"`)),
		seal("open", "", lost(`"after":4,"expected":9,"file":0,"hash":"`+hash+`"`)),
		seal("open", "", lost(`"after":4,"expected":9,"file":1,"hash":"`+strings.ToUpper(hash)+`"`)),
		seal("open", "", lost(`"after":4,"expected":9,"file":1,"hash":"`+hash[:62]+`"`)),
		seal("open", "", lost(`"after":4,"expected":9,"file":1,"hash":"`+hash[:62]+`zz"`)),
		seal("open", "", lost(`"expected":9,"after":4,"file":1,"hash":"`+hash+`"`)),
		seal("open", "", lost(`"after":4,"expected":9,"file":1`)),
		seal("open", "", lost(`"after":4,"expected":9,"file":1,"hash":"`+hash+`","x":1`)),
		seal("open", "", lost(``)),
		seal("open", "", `,"lost":null`),
		seal("open", "", `,"lost":{"after":4,"expected":9,"file":1,"hash":"`+hash+`"},"x":1`),
		`{"ucp-audit/seal":{"reason":"open","time":"2024-05-01T12:00:01Z","file":2,"keep":4,"lost":{"after":4,"expected":9,"file":1,"hash":"` + hash + `"},"records":7}}`,
	} {
		if _, err := chain.ParseSeal([]byte(p)); !errors.Is(err, chain.ErrMalformed) {
			t.Errorf("ParseSeal(%s) error %v, want ErrMalformed", p, err)
		}
	}
}

// reopen starts w again as the file sink does with a record of the head
// as of its last seal: the live file (its torn tail cut) is resumed, an
// empty or missing one opened after the newest rotated file, each with
// SealChecked against sealed.
func (w *sim) reopen(sealed chain.Head) {
	w.t.Helper()
	size := w.openLive()
	var err error
	reason := chain.ReasonResume
	if size > 0 {
		w.h, err = chain.Recover(w.f, size)
	} else {
		reason, w.h = chain.ReasonOpen, chain.Head{}
		if b, rerr := os.ReadFile(w.rotated(1)); rerr == nil {
			w.h, err = chain.Recover(bytes.NewReader(b), int64(len(b)))
		}
	}
	if err != nil {
		w.t.Fatal(err)
	}
	line, err := w.h.SealChecked(nil, reason, w.s, sealed, chain.Head{})
	if err != nil {
		w.t.Fatal(err)
	}
	w.writeLine(line)
}

// TestVerifyLost: a seal whose writer found sealed records missing is
// reported as the loss it records, at the seal; one found ahead of the
// record is not.
func TestVerifyLost(t *testing.T) {
	priv, pub := testKey(7)
	// audit.log.1: open, 4 events, rotate (records 1 to 6); audit.log:
	// open (record 7), 3 events, interval (line 5, record 11), 2 events,
	// interval (line 8, record 14), 2 events, close (line 11, record 17).
	write := func(t *testing.T, dir string, key []byte) (*sim, chain.Head) {
		w := newSim(t, filepath.Join(dir, live), 3, key, "a")
		w.start()
		w.run(4, chain.ReasonRotate) // file 1 is audit.log.1
		w.f.Close()
		os.Rename(w.path, w.rotated(1))
		w.start()
		w.run(3, chain.ReasonInterval, 2, chain.ReasonInterval, 2, chain.ReasonClose)
		w.f.Close()
		return w, w.h
	}
	cut := func(t *testing.T, w *sim, keep int) {
		writeLines(t, w.path, readLines(t, w.path)[:keep], false)
	}
	for _, tc := range []struct {
		name   string
		signed bool
		tamper func(t *testing.T, w *sim, sealed chain.Head) chain.Head // returns the record
		kind   chain.Kind                                               // "": verifies clean
		line   int64
		detail string
	}{
		{"cut at an interval seal", false, func(t *testing.T, w *sim, sealed chain.Head) chain.Head {
			cut(t, w, 5)
			return sealed
		}, chain.KindTruncated, 6, "when the plugin re-opened the file it ended at record 11, but the plugin had sealed up to record 17: records 12 to 17 were cut off"},
		{"cut at an interval seal, signed", true, func(t *testing.T, w *sim, sealed chain.Head) chain.Head {
			cut(t, w, 8)
			return sealed
		}, chain.KindTruncated, 9, "records 15 to 17 were cut off"},
		{"close seal cut", false, func(t *testing.T, w *sim, sealed chain.Head) chain.Head {
			cut(t, w, 10)
			return sealed
		}, chain.KindTruncated, 11, "record 17 was cut off"},
		{"newest file deleted", false, func(t *testing.T, w *sim, sealed chain.Head) chain.Head {
			remove(t, filepath.Dir(w.path), live)
			return sealed
		}, chain.KindFileMissing, 1, "when the plugin opened file 2 it ended at record 6, but the plugin had sealed up to record 17 in file 2: records 7 to 17 were deleted with the newest files"},
		{"whole chain deleted", false, func(t *testing.T, w *sim, sealed chain.Head) chain.Head {
			remove(t, filepath.Dir(w.path), live)
			remove(t, filepath.Dir(w.path), "audit.log.1")
			return sealed
		}, chain.KindFileMissing, 1, "when the plugin opened file 1 no record of the chain was left, but the plugin had sealed up to record 17 in file 2: records 1 to 17 were deleted"},
		{"file replaced at the same N", false, func(t *testing.T, w *sim, sealed chain.Head) chain.Head {
			sealed.Hash[5] ^= 1
			return sealed
		}, chain.KindFileReplaced, 12, "ended at record 17, but that is not the record 17 the plugin had sealed in file 2"},
		{"record older than the file", false, func(t *testing.T, w *sim, sealed chain.Head) chain.Head {
			sealed.N -= 3
			sealed.Hash = [32]byte{9}
			return sealed
		}, "", 0, ""},
		{"record at the file's end", false, func(t *testing.T, w *sim, sealed chain.Head) chain.Head {
			return sealed
		}, "", 0, ""},
		{"no record", false, func(t *testing.T, w *sim, sealed chain.Head) chain.Head {
			cut(t, w, 5)
			return chain.Head{}
		}, "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var key []byte
			opts := chain.VerifyOptions{}
			if tc.signed {
				key, opts.Key = priv, pub
			}
			w, sealed := write(t, dir, key)
			w.reopen(tc.tamper(t, w, sealed))
			w.run(2, chain.ReasonClose)
			w.f.Close()
			r := chain.Verify(dirSet(t, dir), opts)
			var p *chain.Problem
			switch {
			case tc.kind == "" && r.Err != nil:
				t.Fatalf("Verify: %v", r.Err)
			case tc.kind == "":
				return
			case !errors.As(r.Err, &p):
				t.Fatalf("Verify = %v, want %s at %s:%d", r.Err, tc.kind, live, tc.line)
			}
			if p.Kind != tc.kind || filepath.Base(p.File) != live || p.Line != tc.line || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("Verify: %v\nwant %s at %s:%d, with %q", p, tc.kind, live, tc.line, tc.detail)
			}
			if p.N == 0 {
				t.Errorf("the problem names no record: %+v", p)
			}
		})
	}

	// A "lost" that does not follow its own place is a modified seal.
	dir := t.TempDir()
	w, sealed := write(t, dir, nil)
	cut(t, w, 5)
	w.reopen(sealed)
	w.f.Close()
	lines := readLines(t, w.path)
	p, l, err := chain.ParseLine(lines[5])
	if err != nil {
		t.Fatal(err)
	}
	p = bytes.Replace(p, []byte(`"after":11,`), []byte(`"after":10,`), 1)
	l.Hash = chain.Sum(l.Prev, l.N, p)
	lines[5] = formatLine(p, l)
	writeLines(t, w.path, lines, false)
	var prob *chain.Problem
	if r := chain.Verify(dirSet(t, dir), chain.VerifyOptions{}); !errors.As(r.Err, &prob) || prob.Kind != chain.KindModified || prob.Line != 6 {
		t.Errorf("a lost seal naming another record: %v, want modified at line 6", r.Err)
	}
}
