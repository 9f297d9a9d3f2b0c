package chain

// Reading the files for Verify: line by line, plain or gzip, with the
// errors classified as problems of the files, and the searches that name a
// problem (records later or earlier than where they should be).

import (
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

// readProblem classifies an error reading the files.
func (v *verifier) readProblem(err error) {
	var re *readError
	if !errors.As(err, &re) {
		v.res.Err = err
		return
	}
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(re.err, auditlog.ErrLineTooLong):
		v.fail(KindModified, re.file, re.line, 0, "a line longer than %d bytes", auditlog.MaxLine)
	case errors.Is(re.err, io.ErrUnexpectedEOF):
		v.fail(KindTruncated, re.file, re.line, 0, "the compressed file is cut short")
	case errors.Is(re.err, gzip.ErrChecksum), errors.Is(re.err, gzip.ErrHeader), errors.As(re.err, &corrupt):
		v.fail(KindModified, re.file, re.line, 0, "the compressed file is corrupt: %v", re.err)
	default:
		v.res.Err = re.err
	}
}

// later looks after line no of file i for a valid record numbered lo to
// hi, and returns where the first one is and its number.
func (v *verifier) later(i int, no int64, lo, hi uint64) (fi int, at int64, n uint64, found bool) {
	eachLine(v.set.Files[i:], func(j int, k int64, line []byte, torn bool) bool {
		if (j == 0 && k <= no) || torn {
			return true
		}
		if l, ok := validRecord(line); ok && l.N >= lo && l.N <= hi {
			fi, at, n, found = i+j, k, l.N, true
			return false
		}
		return true
	}, nil)
	return fi, at, n, found
}

// validRecord parses a line and checks its hash.
func validRecord(line []byte) (Link, bool) {
	body, l, err := parse(line)
	return l, err == nil && sum(l.Prev, l.N, body, []byte("}")) == l.Hash
}

// laterFile looks in the files after file i for one whose first line is
// the valid open seal of a file numbered lo to hi.
func (v *verifier) laterFile(i int, lo, hi uint64) (int, bool) {
	for j := i + 1; j < len(v.set.Files); j++ {
		found := false
		eachLine(v.set.Files[j:j+1], func(_ int, _ int64, line []byte, torn bool) bool {
			body, l, err := parse(line)
			if err != nil || torn || sum(l.Prev, l.N, body, []byte("}")) != l.Hash {
				return false
			}
			s, err := ParseSeal(append(body[:len(body):len(body)], '}'))
			found = err == nil && s.Reason == ReasonOpen && s.File >= lo && s.File <= hi
			return false
		}, nil)
		if found {
			return j, true
		}
	}
	return 0, false
}

// earlier looks before line no of file i for the first valid record
// numbered n, and returns where it is and its hash.
func (v *verifier) earlier(i int, no int64, n uint64) (fi int, at int64, hash [32]byte, found bool) {
	eachLine(v.set.Files[:i+1], func(j int, k int64, line []byte, torn bool) bool {
		if j == i && k >= no {
			return false
		}
		if l, ok := validRecord(line); ok && !torn && l.N == n {
			fi, at, hash, found = j, k, l.Hash, true
			return false
		}
		return true
	}, nil)
	return fi, at, hash, found
}

// readError is an error reading line line of file file.
type readError struct {
	file int
	line int64
	err  error
}

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// eachLine calls fn for each line of files (without its newline; torn for
// a last line without one), then eof (when not nil) with the file's number
// of lines. A false from either stops the walk, and eachLine returns nil.
// The line is valid only during the call. Errors are *readError; a line
// longer than auditlog.MaxLine is one wrapping auditlog.ErrLineTooLong.
func eachLine(files []string, fn func(i int, no int64, line []byte, torn bool) bool, eof func(i int, lines int64) bool) error {
	for i, name := range files {
		more, err := fileLines(i, name, fn, eof)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// fileLines is eachLine for file i. It returns false when the walk stops.
func fileLines(i int, name string, fn func(i int, no int64, line []byte, torn bool) bool, eof func(i int, lines int64) bool) (bool, error) {
	rc, err := auditlog.Open(name)
	if err != nil {
		return false, &readError{i, 1, err}
	}
	defer rc.Close()
	lr := auditlog.NewLineReader(rc, auditlog.MaxLine)
	for {
		line, err := lr.Next()
		switch {
		case err == nil:
			if !fn(i, int64(lr.Line()), line, false) {
				return false, nil
			}
		case err == io.EOF:
			line, ok, err := lr.Rest()
			if err != nil {
				return false, &readError{i, int64(lr.Line()), err}
			}
			if ok && !fn(i, int64(lr.Line()), line, true) {
				return false, nil
			}
			return eof == nil || eof(i, int64(lr.Line())), nil
		case errors.Is(err, auditlog.ErrLineTooLong):
			return false, &readError{i, int64(lr.Line()), err}
		default:
			return false, &readError{i, int64(lr.Line()) + 1, fmt.Errorf("%s: %w", name, err)}
		}
	}
}
