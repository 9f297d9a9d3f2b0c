package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Merge applies patch, a whole or partial document, to doc as a JSON merge
// patch (RFC 7396): objects merge key by key, any other value replaces,
// and null removes a key (which then takes its default). It returns the
// new document, indented, with its keys sorted; it does not validate it
// (Parse does).
func Merge(doc, patch []byte) ([]byte, error) {
	base, err := object(doc)
	if err != nil {
		return nil, err
	}
	p, err := Decode(patch)
	if err != nil {
		return nil, err
	}
	pm, ok := p.(map[string]any)
	if !ok {
		return nil, &KeyError{Err: ErrNotObject}
	}
	return encode(mergeObject(base, pm))
}

func mergeObject(base, patch map[string]any) map[string]any {
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(base, k)
		case map[string]any:
			bv, _ := base[k].(map[string]any)
			if bv == nil {
				bv = map[string]any{}
			}
			base[k] = mergeObject(bv, pv)
		default:
			base[k] = v
		}
	}
	return base
}

// Set applies KEY=VALUE assignments to doc. KEY is a dotted path
// ("trail.maxSize"); VALUE is read as JSON when it is JSON (a number, true,
// false, null, a quoted string, a list or an object) and as a string
// otherwise, so auditLevel=request and trail.maxFiles=30 need no quotes.
// null removes the key.
func Set(doc []byte, assigns []string) ([]byte, error) {
	patch := map[string]any{}
	for _, a := range assigns {
		k, raw, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("ucp-audit: node configuration: %q: want KEY=VALUE", a)
		}
		var v any = raw
		if x, err := Decode([]byte(raw)); err == nil && strings.TrimSpace(raw) != "" {
			v = x
		}
		parts := strings.Split(k, ".")
		m := patch
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = v
	}
	b, err := encode(patch)
	if err != nil {
		return nil, err
	}
	return Merge(doc, b)
}

func object(doc []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return map[string]any{}, nil
	}
	v, err := Decode(doc)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &KeyError{Err: ErrNotObject}
	}
	return m, nil
}

func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("node configuration: %w", err)
	}
	return buf.Bytes(), nil
}

// Document returns c as a whole document: every key, with the values in
// force (sizes in the document's syntax, "100m"). It holds what the
// document holds, alerting's URLs included: see Redacted.
func (c Config) Document() map[string]any { return c.document(false) }

// Redacted is Document without secrets: alerting's output URLs are cut to
// their scheme and host. It is what the trail's config-changed records and
// support dumps hold.
func (c Config) Redacted() map[string]any { return c.document(true) }

// Equal reports whether c and o are the same configuration.
func (c Config) Equal(o Config) bool {
	return bytes.Equal(c.JSON(), o.JSON())
}

// RedactedJSON is Redacted, encoded as Merge encodes.
func (c Config) RedactedJSON() []byte {
	b, _ := encode(c.Redacted())
	return b
}

func (c Config) document(redact bool) map[string]any {
	producers := make([]any, len(c.Producers))
	for i, p := range c.Producers {
		m := map[string]any{}
		for k, v := range map[string]string{"image": p.Image, "imageID": p.ImageID, "name": p.Name} {
			if v != "" {
				m[k] = v
			}
		}
		producers[i] = m
	}
	subjects := append([]string{}, c.API.AllowedSubjects...)
	return map[string]any{
		"logLevel":                    c.LogLevel,
		"auditLevel":                  c.AuditLevelText,
		"supportDumpIncludeAuditLogs": c.SupportDumpIncludeAuditLogs,
		"trail": map[string]any{
			"auditFile":      c.Trail.AuditFile,
			"quarantineFile": c.Trail.QuarantineFile,
			"maxSize":        FormatSize(c.Trail.MaxSize),
			"maxFiles":       c.Trail.MaxFiles,
			"compress":       c.Trail.Compress,
		},
		"sealKey": c.SealKey,
		"caps": map[string]any{
			"maxLineSize": FormatSize(c.Caps.MaxLineSize),
			"storeSize":   FormatSize(c.Caps.StoreSize),
			"storeTotal":  FormatSize(c.Caps.StoreTotal),
			"spoolSize":   FormatSize(c.Caps.SpoolSize),
			"spoolTotal":  FormatSize(c.Caps.SpoolTotal),
		},
		"producers": producers,
		"api": map[string]any{
			"certFile":        c.API.CertFile,
			"keyFile":         c.API.KeyFile,
			"clientCAFile":    c.API.ClientCAFile,
			"allowedSubjects": subjects,
		},
		"alerts": c.Alerts.document(redact),
	}
}

// JSON is Document, encoded as Merge encodes.
func (c Config) JSON() []byte {
	b, _ := encode(c.Document()) // maps of strings, numbers and lists only
	return b
}

// Lookup returns the value at a dotted key of doc.
func Lookup(doc map[string]any, key string) (any, error) {
	var v any = doc
	for _, p := range strings.Split(key, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, &KeyError{Key: key, Err: ErrUnknownKey}
		}
		if v, ok = m[p]; !ok {
			return nil, &KeyError{Key: key, Err: ErrUnknownKey, Want: strings.Join(Keys(), ", ")}
		}
	}
	return v, nil
}

// FormatSize writes n in the document's size syntax: "4m", "1g", "64k",
// or the number of bytes when no unit divides it; -1 (no limit) as "-1".
func FormatSize(n int64) string {
	switch {
	case n < 0:
		return "-1"
	case n == 0:
		return "0"
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dg", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dm", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dk", n>>10)
	}
	return fmt.Sprint(n)
}
