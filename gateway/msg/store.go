// Package msg keeps each recipient's inbox: it assigns per-recipient sequence numbers,
// stores a message before the sender is acknowledged (once per client message id:
// a retried append is deduplicated), keeps it until the recipient acknowledges it
// (within a bounded window), and replays gaps in order. Its Server also owns each
// stored message's delivery inside the cluster: it hands the message to the router
// and sends it again until the router settles it (see Server, RouteMethod and
// SettleMethod).
package msg

import (
	"context"
	"errors"
	"time"
)

// Message is one stored message as its recipient will see it.
type Message struct {
	Seq uint64 // the recipient's sequence number: from 1, without holes
	// Epoch is the store incarnation Seq belongs to (Window.Epoch when it was
	// stored): seqs compare only within one.
	Epoch    uint64
	ID       uint64 // server message id, unique within the store
	From, To uint64
	ClientTS int64  // the sender's timestamp, carried through untouched
	Payload  []byte // immutable once stored
	// ClientMsgID is the sender's id for the message, its identity for
	// deduplication together with From and To (0: none). Append reads it; it is
	// not stored, replayed or pushed.
	ClientMsgID uint64
}

// Window describes one user's inbox.
type Window struct {
	// Epoch identifies the user's sequence space: the store's incarnation. It
	// changes only if the store lost its state, and then to a larger value (epochs
	// are seeded from the clock), so a client that sees a larger one starts again
	// from seq 0, and one from an older incarnation is recognisably stale.
	Epoch uint64
	// Head is the newest seq assigned (0 if none).
	Head uint64
	// Oldest is the oldest seq still retained; Head+1 when nothing is. Seqs below it
	// and not yet acknowledged were evicted and are gone.
	Oldest uint64
}

// Store is an inbox store. Implementations are safe for concurrent use.
type Store interface {
	// Append assigns m.Seq (the next for m.To), m.ID and m.Epoch and stores a copy
	// of m. When it returns nil the message is stored. Append is idempotent for a
	// message with a ClientMsgID: within the store's deduplication window, a second
	// Append with the same (To, From, ClientMsgID) stores nothing and sets m.Seq,
	// m.ID and m.Epoch to the first one's, so a retry after an unknown outcome never
	// stores twice.
	Append(ctx context.Context, m *Message) error
	// Ack drops uid's messages with seq <= seq (acknowledgements are cumulative) if
	// epoch is the store's; an ack of another epoch (a client still counting in an
	// incarnation that is gone) is ignored: its seqs would name other messages.
	Ack(ctx context.Context, uid, seq, epoch uint64) error
	// Range returns uid's retained messages with seq > after, in order, at most limit
	// (limit <= 0: all), with the inbox's window.
	Range(ctx context.Context, uid, after uint64, limit int) ([]Message, Window, error)
	// Window returns uid's window.
	Window(ctx context.Context, uid uint64) (Window, error)
}

// ErrNoRecipient is returned by Append for a message to uid 0.
var ErrNoRecipient = errors.New("msg: recipient uid 0")

// ErrNotStored wraps a failure after which the message is certainly not stored
// (the store was not reached). Any other Append error leaves the outcome unknown:
// the message may have been stored, and the caller finds out by retrying with the
// same ClientMsgID.
var ErrNotStored = errors.New("msg: not stored")

// EvictionCounter is implemented by stores that count evictions: unacknowledged
// messages dropped because their recipient's window was full. The count is this
// process's, from zero at start (a Prometheus counter's semantics).
type EvictionCounter interface {
	Evictions() uint64
}

// DedupeCounter is implemented by stores that deduplicate appends (see
// Store.Append), to report how many appends found their message already stored. The
// count is this process's, from zero at start.
type DedupeCounter interface {
	Deduplicated() uint64
}

// DefaultDedupeWindow is how long, at least, a store remembers a message's
// (To, From, ClientMsgID) to deduplicate a retried Append.
const DefaultDedupeWindow = 5 * time.Minute

// StoreOption tunes a store (NewMemory, NewRedis).
type StoreOption func(*storeOptions)

type storeOptions struct {
	dedupeWindow time.Duration
	now          func() time.Time // the Memory store's clock (tests)
}

func newStoreOptions(opts []StoreOption) storeOptions {
	o := storeOptions{dedupeWindow: DefaultDedupeWindow, now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithDedupeWindow sets how long a store remembers a message's (To, From,
// ClientMsgID) to deduplicate a retried Append; d <= 0 keeps the default. A window
// should outlast every retry a sender makes: a retry after it stores the message
// again.
func WithDedupeWindow(d time.Duration) StoreOption {
	return func(o *storeOptions) {
		if d > 0 {
			o.dedupeWindow = d
		}
	}
}

// WindowsBatcher is implemented by stores that read many users' windows in one
// operation (Redis: one script rather than a round trip each); the Server uses it
// for MethodWindows.
type WindowsBatcher interface {
	Windows(ctx context.Context, uids []uint64) ([]Window, error)
}

// StoredCounter is implemented by stores that can tell cheaply how many messages
// they retain now, across all inboxes.
type StoredCounter interface {
	Stored() int64
}
