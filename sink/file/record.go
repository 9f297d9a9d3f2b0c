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
// flushed and fsync'd; a failure leaves the record as it was, to be tried
// again at the next flush.
func (f *file) recordLocked() {
	c := f.chain
	if c == nil || c.record == "" || c.sealed.N == 0 || sameSeal(c.sealed, c.recorded) {
		return
	}
	if err := writeRecord(c.record, f.path, c.sealed); err != nil {
		if c.onRecordError != nil {
			c.onRecordError(f.path, err)
		}
		return
	}
	c.recorded = c.sealed
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
// that reached the file at Path.
type headRecord struct {
	Path string `json:"path"`
	N    uint64 `json:"n"`
	Hash string `json:"hash"` // 64 lowercase hex digits
	File uint64 `json:"file"`
}

// readRecord returns the head in the record at name for path; the zero
// Head when there is none or it is unusable (unreadable, malformed, or for
// another path).
func readRecord(name, path string) chain.Head {
	if name == "" {
		return chain.Head{}
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return chain.Head{}
	}
	var r headRecord
	var h chain.Head
	if json.Unmarshal(b, &r) != nil || r.Path != path || r.N == 0 || r.File == 0 || len(r.Hash) != 2*len(h.Hash) {
		return chain.Head{}
	}
	if _, err := hex.Decode(h.Hash[:], []byte(r.Hash)); err != nil {
		return chain.Head{}
	}
	h.N, h.File = r.N, r.File
	return h
}

// writeRecord replaces the record at name with head, for path, with
// atomicfile (the directory is fsync'd after the rename).
func writeRecord(name, path string, head chain.Head) error {
	b, err := json.Marshal(headRecord{Path: path, N: head.N, Hash: hex.EncodeToString(head.Hash[:]), File: head.File})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	return atomicfile.Writer{Sync: fsync}.WriteFile(name, append(b, '\n'), 0o600)
}
