package chain_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
)

func TestVerifyClean(t *testing.T) {
	priv, pub := testKey(1)
	for _, tc := range []struct {
		name string
		priv ed25519.PrivateKey
		opts chain.VerifyOptions
	}{
		{"unsigned", nil, chain.VerifyOptions{}},
		{"signed, no key given", priv, chain.VerifyOptions{}},
		{"signed, key given", priv, chain.VerifyOptions{Key: pub}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w := genSet(t, dir, tc.priv, "a")
			set := dirSet(t, dir)
			if got, want := baseNames(set.Files), []string{oldest, gzFile, middle, live}; !slices.Equal(got, want) {
				t.Fatalf("files %v, want %v", got, want)
			}
			r := chain.Verify(set, tc.opts)
			if !r.OK() {
				t.Fatalf("Verify: %v", r.Err)
			}
			// Files 3 to 6: 14 + 11 + 11 + 10 lines, of which 5 + 3 + 3 + 3 seals.
			want := chain.Result{Base: set.Base, Files: 4, Records: 46, Seals: 14, First: w.h.N - 45, Last: w.h.N, Signed: tc.priv != nil}
			if tc.opts.Key != nil {
				want.SignedFrom = want.First // the oldest file's first line, its open seal
			}
			if r != want {
				t.Errorf("Verify = %+v, want %+v", r, want)
			}
			// Each rotated file on its own verifies as far as it goes.
			for _, name := range []string{oldest, gzFile, middle} {
				sets, err := auditlog.Files(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if r := chain.Verify(sets[0], tc.opts); !r.OK() || r.Files != 1 {
					t.Errorf("%s alone: %+v", name, r)
				}
			}
		})
	}
}

// TestVerifyOnSeal: OnSeal sees every seal accepted, in chain order, from
// the open seal of the oldest file; on a failing set, those before the
// problem.
func TestVerifyOnSeal(t *testing.T) {
	dir := t.TempDir()
	genSet(t, dir, nil, "a")
	set := dirSet(t, dir)
	var ns []uint64
	var seals []chain.Seal
	r := chain.Verify(set, chain.VerifyOptions{OnSeal: func(n uint64, s chain.Seal) {
		ns, seals = append(ns, n), append(seals, s)
	}})
	if !r.OK() || uint64(len(seals)) != r.Seals || ns[0] != r.First || ns[len(ns)-1] != r.Last {
		t.Fatalf("Verify = %+v; OnSeal saw %d seals, numbers %v", r, len(seals), ns)
	}
	if seals[0].Reason != chain.ReasonOpen || seals[len(seals)-1].Reason != chain.ReasonClose {
		t.Errorf("first seal %s, last %s; want open and close", seals[0].Reason, seals[len(seals)-1].Reason)
	}
	for i := 1; i < len(seals); i++ {
		if ns[i] <= ns[i-1] || !seals[i].Time.After(seals[i-1].Time) {
			t.Errorf("seal %d (n %d, %v) does not follow seal %d (n %d, %v)", i, ns[i], seals[i].Time, i-1, ns[i-1], seals[i-1].Time)
		}
	}

	// Cut the live file after its first lines: the seals before the cut
	// are seen, and no others.
	lines := readLines(t, set.Files[len(set.Files)-1])
	writeLines(t, set.Files[len(set.Files)-1], lines[:len(lines)-2], false)
	var after []uint64
	r = chain.Verify(set, chain.VerifyOptions{OnSeal: func(n uint64, _ chain.Seal) { after = append(after, n) }})
	if r.OK() || uint64(len(after)) != r.Seals || !slices.Equal(after, ns[:len(after)]) || len(after) >= len(ns) {
		t.Errorf("cut set: Verify = %+v; OnSeal saw %v of %v", r, after, ns)
	}
}

