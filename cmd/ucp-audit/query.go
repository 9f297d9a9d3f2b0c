package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/review"
)

// defaultTrail is what query and report read when given no PATH.
const defaultTrail = "/var/log/ucp-audit/audit.log"

// hostEnv is what the host commands take from the process; tests set
// their own.
type hostEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	poll           time.Duration // query --follow; 0 for review.DefaultPoll
}

func processEnv() hostEnv {
	return hostEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, now: time.Now}
}

// hostCommand runs a host command with the process's environment and a
// context that SIGINT or SIGTERM cancels, and returns its exit code.
func hostCommand(run func(context.Context, []string, hostEnv) int, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, processEnv())
}

// query runs `ucp-audit query` and returns its exit code.
func query(args []string) int { return hostCommand(runQuery, args) }

const queryUsage = `usage: ucp-audit query [flags] [PATH...]

Prints the audit events of PATH (default ` + defaultTrail + `) that match
every filter given: the lines as they are in the file (-o json), or a table.
A PATH is a directory, a live file (with its rotated and compressed files,
oldest first) or one rotated file.

Flags:
`

// selection holds the flags query and report share: the filters.
type selection struct {
	since, until                                                string
	users, verbs, paths, kinds, codes, containers, hosts, greps listFlag
	auditIDs, sourceIPs, namespaces                             listFlag
}

// listFlag collects a repeatable flag whose values may also be given as a
// comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// commandFlags makes the flag set of host command name with the filter
// flags registered.
func commandFlags(name string) (*flag.FlagSet, *selection) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	sel := &selection{}
	sel.register(fs)
	return fs, sel
}

func (s *selection) register(fs *flag.FlagSet) {
	fs.StringVar(&s.since, "since", "", "only events at or after `TIME`: RFC 3339, a date (2006-01-02, UTC) or a duration before now (90m, 2h, 7d)")
	fs.StringVar(&s.until, "until", "", "only events before `TIME` (same forms as --since)")
	fs.Var(&s.users, "user", "only events of `USER`: the human name, user.username or user.uid (repeatable, or comma-separated)")
	fs.Var(&s.verbs, "verb", "only events with `VERB`, any case (get, list, POST …; repeatable, or comma-separated)")
	fs.Var(&s.paths, "path", "only events whose requestURI path matches `GLOB` (* and ? do not cross /, a ** segment matches any number of segments: /api/v1/namespaces/*/secrets/**; repeatable)")
	fs.Var(&s.kinds, "kind", "only events of API family `KIND` (kubernetes, docker-swarm, ucp …; repeatable, or comma-separated)")
	fs.Var(&s.codes, "code", "only events with response `CODE`: 403, or a class 4xx (repeatable, or comma-separated)")
	fs.Var(&s.containers, "container", "only events from container `C`: ID prefix or name (repeatable, or comma-separated)")
	fs.Var(&s.hosts, "host", "only events written on `HOST` (repeatable, or comma-separated)")
	fs.Var(&s.greps, "grep", "only events whose requestURI contains `TEXT`, any case (repeatable)")
	fs.Var(&s.auditIDs, "audit-id", "only the event with auditID `ID` (repeatable, or comma-separated)")
	fs.Var(&s.sourceIPs, "source-ip", "only events with `IP` among sourceIPs, with or without a port; or a CIDR prefix such as 10.0.0.0/8 (repeatable, or comma-separated)")
	fs.Var(&s.namespaces, "namespace", "only events in Kubernetes namespace `NS` (objectRef.namespace, or the path's); - for none (repeatable, or comma-separated)")
}

