package sink

// Destination is one kind of remote destination (syslog, logstash): the
// log-opts it owns and how they become a Remote. Each destination package
// exports its Destination value; package sink/destinations names them, one
// line each, and config and delivery loop over that list. Nothing registers
// itself from an init function, so there is no registration order to get
// wrong and nothing to panic on.
//
// Call order: config calls Check for each of the destination's keys that a
// container sets, in sorted key order among all keys, then Configure once
// with all of them. Both parse with the same functions, so they cannot
// drift.
type Destination struct {
	// Name is the kind, e.g. "syslog"; its options are named Name+"-…".
	Name string
	// Keys lists the log-opts the destination owns, sorted. No two
	// destinations, and not package config, own the same key.
	Keys []string
	// Check validates one key's value on its own. Errors are
	// *logopt.OptionError naming the key.
	Check func(key, value string) error
	// Configure parses the destination's keys that are set (opts holds
	// only those, possibly none), checks them against each other and
	// returns the configured Remote, or nil when they configure none (no
	// address). Errors are *logopt.OptionError naming a key.
	Configure func(opts map[string]string, env Env) (Remote, error)
}

// Env is what a destination's Configure needs to know about the plugin.
type Env struct {
	// CertDir is where the files a log-opt names (TLS CAs, certificates
	// and keys) must be: regular files below it, read with a size limit.
	CertDir string
}

// Remote is one remote destination a container's log-opts configured.
type Remote interface {
	// Name identifies the destination, e.g. "syslog tcp://host:514": it
	// keys the destination's spool cursor and names it in metrics and gap
	// records, so the same options give the same Name across restarts. It
	// holds no secret (a password in a URL is masked).
	Name() string
	// New builds the Forwarder for one container. It never dials, so a
	// destination that is down never stops a container from starting.
	New(c Container) (Forwarder, error)
}

// Container is what a destination knows of the container whose events it
// forwards: the facts Docker's log drivers give their tag template, and
// the node's host name.
type Container struct {
	ID          string // the first 12 characters of FullID
	FullID      string
	Name        string // without the leading "/"
	ImageID     string // the first 12 characters of ImageFullID, without its "sha256:"
	ImageFullID string
	ImageName   string
	DaemonName  string
	Host        string // the node's host name
}
