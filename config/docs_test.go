package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docs/configuration.md names, in backticks, every log-opt Parse accepts
// (its own, every destination's, and those dockerd handles itself) and
// every log-opt that moved to the node configuration. The keys come from
// the code's own tables, so a new option fails this test until it is
// documented.
func TestDocsNameEveryLogOpt(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	keys := Keys()
	if len(keys) == 0 {
		t.Fatal("Keys() lists no log-opt")
	}
	for k := range nodeKeys {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("docs/configuration.md does not name `%s`", k)
		}
	}
}
