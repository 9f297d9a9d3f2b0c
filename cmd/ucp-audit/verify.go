package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
)

// defaultLogDir is what verify checks when given no PATH.
const defaultLogDir = "/var/log/ucp-audit"

// verify runs `ucp-audit verify` and returns its exit code.
func verify(args []string) int { return hostCommand(runVerify, args) }

const verifyUsage = `usage: ucp-audit verify [--key PUBLIC.pem]... [--skip-signatures] [--live] [--part] [-o text|json] [PATH...]

Checks the hash chain and the seals of the audit files in PATH (default
` + defaultLogDir + `): a directory (every *.log with its rotated and
compressed files), a live file (with its rotated files) or one rotated file.
Exits 0 only when every file verifies; otherwise it names, for each file
set, the first bad file and line and the kind of tampering, and exits 1.
For a set that verifies it says when the records were written: between the
times of its first and last seals, which the plugin writes (and signs) itself.
A signed trail needs --key (each key in use, across a key change), or
--skip-signatures to check the chain without its signatures: without either
it does not pass.

Flags:
`

func runVerify(_ context.Context, args []string, env hostEnv) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	var keyPaths listFlag
	fs.Var(&keyPaths, "key", "a public key `PUBLIC.pem` of the seals (PEM, as ucp-audit keygen or openssl pkey -pubout writes it); repeat it for the keys before and after a key change: every seal must be signed with one of them, but for the unsigned seals before the first signed one")
	skipSigs := fs.Bool("skip-signatures", false, "check a signed trail's chain without checking its signatures (without it, a signed trail needs --key)")
	live := fs.Bool("live", false, "accept records after the live file's last seal: a file the plugin is writing ends unsealed until its next interval seal (SEAL_INTERVAL after the last one, at the next write) or its close seal")
	part := fs.Bool("part", false, "the files are part of a trail, such as rotated files copied off the node: a missing live file and missing older files are not reported")
	var output string
	fs.StringVar(&output, "o", "text", "output `FORMAT`: text (a line per file set) or json (an object per file set, one per line)")
	fs.StringVar(&output, "output", "text", "the same as -o `FORMAT`")
	paths, err := parseCommand(fs, verifyUsage, args, env)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if output != "text" && output != "json" {
		fmt.Fprintf(env.stderr, "ucp-audit verify: -o %q: want text or json\n", output)
		return 2
	}
	var keys []ed25519.PublicKey
	for _, p := range keyPaths {
		key, err := chain.LoadPublicKey(p)
		if err != nil {
			fmt.Fprintf(env.stderr, "ucp-audit verify: --key: %v\n", err)
			return 2
		}
		keys = append(keys, key)
	}
	if len(keys) > 0 && *skipSigs {
		fmt.Fprintln(env.stderr, "ucp-audit verify: --key and --skip-signatures: give one or the other")
		return 2
	}
	if len(paths) == 0 {
		paths = []string{defaultLogDir}
	}
	sets, err := auditlog.Files(paths...)
	if err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit verify: %v\n", err)
		return 1
	}
	code := 0
	opts := chain.VerifyOptions{Keys: keys, AllowUnsealedTail: *live, Fragment: *part}
	enc := json.NewEncoder(env.stdout)
	enc.SetEscapeHTML(false)
	for _, set := range sets {
		v := verifySet(set, opts)
		if !v.OK() {
			// A rotation while verify read the set shifts its files under
			// it: list them again and, if they changed, verify once more.
			if again, err := auditlog.Files(set.Base); err == nil && len(again) == 1 && slices.Contains(set.Index, 0) && !slices.Equal(again[0].Files, set.Files) {
				set = again[0]
				v = verifySet(set, opts)
			}
		}
		if v.OK() && v.Signed && len(keys) == 0 && !*skipSigs {
			// A signed trail checked without its signatures must not
			// look like a pass.
			v.unchecked = true
		}
		if !v.OK() || v.unchecked {
			code = 1
		}
		if output == "json" {
			if err := enc.Encode(v.report(keys)); err != nil {
				fmt.Fprintf(env.stderr, "ucp-audit verify: writing the output: %v\n", err)
				return 1
			}
			continue
		}
		if !v.OK() {
			// A *chain.Problem reads "file:line: kind: detail".
			fmt.Fprintf(env.stdout, "FAIL %s: %v\n", set.Base, v.Err)
			continue
		}
		if v.unchecked {
			fmt.Fprintf(env.stdout, "FAIL %s: the seals are signed, and no --key was given: give the public key (--key PUBLIC.pem), or --skip-signatures to check the chain alone\n", set.Base)
			continue
		}
		signed := "signatures not checked (no --key)"
		switch {
		case *skipSigs && v.Signed:
			signed = "signatures not checked (--skip-signatures)"
		case len(keys) > 0:
			signed = "every seal signed by " + fingerprints(keys)
			if v.SignedFrom > v.First {
				signed = fmt.Sprintf("every seal from n %d on signed by %s (the unsigned seals before it, from before signing was turned on, are vouched for by it)", v.SignedFrom, fingerprints(keys))
			}
		}
		fmt.Fprintf(env.stdout, "OK   %s: %d files, %d records (n %d-%d), %d seals%s; %s\n", set.Base, v.Files, v.Records, v.First, v.Last, v.Seals, v.spanText(), signed)
	}
	return code
}