// filter checks the flag values and makes the filter; errors name the flag
// and the value.
func (s *selection) filter(now time.Time) (review.Filter, error) {
	f := review.Filter{
		Users: s.users, Verbs: s.verbs, Paths: s.paths, Kinds: s.kinds,
		Containers: s.containers, Hosts: s.hosts, Grep: s.greps,
		AuditIDs: s.auditIDs, Namespaces: s.namespaces,
	}
	var err error
	for _, t := range []struct {
		name, v string
		dst     *time.Time
	}{{"since", s.since, &f.Since}, {"until", s.until, &f.Until}} {
		if t.v == "" {
			continue
		}
		if *t.dst, err = review.ParseTimeSpec(t.v, now); err != nil {
			return f, fmt.Errorf("--%s %q: %w", t.name, t.v, err)
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, fmt.Errorf("--since %q (%s) is not before --until %q (%s)", s.since, f.Since.Format(time.RFC3339), s.until, f.Until.Format(time.RFC3339))
	}
	for _, p := range s.paths {
		if _, err := review.MatchPath(p, ""); err != nil {
			return f, fmt.Errorf("--path %q: %w (want a glob: *, ?, [a-z], \\ to escape, ** for any number of segments)", p, err)
		}
	}
	for _, ip := range s.sourceIPs {
		p, err := review.ParseSourceIP(ip)
		if err != nil {
			return f, fmt.Errorf("--source-ip %q: %w", ip, err)
		}
		f.SourceIPs = append(f.SourceIPs, p)
	}
	for _, c := range s.codes {
		code, err := review.ParseCode(c)
		if err != nil {
			return f, fmt.Errorf("--code %q: %w", c, err)
		}
		f.Codes = append(f.Codes, code)
	}
	return f, nil
}

// parseArgs parses flags given before, between or after the PATHs; "--"
// ends the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var paths []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return paths, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(paths, rest...), nil
		}
		paths = append(paths, rest[0])
		args = rest[1:]
	}
}

// parseCommand parses args for command name: on -h it prints the usage to
// stdout and returns flag.ErrHelp; on a bad flag it prints the error to stderr.
// The caller exits 0 for flag.ErrHelp and 2 for any other error.
func parseCommand(fs *flag.FlagSet, usage string, args []string, env hostEnv) ([]string, error) {
	fs.SetOutput(io.Discard)
	paths, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.stdout, usage)
		fs.SetOutput(env.stdout)
		fs.PrintDefaults()
		return nil, flag.ErrHelp
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit %s: %v (ucp-audit %s -h lists the flags)\n", fs.Name(), err, fs.Name())
		return nil, err
	}
	if len(paths) == 0 {
		paths = []string{defaultTrail}
	}
	return paths, nil
}

// problems counts the lines that could not be read as records.
type problems struct {
	notJSON, tooLong           int
	firstNotJSON, firstTooLong string
}

func (p *problems) note(rec *review.Record) {
	if rec.Type != review.TypeInvalid {
		return
	}
	at := fmt.Sprintf("%s:%d", rec.File, rec.Line)
	if errors.Is(rec.Err, auditlog.ErrLineTooLong) {
		if p.tooLong++; p.tooLong == 1 {
			p.firstTooLong = at
		}
		return
	}
	if p.notJSON++; p.notJSON == 1 {
		p.firstNotJSON = at
	}
}

// report writes what was skipped to w and says whether anything was.
func (p *problems) report(w io.Writer, cmd string) bool {
	plural := func(n int) (string, string) {
		if n == 1 {
			return "line", "was"
		}
		return "lines", "were"
	}
	if p.notJSON > 0 {
		l, v := plural(p.notJSON)
		fmt.Fprintf(w, "ucp-audit %s: %d %s %s not JSON objects and %s skipped (first: %s)\n", cmd, p.notJSON, l, v, v, p.firstNotJSON)
	}
	if p.tooLong > 0 {
		l, v := plural(p.tooLong)
		fmt.Fprintf(w, "ucp-audit %s: %d %s %s longer than %d MiB and %s skipped (first: %s)\n", cmd, p.tooLong, l, v, auditlog.MaxLine>>20, v, p.firstTooLong)
	}
	return p.notJSON+p.tooLong > 0
}

