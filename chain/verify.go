package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

// Kind classifies a Problem. The package documentation gives the rule
// behind each kind.
type Kind string

// The kinds of problem Verify reports.
const (
	KindModified       Kind = "modified"        // a line's hash does not match its content, or its chain field or seal is malformed
	KindBadSignature   Kind = "bad-signature"   // a seal's signature does not verify with the given key
	KindUnsigned       Kind = "unsigned"        // a key was given but a seal has no signature
	KindDeleted        Kind = "deleted"         // records are missing
	KindInserted       Kind = "inserted"        // a line that does not belong to the chain at its place
	KindReordered      Kind = "reordered"       // records are present but out of order
	KindDuplicated     Kind = "duplicated"      // a record appears a second time
	KindTruncated      Kind = "truncated"       // a file ends before its last seal, or in the middle of a line; or a resume seal says sealed records were cut off
	KindFileMissing    Kind = "file-missing"    // a whole file of the chain is missing; or an open seal says the newest files were
	KindFileReplaced   Kind = "file-replaced"   // a file does not continue the chain where it should; or a seal says its file is not the one sealed
	KindFilesReordered Kind = "files-reordered" // files are out of order
	KindUnvouched      Kind = "unvouched"       // an open or resume seal says the records before it were not written by its writer
)

// Problem is the first thing wrong with a chain, as Verify reports it in
// Result.Err; use errors.As to get it.
type Problem struct {
	Kind   Kind
	File   string // the file's path as in the Set (the live file's path for a missing live file)
	Line   int64  // 1-based line number in File; 0 when a whole file is missing
	N      uint64 // chain number of the record concerned; 0 when unknown
	Detail string // what was found, for people
}

// Error returns "file:line: kind: detail".
func (p *Problem) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Kind, p.Detail)
}

// VerifyOptions are Verify's settings. The zero value checks an unsigned
// chain that must end sealed.
type VerifyOptions struct {
	// Key and Keys, when set, are the keys the seals must be signed with:
	// a seal names its key by fingerprint, and a seal signed by none of
	// them, or whose signature does not verify, is KindBadSignature (give
	// the old and the new key to verify across a key change). Unsigned
	// seals are accepted only before the first signed seal of the set
	// (signing was turned on: that signed seal vouches for everything
	// before it), and only when one follows; an unsigned seal after a
	// signed one, or with none after it, is KindUnsigned. No key: the
	// signatures are not checked (Result.Signed says whether there were
	// any).
	Key  ed25519.PublicKey
	Keys []ed25519.PublicKey
	// AllowUnsealedTail accepts records after the live file's last seal,
	// and a partial last line there: a file that is still being written.
	AllowUnsealedTail bool
	// Fragment checks the files as a part of a set, such as rotated files
	// copied off the node: a live file that does not exist, and files
	// older than the oldest given, are not reported missing. Everything
	// else is checked as usual.
	Fragment bool
	// OnSeal, when set, is called with the number and content of each
	// seal Verify accepts, in chain order, as it accepts it: on a set that
	// fails, with the seals before the problem. Seals carry the time the
	// plugin wrote them, so the first and last give the span of time in
	// which the records verified were written.
	OnSeal func(n uint64, s Seal)
}

// Result is what Verify found in one set.
type Result struct {
	Base    string // the set's live file
	Files   int    // files read to the end
	Records uint64 // chained lines accepted, seals included
	Seals   uint64 // seals accepted (signed with Key, when one was given)
	First   uint64 // N of the first line accepted; 0 when none
	Last    uint64 // N of the last line accepted
	// Signed reports whether any seal carries a signature, checked or not.
	Signed bool
	// SignedFrom is the N of the first seal signed with a given key, when
	// keys were given: every record before it is vouched for by it.
	SignedFrom uint64
	// Err is nil when the whole set verifies; a *Problem for the first
	// problem in chain order; any other error is one reading the files
	// (wrapping the os error), which says nothing about tampering.
	Err error
}

// OK reports whether the set verified.
func (r Result) OK() bool { return r.Err == nil }