// TestVerifyFragment: rotated files copied without the live file verify
// as a fragment, and only so.
func TestVerifyFragment(t *testing.T) {
	dir := t.TempDir()
	genSet(t, dir, nil, "a")
	copyDir := t.TempDir()
	for _, name := range []string{gzFile, middle} { // not the oldest, not the live file
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(copyDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sets, err := auditlog.Files(filepath.Join(copyDir, middle), filepath.Join(copyDir, gzFile))
	if err != nil {
		t.Fatal(err)
	}
	set := auditlog.Set{Base: filepath.Join(copyDir, live)}
	for _, s := range []auditlog.Set{sets[1], sets[0]} { // oldest first
		set.Files, set.Index = append(set.Files, s.Files...), append(set.Index, s.Index...)
	}
	var p *chain.Problem
	if r := chain.Verify(set, chain.VerifyOptions{}); !errors.As(r.Err, &p) || p.Kind != chain.KindFileMissing {
		t.Errorf("without Fragment: %v, want file-missing", r.Err)
	}
	if r := chain.Verify(set, chain.VerifyOptions{Fragment: true}); !r.OK() || r.Files != 2 {
		t.Errorf("as a fragment: %+v", r)
	}
}

// TestVerifyLimits shows changes the files alone cannot reveal (see the
// package documentation), and what AllowUnsealedTail accepts.
func TestVerifyLimits(t *testing.T) {
	_, pub := testKey(1)
	for _, tc := range []struct {
		name   string
		signed bool
		opts   chain.VerifyOptions
		mutate func(t *testing.T, dir string)
	}{
		{"live file cut back to an earlier seal", true, chain.VerifyOptions{Key: pub}, func(t *testing.T, dir string) {
			cutLines(t, dir, live, 6)
		}},
		{"live file emptied after a rotation", true, chain.VerifyOptions{Key: pub}, func(t *testing.T, dir string) {
			cutLines(t, dir, live, 0)
		}},
		{"unsigned chain rewritten from a record on", false, chain.VerifyOptions{}, func(t *testing.T, dir string) {
			rewrite(t, dir, live, 3)
		}},
		{"unsealed tail allowed", false, chain.VerifyOptions{AllowUnsealedTail: true}, func(t *testing.T, dir string) {
			cutLines(t, dir, live, 8)
		}},
		{"torn last line allowed with the unsealed tail", false, chain.VerifyOptions{AllowUnsealedTail: true}, func(t *testing.T, dir string) {
			tear(t, dir, live)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var key ed25519.PrivateKey
			if tc.signed {
				key, _ = testKey(1)
			}
			genSet(t, dir, key, "a")
			tc.mutate(t, dir)
			if r := chain.Verify(dirSet(t, dir), tc.opts); !r.OK() {
				t.Fatalf("Verify: %v", r.Err)
			}
		})
	}
}

func TestVerifyTampering(t *testing.T) {
	priv, pub := testKey(1)
	_, otherPub := testKey(2)
	unsigned := chain.VerifyOptions{}
	signed := chain.VerifyOptions{Key: pub}
	for _, tc := range []struct {
		name   string
		signed bool // the clean set is signed
		opts   chain.VerifyOptions
		mutate func(t *testing.T, dir string)
		kind   chain.Kind
		file   string
		line   int64 // -1: any
	}{
		// modified
		{"record edited", false, unsigned, func(t *testing.T, dir string) {
			edit(t, dir, middle, 4, func(l []byte) []byte { return bytes.Replace(l, []byte(`"GET"`), []byte(`"PUT"`), 1) })
		}, chain.KindModified, middle, 4},
		{"record edited in a compressed file", false, unsigned, func(t *testing.T, dir string) {
			edit(t, dir, gzFile, 3, func(l []byte) []byte { return bytes.Replace(l, []byte(`"u`), []byte(`"x`), 1) })
		}, chain.KindModified, gzFile, 3},
		{"seal edited", false, unsigned, func(t *testing.T, dir string) {
			edit(t, dir, middle, 8, func(l []byte) []byte { return bytes.Replace(l, []byte(`"keep":4`), []byte(`"keep":9`), 1) })
		}, chain.KindModified, middle, 8},
		{"hash edited", false, unsigned, func(t *testing.T, dir string) {
			edit(t, dir, live, 5, func(l []byte) []byte {
				i := bytes.Index(l, []byte(`"hash":"`)) + len(`"hash":"`)
				l[i] = map[bool]byte{true: '1', false: '0'}[l[i] == '0']
				return l
			})
		}, chain.KindModified, live, 5},
		{"chain field garbled", false, unsigned, func(t *testing.T, dir string) {
			edit(t, dir, live, 5, func(l []byte) []byte { return bytes.Replace(l, []byte(`"prev":"`), []byte(`"prev": "`), 1) })
		}, chain.KindModified, live, 5},
		{"compressed file corrupted", false, unsigned, func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(dir, gzFile))
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-6] ^= 0xff // the CRC-32
			os.WriteFile(filepath.Join(dir, gzFile), b, 0o600)
		}, chain.KindModified, gzFile, -1},
		// signatures
		{"wrong key", true, chain.VerifyOptions{Key: otherPub}, nil, chain.KindBadSignature, oldest, 1},
		{"unsigned chain verified with a key", false, signed, nil, chain.KindUnsigned, oldest, 1},
		{"signed chain rewritten from a record on", true, signed, func(t *testing.T, dir string) {
			rewrite(t, dir, live, 3)
		}, chain.KindBadSignature, live, 6},
		{"seal signature removed", true, signed, func(t *testing.T, dir string) {
			edit(t, dir, middle, 8, func(l []byte) []byte {
				p, link, err := chain.ParseLine(l)
				if err != nil {
					t.Fatal(err)
				}
				link.Sig = nil
				return formatLine(p, link)
			})
		}, chain.KindUnsigned, middle, 8},
		// deleted
		{"record deleted", false, unsigned, func(t *testing.T, dir string) {
			splice(t, dir, middle, 4, 1)
		}, chain.KindDeleted, middle, 4},
		{"records deleted", false, unsigned, func(t *testing.T, dir string) {
			splice(t, dir, live, 3, 3)
		}, chain.KindDeleted, live, 3},
		{"open seal of a rotated file deleted", false, unsigned, func(t *testing.T, dir string) {
			splice(t, dir, middle, 1, 1)
		}, chain.KindDeleted, middle, 1},
		{"head of the oldest file deleted", false, unsigned, func(t *testing.T, dir string) {
			splice(t, dir, oldest, 1, 2)
		}, chain.KindDeleted, oldest, 1},
		// inserted
		{"plain line inserted", false, unsigned, func(t *testing.T, dir string) {
			splice(t, dir, middle, 5, 0, []byte(`{"audit":{"user":"admin","verb":"DELETE"},"level":"info","msg":"audit"}`))
		}, chain.KindInserted, middle, 5},
		{"record of another chain inserted", false, unsigned, func(t *testing.T, dir string) {
			other := t.TempDir()
			genSet(t, other, nil, "b")
			splice(t, dir, middle, 5, 0, readLines(t, filepath.Join(other, middle))[4])
		}, chain.KindInserted, middle, 5},
		{"record replaced by a forged one", false, unsigned, func(t *testing.T, dir string) {
			edit(t, dir, live, 3, func(l []byte) []byte {
				_, link, _ := chain.ParseLine(l)
				h := chain.Head{N: link.N - 1} // the right N, a made-up prev
				out, _ := h.Append(nil, []byte(`{"audit":{"forged":true}}`))
				return out
			})
		}, chain.KindInserted, live, 3},
		{"second record with a used number", false, unsigned, func(t *testing.T, dir string) {
			line := readLines(t, filepath.Join(dir, middle))[2]
			_, link, _ := chain.ParseLine(line)
			h := chain.Head{N: link.N - 1, Hash: link.Prev}
			forged, _ := h.Append(nil, []byte(`{"audit":{"forged":true}}`))
			splice(t, dir, live, 4, 0, forged)
		}, chain.KindInserted, live, 4},
		{"open seal inserted in the middle of a file", false, unsigned, func(t *testing.T, dir string) {
			lines := readLines(t, filepath.Join(dir, live))
			_, link, _ := chain.ParseLine(lines[3])
			h := chain.Head{N: link.N, Hash: link.Hash, File: 6}
			seal, _ := h.Seal(nil, chain.ReasonOpen, nil)
			splice(t, dir, live, 5, 5, seal) // the rest of the file is dropped: the seal is the last line
		}, chain.KindInserted, live, 5},
		{"plain line at the top of a rotated file", false, unsigned, func(t *testing.T, dir string) {
			splice(t, dir, middle, 1, 0, []byte(`{"audit":{}}`))
		}, chain.KindFileReplaced, middle, 1},
		// reordered
		{"two lines swapped", false, unsigned, func(t *testing.T, dir string) {
			move(t, dir, middle, 4, middle, 5)
		}, chain.KindReordered, middle, 4},
		{"line moved down", false, unsigned, func(t *testing.T, dir string) {
			move(t, dir, live, 2, live, 7)
		}, chain.KindReordered, live, 2},
		{"lines swapped across files", false, unsigned, func(t *testing.T, dir string) {
			a, b := readLines(t, filepath.Join(dir, middle)), readLines(t, filepath.Join(dir, live))
			a[9], b[1] = b[1], a[9]
			writeLines(t, filepath.Join(dir, middle), a, false)
			writeLines(t, filepath.Join(dir, live), b, false)
		}, chain.KindReordered, middle, 10},
		// duplicated
		{"line duplicated", false, unsigned, func(t *testing.T, dir string) {
			splice(t, dir, middle, 5, 0, readLines(t, filepath.Join(dir, middle))[3])
		}, chain.KindDuplicated, middle, 5},
		{"line copied from an older file", false, unsigned, func(t *testing.T, dir string) {
			splice(t, dir, live, 4, 0, readLines(t, filepath.Join(dir, oldest))[2])
		}, chain.KindDuplicated, live, 4},
		// truncated
		{"live file cut between seals", false, unsigned, func(t *testing.T, dir string) {
			cutLines(t, dir, live, 8)
		}, chain.KindTruncated, live, 9},
		{"live file torn", false, unsigned, func(t *testing.T, dir string) {
			tear(t, dir, live)
		}, chain.KindTruncated, live, 10},
		{"rotated file cut", false, unsigned, func(t *testing.T, dir string) {
			cutLines(t, dir, middle, 9)
		}, chain.KindTruncated, middle, 10},
		{"rotated file torn", false, unsigned, func(t *testing.T, dir string) {
			tear(t, dir, middle)
		}, chain.KindTruncated, middle, 11},
		{"compressed file cut short", false, unsigned, func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(dir, gzFile))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, gzFile), b[:len(b)-20], 0o600)
		}, chain.KindTruncated, gzFile, -1},
		// whole files
		{"middle file deleted", false, unsigned, func(t *testing.T, dir string) {
			remove(t, dir, gzFile)
		}, chain.KindFileMissing, middle, 1},
		{"newest rotated file deleted", false, unsigned, func(t *testing.T, dir string) {
			remove(t, dir, middle)
		}, chain.KindFileMissing, live, 1},
		{"oldest kept file deleted", false, unsigned, func(t *testing.T, dir string) {
			remove(t, dir, oldest)
		}, chain.KindFileMissing, gzFile, 1},
		{"live file deleted", false, unsigned, func(t *testing.T, dir string) {
			remove(t, dir, live)
		}, chain.KindFileMissing, live, 0},
		{"rotated file replaced by another chain's", false, unsigned, func(t *testing.T, dir string) {
			other := t.TempDir()
			genSet(t, other, nil, "b")
			writeLines(t, filepath.Join(dir, middle), readLines(t, filepath.Join(other, middle)), false)
		}, chain.KindFileReplaced, middle, 1},
		{"two rotated files joined", false, unsigned, func(t *testing.T, dir string) {
			lines := append(readLines(t, filepath.Join(dir, gzFile)), readLines(t, filepath.Join(dir, middle))...)
			writeLines(t, filepath.Join(dir, gzFile), lines, false)
			remove(t, dir, middle)
		}, chain.KindFileReplaced, gzFile, 12},
		{"rotated files swapped", false, unsigned, func(t *testing.T, dir string) {
			swapFiles(t, dir, oldest, middle)
		}, chain.KindFilesReordered, gzFile, 1},
		{"adjacent rotated files swapped", false, unsigned, func(t *testing.T, dir string) {
			swapFiles(t, dir, gzFile, middle)
		}, chain.KindFilesReordered, gzFile, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var key ed25519.PrivateKey
			if tc.signed {
				key = priv
			}
			genSet(t, dir, key, "a")
			if tc.mutate != nil {
				tc.mutate(t, dir)
			}
			r := chain.Verify(dirSet(t, dir), tc.opts)
			var p *chain.Problem
			if !errors.As(r.Err, &p) {
				t.Fatalf("Verify = %+v, want a %s problem", r, tc.kind)
			}
			if p.Kind != tc.kind || filepath.Base(p.File) != tc.file || (tc.line >= 0 && p.Line != tc.line) {
				t.Fatalf("problem %v, want %s at %s:%d", p, tc.kind, tc.file, tc.line)
			}
			t.Log(p)
		})
	}
}

