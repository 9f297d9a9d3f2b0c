package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ucp-audit/ucp-audit/metrics"
)

const statusUsage = `usage: ucp-audit status [ADDRESS]

Prints a summary of a running plugin, read from its metrics listener at
ADDRESS (the plugin's METRICS_ADDRESS, e.g. ` + exampleMetricsAddress + `;
default: $METRICS_ADDRESS).
`

// status runs `ucp-audit status`.
func status(args []string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	env := processEnv()
	rest, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.stdout, statusUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit status: %v\n%s", err, statusUsage)
		return 2
	}
	addr := os.Getenv("METRICS_ADDRESS")
	if len(rest) > 0 {
		addr = rest[0]
	}
	if addr == "" || len(rest) > 1 {
		fmt.Fprint(env.stderr, statusUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := metrics.Status(ctx, addr)
	if err != nil {
		fmt.Fprintln(env.stderr, "ucp-audit status:", err)
		return 1
	}
	fmt.Fprint(env.stdout, out)
	return 0
}