// Verify checks one rotated set (auditlog.Files), oldest file first, against
// the rules in the package documentation, and reports the first problem in
// chain order. It streams the files (gzip-compressed ones too): memory is
// bounded by the longest line, whatever the size of the files, and nothing
// is kept per record. A problem that needs context to be classified
// (records skipped, or a number seen before) costs a second read of the
// set. Verify only reads; it is safe to call concurrently.
func Verify(set auditlog.Set, opts VerifyOptions) Result {
	v := &verifier{set: set, opts: opts, res: Result{Base: set.Base}}
	keys := opts.Keys
	if opts.Key != nil {
		keys = append([]ed25519.PublicKey{opts.Key}, keys...)
	}
	if len(keys) > 0 {
		v.keys = make(map[string]ed25519.PublicKey, len(keys))
		for _, k := range keys {
			fp := Fingerprint(k)
			v.keys[fp] = k
			v.fps = append(v.fps, fp[:16]+"…")
		}
	}
	err := eachLine(set.Files, v.line, v.eof)
	if v.prob == nil && err != nil {
		v.readProblem(err)
	}
	if v.prob == nil && v.res.Err == nil {
		v.finish()
	}
	if v.prob == nil && v.unsigned != nil {
		v.prob = v.unsigned
	}
	if v.prob != nil {
		v.res.Err = v.prob
	}
	return v.res
}

type verifier struct {
	set  auditlog.Set
	opts VerifyOptions
	keys map[string]ed25519.PublicKey // by fingerprint; nil: not checked
	fps  []string                     // the keys' fingerprints, shortened, for details
	res  Result
	prob *Problem
	// unsigned is the first unsigned seal before any signed one, while no
	// signed seal has followed it yet (keys given).
	unsigned *Problem

	have      bool     // a record was accepted
	expN      uint64   // the next N
	prev      [32]byte // hash of the last accepted record
	sealed    Reason   // reason of the last accepted record when a seal
	file      uint64   // number of the file being read (its open seal)
	first     int      // index of the file holding the first record
	oldest    uint64   // number of that file
	bound     uint64   // files numbered bound and above must be present
	boundFile uint64   // the file whose opening set bound
	boundKeep int      // and its keep
	lines     int64    // lines accepted in the file being read
	sealLine  int64    // line of the last seal in the file being read
	unsealedN uint64   // N of the first record after the last seal
	lastFile  int      // index of the last file with a record
}

func (v *verifier) fail(k Kind, i int, no int64, n uint64, format string, args ...any) bool {
	v.prob = &Problem{Kind: k, File: v.set.Files[i], Line: no, N: n, Detail: fmt.Sprintf(format, args...)}
	if v.unsigned != nil {
		// An unsigned seal before it, which no signed seal vouches for:
		// that comes first in chain order.
		v.prob = v.unsigned
	}
	return false
}

// live reports whether file i is the set's live file.
func (v *verifier) live(i int) bool {
	return i == len(v.set.Files)-1 && (i >= len(v.set.Index) || v.set.Index[i] == 0)
}

