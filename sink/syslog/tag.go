package syslog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/ucp-audit/ucp-audit/sink"
)

// TagContext is what the tag template sees, as in Docker's log drivers.
type TagContext struct {
	ID, FullID, Name, ImageID, ImageFullID, ImageName, DaemonName string
}

func tagFacts(c sink.Container) TagContext {
	return TagContext{ID: c.ID, FullID: c.FullID, Name: c.Name, ImageID: c.ImageID,
		ImageFullID: c.ImageFullID, ImageName: c.ImageName, DaemonName: c.DaemonName}
}

// tagFields are the fields Docker documents for the tag option.
var tagFields = []string{"ID", "FullID", "Name", "ImageID", "ImageFullID", "ImageName", "DaemonName"}

// Bounds of the tag: a template is text and fields, so its output is at
// most a few times its length; syslog cuts the APP-NAME to 48 characters
// (RFC 5424) or the tag to 32 (RFC 3164) anyway.
const (
	maxTagTemplate = 256
	maxTagOutput   = 255
)

var errTagSyntax = errors.New("only text and the fields {{.ID}}, {{.FullID}}, {{.Name}}, {{.ImageID}}, {{.ImageFullID}}, {{.ImageName}} and {{.DaemonName}} are allowed")

// parseTag parses a tag template that may hold only text and Docker's
// documented fields: no actions (range, if, with), functions, pipelines or
// variables, so that rendering it is a bounded copy whatever a container's
// log-opts say.
func parseTag(v string) (*template.Template, error) {
	if len(v) > maxTagTemplate {
		return nil, fmt.Errorf("longer than %d bytes", maxTagTemplate)
	}
	t, err := template.New("tag").Option("missingkey=error").Parse(v)
	if err != nil {
		return nil, err
	}
	if t.Tree == nil || t.Tree.Root == nil {
		return t, nil
	}
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
		case *parse.ActionNode:
			if !plainField(n.Pipe) {
				return nil, fmt.Errorf("%q: %w", n.String(), errTagSyntax)
			}
		default:
			return nil, fmt.Errorf("%q: %w", n.String(), errTagSyntax)
		}
	}
	return t, nil
}

// plainField reports whether p is {{.Field}} with a documented field.
func plainField(p *parse.PipeNode) bool {
	if p == nil || len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	f, ok := p.Cmds[0].Args[0].(*parse.FieldNode)
	return ok && len(f.Ident) == 1 && slices.Contains(tagFields, f.Ident[0])
}

// renderTag renders t for c, cut to maxTagOutput bytes; the short ID when
// t is nil or fails.
func renderTag(t *template.Template, c sink.Container) string {
	if t == nil {
		return c.ID
	}
	var b strings.Builder
	if err := t.Execute(&b, tagFacts(c)); err != nil {
		return c.ID
	}
	s := b.String()
	if len(s) > maxTagOutput {
		s = strings.ToValidUTF8(s[:maxTagOutput], "")
	}
	return s
}
