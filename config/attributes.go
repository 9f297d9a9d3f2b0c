package config

import (
	"errors"
	"regexp"
	"slices"
	"strings"

	"github.com/ucp-audit/ucp-audit/audit"
)

// The container's labels and environment on its events: Docker's drivers
// add those its labels, labels-regex, env and env-regex options select to
// what they log (moby's logger.Info.ExtraAttributes); here they become
// annotations of each forwarded event, under the reserved prefix
// (ucp-audit/label/KEY, ucp-audit/env/NAME). A variable whose name says it
// holds a secret (redaction's rule for NAME=value entries) is given with
// its value redacted.

// maxRegexp bounds a *-regex option: Go's regexps run in linear time, and a
// bound on the pattern bounds the program too.
const maxRegexp = 1024

var errLongRegexp = errors.New("longer than 1024 bytes")

func boundedRegexp(v string) (*regexp.Regexp, error) {
	if len(v) > maxRegexp {
		return nil, errLongRegexp
	}
	return regexp.Compile(v)
}

// nameList splits a comma-separated list, dropping blanks.
func nameList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Attributes returns the annotations the options select from the
// container's labels and environment ("NAME=value" entries), sorted by
// key; an empty, non-nil slice when none.
func (c Config) Attributes(labels map[string]string, env []string) []audit.Annotation {
	out := []audit.Annotation{}
	for k, v := range labels {
		if slices.Contains(c.Labels, k) || (c.LabelsRegex != nil && c.LabelsRegex.MatchString(k)) {
			out = append(out, audit.Annotation{Key: audit.AnnotationLabelPrefix + k, Value: v})
		}
	}
	for _, kv := range env {
		name, v, _ := strings.Cut(kv, "=")
		if name == "" || !(slices.Contains(c.Env, name) || (c.EnvRegex != nil && c.EnvRegex.MatchString(name))) {
			continue
		}
		if v != "" && audit.SecretEnvName(name) {
			v = audit.RedactedValue
		}
		out = append(out, audit.Annotation{Key: audit.AnnotationEnvPrefix + name, Value: v})
	}
	slices.SortFunc(out, func(a, b audit.Annotation) int { return strings.Compare(a.Key, b.Key) })
	return slices.CompactFunc(out, func(a, b audit.Annotation) bool { return a.Key == b.Key })
}
