package syslog

import (
	"strings"
	"testing"

	"github.com/ucp-audit/ucp-audit/sink"
)

func TestTag(t *testing.T) {
	c := sink.Container{ID: "0123456789ab", FullID: strings.Repeat("0123456789ab", 5) + "cdef", Name: "ucp-controller",
		ImageID: "feedfacefeed", ImageFullID: "sha256:" + strings.Repeat("f", 64), ImageName: "mirantis/ucp-controller:3.7", DaemonName: "docker"}
	for _, tc := range []struct{ tag, want, err string }{
		{tag: "", want: ""},
		{tag: "{{.ID}}", want: "0123456789ab"},
		{tag: "audit/{{.Name}}/{{.ImageName}}", want: "audit/ucp-controller/mirantis/ucp-controller:3.7"},
		{tag: "{{- .Name -}} x", want: "ucp-controllerx"},
		{tag: "{{.DaemonName}}:{{.ImageID}}:{{.FullID}}:{{.ImageFullID}}", want: "docker:feedfacefeed:" + c.FullID + ":" + c.ImageFullID},
		// A tag renders within bounds, whatever a container's log-opts say.
		{tag: strings.Repeat("{{.FullID}}", 23), want: strings.Repeat(c.FullID, 23)[:maxTagOutput]},
		{tag: "{{range 1000000000000}}{{end}}", err: "only text and the fields"},
		{tag: `{{printf "%0999999999d" 1}}`, err: "only text and the fields"},
		{tag: "{{.Name | printf}}", err: "only text and the fields"},
		{tag: "{{$x := .Name}}{{$x}}", err: "only text and the fields"},
		{tag: "{{if .Name}}x{{end}}", err: "only text and the fields"},
		{tag: "{{.Name.Len}}", err: "only text and the fields"},
		{tag: "{{.Nope}}", err: "only text and the fields"},
		{tag: "{{/* c */}}x", want: "x"},
		{tag: "{{template \"tag\"}}", err: "only text and the fields"},
		{tag: strings.Repeat("x", maxTagTemplate+1), err: "longer than 256 bytes"},
		{tag: "{{", err: "unclosed action"},
	} {
		tmpl, err := parseTag(tc.tag)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%.40q: %v, want %s", tc.tag, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%.40q: %v", tc.tag, err)
			continue
		}
		if got := renderTag(tmpl, c); got != tc.want {
			t.Errorf("%.40q rendered %q, want %q", tc.tag, got, tc.want)
		}
	}
}

func FuzzTag(f *testing.F) {
	f.Add("{{.Name}}/{{.ID}}")
	f.Add("{{range .}}{{end}}")
	f.Fuzz(func(t *testing.T, tag string) {
		tmpl, err := parseTag(tag)
		if err != nil {
			return
		}
		if got := renderTag(tmpl, sink.Container{ID: "i", Name: strings.Repeat("n", 300)}); len(got) > maxTagOutput {
			t.Fatalf("%q rendered %d bytes", tag, len(got))
		}
	})
}