// readTrail reads sets (following them when follow is set), calling fn with
// each event the filter selects and other with every other record that
// could be read (when other is not nil). It
// reports read errors and skipped lines on stderr and returns the exit
// code.
func readTrail(ctx context.Context, cmd string, r *review.Reader, f *review.Filter, env hostEnv, fn func(*review.Record) error, other func(*review.Record)) int {
	var p problems
	err := r.Run(ctx, func(rec *review.Record) error {
		switch {
		case rec.Type == review.TypeInvalid:
			p.note(rec)
		case rec.Type != review.TypeEvent:
			if other != nil {
				other(rec)
			}
		case f.Match(rec.Event):
			return fn(rec)
		}
		return nil
	})
	code := 0
	if err != nil {
		for _, e := range unjoin(err) {
			fmt.Fprintf(env.stderr, "ucp-audit %s: %v\n", cmd, e)
		}
		code = 1
	}
	if p.report(env.stderr, cmd) {
		code = 1
	}
	return code
}

// unjoin lists the errors errors.Join joined, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// command is what setUp makes of a host command's arguments.
type command struct {
	paths  []string
	sets   []auditlog.Set
	filter review.Filter
}

// setUp parses the arguments of host command fs (usage printed for -h),
// checks the filters, then the command's own flags with check, and lists
// the rotation sets of the PATHs. When ok is false the command ends with
// exit code code: 0 after -h, 2 for a usage error, 1 for PATHs that
// cannot be read; the message is written.
func setUp(fs *flag.FlagSet, usage string, sel *selection, args []string, env hostEnv, check func() error) (c command, code int, ok bool) {
	paths, err := parseCommand(fs, usage, args, env)
	if err == flag.ErrHelp {
		return c, 0, false
	}
	if err != nil {
		return c, 2, false
	}
	filter, err := sel.filter(env.now())
	if err == nil {
		err = check()
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit %s: %v\n", fs.Name(), err)
		return c, 2, false
	}
	sets, err := auditlog.Files(paths...)
	if err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit %s: %v\n", fs.Name(), err)
		return c, 1, false
	}
	return command{paths: paths, sets: sets, filter: filter}, 0, true
}

func runQuery(ctx context.Context, args []string, env hostEnv) int {
	fs, sel := commandFlags("query")
	var output string
	var follow bool
	fs.StringVar(&output, "o", "json", "output `FORMAT`: json (each line as it is in the file), table or csv")
	fs.StringVar(&output, "output", "json", "the same as -o `FORMAT`")
	fs.BoolVar(&follow, "f", false, "after the files, go on printing events as they are written (until interrupted)")
	fs.BoolVar(&follow, "follow", false, "the same as -f")
	run, code, ok := setUp(fs, queryUsage, sel, args, env, func() error {
		if output != "json" && output != "table" && output != "csv" {
			return fmt.Errorf("-o %q: want json or table or csv", output)
		}
		return nil
	})
	if !ok {
		return code
	}
	sets, paths, filter := run.sets, run.paths, run.filter
	if follow && !slices.ContainsFunc(sets, auditlog.Set.Live) {
		fmt.Fprintf(env.stderr, "ucp-audit query: --follow: no live file to follow in %s (name the live file, e.g. audit.log, or its directory)\n", strings.Join(paths, " "))
		return 2
	}

	bw := bufio.NewWriterSize(env.stdout, 64<<10)
	var out eventWriter
	switch output {
	case "table":
		out = newTableWriter(bw)
	case "csv":
		out = newCSVWriter(bw)
	default:
		out = rawWriter{bw}
	}
	flush := func() error {
		if err := out.flush(); err != nil {
			return err
		}
		return bw.Flush()
	}
	r := &review.Reader{Sets: sets, Follow: follow, Poll: env.poll, Idle: flush}
	code = readTrail(ctx, "query", r, &filter, env, out.write, nil)
	if err := flush(); err != nil && code == 0 {
		fmt.Fprintf(env.stderr, "ucp-audit query: writing the output: %v\n", err)
		code = 1
	}
	return code
}
