package audit

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenEnrichment is the fixed enrichment used by golden tests; Seq is set
// per delivered event.
var goldenEnrichment = Enrichment{
	ContainerID:   "3f1c9a7be2d04c5f8a6b1e2d3c4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5",
	ContainerName: "ucp-controller",
	Image:         "docker/ucp-controller:3.7.0",
	Host:          "manager-1",
	Stream:        "stdout",
	ReceivedAt:    time.Date(2024, 3, 2, 10, 4, 5, 123456789, time.FixedZone("CET", 3600)),
}

// runPipeline runs every line of input through Parse, Allows, Apply and
// Encode, and returns one output line per input line: the event, or a
// "# ..." comment saying why there is none.
func runPipeline(t *testing.T, input []byte, p Policy) []byte {
	t.Helper()
	var out bytes.Buffer
	en := goldenEnrichment
	sc := bufio.NewScanner(bytes.NewReader(input))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		ev, err := Parse(sc.Bytes())
		switch {
		case errors.Is(err, ErrNotAudit):
			out.WriteString("# not audit\n")
			continue
		case err != nil:
			out.WriteString("# error: " + err.Error() + "\n")
			continue
		}
		if ok, reason := p.Allows(ev); !ok {
			out.WriteString("# dropped: " + reason + "\n")
			continue
		}
		p.Apply(ev)
		en.Seq++
		b, err := ev.Encode(en)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/golden/*.in.jsonl")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	ignore, err := NewIgnore(DefaultIgnoreList)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.jsonl")
		input, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, lvl := range []Level{LevelMetadata, LevelRequest} {
			t.Run(name+"/"+lvl.String(), func(t *testing.T) {
				got := runPipeline(t, input, Policy{Level: lvl, Ignore: ignore})
				golden := filepath.Join("testdata/golden", name+"."+lvl.String()+".golden")
				if *update {
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("output differs from %s (run with -update to accept):\ngot:\n%s\nwant:\n%s", golden, got, want)
				}
			})
		}
	}
}
