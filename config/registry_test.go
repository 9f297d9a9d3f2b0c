package config

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ucp-audit/ucp-audit/logopt"
	"github.com/ucp-audit/ucp-audit/sink"
	"github.com/ucp-audit/ucp-audit/sink/destinations"
)

// memory is a destination that this file alone defines, as a destination
// package would: its keys, their parsing and cross-checks, its Remote and
// its Forwarder. Registering it is one line (the list given to Parse);
// nothing else in config, nor in delivery, which loops over
// Config.Remotes, knows of it.
var memory = sink.Destination{
	Name:  "memory",
	Keys:  memoryOptions.Keys(),
	Check: func(k, v string) error { return memoryOptions.Set(&memoryRemote{}, k, v) },
	Configure: func(opts map[string]string, _ sink.Env) (sink.Remote, error) {
		var r memoryRemote
		if err := memoryOptions.SetAll(&r, opts); err != nil {
			return nil, err
		}
		if err := logopt.RequireAddress("memory", opts, r.addr != "", false); err != nil {
			return nil, err
		}
		if r.addr == "" {
			return nil, nil
		}
		return &r, nil
	},
}

var memoryOptions = logopt.Table[memoryRemote]{
	"memory-address": func(r *memoryRemote, v string) (string, error) {
		if v == "" || strings.ContainsAny(v, " /") {
			return "a name without spaces or slashes", errors.New("not a name")
		}
		r.addr = v
		return "", nil
	},
	"memory-prefix": func(r *memoryRemote, v string) (string, error) {
		r.prefix = v
		return "", nil
	},
}

type memoryRemote struct{ addr, prefix string }

func (r *memoryRemote) Name() string { return "memory " + r.addr }

func (r *memoryRemote) New(c sink.Container) (sink.Forwarder, error) {
	return &memoryForwarder{prefix: r.prefix + c.Name + ":"}, nil
}

type memoryForwarder struct {
	prefix string
	mu     sync.Mutex
	got    []string
}

func (f *memoryForwarder) Send(_ context.Context, batch []sink.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ev := range batch {
		f.got = append(f.got, f.prefix+string(ev.Line))
	}
	return nil
}

func (f *memoryForwarder) Close() error { return nil }

func TestRegisteredDestination(t *testing.T) {
	withMemory := Env{Destinations: append(destinations.All(), memory)}

	c, err := Parse(map[string]string{"memory-address": "m1", "memory-prefix": "p-", "syslog-address": "udp://h"}, withMemory)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range c.Remotes {
		names = append(names, r.Name())
	}
	if !slices.Equal(names, []string{"syslog udp://h:514", "memory m1"}) {
		t.Fatalf("remotes %q, want syslog then memory, in the registry's order", names)
	}
	f, err := c.Remotes[1].New(sink.Container{Name: "ctr"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Send(context.Background(), []sink.Event{{Line: []byte(`{}`), Seq: 1}}); err != nil {
		t.Fatal(err)
	}
	if got := f.(*memoryForwarder).got; !slices.Equal(got, []string{"p-ctr:{}"}) {
		t.Errorf("forwarded %q", got)
	}

	for _, tt := range []struct {
		opts     map[string]string
		env      Env
		sentinel error
		want     string
	}{
		{map[string]string{"memory-address": "a b"}, withMemory, ErrInvalidValue, `ucp-audit: log-opt "memory-address": invalid value "a b": not a name (want a name without spaces or slashes)`},
		{map[string]string{"memory-prefix": "x"}, withMemory, ErrInvalidValue, `ucp-audit: log-opt "memory-prefix": invalid value "x": set without "memory-address"`},
		{map[string]string{"nope": "x"}, withMemory, ErrUnknownOption, `, memory-address, memory-prefix, `},
		{map[string]string{"memory-address": "m1"}, env, ErrUnknownOption, `ucp-audit: log-opt "memory-address": unknown option`},
	} {
		_, err := Parse(tt.opts, tt.env)
		var oe *OptionError
		if !errors.Is(err, tt.sentinel) || !errors.As(err, &oe) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v\nwant %v containing %q", tt.opts, err, tt.sentinel, tt.want)
		}
	}
}

// Every key has one owner: config, the keys dockerd handles, or one
// destination.
func TestKeysHaveOneOwner(t *testing.T) {
	owner := map[string]string{}
	claim := func(k, who string) {
		if prev, ok := owner[k]; ok {
			t.Errorf("log-opt %q is owned by %s and %s", k, prev, who)
		}
		owner[k] = who
	}
	for k := range options {
		claim(k, "config")
	}
	for _, k := range ignored {
		claim(k, "dockerd")
	}
	for _, d := range destinations.All() {
		if !slices.IsSorted(d.Keys) || len(d.Keys) == 0 {
			t.Errorf("%s: keys %q are not sorted", d.Name, d.Keys)
		}
		for _, k := range d.Keys {
			claim(k, d.Name)
		}
	}
	if !slices.Equal(Keys(), slices.Sorted(maps.Keys(owner))) {
		t.Errorf("Keys() = %q, want every owned key", Keys())
	}
}
