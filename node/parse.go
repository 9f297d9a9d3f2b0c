package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	units "github.com/docker/go-units"

	"github.com/ucp-audit/ucp-audit/alert"
	"github.com/ucp-audit/ucp-audit/audit"
)

// MaxDocument bounds the document's size: it is read whole.
const MaxDocument = 1 << 20

// Parse reads a document over the defaults. An empty document (no bytes,
// or only white space) is the default configuration. Every error names
// the offending key: a *KeyError, or for the "alerts" section package
// alert's *alert.KeyError, which names it from the document's top too.
func Parse(doc []byte, env Env) (Config, error) {
	c := Default(env)
	if len(bytes.TrimSpace(doc)) == 0 {
		return c, nil
	}
	v, err := Decode(doc)
	if err != nil {
		return Config{}, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return Config{}, &KeyError{Err: ErrNotObject}
	}
	if err := parseObject(&c, env, "", m, topKeys); err != nil {
		return Config{}, err
	}
	if err := c.check(env); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Decode reads one JSON value, keeping numbers as json.Number. Objects
// become map[string]any; a key given twice is an error naming it (a
// reader of the document must see what the plugin applies).
func Decode(doc []byte) (any, error) {
	if len(doc) > MaxDocument {
		return nil, &KeyError{Err: fmt.Errorf("document of %d bytes is larger than %d", len(doc), MaxDocument)}
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	v, err := decodeValue(d, "")
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, &KeyError{Err: errors.New("not one JSON value: more follows it")}
	}
	return v, nil
}

func decodeValue(d *json.Decoder, at string) (any, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, &KeyError{Key: at, Err: fmt.Errorf("not JSON: %w", err)}
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, &KeyError{Key: at, Err: fmt.Errorf("not JSON: %w", err)}
				}
				k := kt.(string)
				if _, dup := m[k]; dup {
					return nil, &KeyError{Key: join(at, k), Err: errors.New("given twice")}
				}
				if m[k], err = decodeValue(d, join(at, k)); err != nil {
					return nil, err
				}
			}
			if err := closeToken(d, at); err != nil {
				return nil, err
			}
			return m, nil
		case '[':
			l := []any{}
			for d.More() {
				x, err := decodeValue(d, fmt.Sprintf("%s[%d]", at, len(l)))
				if err != nil {
					return nil, err
				}
				l = append(l, x)
			}
			if err := closeToken(d, at); err != nil {
				return nil, err
			}
			return l, nil
		}
	}
	return tok, nil
}

// closeToken reads the '}' or ']' that ends an object or array; a
// document cut short ends in io.EOF here, reported like any other bad JSON.
func closeToken(d *json.Decoder, at string) error {
	if _, err := d.Token(); err != nil {
		return &KeyError{Key: at, Err: fmt.Errorf("not JSON: %w", err)}
	}
	return nil
}

func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

// key is one key of an object of the document.
type key struct {
	name  string
	want  string
	parse func(c *Config, env Env, v any) error // v: string, bool, json.Number, []any, map[string]any or nil
	sub   []key                                 // an object: its keys
}