// line checks one line; false stops the walk.
func (v *verifier) line(i int, no int64, line []byte, torn bool) bool {
	if torn {
		if v.live(i) && v.opts.AllowUnsealedTail {
			return true
		}
		return v.fail(KindTruncated, i, no, 0, "the last line has no newline: the file was cut in the middle of a line")
	}
	boundary := no == 1 && v.have
	body, l, err := parse(line)
	if err != nil {
		if boundary && errors.Is(err, ErrNoChain) {
			return v.fail(KindFileReplaced, i, no, 0, "the file does not begin with a chained open seal")
		}
		if errors.Is(err, ErrNoChain) {
			return v.fail(KindInserted, i, no, 0, "a line without a chain field")
		}
		return v.fail(KindModified, i, no, 0, "%v", err)
	}
	if sum(l.Prev, l.N, body, []byte("}")) != l.Hash {
		return v.fail(KindModified, i, no, l.N, "record %d: its hash does not match its content", l.N)
	}
	var seal *Seal
	if bytes.HasPrefix(body, []byte(sealStart)) {
		s, err := ParseSeal(append(body[:len(body):len(body)], '}'))
		if err != nil {
			return v.fail(KindModified, i, no, l.N, "record %d: %v", l.N, err)
		}
		seal = &s
	}
	open := seal != nil && seal.Reason == ReasonOpen
	switch {
	case !v.have:
		if !open {
			return v.fail(KindDeleted, i, no, l.N, "the oldest file does not begin with its open seal: records before %d were removed", l.N)
		}
		v.first, v.oldest = i, seal.File
	case boundary && open:
		switch prev := v.set.Files[v.lastFile]; {
		case seal.File <= v.file:
			return v.fail(KindFilesReordered, i, no, l.N, "file %d comes after file %d (%s)", seal.File, v.file, filepath.Base(prev))
		case seal.File > v.file+1:
			if f, ok := v.laterFile(i, v.file+1, seal.File-1); ok {
				return v.fail(KindFilesReordered, i, no, l.N, "file %d comes before file %d, which is %s", seal.File, v.file+1, filepath.Base(v.set.Files[f]))
			}
			return v.fail(KindFileMissing, i, no, l.N, "%s between file %d (%s) and file %d", missing(v.file+1, seal.File-1), v.file, filepath.Base(prev), seal.File)
		case l.N != v.expN || l.Prev != v.prev:
			return v.fail(KindFileReplaced, i, no, l.N, "file %d does not continue the chain of file %d (%s): its open seal is record %d and does not chain to record %d", seal.File, v.file, filepath.Base(prev), l.N, v.expN-1)
		}
	default:
		if !v.continues(i, no, l) {
			return false
		}
		if boundary {
			return v.fail(KindFileReplaced, i, no, l.N, "the file does not begin with an open seal")
		}
		if v.sealed == ReasonRotate {
			return v.fail(KindFileReplaced, i, no, l.N, "a line after the rotate seal: the file holds more than one rotated file")
		}
		if open {
			return v.fail(KindInserted, i, no, l.N, "an open seal in the middle of a file")
		}
	}
	if seal != nil {
		if !v.checkSeal(i, no, l, seal) {
			return false
		}
	} else if l.Sig != nil {
		return v.fail(KindModified, i, no, l.N, "record %d is signed but is not a seal", l.N)
	}
	v.accept(no, l, seal)
	return true
}

func missing(lo, hi uint64) string {
	if lo == hi {
		return fmt.Sprintf("file %d is missing", lo)
	}
	return fmt.Sprintf("files %d to %d are missing", lo, hi)
}

// continues checks that l is the record that follows the last accepted one.
func (v *verifier) continues(i int, no int64, l Link) bool {
	switch {
	case l.N == v.expN && l.Prev == v.prev:
		return true
	case l.N == v.expN:
		return v.fail(KindInserted, i, no, l.N, "record %d does not chain to record %d: it was forged or taken from another chain", l.N, l.N-1)
	case l.N > v.expN:
		if f, at, n, ok := v.later(i, no, v.expN, l.N-1); ok {
			return v.fail(KindReordered, i, no, l.N, "record %d comes where record %d belongs; record %d comes later, at %s:%d", l.N, v.expN, n, filepath.Base(v.set.Files[f]), at)
		}
		if l.N-v.expN == 1 {
			return v.fail(KindDeleted, i, no, l.N, "1 record missing before record %d: %d", l.N, v.expN)
		}
		return v.fail(KindDeleted, i, no, l.N, "%d records missing before record %d: %d to %d", l.N-v.expN, l.N, v.expN, l.N-1)
	}
	if l.N == v.expN-1 && l.Hash == v.prev {
		return v.fail(KindDuplicated, i, no, l.N, "record %d repeats the line before it", l.N)
	}
	f, at, hash, ok := v.earlier(i, no, l.N)
	switch {
	case ok && hash == l.Hash:
		return v.fail(KindDuplicated, i, no, l.N, "record %d repeats %s:%d", l.N, filepath.Base(v.set.Files[f]), at)
	case ok:
		return v.fail(KindInserted, i, no, l.N, "a second, different record %d (the first is at %s:%d)", l.N, filepath.Base(v.set.Files[f]), at)
	}
	return v.fail(KindInserted, i, no, l.N, "record %d after record %d: it precedes the oldest record present", l.N, v.expN-1)
}

