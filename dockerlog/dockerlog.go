// Package dockerlog holds what dockerd tells a log driver: the container a
// stream belongs to (Info, at StartLogging) and what `docker logs` asks
// for (ReadConfig). They are subsets of moby's logger.Info and
// logger.ReadConfig, with the JSON names dockerd sends, so that the plugin
// API decodes them as they are.
package dockerlog

import "time"

// Info is what dockerd tells the plugin about a container at StartLogging
// (moby's logger.Info; only the fields the plugin uses).
type Info struct {
	Config             map[string]string `json:"Config"`
	ContainerID        string            `json:"ContainerID"`
	ContainerName      string            `json:"ContainerName"`
	ContainerImageID   string            `json:"ContainerImageID"`
	ContainerImageName string            `json:"ContainerImageName"`
	ContainerCreated   time.Time         `json:"ContainerCreated"`
	DaemonName         string            `json:"DaemonName"`
	LogPath            string            `json:"LogPath"`
	// ContainerLabels and ContainerEnv are the container's labels and
	// environment ("NAME=value"), for the labels and env log-opts. The
	// driver keeps only what those options select (redacted): it never
	// stores them.
	ContainerLabels map[string]string `json:"ContainerLabels,omitempty"`
	ContainerEnv    []string          `json:"ContainerEnv,omitempty"`
}

// Name returns the container's name without the leading "/" dockerd
// gives it.
func (i Info) Name() string {
	if len(i.ContainerName) > 0 && i.ContainerName[0] == '/' {
		return i.ContainerName[1:]
	}
	return i.ContainerName
}

// ReadConfig is dockerd's request for `docker logs` (moby's
// logger.ReadConfig). Tail < 0 means all; Tail == 0 means none.
type ReadConfig struct {
	Since  time.Time `json:"Since"`
	Until  time.Time `json:"Until"`
	Tail   int       `json:"Tail"`
	Follow bool      `json:"Follow"`
}
