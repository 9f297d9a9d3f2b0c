package sink

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Event is one enriched audit event on its way to a remote destination.
type Event struct {
	// Line is the enriched event JSON, one object, without a newline.
	Line []byte
	// AuditID and Seq identify the event: Seq is the container's
	// ucp-audit/seq. Time is the event's own requestReceivedTimestamp.
	AuditID string
	Seq     uint64
	Time    time.Time
}

// Forwarder delivers batches of events to one remote destination.
//
// Call order: Send any number of times, then Close once. Concurrency: Send
// is called from one goroutine only; Close may be called from another
// goroutine while a Send is in progress, and makes it return soon.
//
// Delivery: Send returns nil only once the destination has taken every event
// of the batch: acknowledged them, for a protocol that acknowledges
// (RELP, Beats, HTTP), or written them to the connection for one that does
// not (UDP, TCP). On an error, any part of the batch may have arrived; the
// caller sends the whole batch again later (at-least-once). A Forwarder
// reconnects by itself on the next Send after a failure. Send must give up
// when ctx is done.
//
// Ownership: Send does not retain the batch or its Lines after it returns.
type Forwarder interface {
	Send(ctx context.Context, batch []Event) error
	Close() error
}

// Acknowledged is implemented by Forwarders whose protocol confirms
// delivery; Acknowledged reports whether this one does.
type Acknowledged interface {
	Acknowledged() bool
}

// ErrTooLarge is returned (wrapped) by Send when an event can never be
// delivered over this transport (for example, bigger than a UDP datagram).
// The caller records the event as lost with the reason instead of retrying.
// The Forwarder delivers no event of the batch when it returns ErrTooLarge,
// and names the offending event's Seq in the message.
var ErrTooLarge = errors.New("event too large for the transport")

// TooLargeError says which event cannot be delivered.
type TooLargeError struct {
	Seq    uint64
	Size   int
	Limit  int
	Reason string
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("event seq %d of %d bytes: %s", e.Seq, e.Size, e.Reason)
}

func (e *TooLargeError) Unwrap() error { return ErrTooLarge }
