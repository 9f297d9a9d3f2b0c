package pipeline

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ucp-audit/ucp-audit/atomicfile"
	"github.com/ucp-audit/ucp-audit/audit"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/driver/ingest"
)

// State is a stream's state, persisted in the container's directory
// (StateFile) at every checkpoint, after the sinks were synced. Processing
// resumes from it.
type State struct {
	Info dockerlog.Info `json:"info"`
	// Annotations are the container's labels and environment its options
	// select (config.Config.Annotations), on every event; kept here, as
	// Info keeps neither its labels nor its environment.
	Annotations []audit.Annotation `json:"annotations,omitempty"`
	// Safe is where reading must resume: no line that starts before it is
	// still unfinished.
	Safe ingest.Position `json:"safe"`
	// Done and DoneN name the last line handled: the end of the frame
	// that completed it, and its index among the lines that frame
	// completed (a frame can complete up to three: unfinished lines it
	// supersedes, and its own; the end of the stream completes the rest
	// after the last frame). Lines named at or before them are not
	// handled again.
	Done  ingest.Position `json:"done"`
	DoneN int             `json:"done-n,omitempty"`
	// Overlong notes, per source, a pending line already past
	// max-line-size whose start no longer pins the store: a restart
	// resumes it without its head (see reassembler.resume), so it is
	// still quarantined.
	Overlong map[string]OverlongLine `json:"overlong,omitempty"`
	Seq      uint64                  `json:"seq"`
	// Chain is the hash of the container's last forwarded event: the
	// prev of the next one's link (see Pipeline.link).
	Chain       Hash   `json:"chain"`
	Quarantined uint64 `json:"quarantined"`
	Skipped     uint64 `json:"skipped"`
	// Untrusted counts the audit-looking lines of a container that was not
	// an audit producer when it printed them.
	Untrusted uint64 `json:"untrusted,omitempty"`
	// Running is set while dockerd logs to FIFO: a plugin that starts and
	// finds it set re-attaches to the FIFO (dockerd never calls
	// StartLogging again after a plugin crash).
	Running bool      `json:"running"`
	FIFO    string    `json:"fifo,omitempty"`
	Updated time.Time `json:"updated"`
}

// OverlongLine identifies a pending over-long line.
type OverlongLine struct {
	ID       string `json:"id"`
	TimeNano int64  `json:"time"`
}

// StateFile is the name of the state's file in the container's directory.
const StateFile = "state.json"

// Load reads the state saved in dir; found is false when there is none.
func Load(dir string) (_ State, found bool, _ error) {
	var st State
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("stream state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, false, fmt.Errorf("stream state %q: %w", filepath.Join(dir, StateFile), err)
	}
	return st, true, nil
}

// Save writes the state to dir atomically and durably.
func Save(dir string, st State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("stream state: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, StateFile), b, 0o600); err != nil {
		return fmt.Errorf("stream state: %w", err)
	}
	return nil
}

// Hash is a SHA-256 hash, kept in JSON as hex.
type Hash [32]byte

// MarshalText returns h in hex.
func (h Hash) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, h[:]), nil }

// UnmarshalText reads 64 hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("hash %q: want 64 hex digits", b)
	}
	_, err := hex.Decode(h[:], b)
	return err
}
