package node

import (
	"github.com/ucp-audit/ucp-audit/atomicfile"
)

// Save validates doc as a whole document and replaces the document at path
// with it, atomically (mode 0600: it is the administrator's). A document
// that does not parse is not written.
func Save(path string, doc []byte, env Env) (Config, error) {
	c, err := Parse(doc, env)
	if err != nil {
		return Config{}, err
	}
	if err := atomicfile.WriteFile(path, doc, 0o600); err != nil {
		return Config{}, err
	}
	return c, nil
}