// checkSeal checks a seal's own fields and signature.
func (v *verifier) checkSeal(i int, no int64, l Link, s *Seal) bool {
	if l.Sig != nil {
		v.res.Signed = true
	}
	if v.keys != nil {
		switch key, ok := v.keys[s.Key]; {
		case l.Sig == nil && v.res.SignedFrom > 0:
			return v.fail(KindUnsigned, i, no, l.N, "seal %d (%s) is not signed, after seal %d was: signing was turned off, or its signature removed", l.N, s.Reason, v.res.SignedFrom)
		case l.Sig == nil:
			if v.unsigned == nil {
				v.unsigned = &Problem{Kind: KindUnsigned, File: v.set.Files[i], Line: no, N: l.N,
					Detail: fmt.Sprintf("seal %d (%s) is not signed, and no seal signed with the given key follows it", l.N, s.Reason)}
			}
		case !ok:
			return v.fail(KindBadSignature, i, no, l.N, "seal %d (%s) was signed by key %.16s…, not by a given key (%s)", l.N, s.Reason, s.Key, strings.Join(v.fps, ", "))
		case !ed25519.Verify(key, l.Hash[:], l.Sig):
			return v.fail(KindBadSignature, i, no, l.N, "seal %d (%s): the signature does not verify: the records since the previous seal were rewritten", l.N, s.Reason)
		default:
			if v.res.SignedFrom == 0 {
				v.res.SignedFrom = l.N
			}
			v.unsigned = nil // this seal vouches for the unsigned ones before it
		}
	}
	if s.Reason != ReasonOpen && s.File != v.file {
		return v.fail(KindModified, i, no, l.N, "seal %d says file %d, in file %d", l.N, s.File, v.file)
	}
	if s.Records != uint64(no) {
		return v.fail(KindModified, i, no, l.N, "seal %d counts %d lines in its file, but it is line %d", l.N, s.Records, no)
	}
	if s.Reason == ReasonResume && s.Clean && v.sealed != ReasonClose {
		return v.fail(KindModified, i, no, l.N, "resume seal %d says the file was closed cleanly, but record %d is not a close seal", l.N, l.N-1)
	}
	if !s.Lost.IsZero() {
		return v.lost(i, no, l, s)
	}
	if u := s.Unvouched; !u.IsZero() {
		if u.Last != l.N-1 {
			return v.fail(KindModified, i, no, l.N, "seal %d says the file ended at record %d when it was written, but it follows record %d", l.N, u.Last, l.N-1)
		}
		records := fmt.Sprintf("records %d to %d follow", u.After+1, u.Last)
		were := "were"
		if u.After+1 == u.Last {
			records, were = fmt.Sprintf("record %d follows", u.Last), "was"
		}
		return v.fail(KindUnvouched, i, no, l.N, "%s the last record the plugin wrote (record %d, hash %.16s…) and %s not written by it: added while it was stopped", records, u.After, hex.EncodeToString(u.Hash[:]), were)
	}
	return true
}

