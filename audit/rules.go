package audit

import (
	"strings"
	"unicode/utf8"
)

// The redaction rules, as data. Apply replaces what they name in
// requestObject and responseObject with "<redacted>", at any depth, and
// lists the paths in the ucp-audit/redacted annotation. Adding a rule is a
// line in one of these tables and a case in testdata/redact/rules.golden.
// README.md lists the same rules (checked by TestRedactionRulesDocumented).

// A keyRule names secret members of an object by their key. Keys are
// compared lower-cased, with "_", "-" and "." removed, so "bind_password",
// "Bind-Password" and "bindPassword" are one key.
type keyRule struct {
	key   string // normalized
	match keyMatch
}

type keyMatch byte

const (
	// anyValue: a member with exactly this key is secret, whatever its
	// value (a string, a list, an object).
	anyValue keyMatch = '='
	// stringValue: a member with exactly this key is secret when its value
	// is a string or a list of strings ("auth" is also the name of
	// configuration objects).
	stringValue keyMatch = '"'
	// suffix: a member whose key ends with this is secret when its value is
	// a string or a list of strings (bindPassword, sessionToken); a flag
	// such as automountServiceAccountToken: true stays.
	suffix keyMatch = '$'
)

var keyRules = []keyRule{
	{"password", anyValue}, {"passwd", anyValue}, {"passphrase", anyValue},
	{"token", anyValue}, {"authtoken", anyValue}, {"identitytoken", anyValue}, {"registrytoken", anyValue},
	{"accesstoken", anyValue}, {"refreshtoken", anyValue}, {"idtoken", anyValue}, {"bearertoken", anyValue},
	{"jointoken", anyValue}, {"jointokens", anyValue}, {"unlockkey", anyValue},
	{"secret", anyValue}, {"clientsecret", anyValue}, {"privatekey", anyValue}, {"secretkey", anyValue},
	{"apikey", anyValue}, {"credentials", anyValue}, {"authorization", anyValue},
	{"encodedregistryauth", anyValue}, {"xregistryauth", anyValue}, {"registryauth", anyValue},
	{"auth", stringValue}, {"cookie", stringValue},
	{"password", suffix}, {"passwd", suffix}, {"passphrase", suffix}, {"token", suffix}, {"secret", suffix},
	{"apikey", suffix}, {"secretkey", suffix}, {"privatekey", suffix}, {"accesskey", suffix}, {"credential", suffix},
}

// secretEnvWords: an environment variable whose name, lower-cased, holds
// one of these is secret: its value in a "NAME=value" entry of an "env"
// list (Docker) and the "value" of an {"name", "value"} entry of an "env"
// list (Kubernetes) become "<redacted>". A name with a part "key"
// (SSH_KEY, GPG_KEY_ID) is secret too; MODE=prod is not.
var secretEnvWords = []string{"password", "passwd", "pwd", "secret", "token", "credential", "apikey", "api_key", "privatekey", "private_key", "passphrase"}

// Structural rules, which need more than a key:
//   - a Docker secret create or update (POST /secrets/create,
//     /secrets/{id}/update): the top-level "Data", in any case, as Docker
//     decodes keys case-insensitively;
//   - a Kubernetes Secret (an object whose kind is Secret, each item of a
//     SecretList, and any payload whose objectRef.resource is secrets):
//     each value of "data" and "stringData", and the "value" of each
//     JSON-patch operation;
//   - the kubectl.kubernetes.io/last-applied-configuration annotation: the
//     object it holds, as JSON text, is redacted by the same rules (a
//     Secret's data in clear text, every kubectl apply), or withheld whole
//     when it is not JSON;
//   - any string that is a URL with user information: the user
//     information ("https://<redacted>@host/path").
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// keyIs the kinds of secret a member's key makes it.
type secretKind byte

const (
	notSecret    secretKind = 0
	secretAny    secretKind = 1
	secretString secretKind = 2 // only a string or a list of strings
)