func baseNames(paths []string) []string {
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	return names
}

// edit replaces line no (1-based) of a file with f(line).
func edit(t *testing.T, dir, name string, no int, f func([]byte) []byte) {
	t.Helper()
	path := filepath.Join(dir, name)
	lines := readLines(t, path)
	lines[no-1] = f(lines[no-1])
	writeLines(t, path, lines, false)
}

// splice deletes n lines from line no on and inserts add there.
func splice(t *testing.T, dir, name string, no, n int, add ...[]byte) {
	t.Helper()
	path := filepath.Join(dir, name)
	lines := readLines(t, path)
	writeLines(t, path, slices.Insert(slices.Delete(lines, no-1, no-1+n), no-1, add...), false)
}

// move takes line from of file a out and inserts it as line to of file b.
func move(t *testing.T, dir, a string, from int, b string, to int) {
	t.Helper()
	line := readLines(t, filepath.Join(dir, a))[from-1]
	splice(t, dir, a, from, 1)
	splice(t, dir, b, to, 0, line)
}

// cutLines keeps the first n lines of a file.
func cutLines(t *testing.T, dir, name string, n int) {
	t.Helper()
	path := filepath.Join(dir, name)
	writeLines(t, path, readLines(t, path)[:n], false)
}

// tear cuts a file's last line in the middle.
func tear(t *testing.T, dir, name string) {
	t.Helper()
	path := filepath.Join(dir, name)
	lines := readLines(t, path)
	last := lines[len(lines)-1]
	lines[len(lines)-1] = last[:len(last)/2]
	writeLines(t, path, lines, true)
}

