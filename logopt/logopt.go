// Package logopt owns what every parser of log-opts shares: the error that
// names the offending option (OptionError, wrapping ErrUnknownOption or
// ErrInvalidValue), tables of per-key parsers, the value parsers Docker's
// own drivers use (sizes, whole numbers) and a destination's TLS client
// files (tls.go). Package config and each remote destination (sink/syslog,
// sink/logstash) parse their own keys with it, so that every log-opt error
// reads the same whoever owns the key.
package logopt

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
)

// ErrUnknownOption and ErrInvalidValue are wrapped by every OptionError, so
// callers can tell a typo in a key from a bad value.
var (
	ErrUnknownOption = errors.New("unknown option")
	ErrInvalidValue  = errors.New("invalid value")
)

// OptionError names the offending log-opt. It wraps ErrUnknownOption or
// ErrInvalidValue, and the reason when there is one.
type OptionError struct {
	Key, Value string
	Err        error  // ErrUnknownOption or ErrInvalidValue
	Reason     error  // why the value is invalid; may be nil
	Want       string // what is allowed
}

// Error names the key and its value. The value of an address key
// (…-address) is masked (MaskAddress), here and wherever the reason
// repeats it: the error reaches the user, the plugin's log and the trail.
func (e *OptionError) Error() string {
	if errors.Is(e.Err, ErrUnknownOption) {
		return fmt.Sprintf("ucp-audit: log-opt %q: unknown option (known: %s)", e.Key, e.Want)
	}
	value := e.Value
	if IsAddressKey(e.Key) {
		value = MaskAddress(value)
	}
	msg := fmt.Sprintf("ucp-audit: log-opt %q: invalid value %q", e.Key, value)
	if e.Reason != nil {
		reason := e.Reason.Error()
		if IsAddressKey(e.Key) {
			reason = maskIn(reason, e.Value)
		}
		msg += ": " + reason
	}
	if e.Want != "" {
		msg += " (want " + e.Want + ")"
	}
	return msg
}

// IsAddressKey reports whether key names a destination's address, whose
// value may hold credentials.
func IsAddressKey(key string) bool { return strings.HasSuffix(key, "-address") }

func (e *OptionError) Unwrap() []error {
	if e.Reason == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Reason}
}

// Invalid is the error for key=value: want says what is allowed (may be
// empty), reason why value is not (may be nil).
func Invalid(key, value, want string, reason error) error {
	return &OptionError{Key: key, Value: value, Err: ErrInvalidValue, Reason: reason, Want: want}
}

// Unknown is the error for a key nobody owns; known lists the keys that
// are accepted.
func Unknown(key, value string, known []string) error {
	return &OptionError{Key: key, Value: value, Err: ErrUnknownOption, Want: strings.Join(known, ", ")}
}

// Parser sets its part of *T from one value. It returns what is allowed
// (the "want" of the error) and, when v is not allowed, the reason.
type Parser[T any] func(t *T, v string) (want string, err error)

// Table maps each key an owner accepts to its parser.
type Table[T any] map[string]Parser[T]

// With returns a table holding the keys of tb and of more.
func (tb Table[T]) With(more Table[T]) Table[T] {
	out := make(Table[T], len(tb)+len(more))
	for k, p := range tb {
		out[k] = p
	}
	for k, p := range more {
		out[k] = p
	}
	return out
}

// Keys returns the table's keys, sorted.
func (tb Table[T]) Keys() []string {
	keys := make([]string, 0, len(tb))
	for k := range tb {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Set parses key=value into t; the error names the key. A key that is not
// in the table is an unknown option.
func (tb Table[T]) Set(t *T, key, value string) error {
	p, ok := tb[key]
	if !ok {
		return Unknown(key, value, tb.Keys())
	}
	if want, err := p(t, value); err != nil {
		return Invalid(key, value, want, err)
	}
	return nil
}

// SetAll sets every key of opts into t, in sorted order, so that the error
// for several bad keys is deterministic.
func (tb Table[T]) SetAll(t *T, opts map[string]string) error {
	for _, k := range SortedKeys(opts) {
		if err := tb.Set(t, k, opts[k]); err != nil {
			return err
		}
	}
	return nil
}

// SortedKeys returns the keys of m, sorted.
func SortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// RequireAddress checks the keys of opts that name the destination prefix
// (prefix+"-…") against its address: none may be set without
// prefix+"-address" (set reports whether it is), and a prefix+"-tls-…" key
// only with a TLS address (isTLS). Keys are checked in sorted order.
func RequireAddress(prefix string, opts map[string]string, set, isTLS bool) error {
	addrKey := prefix + "-address"
	for _, k := range SortedKeys(opts) {
		if !strings.HasPrefix(k, prefix+"-") || k == addrKey {
			continue
		}
		if !set {
			return Invalid(k, opts[k], "", fmt.Errorf("set without %q", addrKey))
		}
		if strings.HasPrefix(k, prefix+"-tls-") && !isTLS {
			return Invalid(k, opts[k], "", fmt.Errorf("%q is not a TLS address", MaskAddress(opts[addrKey])))
		}
	}
	return nil
}

// NotAllowed drops a parser's own wording when the "want" says it all.
func NotAllowed(err error) error {
	if err == nil {
		return nil
	}
	return errors.New("not allowed")
}

// Size parses one of ucp-audit's own sizes (go-units' RAMInBytes: 10k,
// 20m, 1g are binary multiples, as dockerd's max-buffer-size). -1 is
// accepted when lo is -1.
func Size(v string, lo, hi int64) (int64, error) {
	return size(v, lo, hi, units.RAMInBytes)
}

// DockerSize parses a size the way Docker's json-file and local drivers
// parse their max-size (go-units' FromHumanSize: 20m is 20,000,000 bytes),
// for the options that mean what Docker's mean.
func DockerSize(v string, lo, hi int64) (int64, error) {
	return size(v, lo, hi, units.FromHumanSize)
}

func size(v string, lo, hi int64, parse func(string) (int64, error)) (int64, error) {
	if lo == -1 && strings.TrimSpace(v) == "-1" {
		return -1, nil
	}
	n, err := parse(v)
	if err != nil {
		return 0, errors.New("not a size")
	}
	if n < lo || n > hi {
		return 0, errors.New("out of range")
	}
	return n, nil
}

// Count parses a whole number from lo to hi.
func Count(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, errors.New("not a whole number")
	}
	if n < lo || n > hi {
		return 0, errors.New("out of range")
	}
	return n, nil
}
