package audit

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

var (
	// ErrNotAudit is returned by Parse for a line that does not look like
	// audit at all (LooksLikeAudit is false). Such lines are not errors for
	// the pipeline; they are simply not forwarded.
	ErrNotAudit = errors.New("not an audit line")

	// ErrInvalid is wrapped by every error Parse returns for a line that
	// looks like audit but cannot be used. The concrete type is
	// *ValidationError.
	ErrInvalid = errors.New("invalid audit event")

	// ErrBadLevel is wrapped by ParseLevel errors.
	ErrBadLevel = errors.New("invalid audit level")

	// ErrBadIgnore is wrapped by NewIgnore and ParseIgnore errors.
	ErrBadIgnore = errors.New("invalid ignore list")
)

// ValidationError says what is wrong with an audit line that Parse rejected.
// It matches ErrInvalid with errors.Is.
type ValidationError struct {
	Field  string // JSON path of the field, e.g. "user.username"; "" for the line as a whole
	Value  string // the offending string value, if any (truncated)
	Reason string // what is wrong, e.g. "missing", "not RFC 3339"
}

// Error formats as `invalid audit event: field "F": invalid value "V": R`,
// leaving out the parts that are empty.
func (e *ValidationError) Error() string {
	switch {
	case e.Field == "":
		return fmt.Sprintf("%v: %s", ErrInvalid, e.Reason)
	case e.Value != "":
		return fmt.Sprintf("%v: field %q: invalid value %q: %s", ErrInvalid, e.Field, e.Value, e.Reason)
	default:
		return fmt.Sprintf("%v: field %q: %s", ErrInvalid, e.Field, e.Reason)
	}
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// maxValueLen bounds ValidationError.Value so a huge bad field cannot
// blow up an error message.
const maxValueLen = 128

// invalidValue builds a ValidationError for a bad string value.
func invalidValue(field, value, reason string) *ValidationError {
	if len(value) > maxValueLen {
		cut := maxValueLen
		for cut > 0 && !utf8.RuneStart(value[cut]) {
			cut--
		}
		value = value[:cut] + "…"
	}
	return &ValidationError{Field: field, Value: value, Reason: reason}
}
