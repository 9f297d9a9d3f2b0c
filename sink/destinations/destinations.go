// Package destinations names every remote destination the plugin can
// forward to: one line each in All. Package config accepts exactly their
// log-opts (besides its own), and delivery builds a Forwarder for each one
// a container configures; neither knows a destination by name. See package
// sink for how a destination is added.
package destinations

import (
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/sink/logstash"
	"github.com/ucp-audit/ucp-audit/sink/syslog"
)

// All returns the remote destinations, in the order their options are
// checked and their forwarders built. Each call returns a new slice.
func All() []sink.Destination {
	return []sink.Destination{
		syslog.Destination,
		logstash.Destination,
	}
}