// topKeys is the document's schema; docs/configuration.md lists the
// same keys (checked by a test). "alerts" is package alert's, which
// docs/alerting.md describes.
var topKeys = []key{
	{name: "logLevel", want: "DEBUG, INFO, WARN or ERROR", parse: func(c *Config, _ Env, v any) error {
		s, err := str(v)
		if err == nil {
			_, err = parseLogLevel(s)
		}
		c.LogLevel = s
		return err
	}},
	{name: "auditLevel", want: `none, metadata or request ("" is none, as in UCP)`, parse: func(c *Config, _ Env, v any) error {
		s, err := str(v)
		if err != nil {
			return err
		}
		c.AuditLevelText = s
		if strings.TrimSpace(s) == "" {
			c.AuditLevel = audit.LevelNone
			return nil
		}
		if c.AuditLevel, err = audit.ParseLevel(s); err != nil {
			return errors.New("unknown level")
		}
		return nil
	}},
	{name: "supportDumpIncludeAuditLogs", want: "true or false", parse: func(c *Config, _ Env, v any) (err error) {
		c.SupportDumpIncludeAuditLogs, err = boolean(v)
		return err
	}},
	{name: "trail", sub: []key{
		{name: "auditFile", want: "an absolute path of a file below the log directory", parse: func(c *Config, env Env, v any) (err error) {
			c.Trail.AuditFile, err = trailPath(env, v)
			return err
		}},
		{name: "quarantineFile", want: "an absolute path of a file below the log directory", parse: func(c *Config, env Env, v any) (err error) {
			c.Trail.QuarantineFile, err = trailPath(env, v)
			return err
		}},
		{name: "maxSize", want: `a size of at least 64k such as "100m", or -1 for no rotation`, parse: func(c *Config, _ Env, v any) (err error) {
			c.Trail.MaxSize, err = size(v, 64<<10, 1<<40, true)
			return err
		}},
		{name: "maxFiles", want: "a whole number from 2 to 1000", parse: func(c *Config, _ Env, v any) (err error) {
			c.Trail.MaxFiles, err = count(v, 2, 1000)
			return err
		}},
		{name: "compress", want: "true or false", parse: func(c *Config, _ Env, v any) (err error) {
			c.Trail.Compress, err = boolean(v)
			return err
		}},
	}},
	{name: "sealKey", want: "the path of a PEM Ed25519 private key below the state directory, or \"\" for unsigned seals", parse: func(c *Config, env Env, v any) (err error) {
		c.SealKey, err = statePath(env, v, true)
		return err
	}},
	{name: "caps", sub: []key{
		{name: "maxLineSize", want: `a size from 16k to 64m, such as "4m"`, parse: func(c *Config, _ Env, v any) (err error) {
			c.Caps.MaxLineSize, err = size(v, MinMaxLineSize, MaxMaxLineSize, false)
			return err
		}},
		{name: "storeSize", want: `a size of at least 1m, such as "1g"`, parse: func(c *Config, _ Env, v any) (err error) {
			c.Caps.StoreSize, err = size(v, 1<<20, 1<<50, false)
			return err
		}},
		{name: "storeTotal", want: `a size of at least 1m, such as "10g"`, parse: func(c *Config, _ Env, v any) (err error) {
			c.Caps.StoreTotal, err = size(v, 1<<20, 1<<50, false)
			return err
		}},
		{name: "spoolSize", want: `a size of at least 1m, such as "1g"`, parse: func(c *Config, _ Env, v any) (err error) {
			c.Caps.SpoolSize, err = size(v, 1<<20, 1<<50, false)
			return err
		}},
		{name: "spoolTotal", want: `a size of at least 1m, such as "4g"`, parse: func(c *Config, _ Env, v any) (err error) {
			c.Caps.SpoolTotal, err = size(v, 1<<20, 1<<50, false)
			return err
		}},
	}},
	{name: "producers", want: `a list of producer rules, such as [{"image": "ucp-controller"}]`, parse: parseProducers},
	{name: "api", sub: []key{
		{name: "certFile", want: "the path of the listener's PEM certificate below the state directory", parse: func(c *Config, env Env, v any) (err error) {
			c.API.CertFile, err = statePath(env, v, true)
			return err
		}},
		{name: "keyFile", want: "the path of the listener's PEM key below the state directory", parse: func(c *Config, env Env, v any) (err error) {
			c.API.KeyFile, err = statePath(env, v, true)
			return err
		}},
		{name: "clientCAFile", want: "the path of a PEM file of CA certificates below the state directory", parse: func(c *Config, env Env, v any) (err error) {
			c.API.ClientCAFile, err = statePath(env, v, true)
			return err
		}},
		{name: "allowedSubjects", want: `a list of subjects, such as ["CN=admin"]`, parse: func(c *Config, _ Env, v any) (err error) {
			c.API.AllowedSubjects, err = strList(v)
			for _, s := range c.API.AllowedSubjects {
				if strings.TrimSpace(s) == "" {
					return errors.New("an empty subject")
				}
			}
			return err
		}},
	}},
	{name: "alerts", want: "an alerts section (docs/alerting.md)", parse: parseAlerts},
}

// Keys lists every key of the document by dotted path, sorted
// (producers' members as "producers[].image").
func Keys() []string {
	var out []string
	var walk func(prefix string, ks []key)
	walk = func(prefix string, ks []key) {
		for _, k := range ks {
			if k.sub != nil {
				walk(prefix+k.name+".", k.sub)
				continue
			}
			out = append(out, prefix+k.name)
			if k.name == "producers" {
				for _, f := range producerFields {
					out = append(out, prefix+"producers[]."+f)
				}
			}
		}
	}
	walk("", topKeys)
	slices.Sort(out)
	return out
}

func parseObject(c *Config, env Env, at string, m map[string]any, ks []key) error {
	names := slices.Sorted(mapKeys(m))
	for _, name := range names {
		i := slices.IndexFunc(ks, func(k key) bool { return k.name == name })
		p := join(at, name)
		if i < 0 {
			known := make([]string, len(ks))
			for j, k := range ks {
				known[j] = k.name
			}
			return &KeyError{Key: p, Err: ErrUnknownKey, Want: strings.Join(known, ", ")}
		}
		k, v := ks[i], m[name]
		if k.sub != nil {
			sub, ok := v.(map[string]any)
			if !ok {
				return invalid(p, v, "an object", nil)
			}
			if err := parseObject(c, env, p, sub, k.sub); err != nil {
				return err
			}
			continue
		}
		if err := k.parse(c, env, v); err != nil {
			var ke *KeyError
			var ae *alert.KeyError // names its key from the document's top
			if errors.As(err, &ke) || errors.As(err, &ae) {
				return err
			}
			return invalid(p, v, k.want, err)
		}
	}
	return nil
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func invalid(at string, v any, want string, reason error) error {
	return &KeyError{Key: at, Value: show(v), Err: ErrInvalidValue, Reason: reason, Want: want}
}

// show writes a value as JSON, shortened: it goes into error messages.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	if len(b) > 80 {
		b = append(b[:77:77], "..."...)
	}
	return string(b)
}

