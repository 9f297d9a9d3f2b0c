package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"slices"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/chain"
)

// defaultLogDir is what verify checks when given no PATH.
const defaultLogDir = "/var/log/ucp-audit"

// verify runs `ucp-audit verify` and returns its exit code.
func verify(args []string) int { return hostCommand(runVerify, args) }

const verifyUsage = `usage: ucp-audit verify [--key PUBLIC.pem] [--live] [--part] [PATH...]

Checks the hash chain and the seals of the audit files in PATH (default
` + defaultLogDir + `): a directory (every *.log with its rotated and
compressed files), a live file (with its rotated files) or one rotated file.
Exits 0 only when every file verifies; otherwise it names, for each file
set, the first bad file and line and the kind of tampering, and exits 1.

Flags:
`

func runVerify(_ context.Context, args []string, env hostEnv) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	keyPath := fs.String("key", "", "the seals' public key `PUBLIC.pem` (PEM, as ucp-audit keygen or openssl pkey -pubout writes it): every seal must be signed with it; without it signatures are not checked")
	live := fs.Bool("live", false, "accept records after the live file's last seal: a file the plugin is writing ends unsealed until its next interval seal (SEAL_INTERVAL after the last one, at the next write) or its close seal")
	part := fs.Bool("part", false, "the files are part of a trail, such as rotated files copied off the node: a missing live file and missing older files are not reported")
	paths, err := parseCommand(fs, verifyUsage, args, env)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	var key ed25519.PublicKey
	if *keyPath != "" {
		if key, err = chain.LoadPublicKey(*keyPath); err != nil {
			fmt.Fprintf(env.stderr, "ucp-audit verify: --key: %v\n", err)
			return 2
		}
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
	opts := chain.VerifyOptions{Key: key, AllowUnsealedTail: *live, Fragment: *part}
	for _, set := range sets {
		r := chain.Verify(set, opts)
		if !r.OK() {
			// A rotation while verify read the set shifts its files under
			// it: list them again and, if they changed, verify once more.
			if again, err := auditlog.Files(set.Base); err == nil && len(again) == 1 && slices.Contains(set.Index, 0) && !slices.Equal(again[0].Files, set.Files) {
				set = again[0]
				r = chain.Verify(set, opts)
			}
		}
		if !r.OK() {
			code = 1
			// A *chain.Problem reads "file:line: kind: detail".
			fmt.Fprintf(env.stdout, "FAIL %s: %v\n", set.Base, r.Err)
			continue
		}
		signed := "signatures not checked (no --key)"
		if key != nil {
			signed = "every seal signed by " + chain.Fingerprint(key)
		}
		fmt.Fprintf(env.stdout, "OK   %s: %d files, %d records (n %d-%d), %d seals; %s\n", set.Base, r.Files, r.Records, r.First, r.Last, r.Seals, signed)
	}
	return code
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
