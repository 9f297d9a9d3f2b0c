package syslog

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ucp-audit/ucp-audit/sink"
)

// Format is the syslog message format.
type Format int

const (
	// FormatRFC5424 is RFC 5424 with a timestamp of second precision, as
	// Docker's syslog driver writes for syslog-format=rfc5424. The default.
	FormatRFC5424 Format = iota
	// FormatRFC5424Micro is RFC 5424 with microseconds in the timestamp
	// (Docker's rfc5424micro).
	FormatRFC5424Micro
	// FormatRFC3164 is the BSD format: "<PRI>Mmm _d hh:mm:ss HOST TAG: MSG".
	FormatRFC3164
)

var formatNames = []string{"rfc5424", "rfc5424micro", "rfc3164"}

// String returns the name ParseFormat accepts.
func (f Format) String() string {
	if f >= 0 && int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// ParseFormat parses a format name: "rfc5424", "rfc5424micro" or "rfc3164"
// (case-insensitive). The empty string is rfc5424.
func ParseFormat(s string) (Format, error) {
	if s == "" {
		return FormatRFC5424, nil
	}
	for i, n := range formatNames {
		if strings.EqualFold(s, n) {
			return Format(i), nil
		}
	}
	return 0, fmt.Errorf("unknown syslog format %q (want %s)", s, strings.Join(formatNames, ", "))
}

// facilityNames are the names Docker's syslog driver accepts (they are the
// facilities of log/syslog), with their numbers.
var facilityNames = []struct {
	name string
	code int
}{
	{"kern", 0}, {"user", 1}, {"mail", 2}, {"daemon", 3}, {"auth", 4},
	{"syslog", 5}, {"lpr", 6}, {"news", 7}, {"uucp", 8}, {"cron", 9},
	{"authpriv", 10}, {"ftp", 11},
	{"local0", 16}, {"local1", 17}, {"local2", 18}, {"local3", 19},
	{"local4", 20}, {"local5", 21}, {"local6", 22}, {"local7", 23},
}

// DefaultFacility is the facility callers use when none is configured
// ("daemon").
const DefaultFacility = 3

// ParseFacility parses a facility as Docker's syslog driver does: a name
// (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv,
// ftp, local0 … local7; case-insensitive) or a number from 0 to 23.
func ParseFacility(s string) (int, error) {
	for _, f := range facilityNames {
		if strings.EqualFold(s, f.name) {
			return f.code, nil
		}
	}
	if s != "" && len(s) <= 2 && strings.Trim(s, "0123456789") == "" {
		if n, _ := strconv.Atoi(s); n <= 23 {
			return n, nil
		}
	}
	names := make([]string, len(facilityNames))
	for i, f := range facilityNames {
		names[i] = f.name
	}
	return 0, fmt.Errorf("unknown syslog facility %q (want a number from 0 to 23 or one of %s)", s, strings.Join(names, ", "))
}

const (
	severityInfo = 6
	// sdID is the SD-ID of the structured data element. 32473 is the
	// private enterprise number RFC 5612 reserves for documentation
	// examples: ucp-audit has no registered number of its own.
	sdID  = "ucp-audit@32473"
	msgID = "audit"
	// ownMsgID is the MSGID of a record of the plugin's own (a gap or a
	// self record, forwarded without auditID and seq).
	ownMsgID   = "ucp-audit"
	maxHost    = 255 // RFC 5424 HOSTNAME
	maxAppName = 48  // RFC 5424 APP-NAME
	maxTag3164 = 32  // RFC 3164 TAG
)

// AppendMessage appends one syslog message (without transport framing) for
// ev to dst and returns the extended slice. MSG is ev.Line byte for byte; the
// header carries ev.Time (never the current time), o.Hostname and o.AppName.
// See the package documentation for the exact layout.
func AppendMessage(dst []byte, o Options, ev sink.Event) []byte {
	pri := o.Facility*8 + severityInfo
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(pri), 10)
	dst = append(dst, '>')
	t := ev.Time.UTC()
	switch o.Format {
	case FormatRFC3164:
		dst = t.AppendFormat(dst, time.Stamp) // "Jan _2 15:04:05"
		dst = append(dst, ' ')
		dst = appendHeaderField(dst, o.Hostname, maxHost, false)
		dst = append(dst, ' ')
		dst = appendHeaderField(dst, o.AppName, maxTag3164, true)
		dst = append(dst, ':', ' ')
	default:
		dst = append(dst, '1', ' ')
		switch {
		case ev.Time.IsZero():
			dst = append(dst, '-')
		case o.Format == FormatRFC5424Micro:
			dst = t.AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
		default:
			dst = t.AppendFormat(dst, time.RFC3339)
		}
		dst = append(dst, ' ')
		dst = appendHeaderField(dst, o.Hostname, maxHost, false)
		dst = append(dst, ' ')
		dst = appendHeaderField(dst, o.AppName, maxAppName, false)
		dst = append(dst, " - "...) // PROCID
		if ev.AuditID == "" && ev.Seq == 0 {
			dst = append(dst, ownMsgID...)
		} else {
			dst = append(dst, msgID...)
		}
		dst = append(dst, ' ')
		dst = appendSD(dst, ev)
		dst = append(dst, ' ')
	}
	return append(dst, ev.Line...)
}

// appendHeaderField appends s made a valid header field: characters other
// than printable US-ASCII without space (RFC 5424 PRINTUSASCII, %d33-126) are
// replaced by "_" (one "_" per invalid byte sequence of a rune), the result
// is cut to max bytes, and an empty field is the NILVALUE "-". For an RFC
// 3164 TAG (tag true) ':' and '[' are replaced too, since they end the tag.
func appendHeaderField(dst []byte, s string, max int, tag bool) []byte {
	if s == "" {
		return append(dst, '-')
	}
	n := 0
	for i := 0; i < len(s) && n < max; n++ {
		c := s[i]
		if c >= 33 && c <= 126 && !(tag && (c == ':' || c == '[' || c == ']')) {
			dst = append(dst, c)
			i++
			continue
		}
		dst = append(dst, '_')
		if c < utf8.RuneSelf {
			i++
		} else {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
		}
	}
	return dst
}

// appendSD appends the STRUCTURED-DATA: one element ucp-audit@32473 with
// auditID (omitted when empty) and seq (omitted when 0), or "-" when both
// are missing.
func appendSD(dst []byte, ev sink.Event) []byte {
	if ev.AuditID == "" && ev.Seq == 0 {
		return append(dst, '-')
	}
	dst = append(dst, '[')
	dst = append(dst, sdID...)
	if ev.AuditID != "" {
		dst = append(dst, ` auditID="`...)
		dst = appendParamValue(dst, ev.AuditID)
		dst = append(dst, '"')
	}
	if ev.Seq != 0 {
		dst = append(dst, ` seq="`...)
		dst = strconv.AppendUint(dst, ev.Seq, 10)
		dst = append(dst, '"')
	}
	return append(dst, ']')
}

// appendParamValue appends s as an RFC 5424 PARAM-VALUE (§6.3.3): '"', '\'
// and ']' are escaped with a backslash; invalid UTF-8 becomes U+FFFD, since
// PARAM-VALUE must be UTF-8.
func appendParamValue(dst []byte, s string) []byte {
	for _, r := range s { // invalid UTF-8 yields utf8.RuneError = U+FFFD
		switch r {
		case '"', '\\', ']':
			dst = append(dst, '\\', byte(r))
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}
