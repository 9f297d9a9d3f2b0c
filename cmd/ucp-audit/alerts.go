package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ucp-audit/ucp-audit/alert"
)

// alerts runs `ucp-audit alerts` and returns its exit code.
func alerts(args []string) int { return hostCommand(runAlerts, args) }

const alertsUsage = `usage: ucp-audit alerts test CONFIG [PATH...]

Runs the alert rules and built-in alarms of CONFIG offline over the trail in
PATH (default ` + alert.DefaultTrail + `: a directory, a live file with its
rotated and compressed files, or one rotated file), each record at its own
time, grouping, counting and throttling as the plugin would, and prints for
each rule that fires its name and the auditIDs it fired on, then the rules
that did not fire and any evaluation errors. Nothing is sent.

CONFIG is a JSON file: the node configuration (its "alerts" key is used) or
an "alerts" section alone, such as rules/alerts.json; "-" reads it from
standard input. Exits 0 when the rules were run, 1 when a file could not be
read, 2 when CONFIG is refused (the error names the key and, for a rule,
the line and column in its expression).
`

func runAlerts(_ context.Context, args []string, env hostEnv) int {
	if len(args) == 0 || args[0] != "test" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(env.stdout, alertsUsage)
			return 0
		}
		fmt.Fprint(env.stderr, alertsUsage)
		return 2
	}
	fs := flag.NewFlagSet("alerts test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rest, err := parseArgs(fs, args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(env.stdout, alertsUsage)
		return 0
	case err != nil:
		fmt.Fprintf(env.stderr, "ucp-audit alerts test: %v (ucp-audit alerts -h)\n", err)
		return 2
	case len(rest) == 0:
		fmt.Fprint(env.stderr, "ucp-audit alerts test: no CONFIG\n\n"+alertsUsage)
		return 2
	}
	var doc []byte
	if rest[0] == "-" {
		doc, err = io.ReadAll(io.LimitReader(env.stdin, 1<<20))
	} else {
		doc, err = os.ReadFile(rest[0])
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit alerts test: %v\n", err)
		return 2
	}
	cfg, err := alert.Env{}.ParseDocument(doc)
	if err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit alerts test: %s: %v\n", rest[0], err)
		return 2
	}
	_, err = alert.TestRules(cfg, rest[1:], env.stdout)
	var ke *alert.KeyError
	switch {
	case errors.As(err, &ke):
		fmt.Fprintf(env.stderr, "ucp-audit alerts test: %s: %v\n", rest[0], err)
		return 2
	case err != nil:
		fmt.Fprintf(env.stderr, "ucp-audit alerts test: %v\n", err)
		return 1
	}
	return 0
}
