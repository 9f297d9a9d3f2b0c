package audit

import (
	"fmt"
	"strings"
)

// Level is an audit level. The event's own level and the policy ceiling
// share this type; a higher level carries more data.
type Level int

// Audit levels, in increasing order of detail.
const (
	LevelNone     Level = iota // nothing is forwarded
	LevelMetadata              // who, what, when; no payloads
	LevelRequest               // metadata plus request and response payloads
)

// ParseLevel parses "none", "metadata" or "request", case-insensitively
// and ignoring surrounding spaces. Errors wrap ErrBadLevel.
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none":
		return LevelNone, nil
	case "metadata":
		return LevelMetadata, nil
	case "request":
		return LevelRequest, nil
	}
	return LevelNone, fmt.Errorf("%w %q: want none, metadata or request", ErrBadLevel, s)
}

// String returns "none", "metadata" or "request" ("Level(N)" otherwise).
func (l Level) String() string {
	switch l {
	case LevelNone:
		return "none"
	case LevelMetadata:
		return "metadata"
	case LevelRequest:
		return "request"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}
