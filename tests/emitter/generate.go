package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// Options selects what Generate prints. The zero value prints nothing but
// ordinary lines; main's flag defaults are the realistic mix.
type Options struct {
	Seed         int64
	N            int  // requests per API family
	Big          int  // request-level events over 16 KiB
	Malformed    bool // malformed audit lines
	Stderr       bool // a few ordinary stderr lines
	Ignored      bool // events of endpoints in the default ignore list
	Ordinary     int  // ordinary stdout lines
	Unterminated bool // the last stdout line is an audit line without newline
	// Arrays request-level requests whose requestObject is a JSON array
	// of ArrayLen zeros: the payload that costs a parser most per byte.
	Arrays, ArrayLen int
	Sleep            time.Duration
}

// Line is one line of output, without its newline.
type Line struct {
	Stream    string // "stdout" or "stderr"
	Text      string
	NoNewline bool
}

// Output is what the emitter prints and its manifest.
type Output struct {
	Lines    []Line
	Manifest Manifest
}

// Manifest describes the output for the tests.
type Manifest struct {
	Seed        int64 `json:"seed"`
	StdoutLines int   `json:"stdoutLines"`
	StderrLines int   `json:"stderrLines"`
	// Events lists every audit line printed (well-formed or malformed), in
	// output order.
	Events []Event `json:"events"`
}

// Event describes one printed audit line.
type Event struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	Level      string `json:"level"` // as written in the event ("metadata", "Request", …)
	Kind       string `json:"kind"`
	Family     string `json:"family"` // "docker-swarm", "ucp" or "kubernetes"
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	// Username is user.extra.username[0], the expected "ucp-audit/user".
	Username string `json:"username"`
	// LicenseKey is the original user.extra.licenseKey[0].
	LicenseKey string `json:"licenseKey"`
	// RequestReceivedTimestamp as written in the event.
	RequestReceivedTimestamp string `json:"requestReceivedTimestamp"`
	// Ignored: requestURI is in the plugin's default ignore list.
	Ignored bool `json:"ignored"`
	// Forwarded: expected in audit.log with the default log-opts
	// (audit-level request, default ignore list).
	Forwarded bool `json:"forwarded"`
	// Malformed: expected in quarantine.log, with Reason as a
	// (case-insensitive) substring of its "reason".
	Malformed bool   `json:"malformed"`
	Reason    string `json:"reason,omitempty"`
	// HasRequestObject: the event carries a requestObject (request level).
	HasRequestObject bool `json:"hasRequestObject"`
	// Redacted lists dotted paths into the event that must read
	// "<redacted>" in audit.log at audit-level request.
	Redacted []string `json:"redacted,omitempty"`
	// Secrets are plaintext values that must never appear in audit.log.
	Secrets []string `json:"secrets,omitempty"`
	// Big: the line is longer than 16 KiB; PayloadBytes is the size of the
	// large value inside requestObject.
	Big          bool `json:"big,omitempty"`
	PayloadBytes int  `json:"payloadBytes,omitempty"`
	// Bytes is the length of the printed line without its newline.
	Bytes int `json:"bytes"`
	// Line is the 1-based number of the line on stdout.
	Line         int  `json:"line"`
	Unterminated bool `json:"unterminated,omitempty"`
}

// Families of the API calls ucp-controller audits.
const (
	familySwarm = "docker-swarm"
	familyUCP   = "ucp"
	familyK8s   = "kubernetes"
)

// Reason substrings of the malformed lines; they follow the messages of
// package audit's ValidationError.
const (
	reasonNotJSON     = "not JSON"
	reasonNotObject   = "is not an object"
	reasonNoUsername  = "user.username"
	reasonBadReceived = "requestReceivedTimestamp"
	reasonBadLevel    = `"level"`
)

// request is one audited API call; it prints two events (two stages).
type request struct {
	family     string
	verb       string
	uri        string
	level      string
	reqObj     any // an object, or an array (Options.Arrays)
	redacted   []string
	secrets    []string
	ignored    bool
	big        int
	objectRef  map[string]any
	respCode   int
	auditID    string
	user       string // extra.username[0]
	uid        string
	sourceIP   string
	receivedAt time.Time
	printed    int // stages printed so far
}

// token kinds of the interleaving.
const (
	tokRequest = iota
	tokOrdinary
	tokStderr
	tokMalformed
)

type token struct {
	kind int
	idx  int
}

var humans = []string{"alice", "bob", "carol", "admin", "dave"}

