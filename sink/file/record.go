package file

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/ucp-audit/ucp-audit/atomicfile"
	"github.com/ucp-audit/ucp-audit/chain"
)

// recordLocked records the last seal written, once everything written was
// flushed and fsync'd (the record itself is then fsync'd too); a failure
// leaves the record as it was, to be tried again at the next flush.
func (f *file) recordLocked() {
	c := f.chain
	if c == nil || c.record == "" || c.sealed.N == 0 || sameSeal(c.sealed, c.recorded) {
		return
	}
	if err := writeRecord(c.record, f.path, c.sealed, c.head, true); err != nil {
		if c.onRecordError != nil {
			c.onRecordError(f.path, err)
		}
		return
	}
	c.recorded, c.announced = c.sealed, c.head
}

// announceLocked records the head as the last record written, before any
// of the buffered lines reaches the file (see announcer): a record found
// in the file after it, when the file is opened again, was not written by
// this writer. The record is not fsync'd for it: after a kill the page
// cache keeps it with the file's lines; after a power loss the lines
// written since the last seal may show as unvouched.
func (f *file) announceLocked() {
	c := f.chain
	if c == nil || c.record == "" || !c.known || c.head.N == 0 || sameSeal(c.head, c.announced) {
		return
	}
	if err := writeRecord(c.record, f.path, c.recorded, c.head, false); err != nil {
		if c.onRecordError != nil {
			c.onRecordError(f.path, err)
		}
		return
	}
	c.announced = c.head
}

// announcer is the file's buffer's writer: it announces the head before
// every write(2), so that the record is never behind what the file holds.
type announcer struct{ f *file }

func (a announcer) Write(p []byte) (int, error) {
	a.f.announceLocked()
	return a.f.fd.Write(p)
}

func sameSeal(a, b chain.Head) bool {
	return a.N == b.N && a.Hash == b.Hash && a.File == b.File
}

// recordPath returns the record's path for the audit file at path (clean).
func recordPath(dir, path string) string {
	sum := sha256.Sum256([]byte(path))
	return filepath.Join(dir, hex.EncodeToString(sum[:16])+".json")
}

// headRecord is a record's content: the chain's head as of the last seal
// that reached the file at Path (N, Hash, File), and as of the last record
// the writer handed to the kernel (Written; absent in records written
// before it was kept).
type headRecord struct {
	Path    string    `json:"path"`
	N       uint64    `json:"n"`
	Hash    string    `json:"hash"` // 64 lowercase hex digits
	File    uint64    `json:"file"`
	Written *headWire `json:"written,omitempty"`
}

type headWire struct {
	N    uint64 `json:"n"`
	Hash string `json:"hash"`
	File uint64 `json:"file"`
}

func wire(h chain.Head) headWire {
	return headWire{N: h.N, Hash: hex.EncodeToString(h.Hash[:]), File: h.File}
}

func (w headWire) head() (chain.Head, bool) {
	var h chain.Head
	if w.N == 0 || w.File == 0 || len(w.Hash) != 2*len(h.Hash) {
		return chain.Head{}, false
	}
	if _, err := hex.Decode(h.Hash[:], []byte(w.Hash)); err != nil {
		return chain.Head{}, false
	}
	h.N, h.File = w.N, w.File
	return h, true
}

// readRecord returns the heads in the record at name for path: as of the
// last seal that reached the file, and as of the last record written. A
// head is the zero Head when there is no record or it is unusable
// (unreadable, malformed, or for another path).
func readRecord(name, path string) (sealed, written chain.Head) {
	if name == "" {
		return chain.Head{}, chain.Head{}
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return chain.Head{}, chain.Head{}
	}
	var r headRecord
	if json.Unmarshal(b, &r) != nil || r.Path != path {
		return chain.Head{}, chain.Head{}
	}
	// Either may be missing: no seal had reached the file yet when the
	// record was written, or the record is older than Written.
	sealed, _ = headWire{N: r.N, Hash: r.Hash, File: r.File}.head()
	if r.Written != nil {
		written, _ = r.Written.head()
	}
	return sealed, written
}

// writeRecord replaces the record at name for path with atomicfile; when
// durable, the file and the directory are fsync'd.
func writeRecord(name, path string, sealed, written chain.Head, durable bool) error {
	r := headRecord{Path: path, N: sealed.N, Hash: hex.EncodeToString(sealed.Hash[:]), File: sealed.File}
	if written.N > 0 {
		w := wire(written)
		r.Written = &w
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	w := atomicfile.Writer{Sync: fsync}
	if !durable {
		w.Sync = func(*os.File) error { return nil }
	}
	return w.WriteFile(name, append(b, '\n'), 0o600)
}
