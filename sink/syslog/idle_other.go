//go:build !unix

package syslog

import "net"

// idleAlive cannot check the socket on this platform: a broken connection
// is found by the next write.
func idleAlive(net.Conn) bool { return true }
