package auditlog

import (
	"strings"
	"testing"
)

func TestReservedKeys(t *testing.T) {
	for _, k := range []string{ChainKey, SealKey, SelfKey, GapKey} {
		if !strings.HasPrefix(k, ReservedPrefix) {
			t.Errorf("%q is not under %q", k, ReservedPrefix)
		}
	}
}

// The records' lines, byte for byte: compact, in field order, without HTML
// escaping, empty optional fields left out.
func TestMarshal(t *testing.T) {
	gap := Gap{
		Time: "2024-03-02T10:09:12.25Z", ContainerID: "3f1c", ContainerName: "ucp-controller",
		Destination: "syslog tcp://a<b>&c:514", Lost: 3, FirstSeq: 7, LastSeq: 9, Reason: "spool full",
	}
	for _, tc := range []struct {
		name string
		f    func() ([]byte, error)
		want string
	}{
		{"self", func() ([]byte, error) {
			return MarshalSelf(Self{Type: SelfPluginStarted, Time: "2024-03-02T10:04:00.5Z", Host: "mgr-1", Detail: "a<b>&c"})
		}, `{"ucp-audit/self":{"type":"plugin-started","time":"2024-03-02T10:04:00.5Z","host":"mgr-1","detail":"a<b>&c"}}`},
		{"self, every field", func() ([]byte, error) {
			return MarshalSelf(Self{Type: SelfDestinationDown, Time: "t", Host: "h", Version: "v", ContainerID: "i", ContainerName: "n", Destination: "d", Detail: "x"})
		}, `{"ucp-audit/self":{"type":"destination-down","time":"t","host":"h","version":"v","container-id":"i","container-name":"n","destination":"d","detail":"x"}}`},
		{"gap", func() ([]byte, error) { return MarshalGap(gap) },
			`{"ucp-audit/gap":{"time":"2024-03-02T10:09:12.25Z","container-id":"3f1c","container-name":"ucp-controller","destination":"syslog tcp://a<b>&c:514","lost":3,"first-seq":7,"last-seq":9,"reason":"spool full"}}`},
		{"quarantine gap", func() ([]byte, error) { return MarshalQuarantineGap(gap) },
			`{"time":"2024-03-02T10:09:12.25Z","container-id":"3f1c","container-name":"ucp-controller","destination":"syslog tcp://a<b>&c:514","lost":3,"first-seq":7,"last-seq":9,"reason":"spool full","summary":"3 events (seq 7-9) not delivered to syslog tcp://a<b>&c:514: spool full"}`},
		{"quarantine", func() ([]byte, error) {
			return MarshalQuarantine(Quarantine{Time: "t", Reason: "not JSON", ContainerID: "i", ContainerName: "n", Stream: "stdout", Seq: 2, Size: 5, Raw: "<a&b>"})
		}, `{"time":"t","reason":"not JSON","container-id":"i","container-name":"n","stream":"stdout","quarantine-seq":2,"size":5,"raw":"<a&b>"}`},
		{"quarantine, cut", func() ([]byte, error) {
			return MarshalQuarantine(Quarantine{Time: "t", Seq: 1, Size: 9, Truncated: true, Unfinished: true, RawBase64: "/w==", RawBytes: 1})
		}, `{"time":"t","reason":"","container-id":"","container-name":"","stream":"","quarantine-seq":1,"size":9,"truncated":true,"unfinished":true,"raw-base64":"/w==","raw-bytes":1}`},
	} {
		b, err := tc.f()
		if err != nil || string(b) != tc.want {
			t.Errorf("%s:\n got %s, %v\nwant %s", tc.name, b, err, tc.want)
		}
	}
}