// secretKeyKind says whether a member with this key is secret.
func secretKeyKind(key string) secretKind {
	// Without allocating for the usual ASCII key: lower-case it without
	// "_", "-" and "." into a small buffer. No key rule is longer than 32.
	var buf [32]byte
	n := 0
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= utf8.RuneSelf:
			return secretKeyKindSlow(key)
		case c == '_' || c == '-' || c == '.':
			continue
		case n == len(buf):
			// Longer than any exact rule: only a suffix can match.
			return suffixKind(strings.ToLower(strings.NewReplacer("_", "", "-", "", ".", "").Replace(key)))
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	return normalizedKind(string(buf[:n]))
}

func secretKeyKindSlow(key string) secretKind {
	return normalizedKind(strings.NewReplacer("_", "", "-", "", ".", "").Replace(strings.ToLower(key)))
}

func normalizedKind(k string) secretKind {
	if m, ok := exactRules[k]; ok {
		if m == anyValue {
			return secretAny
		}
		return secretString
	}
	return suffixKind(k)
}

func suffixKind(k string) secretKind {
	if k == "" || strings.IndexByte(suffixEnds, k[len(k)-1]) < 0 {
		return notSecret // the usual key: no suffix rule ends like it
	}
	for _, s := range suffixRules {
		if strings.HasSuffix(k, s) {
			return secretString
		}
	}
	return notSecret
}

var exactRules, suffixRules, suffixEnds = func() (map[string]keyMatch, []string, string) {
	exact := map[string]keyMatch{}
	var suffixes []string
	var ends []byte
	for _, r := range keyRules {
		if r.match == suffix {
			suffixes = append(suffixes, r.key)
			if c := r.key[len(r.key)-1]; !strings.ContainsRune(string(ends), rune(c)) {
				ends = append(ends, c)
			}
		} else {
			exact[r.key] = r.match
		}
	}
	return exact, suffixes, string(ends)
}()

// SecretEnvName reports whether an environment variable's name says its
// value is a secret (password, secret, token … in any case), as redaction
// decides for "NAME=value" entries of a payload.
func SecretEnvName(name string) bool { return secretEnvName(name) }

// RedactedValue is what replaces a secret value.
const RedactedValue = redactedValue

// secretEnvName reports whether an environment variable's name says it
// holds a secret.
func secretEnvName(name string) bool {
	var buf [64]byte
	l := buf[:0]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= utf8.RuneSelf || len(l) == len(buf) {
			return secretEnvNameSlow(name)
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		l = append(l, c)
	}
	return secretEnvLower(string(l)) // no allocation: the compiler keeps it on the stack
}

func secretEnvNameSlow(name string) bool { return secretEnvLower(strings.ToLower(name)) }

func secretEnvLower(l string) bool {
	for _, w := range secretEnvWords {
		if strings.Contains(l, w) {
			return true
		}
	}
	for l != "" {
		i := strings.IndexAny(l, "_-.")
		part := l
		if i >= 0 {
			part, l = l[:i], l[i+1:]
		} else {
			l = ""
		}
		if part == "key" || part == "pass" {
			return true
		}
	}
	return false
}

// isEnvKey reports whether a member holds an environment list.
func isEnvKey(key string) bool { return strings.EqualFold(key, "env") }

// redactEnvEntry returns "NAME=<redacted>" for a "NAME=value" entry with a
// secret name, and false for any other.
func redactEnvEntry(entry string) (string, bool) {
	name, value, ok := strings.Cut(entry, "=")
	if !ok || value == "" || value == redactedValue || !secretEnvName(name) {
		return "", false
	}
	return name + "=" + redactedValue, true
}

// redactURL returns s with the user information of a URL in it replaced,
// and whether s is such a URL.
func redactURL(s string) (string, bool) {
	i := strings.Index(s, "://")
	if i <= 0 {
		return "", false
	}
	rest := s[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at <= 0 || rest[:at] == redactedValue {
		return "", false
	}
	return s[:i+3] + redactedValue + rest[at:], true
}
