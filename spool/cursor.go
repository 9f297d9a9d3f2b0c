package spool

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/ucp-audit/ucp-audit/atomicfile"
)

// A destination's cursor is a small JSON file in the spool directory,
// named after a hash of the destination's name, replaced atomically
// (atomicfile) at every commit.

func (s *Spool) cursorPath(dest string) string {
	h := sha256.Sum256([]byte(dest))
	return filepath.Join(s.o.Dir, "cursor-"+hex.EncodeToString(h[:8])+".json")
}

type cursorFile struct {
	Destination string   `json:"destination"`
	Position    Position `json:"position"`
}

func (s *Spool) loadCursor(dest string) (*Position, error) {
	b, err := os.ReadFile(s.cursorPath(dest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spool cursor: %w", err)
	}
	var c cursorFile
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("spool cursor %q: %w", s.cursorPath(dest), err)
	}
	return &c.Position, nil
}

func (s *Spool) saveCursor(dest string, pos Position) error {
	b, _ := json.Marshal(cursorFile{Destination: dest, Position: pos})
	if err := atomicfile.WriteFile(s.cursorPath(dest), b, 0o600); err != nil {
		return fmt.Errorf("spool cursor: %w", err)
	}
	return nil
}

// clampLocked moves a position that points before the oldest segment (or
// past the end) to a valid one.
func (s *Spool) clampLocked(p Position) Position {
	if first := s.log.First(); p.Seg < first.Seg {
		return first
	}
	if end := s.log.End(); end.Before(p) {
		return end
	}
	return p
}

func (s *Spool) sortedDestinations() []string {
	ds := make([]string, 0, len(s.cursors))
	for d := range s.cursors {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	return ds
}