// verified is what verify found in one set: chain.Verify's result, and
// the times of the first and last seals it accepted.
type verified struct {
	chain.Result
	from, to  time.Time
	lastSeal  uint64 // n of the last seal accepted
	unchecked bool   // signed, and checked without a key nor --skip-signatures
}

// fingerprints lists the keys' fingerprints, as keygen prints them.
func fingerprints(keys []ed25519.PublicKey) string {
	fps := make([]string, len(keys))
	for i, k := range keys {
		fps[i] = chain.Fingerprint(k)
	}
	return strings.Join(fps, " or ")
}

func verifySet(set auditlog.Set, opts chain.VerifyOptions) verified {
	var v verified
	opts.OnSeal = func(n uint64, s chain.Seal) {
		if v.from.IsZero() {
			v.from = s.Time
		}
		v.to, v.lastSeal = s.Time, n
	}
	v.Result = chain.Verify(set, opts)
	return v
}

// unsealed counts the records accepted after the last seal (with --live,
// the live file's tail).
func (v verified) unsealed() uint64 {
	if v.Records == 0 || v.Last <= v.lastSeal {
		return 0
	}
	return v.Last - v.lastSeal
}

// spanText is the OK line's ", sealed FROM to TO" part, with the records
// after the last seal.
func (v verified) spanText() string {
	if v.from.IsZero() {
		return ""
	}
	s := fmt.Sprintf(", sealed %s to %s", v.from.Format(time.RFC3339), v.to.Format(time.RFC3339))
	if n := v.unsealed(); n == 1 {
		s += ", 1 record after the last seal"
	} else if n > 1 {
		s += fmt.Sprintf(", %d records after the last seal", n)
	}
	return s
}

// verifyReport is verify's JSON object for one set (-o json); docs/auditors.md
// describes it.
type verifyReport struct {
	Base       string         `json:"base"`
	OK         bool           `json:"ok"`
	Files      int            `json:"files"`
	Records    uint64         `json:"records"`
	First      uint64         `json:"first"`
	Last       uint64         `json:"last"`
	Seals      uint64         `json:"seals"`
	Unsealed   uint64         `json:"unsealed"`
	SignedBy   []string       `json:"signedBy"`   // the keys given; null: none
	SignedFrom *uint64        `json:"signedFrom"` // n of the first signed seal, with keys
	Signed     bool           `json:"signed"`     // any seal carries a signature
	From       *time.Time     `json:"from"`
	To         *time.Time     `json:"to"`
	Problem    *verifyProblem `json:"problem"`
	Error      *string        `json:"error"`
}

// verifyProblem is a *chain.Problem in verify's JSON.
type verifyProblem struct {
	File   string     `json:"file"`
	Line   int64      `json:"line"`
	N      uint64     `json:"n"`
	Kind   chain.Kind `json:"kind"`
	Detail string     `json:"detail"`
}

func (v verified) report(keys []ed25519.PublicKey) verifyReport {
	r := verifyReport{Base: v.Base, OK: v.OK() && !v.unchecked, Files: v.Files, Records: v.Records, First: v.First, Last: v.Last, Seals: v.Seals, Unsealed: v.unsealed(), Signed: v.Signed}
	for _, k := range keys {
		r.SignedBy = append(r.SignedBy, chain.Fingerprint(k))
	}
	if v.SignedFrom > 0 {
		r.SignedFrom = &v.SignedFrom
	}
	if v.unchecked {
		msg := "the seals are signed, and no --key was given (or --skip-signatures)"
		r.Error = &msg
	}
	if !v.from.IsZero() {
		r.From, r.To = &v.from, &v.to
	}
	var p *chain.Problem
	switch {
	case errors.As(v.Err, &p):
		r.Problem = &verifyProblem{File: p.File, Line: p.Line, N: p.N, Kind: p.Kind, Detail: p.Detail}
	case v.Err != nil:
		msg := v.Err.Error()
		r.Error = &msg
	}
	return r
}

// keygen runs `ucp-audit keygen PRIVATE PUBLIC`.
func keygen(args []string, env hostEnv) int {
	const usage = "usage: ucp-audit keygen PRIVATE.pem PUBLIC.pem (writes a new Ed25519 key pair for signing seals; refuses to overwrite)"
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(env.stdout, usage)
		return 0
	}
	if len(args) != 2 {
		fmt.Fprintln(env.stderr, usage)
		return 2
	}
	if err := chain.GenerateKey(args[0], args[1]); err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit keygen: %v\n", err)
		return 1
	}
	pub, err := chain.LoadPublicKey(args[1])
	if err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(env.stdout, "wrote %s (private: give it to the plugin with SEAL_KEY) and %s (public: keep a copy off the node for verify --key); fingerprint %s\n", args[0], args[1], chain.Fingerprint(pub))
	return 0
}
