// Package msg keeps each recipient's inbox: it assigns per-recipient sequence numbers,
// stores a message before the sender is acknowledged, keeps it until the recipient
// acknowledges it (within a bounded window), and replays gaps in order.
package msg

import (
	"context"
	"errors"
)

// Message is one stored message as its recipient will see it.
type Message struct {
	Seq      uint64 // the recipient's sequence number: from 1, without holes
	ID       uint64 // server message id, unique within the store
	From, To uint64
	ClientTS int64  // the sender's timestamp, carried through untouched
	Payload  []byte // immutable once stored
}

// Window describes one user's inbox.
type Window struct {
	// Epoch identifies the user's sequence space. It changes only if the store lost
	// its state; a client that sees it change starts again from seq 0.
	Epoch uint64
	// Head is the newest seq assigned (0 if none).
	Head uint64
	// Oldest is the oldest seq still retained; Head+1 when nothing is. Seqs below it
	// and not yet acknowledged were evicted and are gone.
	Oldest uint64
}

// Store is an inbox store. Implementations are safe for concurrent use.
type Store interface {
	// Append assigns m.Seq (the next for m.To) and m.ID and stores a copy of m. When
	// it returns nil the message is stored.
	Append(ctx context.Context, m *Message) error
	// Ack drops uid's messages with seq <= seq (acknowledgements are cumulative).
	Ack(ctx context.Context, uid, seq uint64) error
	// Range returns uid's retained messages with seq > after, in order, at most limit
	// (limit <= 0: all), with the inbox's window.
	Range(ctx context.Context, uid, after uint64, limit int) ([]Message, Window, error)
	// Window returns uid's window.
	Window(ctx context.Context, uid uint64) (Window, error)
}

// ErrNoRecipient is returned by Append for a message to uid 0.
var ErrNoRecipient = errors.New("msg: recipient uid 0")

// EvictionCounter is implemented by stores that count evictions: unacknowledged
// messages dropped because their recipient's window was full. The count is this
// process's, from zero at start (a Prometheus counter's semantics).
type EvictionCounter interface {
	Evictions() uint64
}

// StoredCounter is implemented by stores that can tell cheaply how many messages
// they retain now, across all inboxes.
type StoredCounter interface {
	Stored() int64
}