var errType = errors.New("wrong type")

func str(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: not a string", errType)
	}
	return s, nil
}

func strList(v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: not a list", errType)
	}
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%w: not a list of strings", errType)
		}
		out = append(out, s)
	}
	return out, nil
}

func boolean(v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%w: not true or false", errType)
	}
	return b, nil
}

// size reads a byte count: a JSON number, or a string in Docker's size
// syntax with binary multiples ("100m" is 100 MiB, as go-units RAMInBytes).
// With noLimit, -1 is allowed (and returned as -1).
func size(v any, lo, hi int64, noLimit bool) (int64, error) {
	var n int64
	switch x := v.(type) {
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			return 0, errors.New("not a whole number of bytes")
		}
		n = i
	case string:
		if strings.TrimSpace(x) == "-1" {
			n = -1
			break
		}
		i, err := units.RAMInBytes(x)
		if err != nil {
			return 0, errors.New("not a size")
		}
		n = i
	default:
		return 0, fmt.Errorf("%w: not a size", errType)
	}
	if n == -1 && noLimit {
		return -1, nil
	}
	if n < lo || n > hi {
		return 0, errors.New("out of range")
	}
	return n, nil
}

func count(v any, lo, hi int) (int, error) {
	x, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%w: not a number", errType)
	}
	n, err := strconv.Atoi(x.String())
	if err != nil {
		return 0, errors.New("not a whole number")
	}
	if n < lo || n > hi {
		return 0, errors.New("out of range")
	}
	return n, nil
}

// rotationSuffix matches the names rotation gives a file's older copies.
var rotationSuffix = regexp.MustCompile(`\.[0-9]+(\.gz)?$`)

// trailPath reads the path of one of the trail's files: absolute, below
// the log directory, and not named like another file's rotated copy.
func trailPath(env Env, v any) (string, error) {
	s, err := str(v)
	if err != nil {
		return "", err
	}
	p, err := below(env.logDir(), s)
	if err != nil {
		return "", err
	}
	if rotationSuffix.MatchString(p) {
		return "", errors.New("named like a rotated file (.N or .N.gz)")
	}
	return p, nil
}

// statePath reads the path of a file the plugin reads: absolute and below
// the state directory. With empty, "" is allowed (and means none).
func statePath(env Env, v any, empty bool) (string, error) {
	s, err := str(v)
	if err != nil {
		return "", err
	}
	if s == "" && empty {
		return "", nil
	}
	return below(env.stateDir(), s)
}

var errNotBelow = errors.New("not below the directory")

func below(dir, p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", errors.New("not an absolute path")
	}
	p = filepath.Clean(p)
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%w %s", errNotBelow, dir)
	}
	return p, nil
}

// check runs the cross-key checks.
func (c *Config) check(env Env) error {
	a, q := c.Trail.AuditFile, c.Trail.QuarantineFile
	if a == q {
		return invalid("trail.quarantineFile", q, "a path other than trail.auditFile", nil)
	}
	for _, p := range [][2]string{{a, q}, {q, a}} {
		if rel, ok := strings.CutPrefix(p[1], p[0]+"."); ok && rotationSuffix.MatchString("."+rel) {
			return invalid("trail.quarantineFile", q, "a path that is not a rotated copy of the other file", nil)
		}
		if strings.HasPrefix(p[1], p[0]+string(filepath.Separator)) {
			return invalid("trail.quarantineFile", q, "a path that is not below the other file", nil)
		}
	}
	if c.Caps.StoreTotal < c.Caps.StoreSize {
		return invalid("caps.storeTotal", c.Caps.StoreTotal, "at least caps.storeSize", nil)
	}
	if c.Caps.SpoolTotal < c.Caps.SpoolSize {
		return invalid("caps.spoolTotal", c.Caps.SpoolTotal, "at least caps.spoolSize", nil)
	}
	api := c.API
	if api.CertFile != "" || api.KeyFile != "" || api.ClientCAFile != "" || len(api.AllowedSubjects) > 0 {
		for _, k := range []struct{ name, v string }{{"api.certFile", api.CertFile}, {"api.keyFile", api.KeyFile}, {"api.clientCAFile", api.ClientCAFile}} {
			if k.v == "" {
				return &KeyError{Key: k.name, Err: ErrInvalidValue, Value: `""`, Want: "set with the other api keys: the listener needs its certificate, its key and the client CAs"}
			}
		}
		if len(api.AllowedSubjects) == 0 {
			return &KeyError{Key: "api.allowedSubjects", Err: ErrInvalidValue, Value: "[]", Want: "at least one subject: without one no client is allowed"}
		}
	}
	return nil
}