func remove(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// swapFiles swaps the contents of two files, compressing as named.
func swapFiles(t *testing.T, dir, a, b string) {
	t.Helper()
	la, lb := readLines(t, filepath.Join(dir, a)), readLines(t, filepath.Join(dir, b))
	writeLines(t, filepath.Join(dir, a), lb, false)
	writeLines(t, filepath.Join(dir, b), la, false)
}

// rewrite edits record no of a file and recomputes the chain from there to
// the end of the file, as someone without the signing key can: signatures
// are kept as they were.
func rewrite(t *testing.T, dir, name string, no int) {
	t.Helper()
	path := filepath.Join(dir, name)
	lines := readLines(t, path)
	var prev [32]byte
	for i := no - 1; i < len(lines); i++ {
		p, link, err := chain.ParseLine(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		if i == no-1 {
			prev = link.Prev
			p = bytes.Replace(p, []byte(`"GET"`), []byte(`"PUT"`), 1)
		}
		link.Prev, link.Hash = prev, chain.Sum(prev, link.N, p)
		lines[i] = formatLine(p, link)
		prev = link.Hash
	}
	writeLines(t, path, lines, false)
}

// formatLine writes a line from the format's description, independently
// of the package's code.
func formatLine(p []byte, l chain.Link) []byte {
	field := fmt.Sprintf(`"ucp-audit/chain":{"n":%d,"prev":"%x","hash":"%x"`, l.N, l.Prev, l.Hash)
	if l.Sig != nil {
		field += fmt.Sprintf(`,"sig":"%s"`, base64.StdEncoding.EncodeToString(l.Sig))
	}
	field += "}}"
	if string(p) == "{}" {
		return []byte("{" + field)
	}
	return []byte(string(p[:len(p)-1]) + "," + field)
}

// TestVerifyInterruptedRotation: a crash after the rotate seal but before
// the rename leaves a live file ending with its rotate seal; the writer,
// seeing Sealed == ReasonRotate, rotates on start. Both states verify.
func TestVerifyInterruptedRotation(t *testing.T) {
	dir := t.TempDir()
	w := newSim(t, filepath.Join(dir, live), 3, nil, "a")
	w.start()
	w.run(3, chain.ReasonRotate)
	w.f.Close() // crash before the rename
	if r := chain.Verify(dirSet(t, dir), chain.VerifyOptions{}); !r.OK() {
		t.Fatalf("before the restart: %v", r.Err)
	}
	b, _ := os.ReadFile(w.path)
	h, err := chain.Recover(bytes.NewReader(b), int64(len(b)))
	if err != nil || h.Sealed != chain.ReasonRotate {
		t.Fatalf("Recover = %+v, %v", h, err)
	}
	w.h = h
	if err := os.Rename(w.path, w.rotated(1)); err != nil {
		t.Fatal(err)
	}
	w.start()
	w.run(2, chain.ReasonClose)
	w.f.Close()
	r := chain.Verify(dirSet(t, dir), chain.VerifyOptions{})
	if !r.OK() || r.Files != 2 || r.Records != 9 {
		t.Fatalf("after the restart: %+v", r)
	}
}

func TestVerifyEmptyAndUnreadable(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, live), nil, 0o600)
	if r := chain.Verify(dirSet(t, dir), chain.VerifyOptions{}); !r.OK() || r.Records != 0 || r.Files != 1 {
		t.Errorf("an empty live file: %+v", r)
	}
	gone := filepath.Join(dir, "gone.log")
	r := chain.Verify(auditlog.Set{Base: gone, Files: []string{gone}, Index: []int{0}}, chain.VerifyOptions{})
	var p *chain.Problem
	if !errors.Is(r.Err, os.ErrNotExist) || errors.As(r.Err, &p) {
		t.Errorf("an unreadable file: %v, want an os error, not a problem", r.Err)
	}
}
