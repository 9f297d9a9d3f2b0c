package review

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

var now = time.Date(2024, 3, 3, 18, 0, 0, 0, time.UTC)

func TestParseTimeSpec(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339, or "" for an error
	}{
		{"2024-03-02T10:04:05Z", "2024-03-02T10:04:05Z"},
		{"2024-03-02T10:04:05.123456789Z", "2024-03-02T10:04:05.123456789Z"},
		{"2024-03-02T12:04:05+02:00", "2024-03-02T10:04:05Z"},
		{"2024-03-02", "2024-03-02T00:00:00Z"},
		{"2h", "2024-03-03T16:00:00Z"},
		{"90m", "2024-03-03T16:30:00Z"},
		{"7d", "2024-02-25T18:00:00Z"},
		{"1d12h", "2024-03-02T06:00:00Z"},
		{"0s", "2024-03-03T18:00:00Z"},
		{"yesterdayx", ""},
		{"", ""},
		{"-2h", ""},
		{"+2h", ""},
		{"-1d", ""},
		{"d", ""},
		{"1d-2h", ""},
		{"7 days", ""},
		{"2024-03-02T10:04:05", ""},
		{"2024-13-02", ""},
		{"100001d", ""},
		{"2562047h", ""},
	}
	for _, tt := range tests {
		got, err := ParseTimeSpec(tt.in, now)
		if tt.want == "" {
			if !errors.Is(err, ErrTimeSpec) {
				t.Errorf("ParseTimeSpec(%q) = %v, %v; want ErrTimeSpec", tt.in, got, err)
			}
			continue
		}
		if err != nil || got.Format(time.RFC3339Nano) != tt.want {
			t.Errorf("ParseTimeSpec(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestParseCode(t *testing.T) {
	tests := []struct {
		in   string
		want Code
		err  bool
	}{
		{"403", Code{403, 403}, false},
		{"200", Code{200, 200}, false},
		{"4xx", Code{400, 499}, false},
		{"5XX", Code{500, 599}, false},
		{"1xx", Code{100, 199}, false},
		{"6xx", Code{}, true},
		{"600", Code{}, true},
		{"99", Code{}, true},
		{"+40", Code{}, true},
		{"4x", Code{}, true},
		{"", Code{}, true},
	}
	for _, tt := range tests {
		got, err := ParseCode(tt.in)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("ParseCode(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	e := &Event{
		Kind: "docker-swarm", Verb: "POST", RequestURI: "/v1.41/Secrets/create?x=1", Code: 403,
		User:        User{Username: "6f1e", UID: "6f1e-uid"},
		Annotations: map[string]string{"ucp-audit/user": "Bob", "ucp-audit/container-id": "3f1c9a7b", "ucp-audit/container-name": "/ucp-controller", "ucp-audit/host": "Manager-1"},
		Time:        time.Date(2024, 3, 2, 10, 0, 0, 0, time.UTC),
	}
	at := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	tests := []struct {
		name string
		f    Filter
		want bool
	}{
		{"zero", Filter{}, true},
		{"since equal", Filter{Since: e.Time}, true},
		{"since after", Filter{Since: e.Time.Add(time.Nanosecond)}, false},
		{"until equal (exclusive)", Filter{Until: e.Time}, false},
		{"until after", Filter{Until: at("2024-03-03T00:00:00Z")}, true},
		{"user human", Filter{Users: []string{"bob"}}, true},
		{"user name", Filter{Users: []string{"x", "6F1E"}}, true},
		{"user uid", Filter{Users: []string{"6f1e-uid"}}, true},
		{"user other", Filter{Users: []string{"alice"}}, false},
		{"user prefix is not enough", Filter{Users: []string{"bo"}}, false},
		{"verb", Filter{Verbs: []string{"get", "post"}}, true},
		{"verb other", Filter{Verbs: []string{"get"}}, false},
		{"path glob", Filter{Paths: []string{"/v1.*/Secrets/*"}}, true},
		{"path glob does not cross /", Filter{Paths: []string{"/v1.41/*"}}, false},
		{"path ignores the query", Filter{Paths: []string{"/v1.41/Secrets/create"}}, true},
		{"kind", Filter{Kinds: []string{"Docker-Swarm"}}, true},
		{"kind other", Filter{Kinds: []string{"kubernetes"}}, false},
		{"code", Filter{Codes: []Code{{403, 403}}}, true},
		{"code class", Filter{Codes: []Code{{500, 599}, {400, 499}}}, true},
		{"code other", Filter{Codes: []Code{{401, 401}}}, false},
		{"container id prefix", Filter{Containers: []string{"3F1C"}}, true},
		{"container name", Filter{Containers: []string{"ucp-controller"}}, true},
		{"container name with slash", Filter{Containers: []string{"/ucp-controller"}}, true},
		{"container name prefix is not enough", Filter{Containers: []string{"ucp"}}, false},
		{"container id too long", Filter{Containers: []string{"3f1c9a7b0"}}, false},
		{"host", Filter{Hosts: []string{"manager-1"}}, true},
		{"host other", Filter{Hosts: []string{"manager-2"}}, false},
		{"grep", Filter{Grep: []string{"SECRETS/CR"}}, true},
		{"grep query string", Filter{Grep: []string{"x=1"}}, true},
		{"grep other", Filter{Grep: []string{"configs"}}, false},
		{"all", Filter{Since: at("2024-03-02T00:00:00Z"), Users: []string{"bob"}, Verbs: []string{"post"}, Kinds: []string{"docker-swarm"}, Codes: []Code{{400, 499}}, Hosts: []string{"manager-1"}}, true},
		{"all but one", Filter{Since: at("2024-03-02T00:00:00Z"), Users: []string{"bob"}, Verbs: []string{"post"}, Kinds: []string{"ucp"}}, false},
	}
	for _, tt := range tests {
		if got := tt.f.Match(e); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
	// Without a time or a code, time and code filters select nothing.
	bare := &Event{}
	for _, f := range []Filter{{Since: e.Time}, {Until: e.Time}, {Codes: []Code{{100, 599}}}, {Containers: []string{""}}} {
		if f.Match(bare) {
			t.Errorf("%+v matched an event without time, code or container", f)
		}
	}
}

func FuzzParseTimeSpec(f *testing.F) {
	for _, s := range []string{"2h", "7d", "1d12h", "2024-03-02", "2024-03-02T10:04:05.5+02:00", "yesterday", "-1d", "9999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTimeSpec(s, now)
		if err != nil {
			if !errors.Is(err, ErrTimeSpec) {
				t.Fatalf("ParseTimeSpec(%q): error %v is not ErrTimeSpec", s, err)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Errorf("ParseTimeSpec(%q) = %v, not UTC", s, got)
		}
	})
}

func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"403", "4xx", "5XX", "600", "abc", "+40"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCode(s)
		if err != nil {
			return
		}
		if c.Min < 100 || c.Max > 599 || c.Min > c.Max || !c.Match(c.Min) || c.Match(0) {
			t.Errorf("ParseCode(%q) = %+v", s, c)
		}
	})
}

func TestFilterAuditIDSourceIPNamespace(t *testing.T) {
	k8s := &Event{AuditID: "7A00-1", RequestURI: "/api/v1/namespaces/default/secrets/db", SourceIPs: []string{"192.168.1.9", "10.0.0.7:51234"}}
	v6 := &Event{AuditID: "7a00-2", RequestURI: "/v1.41/secrets", SourceIPs: []string{"[fd00::7]:8080", "::ffff:172.16.0.1", "fe80::1%eth0", "not an address"}}
	ref := &Event{AuditID: "7a00-3", ObjectRef: ObjectRef{Namespace: "Staging"}, RequestURI: "/api/v1/namespaces/default/pods"}
	prefixes := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			p, err := ParseSourceIP(s)
			if err != nil {
				t.Fatalf("ParseSourceIP(%q): %v", s, err)
			}
			out = append(out, p)
		}
		return out
	}
	tests := []struct {
		name string
		f    Filter
		e    *Event
		want bool
	}{
		{"audit id any case", Filter{AuditIDs: []string{"7a00-1"}}, k8s, true},
		{"audit id list", Filter{AuditIDs: []string{"x", "7A00-2"}}, v6, true},
		{"audit id prefix is not enough", Filter{AuditIDs: []string{"7a00"}}, k8s, false},
		{"ip with a port", Filter{SourceIPs: prefixes("10.0.0.7")}, k8s, true},
		{"ip without a port", Filter{SourceIPs: prefixes("192.168.1.9")}, k8s, true},
		{"ip other", Filter{SourceIPs: prefixes("10.0.0.70")}, k8s, false},
		{"cidr", Filter{SourceIPs: prefixes("10.0.0.0/8")}, k8s, true},
		{"cidr with host bits", Filter{SourceIPs: prefixes("10.0.0.9/24")}, k8s, true},
		{"cidr other", Filter{SourceIPs: prefixes("10.1.0.0/16")}, k8s, false},
		{"ipv6 with a port", Filter{SourceIPs: prefixes("fd00::/64")}, v6, true},
		{"ipv4-mapped entry", Filter{SourceIPs: prefixes("172.16.0.0/12")}, v6, true},
		{"ipv4-mapped value", Filter{SourceIPs: prefixes("::ffff:172.16.0.1")}, v6, true},
		{"zone dropped", Filter{SourceIPs: prefixes("fe80::/10")}, v6, true},
		{"no source ips", Filter{SourceIPs: prefixes("0.0.0.0/0", "::/0")}, ref, false},
		{"namespace from the path", Filter{Namespaces: []string{"default"}}, k8s, true},
		{"namespace from objectRef first", Filter{Namespaces: []string{"staging"}}, ref, true},
		{"namespace from objectRef, not the path", Filter{Namespaces: []string{"default"}}, ref, false},
		{"no namespace is -", Filter{Namespaces: []string{"-"}}, v6, true},
		{"no namespace is not another", Filter{Namespaces: []string{"default"}}, v6, false},
	}
	for _, tt := range tests {
		if got := tt.f.Match(tt.e); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseSourceIP(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.0.0.7", "10.0.0.7/32"},
		{"10.0.0.9/24", "10.0.0.0/24"},
		{"fd00::7", "fd00::7/128"},
		{"fd00::7/64", "fd00::/64"},
		{"::ffff:10.0.0.7", "10.0.0.7/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:0:0/95", ""},
		{"10.0.0.7:51234", ""},
		{"fe80::1%eth0", ""},
		{"10.0.0.0/33", ""},
		{"manager-1", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := ParseSourceIP(tt.in)
		if tt.want == "" {
			if !errors.Is(err, ErrSourceIP) {
				t.Errorf("ParseSourceIP(%q) = %v, %v; want ErrSourceIP", tt.in, got, err)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseSourceIP(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseSourceIP(f *testing.F) {
	for _, s := range []string{"10.0.0.7", "10.0.0.0/8", "fd00::/64", "::ffff:10.0.0.0/104", "fe80::1%eth0", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseSourceIP(s)
		if err != nil {
			if !errors.Is(err, ErrSourceIP) {
				t.Fatalf("ParseSourceIP(%q): error %v is not ErrSourceIP", s, err)
			}
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" || !p.Contains(p.Addr()) {
			t.Fatalf("ParseSourceIP(%q) = %v", s, p)
		}
	})
}