type gen struct {
	opts    Options
	rng     *rand.Rand
	now     time.Time
	license string
	ids     int
	out     Output
	stdout  int
}

// Generate builds the output for opts. It is deterministic.
func Generate(opts Options) Output {
	g := &gen{
		opts:    opts,
		rng:     rand.New(rand.NewPCG(uint64(opts.Seed), 0x7563702d61756474)),
		now:     time.Date(2024, 3, 2, 10, 0, 0, 0, time.UTC).Add(time.Duration(opts.Seed%1000) * time.Hour),
		license: "LK" + hashHex(fmt.Sprintf("license/%d", opts.Seed))[:22],
	}
	g.out.Manifest.Seed = opts.Seed

	var reqs []*request
	for k := 0; k < opts.N; k++ {
		reqs = append(reqs, g.swarmRequest(k), g.ucpRequest(k), g.k8sRequest(k))
	}
	if opts.Ignored {
		for _, uri := range []string{"/_ping", "/v1.41/_ping", "/version", "/info"} {
			reqs = append(reqs, &request{family: familySwarm, verb: "GET", uri: uri, level: "metadata", ignored: true, respCode: 200})
		}
	}
	for k := 0; k < opts.Big; k++ {
		size := 20 * 1024
		if k%2 == 1 {
			size = 40 * 1024
		}
		reqs = append(reqs, &request{
			family: familySwarm, verb: "POST", uri: "/v1.41/services/create", level: "request", big: size, respCode: 201,
			reqObj: map[string]any{
				"Name":         fmt.Sprintf("big-%d", k),
				"Labels":       map[string]any{"blob": g.payload(size)},
				"TaskTemplate": map[string]any{"ContainerSpec": map[string]any{"Image": "nginx:1.25"}},
			},
		})
	}

	for k := 0; k < opts.Arrays; k++ {
		zeros := make([]any, opts.ArrayLen)
		for i := range zeros {
			zeros[i] = 0
		}
		reqs = append(reqs, &request{family: familyUCP, verb: "POST", uri: "/api/ucp/config-toml", level: "request", big: 2*opts.ArrayLen + 2, respCode: 400, reqObj: zeros})
	}

	var toks []token
	for i := range reqs {
		toks = append(toks, token{tokRequest, i}, token{tokRequest, i})
	}
	for i := 0; i < opts.Ordinary; i++ {
		toks = append(toks, token{tokOrdinary, i})
	}
	if opts.Stderr {
		for i := 0; i < 4; i++ {
			toks = append(toks, token{tokStderr, i})
		}
	}
	if opts.Malformed {
		for i := 0; i < 5; i++ {
			toks = append(toks, token{tokMalformed, i})
		}
	}
	g.rng.Shuffle(len(toks), func(i, j int) { toks[i], toks[j] = toks[j], toks[i] })

	for _, t := range toks {
		g.now = g.now.Add(time.Duration(50+g.rng.IntN(400)) * time.Millisecond).Add(time.Duration(g.rng.IntN(1000)) * time.Microsecond)
		switch t.kind {
		case tokRequest:
			g.emitRequest(reqs[t.idx], false)
		case tokOrdinary:
			g.stdoutLine(g.ordinary(t.idx))
		case tokStderr:
			g.stderrLine(t.idx)
		case tokMalformed:
			g.malformed(t.idx)
		}
	}
	if opts.Unterminated {
		r := &request{family: familySwarm, verb: "GET", uri: "/v1.41/nodes", level: "metadata", respCode: 200}
		g.now = g.now.Add(time.Second)
		g.emitRequest(r, false)
		g.now = g.now.Add(time.Second)
		g.emitRequest(r, true)
	}
	return g.out
}

func (g *gen) nextID() string {
	g.ids++
	return uuidFrom(fmt.Sprintf("audit/%d/%d", g.opts.Seed, g.ids))
}

