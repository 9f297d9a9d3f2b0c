package main

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"sync"

	"github.com/ucp-audit/ucp-audit/api"
	"github.com/ucp-audit/ucp-audit/driver"
	"github.com/ucp-audit/ucp-audit/node"
)

// The plugin's side of the node configuration: read at start, watched
// while serving (a change is applied within node.DefaultPollInterval), and
// served over HTTPS when API_ADDRESS is set.

// nodeState is the node configuration as serve applies it.
type nodeState struct {
	path    string
	env     node.Env
	sealKey string // SEAL_KEY: the seal key when the document names none
	level   *slog.LevelVar
	setting slog.Level // LOG_LEVEL: the level when the document sets none
}

// load reads the document at start. A document that cannot be read or
// does not parse is refused (err says why): the defaults apply, and the
// watcher applies the document once it is mended.
func (n *nodeState) load() (c node.Config, doc []byte, err error) {
	c, doc, _, err = node.Load(n.path, n.env)
	if err != nil {
		c, doc = node.Default(n.env), nil
	}
	return n.effective(c, doc), doc, err
}

// effective fills in what the plugin's settings give when the document
// does not: the seal key (SEAL_KEY) and the log level (LOG_LEVEL), and
// sets the log level.
func (n *nodeState) effective(c node.Config, doc []byte) node.Config {
	if c.SealKey == "" {
		c.SealKey = n.sealKey
	}
	level := n.setting
	if setsKey(doc, "logLevel") {
		level = c.SlogLevel()
	}
	n.level.Set(level)
	return c
}

// setsKey reports whether the document sets a top-level key.
func setsKey(doc []byte, key string) bool {
	v, err := node.Decode(doc)
	m, ok := v.(map[string]any)
	if err != nil || !ok {
		return false
	}
	_, ok = m[key]
	return ok
}

// watch applies every new document until ctx is done.
func (n *nodeState) watch(ctx context.Context, last []byte, d *driver.Driver, srv *api.Server, log *slog.Logger) {
	w := node.Watcher{
		Path: n.path, Env: n.env,
		Changed: func(c node.Config, doc []byte) {
			c = n.effective(c, doc)
			if err := d.SetNode(c, ""); err != nil {
				return // recorded by SetNode
			}
			configureAPI(srv, c, log)
		},
		Rejected: func(_ []byte, err error) { d.RejectNode(err) },
	}
	w.Run(ctx, last)
}

// apiServer returns the configuration API's server, applying accepted
// PUTs at once.
func (n *nodeState) apiServer(d *driver.Driver, log *slog.Logger) *api.Server {
	var mu sync.Mutex // one PUT at a time against the document on disk
	return &api.Server{
		Load: func() (node.Config, []byte, error) {
			c, doc, _, err := node.Load(n.path, n.env)
			if errors.Is(err, fs.ErrNotExist) {
				return node.Default(n.env), nil, nil
			}
			return c, doc, err
		},
		Save: func(doc []byte) (node.Config, error) {
			mu.Lock()
			defer mu.Unlock()
			return node.Save(n.path, doc, n.env)
		},
		Changed: func(_, c node.Config, who string) {
			doc, _ := node.ReadDocument(n.path)
			if err := d.SetNode(n.effective(c, doc), who); err == nil {
				log.Info("node configuration changed through the configuration API", "subject", who)
			}
		},
		Refused: d.RecordRefusal,
		Log:     log,
	}
}

// configureAPI loads the listener's files the configuration names, when it
// names them; an error is logged and the files loaded before stay.
func configureAPI(srv *api.Server, c node.Config, log *slog.Logger) {
	if srv == nil || c.API.CertFile == "" {
		return
	}
	if err := srv.Configure(c.API); err != nil {
		log.Error("configuration API: cannot load its certificate, key or client CAs", "error", err)
	}
}
