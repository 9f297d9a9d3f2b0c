package pipeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/plugins/logdriver"

	"github.com/ucp-audit/ucp-audit/driver/ingest"
)

// testdata/reassembly/*.jsonl: each line is one entry
// {"src","line","partial","id","last"}; *.golden lists the lines emitted,
// one JSON object each.
type caseEntry struct {
	Src     string `json:"src"`
	Line    string `json:"line"`
	Partial bool   `json:"partial"`
	ID      string `json:"id"`
	Last    bool   `json:"last"`
}

type emitted struct {
	Src        string `json:"src"`
	Data       string `json:"data"`
	Size       int    `json:"size"`
	Unfinished bool   `json:"unfinished,omitempty"`
}

func TestReassembleGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/reassembly/*.jsonl")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, in := range files {
		t.Run(filepath.Base(in), func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			r := newReassembler(8) // tiny limit: the cases show truncation too
			var got bytes.Buffer
			emit := func(l *line) error {
				out, _ := json.Marshal(emitted{l.Source, string(l.Data), l.Size, l.Unfinished})
				got.Write(append(out, '\n'))
				return nil
			}
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				var c caseEntry
				if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
					t.Fatal(err)
				}
				e := &logdriver.LogEntry{Source: c.Src, Line: []byte(c.Line), Partial: c.Partial}
				if c.Partial {
					e.PartialLogMetadata = &logdriver.PartialLogEntryMetadata{Id: c.ID, Last: c.Last}
				}
				if err := r.add(e, emit); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.flush(emit); err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".jsonl") + ".golden"
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got.String(), want)
			}
		})
	}
}

// Memory stays bounded: a huge line keeps at most the limit.
func TestReassembleBounded(t *testing.T) {
	r := newReassembler(1 << 10)
	var got *line
	for i := 0; i < 100; i++ {
		e := &logdriver.LogEntry{Source: "stdout", Line: bytes.Repeat([]byte("a"), 16<<10), Partial: true,
			PartialLogMetadata: &logdriver.PartialLogEntryMetadata{Id: "x", Last: i == 99}}
		if err := r.add(e, func(l *line) error { c := *l; got = &c; return nil }); err != nil {
			t.Fatal(err)
		}
		if p := r.pending["stdout"]; p != nil && cap(p.l.Data) > 4<<10 {
			t.Fatalf("pending line holds %d bytes", cap(p.l.Data))
		}
	}
	if got == nil || len(got.Data) != 1<<10 || got.Size != 100*16<<10 || !got.Truncated() {
		t.Fatalf("got %+v", got)
	}
}

func FuzzFrameReader(f *testing.F) {
	for _, e := range []*logdriver.LogEntry{
		{Source: "stdout", Line: []byte("hello"), TimeNano: 1},
		{Source: "stderr", Line: []byte("x"), Partial: true, PartialLogMetadata: &logdriver.PartialLogEntryMetadata{Id: "a", Last: true, Ordinal: 2}},
	} {
		b, _ := ingest.AppendFrame(nil, e)
		f.Add(b)
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := ingest.NewFrameReader(bytes.NewReader(data), 16)
		r := newReassembler(64)
		var e logdriver.LogEntry
		for {
			frame, err := fr.Next()
			if err != nil {
				return
			}
			if len(frame) > ingest.MaxFrameSize+4 {
				t.Fatalf("frame of %d bytes", len(frame))
			}
			if ingest.DecodeFrame(frame, &e) != nil {
				continue
			}
			_ = r.add(&e, func(l *line) error {
				if len(l.Data) > 64 {
					return fmt.Errorf("line over limit")
				}
				return nil
			})
			// Re-encoding a decoded entry gives a frame that decodes the same.
			b, err := ingest.AppendFrame(nil, &e)
			if err != nil {
				t.Fatal(err)
			}
			var e2 logdriver.LogEntry
			if err := ingest.DecodeFrame(b, &e2); err != nil || e2.String() != e.String() {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}