func (g *gen) swarmRequest(k int) *request {
	switch k % 5 {
	case 0:
		return &request{family: familySwarm, verb: "GET", uri: "/v1.41/services?filters=%7B%7D", level: "metadata", respCode: 200}
	case 1:
		return &request{family: familySwarm, verb: "POST", uri: "/v1.41/services/create", level: "request", respCode: 201,
			reqObj: map[string]any{
				"Name":         fmt.Sprintf("web-%d", k),
				"Mode":         map[string]any{"Replicated": map[string]any{"Replicas": 2}},
				"TaskTemplate": map[string]any{"ContainerSpec": map[string]any{"Image": "nginx:1.25", "Env": []any{"A=<b>&c"}}},
			}}
	case 2:
		data := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "secret-%d-%d", g.opts.Seed, k))
		return &request{family: familySwarm, verb: "POST", uri: "/v1.41/secrets/create", level: "request", respCode: 201,
			reqObj:   map[string]any{"Name": fmt.Sprintf("db-password-%d", k), "Data": data, "Labels": map[string]any{}},
			redacted: []string{"requestObject.Data"}, secrets: []string{data}}
	case 3:
		tok := "SWMTKN-1-" + hashHex(fmt.Sprintf("join/%d/%d", g.opts.Seed, k))[:50] + "-" + hashHex(fmt.Sprintf("join2/%d/%d", g.opts.Seed, k))[:25]
		return &request{family: familySwarm, verb: "POST", uri: "/v1.41/swarm/join", level: "request", respCode: 200,
			reqObj:   map[string]any{"JoinToken": tok, "RemoteAddrs": []any{"10.0.0.7:2377"}, "ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": "10.0.0.9:2377"},
			redacted: []string{"requestObject.JoinToken"}, secrets: []string{tok}}
	default:
		return &request{family: familySwarm, verb: "DELETE", uri: "/v1.41/services/" + hashHex(fmt.Sprintf("svc/%d/%d", g.opts.Seed, k))[:25], level: "metadata", respCode: 200}
	}
}

func (g *gen) ucpRequest(k int) *request {
	switch k % 5 {
	case 0:
		return &request{family: familyUCP, verb: "GET", uri: "/api/ucp/config/logging", level: "metadata", respCode: 200}
	case 1:
		return &request{family: familyUCP, verb: "PUT", uri: "/api/ucp/config/logging", level: "request", respCode: 200,
			reqObj: map[string]any{"auditLevel": "request", "logLevel": "INFO", "supportDumpIncludeAuditLogs": false}}
	case 2:
		return &request{family: familyUCP, verb: "GET", uri: "/enzi/v0/accounts?limit=50", level: "metadata", respCode: 200}
	case 3:
		pw := fmt.Sprintf("hunter2-%d-%d", g.opts.Seed, k)
		return &request{family: familyUCP, verb: "POST", uri: "/auth/login", level: "request", respCode: 200,
			reqObj:   map[string]any{"username": humans[k%len(humans)], "password": pw},
			redacted: []string{"requestObject.password"}, secrets: []string{pw}}
	default:
		return &request{family: familyUCP, verb: "POST", uri: "/enzi/v0/accounts", level: "request", respCode: 201,
			reqObj: map[string]any{"name": fmt.Sprintf("team-%d", k), "fullName": fmt.Sprintf("Team %d", k), "isOrg": true}}
	}
}

func (g *gen) k8sRequest(k int) *request {
	name := fmt.Sprintf("web-%d", k)
	podRef := map[string]any{"apiVersion": "v1", "namespace": "default", "resource": "pods", "name": name}
	switch k % 5 {
	case 0:
		return &request{family: familyK8s, verb: "list", uri: "/api/v1/namespaces/default/pods?limit=500", level: "Metadata", respCode: 200,
			objectRef: map[string]any{"apiVersion": "v1", "namespace": "default", "resource": "pods"}}
	case 1:
		return &request{family: familyK8s, verb: "create", uri: "/api/v1/namespaces/default/pods", level: "Request", respCode: 201,
			objectRef: podRef,
			reqObj: map[string]any{"apiVersion": "v1", "kind": "Pod",
				"metadata": map[string]any{"name": name, "namespace": "default"},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "web", "image": "nginx:1.25"}}}}}
	case 2:
		pw := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "k8s-password-%d-%d", g.opts.Seed, k))
		tok := fmt.Sprintf("k8s-token-%d-%d", g.opts.Seed, k)
		return &request{family: familyK8s, verb: "create", uri: "/api/v1/namespaces/default/secrets", level: "Request", respCode: 201,
			objectRef: map[string]any{"apiVersion": "v1", "namespace": "default", "resource": "secrets", "name": fmt.Sprintf("db-%d", k)},
			reqObj: map[string]any{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
				"metadata":   map[string]any{"name": fmt.Sprintf("db-%d", k), "namespace": "default"},
				"data":       map[string]any{"password": pw},
				"stringData": map[string]any{"token": tok}},
			redacted: []string{"requestObject.data.password", "requestObject.stringData.token"},
			secrets:  []string{pw, tok}}
	case 3:
		return &request{family: familyK8s, verb: "delete", uri: "/api/v1/namespaces/default/pods/" + name, level: "Metadata", respCode: 200, objectRef: podRef}
	default:
		return &request{family: familyK8s, verb: "get", uri: "/api/v1/namespaces/default/pods/" + name, level: "Metadata", respCode: 404, objectRef: podRef}
	}
}

