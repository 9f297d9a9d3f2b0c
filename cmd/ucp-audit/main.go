// Command ucp-audit is the plugin and the tools around it. `ucp-audit serve`
// is the plugin's entry point (config.json names it): it reads its settings
// from the environment (`docker plugin set ucp-audit KEY=VALUE`), serves the
// plugin API on its unix socket and drains every stream on SIGTERM. The
// other commands run on the host: they read the trail, edit the node
// configuration and gather a support dump. This package is wiring only.
package main

import (
	"fmt"
	"io"
	"os"
)

// Set at build time (Makefile: -ldflags -X).
var (
	version = "0.0.0-dev"
	commit  = "unknown"
)

// commands are the subcommands, in the order usage lists them.
var commands = []struct {
	name, args, summary string
	run                 func(args []string) int
}{
	{"serve", "", "run as the Docker plugin (the plugin's entry point; not for the host)", serve},
	{"query", "[flags] [PATH...]", "print the audit events that match filters", query},
	{"report", "[flags] [PATH...]", "summarise the audit events that match filters", report},
	{"verify", "[--key PUBLIC.pem] [--live] [--part] [PATH...]", "check the trail's hash chain and seals", verify},
	{"keygen", "PRIVATE.pem PUBLIC.pem", "make an Ed25519 key pair for signing seals", func(args []string) int { return keygen(args, processEnv()) }},
	{"config", "get|set|apply ...", "read or change the node configuration", nodeConfig},
	{"alerts", "test CONFIG [PATH...]", "run alert rules offline over a trail and print what fires", alerts},
	{"support-dump", "[flags] DIR", "gather what a support case needs", supportDump},
	{"status", "[ADDRESS]", "summarise a running plugin from its metrics listener", status},
	{"version", "", "print the version", func([]string) int {
		fmt.Printf("ucp-audit %s (commit %s)\n", version, commit)
		return 0
	}},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ucp-audit COMMAND [ARGS]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-13s %s\n      %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintln(w, "\nucp-audit COMMAND -h describes a command's flags.")
}

func main() { os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr)) }

// dispatch runs the command args name; with none, or help, it prints the
// usage: the binary never turns into a plugin by accident.
func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	case "--version":
		args[0] = "version"
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:])
		}
	}
	fmt.Fprintf(stderr, "ucp-audit: unknown command %q (ucp-audit help lists them)\n", args[0])
	return 2
}
