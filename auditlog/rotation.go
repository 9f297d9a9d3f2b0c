package auditlog

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Rotated returns the name of rotated file k of the live file at base,
// base.k (base itself for k == 0). The file sink renames to these names.
func Rotated(base string, k int) string {
	if k == 0 {
		return base
	}
	return base + "." + strconv.Itoa(k)
}

// Rotation splits a file name into the live file's name and its rotation
// number, the inverse of Rotated with ".gz" ignored: "audit.log" →
// ("audit.log", 0), "audit.log.2" and "audit.log.2.gz" → ("audit.log", 2).
// ok is false for names that are not of that form ("audit.log.bak",
// "audit.log.01"); a live file's name must end in ".log".
func Rotation(name string) (base string, k int, ok bool) {
	name = strings.TrimSuffix(name, gzSuffix)
	i := strings.LastIndexByte(name, '.')
	if i > 0 {
		if n, err := strconv.Atoi(name[i+1:]); err == nil && n > 0 && name[i+1] != '0' {
			return name[:i], n, true
		}
	}
	if strings.HasSuffix(name, ".log") {
		return name, 0, true
	}
	return name, 0, false
}

// gzSuffix ends the name of a compressed copy.
const gzSuffix = ".gz"

// ErrNoFiles is returned (wrapped, with the path) by Files when nothing
// matches.
var ErrNoFiles = errors.New("no audit files")

// Set is one rotated audit file: Base is the live file's path (audit.log)
// and Files its files present on disk, oldest first (audit.log.3.gz,
// audit.log.2, audit.log.1, audit.log). Index holds each file's rotation
// number: 0 for the live file, k for Base.k and Base.k.gz.
type Set struct {
	Base  string
	Files []string
	Index []int
}

// Live reports whether a set ends with its live file.
func (s Set) Live() bool { return len(s.Index) > 0 && s.Index[len(s.Index)-1] == 0 }

// Files returns the rotated sets named by paths. A path may be a directory
// (every set whose files are in it: *.log and their rotations), a live
// file (the set it heads), or one rotated file (only that file, in a set of
// its own). Sets are returned in the order the paths were given, a
// directory's sets sorted by name. A path that matches no file is an error
// wrapping ErrNoFiles or the os error.
func Files(paths ...string) ([]Set, error) {
	var sets []Set
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			base, k, ok := Rotation(p)
			if ok && k > 0 {
				sets = append(sets, Set{Base: base, Files: []string{p}, Index: []int{k}})
				continue
			}
			s, err := set(p)
			if err != nil {
				return nil, err
			}
			sets = append(sets, s)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		bases := map[string]bool{}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			if base, _, ok := Rotation(e.Name()); ok && strings.HasSuffix(base, ".log") {
				bases[base] = true
			}
		}
		if len(bases) == 0 {
			return nil, fmt.Errorf("%s: %w (no *.log files)", p, ErrNoFiles)
		}
		for _, b := range slices.Sorted(mapKeys(bases)) {
			s, err := set(filepath.Join(p, b))
			if err != nil {
				return nil, err
			}
			sets = append(sets, s)
		}
	}
	return sets, nil
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// set collects base's rotation files present on disk.
func set(base string) (Set, error) {
	matches, err := filepath.Glob(globEscape(base) + "*")
	if err != nil {
		return Set{}, err
	}
	type rf struct {
		name string
		k    int
	}
	var fs []rf
	for _, m := range matches {
		b, k, ok := Rotation(m)
		if !ok || b != base {
			continue
		}
		if fi, err := os.Stat(m); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		fs = append(fs, rf{m, k})
	}
	if len(fs) == 0 {
		return Set{}, fmt.Errorf("%s: %w", base, ErrNoFiles)
	}
	// Oldest first: the highest rotation number first, the live file last;
	// a plain and a compressed copy of the same number, plain last.
	slices.SortStableFunc(fs, func(a, b rf) int {
		if a.k != b.k {
			return b.k - a.k
		}
		return strings.Compare(b.name, a.name)
	})
	s := Set{Base: base}
	for _, f := range fs {
		s.Files = append(s.Files, f.name)
		s.Index = append(s.Index, f.k)
	}
	return s, nil
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

// Open opens one audit file for reading, decompressing it when its name
// ends in .gz or its content starts with the gzip magic number.
func Open(name string) (io.ReadCloser, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	magic, _ := br.Peek(2)
	if strings.HasSuffix(name, gzSuffix) || (len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return struct {
			io.Reader
			io.Closer
		}{zr, f}, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{br, f}, nil
}