// payload returns n deterministic characters of the base64 alphabet.
func (g *gen) payload(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.rng.IntN(len(alphabet))]
	}
	return string(b)
}

// event renders the audit object of r at its next stage.
func (g *gen) event(r *request) map[string]any {
	if r.auditID == "" {
		r.auditID = g.nextID()
		r.user = humans[g.rng.IntN(len(humans))]
		r.uid = uuidFrom("uid/" + r.user)
		r.sourceIP = fmt.Sprintf("10.0.%d.%d:%d", g.opts.Seed%250, 2+g.rng.IntN(250), 30000+g.rng.IntN(30000))
		r.receivedAt = g.now
	}
	stage := "RequestReceived"
	if r.printed > 0 {
		stage = "ResponseComplete"
	}
	r.printed++
	user := map[string]any{
		"username": r.uid,
		"uid":      r.uid,
		"extra": map[string]any{
			"licenseKey": []any{g.license},
			"username":   []any{r.user},
		},
	}
	ev := map[string]any{
		"auditID":                  r.auditID,
		"level":                    r.level,
		"requestReceivedTimestamp": r.receivedAt.Format(microRFC3339),
		"requestURI":               r.uri,
		"sourceIPs":                []any{r.sourceIP},
		"stage":                    stage,
		"user":                     user,
		"verb":                     r.verb,
	}
	if r.family == familyK8s {
		ev["apiVersion"] = "audit.k8s.io/v1"
		ev["kind"] = "Event"
		ev["stageTimestamp"] = g.now.Format(microRFC3339)
		ev["userAgent"] = "kubectl/v1.27.4 (linux/amd64) kubernetes/fa3d799"
		user["groups"] = []any{"system:authenticated"}
		if r.objectRef != nil {
			ev["objectRef"] = r.objectRef
		}
	} else {
		ev["kind"] = r.family
		ev["metadata"] = map[string]any{"creationTimestamp": nil}
		ev["stageTimestamp"] = nil
		ev["timestamp"] = nil
	}
	if stage == "ResponseComplete" {
		ev["responseStatus"] = map[string]any{"metadata": map[string]any{}, "code": r.respCode}
	}
	if r.reqObj != nil {
		ev["requestObject"] = r.reqObj
	}
	return ev
}

const microRFC3339 = "2006-01-02T15:04:05.000000Z07:00"

// wrap returns the logrus JSON record around an audit object.
func (g *gen) wrap(audit any) string {
	b, err := json.Marshal(map[string]any{
		"audit": audit,
		"level": "info",
		"msg":   "audit",
		"time":  g.now.Format(time.RFC3339),
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (g *gen) emitRequest(r *request, unterminated bool) {
	ev := g.event(r)
	text := g.wrap(ev)
	me := g.manifestEvent(r, ev)
	me.Bytes = len(text)
	me.Forwarded = !r.ignored
	me.Unterminated = unterminated
	g.stdoutLine(text)
	me.Line = g.stdout
	if unterminated {
		g.out.Lines[len(g.out.Lines)-1].NoNewline = true
	}
	g.out.Manifest.Events = append(g.out.Manifest.Events, me)
}

func (g *gen) manifestEvent(r *request, ev map[string]any) Event {
	return Event{
		AuditID:                  r.auditID,
		Stage:                    ev["stage"].(string),
		Level:                    r.level,
		Kind:                     ev["kind"].(string),
		Family:                   r.family,
		Verb:                     r.verb,
		RequestURI:               r.uri,
		Username:                 r.user,
		LicenseKey:               g.license,
		RequestReceivedTimestamp: r.receivedAt.Format(microRFC3339),
		Ignored:                  r.ignored,
		HasRequestObject:         r.reqObj != nil,
		Redacted:                 r.redacted,
		Secrets:                  r.secrets,
		Big:                      r.big > 0,
		PayloadBytes:             r.big,
	}
}

func (g *gen) stdoutLine(text string) {
	g.out.Lines = append(g.out.Lines, Line{Stream: "stdout", Text: text})
	g.stdout++
	g.out.Manifest.StdoutLines = g.stdout
}
