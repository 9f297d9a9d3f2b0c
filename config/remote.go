package config

import (
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/sink/destinations"
)

func (env Env) destinations() []sink.Destination {
	if env.Destinations == nil {
		return destinations.All()
	}
	return env.Destinations
}

// remotes collects the keys each destination owns while Parse checks them
// one by one, then configures the destinations in their registry order.
type remotes struct {
	env   sink.Env
	dests []sink.Destination
	owner map[string]int      // key → index in dests
	opts  []map[string]string // per destination: its keys that are set
}

func newRemotes(dests []sink.Destination, env sink.Env) *remotes {
	r := &remotes{env: env, dests: dests, owner: map[string]int{}, opts: make([]map[string]string, len(dests))}
	for i, d := range dests {
		for _, k := range d.Keys {
			r.owner[k] = i
		}
	}
	return r
}

// check validates key=value if a destination owns key, and reports whether
// one does.
func (r *remotes) check(key, value string) (bool, error) {
	i, ok := r.owner[key]
	if !ok {
		return false, nil
	}
	if err := r.dests[i].Check(key, value); err != nil {
		return true, err
	}
	if r.opts[i] == nil {
		r.opts[i] = map[string]string{}
	}
	r.opts[i][key] = value
	return true, nil
}

// configure checks each destination's keys against each other and returns
// the destinations configured.
func (r *remotes) configure() ([]sink.Remote, error) {
	var out []sink.Remote
	for i, d := range r.dests {
		rm, err := d.Configure(r.opts[i], r.env)
		if err != nil {
			return nil, err
		}
		if rm != nil {
			out = append(out, rm)
		}
	}
	return out, nil
}
