package audit

// Redacted reports whether Apply replaced anything with "<redacted>".
func (e *Event) Redacted() bool { return e.annotation(AnnotationRedacted) != "" }
