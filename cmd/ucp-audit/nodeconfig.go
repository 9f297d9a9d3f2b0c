package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/ucp-audit/ucp-audit/node"
)

// nodeConfig runs `ucp-audit config` and returns its exit code.
func nodeConfig(args []string) int { return hostCommand(runNodeConfig, args) }

const nodeConfigUsage = `usage: ucp-audit config get [--file PATH] [KEY]
       ucp-audit config set [--file PATH] KEY=VALUE...
       ucp-audit config apply [--file PATH] FILE|-

The node configuration (default ` + node.DefaultStateDir + `/` + node.FileName + `, mode
0600): what belongs to the node rather than to a container. get prints the
configuration in force (every key, defaults included) or one KEY
(trail.maxSize). set changes keys: VALUE is JSON when it is JSON
(30, true, ["a"], {"image": "x"}) and a string otherwise; null removes a key,
which then takes its default. apply merges a whole or partial JSON document
(a JSON merge patch: null removes a key), such as UCP's
{"logLevel": "INFO", "auditLevel": "metadata", "supportDumpIncludeAuditLogs": false}.
A change is validated first and refused with an error naming the key; the
document is then replaced atomically, and the running plugin applies it
within 5 s. Paths in the document are as the plugin sees them (below
` + node.DefaultLogDir + ` and ` + node.DefaultStateDir + `).

Flags:
`

func runNodeConfig(_ context.Context, args []string, env hostEnv) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(env.stdout, nodeConfigUsage)
		fmt.Fprintln(env.stdout, "  -file string\n    \tthe node configuration document (default \""+node.Env{}.Path()+"\")")
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub := args[0]
	fs := flag.NewFlagSet("config "+sub, flag.ContinueOnError)
	path := fs.String("file", node.Env{}.Path(), "the node configuration document")
	fs.SetOutput(io.Discard)
	rest, err := parseArgs(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.stdout, nodeConfigUsage)
		fs.SetOutput(env.stdout)
		fs.PrintDefaults()
		return 0
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit config %s: %v (ucp-audit config -h)\n", sub, err)
		return 2
	}
	penv := node.Env{}
	switch {
	case sub == "get" && len(rest) <= 1:
		return configGet(*path, penv, rest, env)
	case sub == "set" && len(rest) > 0:
		return configChange(*path, penv, env, func(doc []byte) ([]byte, error) { return node.Set(doc, rest) })
	case sub == "apply" && len(rest) == 1:
		patch, err := readInput(rest[0], env.stdin)
		if err != nil {
			fmt.Fprintf(env.stderr, "ucp-audit config apply: %v\n", err)
			return 1
		}
		return configChange(*path, penv, env, func(doc []byte) ([]byte, error) { return node.Merge(doc, patch) })
	}
	fmt.Fprintf(env.stderr, "ucp-audit config: %q: want get [KEY], set KEY=VALUE... or apply FILE|- (ucp-audit config -h)\n", strings.Join(args, " "))
	return 2
}

func configGet(path string, penv node.Env, keys []string, env hostEnv) int {
	c, _, _, err := node.Load(path, penv)
	if err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit config get: %v\n", err)
		return 1
	}
	if len(keys) == 0 {
		env.stdout.Write(c.JSON())
		return 0
	}
	v, err := node.Lookup(c.Document(), keys[0])
	if err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit config get: %v\n", err)
		return 1
	}
	switch x := v.(type) {
	case string:
		fmt.Fprintln(env.stdout, x)
	default:
		b, _ := json.MarshalIndent(x, "", "  ")
		fmt.Fprintln(env.stdout, string(b))
	}
	return 0
}

// configChange applies change to the document at path (none: empty),
// validates the result and replaces the document with it.
func configChange(path string, penv node.Env, env hostEnv, change func([]byte) ([]byte, error)) int {
	doc, err := node.ReadDocument(path)
	if errors.Is(err, fs.ErrNotExist) {
		doc, err = nil, nil
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit config: %v\n", err)
		return 1
	}
	next, err := change(doc)
	if err == nil {
		_, err = node.Save(path, next, penv)
	}
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	fmt.Fprintf(env.stdout, "wrote %s; the running plugin applies it within 5 s\n", path)
	return 0
}

// readInput reads a file, or standard input for "-", of at most
// node.MaxDocument bytes.
func readInput(name string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, node.MaxDocument+1))
	if err == nil && len(b) > node.MaxDocument {
		err = fmt.Errorf("%s: larger than %d bytes", name, node.MaxDocument)
	}
	return b, err
}
