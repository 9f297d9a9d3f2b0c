package main

// The lines around the audit events: ordinary controller lines on stdout
// and stderr, malformed audit lines, and the deterministic IDs.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

var ordinaryMsgs = []string{
	"Reconciling UCP components",
	"audit logging level set to request",
	"Checking for license expiry",
	"Updated node inventory: 3 managers, 5 workers",
	"Refreshing auth token cache",
	"Heartbeat from ucp-kv <10.0.0.7> & ucp-auth-store",
}

// ordinary returns an ordinary controller line: logrus JSON without an
// "audit" key, logrus text, or plain text. None contains "auditID".
func (g *gen) ordinary(i int) string {
	msg := ordinaryMsgs[i%len(ordinaryMsgs)]
	switch i % 3 {
	case 0:
		b, err := json.Marshal(map[string]any{"level": "info", "msg": msg, "time": g.now.Format(time.RFC3339)})
		if err != nil {
			panic(err)
		}
		return string(b)
	case 1:
		return fmt.Sprintf("time=%q level=info msg=%q", g.now.Format(time.RFC3339), msg)
	default:
		return fmt.Sprintf("%s (%d)", msg, i)
	}
}

func (g *gen) stderrLine(i int) {
	var text string
	switch i {
	case 0:
		text = "WARNING: ucp-controller started without a trusted CA bundle"
	case 1:
		b, _ := json.Marshal(map[string]any{"level": "error", "msg": "failed to contact ucp-metrics: connection refused", "time": g.now.Format(time.RFC3339)})
		text = string(b)
	case 2:
		text = fmt.Sprintf("time=%q level=warning msg=\"slow request: 2.3s\"", g.now.Format(time.RFC3339))
	default:
		text = fmt.Sprintf("stderr line %d of seed %d", i, g.opts.Seed)
	}
	g.out.Lines = append(g.out.Lines, Line{Stream: "stderr", Text: text})
	g.out.Manifest.StderrLines++
}

// malformed prints the i-th kind of malformed audit line.
func (g *gen) malformed(i int) {
	r := &request{family: familySwarm, verb: "GET", uri: "/v1.41/nodes", level: "metadata", respCode: 200}
	ev := g.event(r)
	var text, reason string
	switch i {
	case 0: // truncated JSON, cut well after the auditID
		full := g.wrap(ev)
		text = full[:len(full)*2/3]
		reason = reasonNotJSON
	case 1: // "audit" is not an object
		b, err := json.Marshal(map[string]any{"audit": "notanobject", "auditID": r.auditID, "level": "info", "msg": "audit", "time": g.now.Format(time.RFC3339)})
		if err != nil {
			panic(err)
		}
		text = string(b)
		reason = reasonNotObject
	case 2: // user.username missing
		delete(ev["user"].(map[string]any), "username")
		text = g.wrap(ev)
		reason = reasonNoUsername
	case 3: // requestReceivedTimestamp is not RFC 3339
		ev["requestReceivedTimestamp"] = r.receivedAt.Format("2006-01-02 15:04:05")
		text = g.wrap(ev)
		reason = reasonBadReceived
	default: // unknown level
		ev["level"] = "bogus"
		text = g.wrap(ev)
		reason = reasonBadLevel
	}
	me := g.manifestEvent(r, ev)
	me.Malformed = true
	me.Level = fmt.Sprint(ev["level"])
	me.Reason = reason
	me.Bytes = len(text)
	g.stdoutLine(text)
	me.Line = g.stdout
	g.out.Manifest.Events = append(g.out.Manifest.Events, me)
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// uuidFrom derives a version-4-shaped UUID from s.
func uuidFrom(s string) string {
	sum := sha256.Sum256([]byte(s))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
