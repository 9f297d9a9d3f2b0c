// Package review is the auditors' read side of a trail: it reads the
// records of rotated sets (package auditlog finds and opens the files),
// classifies each as an event, a self, gap or seal record or something
// else, and filters and summarises the events. The query and report
// commands use it; the plugin itself only writes.
package review
