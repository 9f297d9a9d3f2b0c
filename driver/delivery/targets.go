package delivery

import (
	"github.com/ucp-audit/ucp-audit/config"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/sink"
)

// Target is one remote destination of a container, ready to deliver to:
// the destination's name and its forwarder for the container.
type Target struct {
	name string // stable: the spool cursor is keyed by it
	fwd  sink.Forwarder
}

// NewTargets builds the forwarders of the remote destinations cfg
// configures for the container info on the node host; none dials yet, so
// a destination that is down never stops a container from starting.
func NewTargets(cfg config.Config, info dockerlog.Info, host string) ([]Target, error) {
	c := sinkContainer(info, host)
	var out []Target
	for _, r := range cfg.Remotes {
		f, err := r.New(c)
		if err != nil {
			CloseTargets(out)
			return nil, err
		}
		out = append(out, Target{name: r.Name(), fwd: f})
	}
	return out, nil
}

// NewTarget is a destination that is not a container's: name keys its
// spool cursor and labels its records and metrics (an alert output).
func NewTarget(name string, fwd sink.Forwarder) Target { return Target{name: name, fwd: fwd} }

// CloseTargets closes the targets' forwarders.
func CloseTargets(ts []Target) {
	for _, t := range ts {
		_ = t.fwd.Close()
	}
}

// sinkContainer is what the destinations know of the container: the facts
// Docker's log drivers give their tag template, and the node's host name.
func sinkContainer(info dockerlog.Info, host string) sink.Container {
	short := func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	}
	return sink.Container{
		ID: short(info.ContainerID), FullID: info.ContainerID, Name: info.Name(),
		ImageID: short(trimDigest(info.ContainerImageID)), ImageFullID: info.ContainerImageID,
		ImageName: info.ContainerImageName, DaemonName: info.DaemonName, Host: host,
	}
}

func trimDigest(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[i+1:]
		}
	}
	return s
}
