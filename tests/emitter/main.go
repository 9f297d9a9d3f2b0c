// Command emitter is a fake ucp-controller for ucp-audit's tests.
//
// It prints realistic ucp-controller output: logrus-wrapped audit events of
// the Swarm, UCP and Kubernetes API families at levels metadata and request,
// events of ignored endpoints, ordinary logrus and plain-text lines, events
// larger than Docker's 16 KiB frame and malformed audit lines. The output is
// deterministic for a given set of flags, so a json-file container and a
// ucp-audit container running the emitter print the same `docker logs`.
//
// With -manifest FILE it also writes, for every audit line printed, what the
// plugin is expected to do with it (see Manifest); the e2e tests use that as
// their expectation.
//
// It depends on the standard library only and is built statically
// (CGO_ENABLED=0) so it can be the only file of a `docker import`ed image.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	var (
		opts         Options
		manifestPath string
	)
	flag.Int64Var(&opts.Seed, "seed", 1, "seed of the deterministic output")
	flag.IntVar(&opts.N, "n", 5, "audit requests per API family (each request prints two stages)")
	flag.IntVar(&opts.Big, "big", 2, "number of request-level events larger than 16 KiB (payloads of 20 KiB, 40 KiB, 20 KiB, …)")
	flag.BoolVar(&opts.Malformed, "malformed", true, "also print malformed audit lines")
	flag.BoolVar(&opts.Stderr, "stderr", true, "also print a few ordinary lines to stderr")
	flag.BoolVar(&opts.Ignored, "ignored", true, "also print events of endpoints in the default ignore list")
	flag.IntVar(&opts.Ordinary, "ordinary", 10, "number of ordinary (non-audit) stdout lines")
	flag.IntVar(&opts.Arrays, "arrays", 0, "number of request-level requests whose requestObject is a JSON array of -array-len zeros")
	flag.IntVar(&opts.ArrayLen, "array-len", 2000000, "elements of each -arrays payload (2,000,000: about 4 MB)")
	flag.DurationVar(&opts.Sleep, "sleep", 0, "delay between lines")
	flag.BoolVar(&opts.Unterminated, "unterminated", false, "end the output with an audit line without its final newline")
	flag.StringVar(&manifestPath, "manifest", "", "write the manifest of the audit lines printed to this file")
	repeat := flag.Int("repeat", 1, "print the output this many times over: a fast producer, whose lines cost it nothing to make (the benchmark's)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "emitter: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}

	out := Generate(opts)
	if *repeat > 1 {
		out = out.Repeat(*repeat)
	}
	if manifestPath != "" {
		if err := writeManifest(manifestPath, out.Manifest); err != nil {
			fmt.Fprintf(os.Stderr, "emitter: %v\n", err)
			os.Exit(1)
		}
	}
	if err := out.Write(os.Stdout, os.Stderr, opts.Sleep); err != nil {
		fmt.Fprintf(os.Stderr, "emitter: %v\n", err)
		os.Exit(1)
	}
}

func writeManifest(path string, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Repeat returns o printed n times over: the lines and the manifest's
// events n times, each repetition's events numbered on (Line).
func (o Output) Repeat(n int) Output {
	r := Output{Manifest: o.Manifest}
	r.Lines = make([]Line, 0, len(o.Lines)*n)
	r.Manifest.Events = make([]Event, 0, len(o.Manifest.Events)*n)
	for k := range n {
		r.Lines = append(r.Lines, o.Lines...)
		for _, e := range o.Manifest.Events {
			e.Line += k * o.Manifest.StdoutLines
			r.Manifest.Events = append(r.Manifest.Events, e)
		}
	}
	r.Manifest.StdoutLines = o.Manifest.StdoutLines * n
	r.Manifest.StderrLines = o.Manifest.StderrLines * n
	return r
}

// Write prints the lines, each with a single write, sleeping between them.
func (o *Output) Write(stdout, stderr io.Writer, sleep time.Duration) error {
	var buf []byte
	for i, l := range o.Lines {
		if i > 0 && sleep > 0 {
			time.Sleep(sleep)
		}
		w := stdout
		if l.Stream == "stderr" {
			w = stderr
		}
		buf = append(buf[:0], l.Text...)
		if !l.NoNewline {
			buf = append(buf, '\n')
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}
