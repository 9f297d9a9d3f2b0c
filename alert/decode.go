package alert

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/ucp-audit/ucp-audit/auditlog"
)

// decoded is one line of the trail as the rules see it: exactly one of
// event and self is set, or kind is "" for a line no rule looks at.
type decoded struct {
	kind  string // KindEvent, KindSelf, KindGap or ""
	event map[string]any
	self  map[string]any
}

// The starts of the plugin's self and gap lines, as auditlog.MarshalSelf
// and MarshalGap write them: with no rule configured, only lines starting
// so are decoded (for the built-in alarms).
var (
	selfStart = []byte(`{"` + auditlog.SelfKey + `":`)
	gapStart  = []byte(`{"` + auditlog.GapKey + `":`)
)

func maybeSelf(line []byte) bool {
	return bytes.HasPrefix(line, selfStart) || bytes.HasPrefix(line, gapStart)
}

// decodeLine classifies and decodes one line as package review does: a
// line with a reserved top-level key (the chain field aside) is a plugin
// record, one with "auditID" an event. Seals, alert-fired records and
// other plugin records, and objects that are not events, are skipped. An
// event loses its chain field; a gap record's content gets "type": "gap".
// Whole JSON numbers become int64 (uint64 past its range), others float64.
func decodeLine(line []byte) decoded {
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	var top map[string]any
	if d.Decode(&top) != nil || top == nil {
		return decoded{}
	}
	var plugin string
	for k := range top {
		if strings.HasPrefix(k, auditlog.ReservedPrefix) && k != auditlog.ChainKey {
			if plugin != "" {
				return decoded{} // several plugin keys: not a record the plugin writes
			}
			plugin = k
		}
	}
	switch plugin {
	case "":
		if _, ok := top["auditID"]; !ok {
			return decoded{}
		}
		delete(top, auditlog.ChainKey)
		return decoded{kind: KindEvent, event: normalize(top).(map[string]any)}
	case auditlog.SelfKey:
		m, ok := top[plugin].(map[string]any)
		if !ok || m["type"] == auditlog.SelfAlertFired {
			return decoded{}
		}
		return decoded{kind: KindSelf, self: normalize(m).(map[string]any)}
	case auditlog.GapKey:
		m, ok := top[plugin].(map[string]any)
		if !ok {
			return decoded{}
		}
		m["type"] = GapType
		return decoded{kind: KindGap, self: normalize(m).(map[string]any)}
	}
	return decoded{}
}

// typ is a self or gap record's type; "" for an event.
func (d decoded) typ() string {
	s, _ := d.self["type"].(string)
	return s
}

// normalize replaces json.Numbers in v, in place.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	}
	return v
}
