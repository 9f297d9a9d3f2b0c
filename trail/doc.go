// Package trail owns the read side of the audit trail: which files make up
// one rotated audit file (audit.log, audit.log.1, … and their gzip-compressed
// copies), opening them whether compressed or not, and reading their records.
// The commands verify, query and report read through it; the plugin itself
// only writes (package sink/file).
package trail