// lost reports the records that the seal s, which carries a Lost, says
// were missing when the writer opened the file.
func (v *verifier) lost(i int, no int64, l Link, s *Seal) bool {
	lost := s.Lost
	if lost.After != l.N-1 {
		return v.fail(KindModified, i, no, l.N, "seal %d says the chain ended at record %d when it was written, but it follows record %d", l.N, lost.After, l.N-1)
	}
	if lost.Expected == lost.After && lost.Hash == l.Prev {
		return v.fail(KindModified, i, no, l.N, "seal %d reports lost records, but the record it names is the one before it", l.N)
	}
	what := "the chain"
	if s.Reason == ReasonResume {
		what = "the file"
	}
	found := fmt.Sprintf("it ended at record %d", lost.After)
	if lost.After == 0 {
		found = "no record of the chain was left"
	}
	if lost.Expected == lost.After {
		return v.fail(KindFileReplaced, i, no, l.N, "when the plugin re-opened %s it ended at record %d, but that is not the record %d the plugin had sealed in file %d (hash %.16s…): the file was replaced", what, lost.After, lost.Expected, lost.File, hex.EncodeToString(lost.Hash[:]))
	}
	records := fmt.Sprintf("records %d to %d were", lost.After+1, lost.Expected)
	if lost.After+1 == lost.Expected {
		records = fmt.Sprintf("record %d was", lost.Expected)
	}
	if s.Reason == ReasonResume {
		return v.fail(KindTruncated, i, no, l.N, "when the plugin re-opened the file %s, but the plugin had sealed up to record %d: %s cut off", found, lost.Expected, records)
	}
	return v.fail(KindFileMissing, i, no, l.N, "when the plugin opened file %d %s, but the plugin had sealed up to record %d in file %d: %s deleted with the newest files", s.File, found, lost.Expected, lost.File, records)
}

func (v *verifier) accept(no int64, l Link, s *Seal) {
	v.have = true
	v.expN, v.prev = l.N+1, l.Hash
	v.lines = no
	v.sealed = ""
	if v.res.First == 0 {
		v.res.First = l.N
	}
	v.res.Last = l.N
	v.res.Records++
	if s == nil {
		if v.unsealedN == 0 {
			v.unsealedN = l.N
		}
		return
	}
	v.res.Seals++
	if v.opts.OnSeal != nil {
		v.opts.OnSeal(l.N, *s)
	}
	v.sealed = s.Reason
	v.sealLine, v.unsealedN = no, 0
	if s.Reason == ReasonOpen {
		v.file = s.File
	}
	// The file opened by this seal, or by the rotation this seal announces,
	// was opened keeping s.Keep files.
	opened := s.File
	if s.Reason == ReasonRotate {
		opened++
	}
	if (s.Reason == ReasonOpen || s.Reason == ReasonRotate) && s.Keep > 0 && opened >= uint64(s.Keep) && opened-uint64(s.Keep)+1 > v.bound {
		v.bound, v.boundFile, v.boundKeep = opened-uint64(s.Keep)+1, opened, s.Keep
	}
}

// eof checks the end of file i, of the given number of lines.
func (v *verifier) eof(i int, lines int64) bool {
	v.res.Files++
	if v.live(i) {
		return true // finish checks the live file's end
	}
	if lines == 0 || v.lines != lines || v.sealed != ReasonRotate {
		return v.fail(KindTruncated, i, lines+1, 0, "a rotated file must end with its rotate seal")
	}
	v.lastFile = i
	v.lines, v.sealLine = 0, 0
	return true
}

// finish checks what only the whole set shows.
func (v *verifier) finish() {
	last := len(v.set.Files) - 1
	if !v.have {
		return
	}
	if !v.live(last) {
		if _, err := os.Lstat(v.set.Base); errors.Is(err, os.ErrNotExist) && !v.opts.Fragment {
			v.prob = &Problem{Kind: KindFileMissing, File: v.set.Base, Detail: fmt.Sprintf("the live file is missing: file %d (%s) was rotated away, so file %d should exist", v.file, filepath.Base(v.set.Files[last]), v.file+1)}
		}
		return // a part of the set, named explicitly
	}
	if v.bound > 0 && v.oldest > v.bound && !v.opts.Fragment {
		v.fail(KindFileMissing, v.first, 1, 0, "%s: file %d was opened keeping %d files, so files %d to %d must be present, but the oldest present is file %d", missing(v.bound, v.oldest-1), v.boundFile, v.boundKeep, v.bound, v.boundFile, v.oldest)
		return
	}
	if v.lines > 0 && v.sealed == "" && !v.opts.AllowUnsealedTail {
		where := "the file's last seal"
		if v.sealLine > 0 {
			where = fmt.Sprintf("the last seal (line %d)", v.sealLine)
		}
		v.fail(KindTruncated, last, v.lines+1, 0, "records %d to %d after %s are not sealed: the file was cut after them, or it is still being written", v.unsealedN, v.expN-1, where)
	}
}
