package chain_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
)

// testKey returns a fixed key pair derived from seed.
func testKey(seed byte) (ed25519.PrivateKey, ed25519.PublicKey) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return priv, priv.Public().(ed25519.PublicKey)
}

// fixedClock returns a clock that starts at a fixed time and advances one
// second per call.
func fixedClock() func() time.Time {
	t := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

// sim writes one chained file the way the file sink does: lines with a
// newline, rotation by renaming path.k to path.k+1, a torn tail cut on
// start, Recover and a resume seal on re-opening.
type sim struct {
	t    testing.TB
	path string
	s    *chain.Sealer
	h    chain.Head
	f    *os.File
	ev   int
	tag  string
}

func newSim(t testing.TB, path string, keep int, key ed25519.PrivateKey, tag string) *sim {
	return &sim{t: t, path: path, s: &chain.Sealer{Key: key, Keep: keep, Now: fixedClock()}, tag: tag}
}

// start opens the file: a new one gets an open seal, an existing one is
// recovered (its torn tail cut) and gets a resume seal.
func (w *sim) start() {
	w.t.Helper()
	size := w.openLive()
	if size == 0 {
		w.seal(chain.ReasonOpen)
		return
	}
	var err error
	if w.h, err = chain.Recover(w.f, size); err != nil {
		w.t.Fatal(err)
	}
	w.seal(chain.ReasonResume)
}

// openLive opens the live file for appending as w.f, cuts its torn tail
// and returns its size.
func (w *sim) openLive() int64 {
	w.t.Helper()
	f, err := os.OpenFile(w.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		w.t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		w.t.Fatal(err)
	}
	size := int64(bytes.LastIndexByte(b, '\n') + 1)
	if err := f.Truncate(size); err != nil {
		w.t.Fatal(err)
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		w.t.Fatal(err)
	}
	w.f = f
	return size
}

func (w *sim) writeLine(line []byte) {
	w.t.Helper()
	if _, err := w.f.Write(append(line, '\n')); err != nil {
		w.t.Fatal(err)
	}
}

func (w *sim) record() []byte {
	w.ev++
	return fmt.Appendf(nil, `{"audit":{"user":"u%d","verb":"GET","requestURI":"/containers/json?all=%d","tag":%q},"container":"c%d","level":"info","msg":"audit"}`, w.ev%5, w.ev, w.tag, w.ev%3)
}

func (w *sim) events(n int) {
	w.t.Helper()
	for range n {
		line, err := w.h.Append(nil, w.record())
		if err != nil {
			w.t.Fatal(err)
		}
		w.writeLine(line)
	}
}

func (w *sim) seal(r chain.Reason) {
	w.t.Helper()
	line, err := w.h.Seal(nil, r, w.s)
	if err != nil {
		w.t.Fatal(err)
	}
	w.writeLine(line)
}

func (w *sim) rotated(k int) string { return fmt.Sprintf("%s.%d", w.path, k) }

// rotate seals the file, shifts the rotated files (dropping the one beyond
// keep) and opens a fresh file.
func (w *sim) rotate() {
	w.t.Helper()
	w.seal(chain.ReasonRotate)
	w.f.Close()
	os.Remove(w.rotated(w.s.Keep - 1))
	for k := w.s.Keep - 2; k >= 1; k-- {
		if err := os.Rename(w.rotated(k), w.rotated(k+1)); err != nil && !os.IsNotExist(err) {
			w.t.Fatal(err)
		}
	}
	if err := os.Rename(w.path, w.rotated(1)); err != nil {
		w.t.Fatal(err)
	}
	w.start()
}

// crash writes half a line and drops the writer's state.
func (w *sim) crash() {
	w.t.Helper()
	line, err := w.h.Append(nil, w.record())
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.f.Write(line[:len(line)/2]); err != nil {
		w.t.Fatal(err)
	}
	w.f.Close()
	w.h = chain.Head{}
}

// The clean set genSet writes: four files of one chain, keep 4, files 1
// and 2 pruned by rotation.
const (
	oldest = "audit.log.3"    // file 3: open, 4 events, close | resume (clean), 3 events, interval, 2 events, rotate
	gzFile = "audit.log.2.gz" // file 4: open, 5 events, crash | resume (not clean), 3 events, rotate
	middle = "audit.log.1"    // file 5: open, 6 events, interval, 2 events, rotate
	live   = "audit.log"      // file 6: open, 4 events, interval, 3 events, close
)

// genSet writes the clean set in dir with the real API and returns the
// writer (whose Head is the chain's end). tag varies the records' content,
// so that two sets with different tags are two chains of the same shape.
func genSet(t testing.TB, dir string, key ed25519.PrivateKey, tag string) *sim {
	t.Helper()
	w := newSim(t, filepath.Join(dir, live), 4, key, tag)
	w.start()
	w.run(5, rotate, 5, chain.ReasonInterval, 3, rotate, // files 1 and 2
		4, chain.ReasonClose, restart, 3, chain.ReasonInterval, 2, rotate, // file 3
		5, crash, restart, 3, rotate, // file 4
		6, chain.ReasonInterval, 2, rotate, // file 5
		4, chain.ReasonInterval, 3, chain.ReasonClose) // file 6
	w.f.Close()
	gz := filepath.Join(dir, "audit.log.2")
	writeLines(t, gz+".gz", readLines(t, gz), false)
	os.Remove(gz)
	return w
}

// Steps of sim.run besides records and seals.
type step int

const (
	rotate  step = iota // seal, rotate and open the next file
	restart             // start again on the existing file (after a close or a crash)
	crash               // write half a line and drop the state
)

// run does steps: an int writes that many records, a Reason writes a seal,
// a step does it.
func (w *sim) run(steps ...any) {
	w.t.Helper()
	for _, s := range steps {
		switch s := s.(type) {
		case int:
			w.events(s)
		case chain.Reason:
			w.seal(s)
		case step:
			map[step]func(){rotate: w.rotate, restart: w.start, crash: w.crash}[s]()
		}
	}
}

// chainBytes returns a file's bytes and the head after them: a string item
// is a record, a Reason a seal (unsigned).
func chainBytes(t testing.TB, items ...any) ([]byte, chain.Head) {
	t.Helper()
	var (
		h   chain.Head
		b   []byte
		err error
	)
	for _, it := range items {
		switch it := it.(type) {
		case string:
			b, err = h.Append(b, []byte(it))
		case chain.Reason:
			b, err = h.Seal(b, it, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, '\n')
	}
	return b, h
}

// dirSet returns the set of dir's audit.log.
func dirSet(t testing.TB, dir string) auditlog.Set {
	t.Helper()
	sets, err := auditlog.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	return sets[0]
}

// readLines returns a file's lines (without newlines), decompressing a
// .gz file.
func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	rc, err := auditlog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var lines [][]byte
	sc := bufio.NewScanner(rc)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// writeLines replaces a file with lines, each with a newline but the last
// when torn, compressed when path ends in .gz.
func writeLines(t testing.TB, path string, lines [][]byte, torn bool) {
	t.Helper()
	var b bytes.Buffer
	for i, l := range lines {
		b.Write(l)
		if !torn || i < len(lines)-1 {
			b.WriteByte('\n')
		}
	}
	data := b.Bytes()
	if filepath.Ext(path) == ".gz" {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(data)
		zw.Close()
		data = z.Bytes()
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
