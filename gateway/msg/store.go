// Package msg keeps each recipient's inbox: it assigns per-recipient sequence numbers,
// stores a message before the sender is acknowledged (once per client message id:
// a retried append is deduplicated), keeps it until the recipient acknowledges it
// or it outlives the retention period, and replays gaps in order. What a recipient
// has not acknowledged is bounded by a quota (Quota): a message beyond it is
// refused (ErrRecipientFull), never stored by pushing out an older one. Its Server also owns each
// stored message's delivery inside the cluster: it hands the message to the router
// and sends it again until the router settles it (see Server, RouteMethod and
// SettleMethod).
//
// # Durability
//
// An Append that returns nil is what a SEND_ACK promises: the message is stored.
// What can still lose it is the store's (the msg command's -backend):
//
//   - memory (NewMemory): the process's own memory; a msg exit or crash loses every
//     stored, unacknowledged message, and the next process starts new epochs.
//   - redis (NewRedis): acknowledged once the Redis primary holding the recipient's
//     bucket has it. A msg restart loses nothing. A crash of the primary's host
//     loses what its append-only file had not synced: up to about a second with
//     appendfsync everysec. A Sentinel or Cluster failover loses what the promoted
//     replica had not received yet, and issues those seqs again in the same epoch.
//   - redis-replicated (NewRedis WithReplicas(1, timeout)): acknowledged only once a
//     replica confirms it holds the message too (WAIT); a failover to that replica
//     loses nothing acknowledged. An append not confirmed in time fails with
//     ErrNotReplicated, an unknown outcome that the sender resolves by retrying
//     (deduplicated).
//
// Redis documents the details, and its key layout on one primary, Sentinel and
// Cluster alike.
package msg

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Message is one stored message as its recipient will see it.
type Message struct {
	Seq uint64 // the recipient's sequence number: from 1, without holes, within Epoch
	// Epoch is the incarnation of the recipient's inbox Seq belongs to
	// (Window.Epoch when it was stored): seqs compare only within one.
	Epoch    uint64
	ID       uint64 // server message id, unique within the store
	From, To uint64
	ClientTS int64  // the sender's timestamp, carried through untouched
	Payload  []byte // immutable once stored
	// ClientMsgID is the sender's id for the message, its identity for
	// deduplication together with From and To (0: none). Append reads it; it is
	// not stored, replayed or pushed.
	ClientMsgID uint64
	// Trace, nil for an untraced message, carries the stamps of a traced one
	// (a client's SEND_TRACED) from hop to hop on the internal links (every
	// encoding of a message must go through AppendMessage to keep it). The stores
	// do not keep it: a message read back from the store — a SYNC replay, or the
	// msg service's resend of one the router did not settle — is untraced. A
	// Trace may be shared by copies of a Message, so a hop stamps a Trace it
	// allocated or decoded itself (see Trace.With), never one another goroutine
	// may read.
	Trace *Trace
}

// Trace is a traced message's stamps: the server's wall clock, in Unix
// nanoseconds, when the message passed each point; 0 for a point not passed
// (yet). It is what the client protocol's PUSH_TRACED carries.
type Trace struct {
	GatewayIn  int64 // the sender's gateway decoded the SEND_TRACED
	Stored     int64 // the msg service's store accepted the append
	Routed     int64 // the router handed the push to the recipient's gateway link
	GatewayOut int64 // the recipient's gateway encoded the PUSH_TRACED
}

// With returns a copy of t with stamp set by set, or nil if t is nil (an
// untraced message stays untraced): the way a hop stamps a Trace that copies
// of its Message may share.
func (t *Trace) With(set func(*Trace)) *Trace {
	if t == nil {
		return nil
	}
	c := *t
	set(&c)
	return &c
}

// Window describes one user's inbox.
type Window struct {
	// Epoch identifies the user's sequence space: the incarnation of the user's
	// inbox. It changes only if the store lost the user's state — all of it (a
	// memory store restarted, Redis lost its data) or the user's inbox, deleted
	// once nothing was retained in it — and then to a larger value (epochs are
	// seeded from the clock), so a client that sees a larger one starts again from
	// seq 0, and one from an older incarnation is recognisably stale. Within one
	// epoch a seq is never issued twice to the same user.
	Epoch uint64
	// Head is the newest seq assigned (0 if none).
	Head uint64
	// Oldest is the oldest seq still retained; Head+1 when nothing is. Seqs below it
	// and not yet acknowledged outlived the retention period and are gone.
	Oldest uint64
}

// Store is an inbox store. Implementations are safe for concurrent use.
type Store interface {
	// Append assigns m.Seq (the next for m.To), m.ID and m.Epoch and stores a copy
	// of m. When it returns nil the message is stored. A message beyond the
	// recipient's quota is refused with ErrRecipientFull. Append is idempotent for a
	// message with a ClientMsgID: within the store's deduplication window, a second
	// Append with the same (To, From, ClientMsgID) stores nothing and sets m.Seq,
	// m.ID and m.Epoch to the first one's, so a retry after an unknown outcome never
	// stores twice.
	Append(ctx context.Context, m *Message) error
	// Ack drops uid's messages with seq <= seq (acknowledgements are cumulative) if
	// epoch is the inbox's; an ack of another epoch (a client still counting in an
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

// ErrRecipientFull is returned by Append for a message that would take its
// recipient's unacknowledged messages over the store's quota (see Quota): the
// message is certainly not stored (it wraps ErrNotStored), and a later retry may
// succeed once the recipient has acknowledged some. A retry of a message already
// stored is answered as stored however full the inbox is.
var ErrRecipientFull = fmt.Errorf("%w: recipient full (its storage quota of unacknowledged messages is used up)", ErrNotStored)

// Quota bounds what one recipient's inbox retains unacknowledged: an Append that
// would take it over either bound is refused with ErrRecipientFull, so one sender
// can fill a victim's inbox but never push out what the victim has not read yet.
// Acknowledged messages do not count.
type Quota struct {
	Messages int   // unacknowledged messages; default DefaultQuotaMessages
	Bytes    int64 // their payload bytes; default DefaultQuotaBytes
}

// Defaults of a store's limits (see Quota and WithRetention).
const (
	DefaultQuotaMessages = 1024
	DefaultQuotaBytes    = 4 << 20
	// DefaultRetention is how long a message is kept, acknowledged or not: one
	// older than that is dropped (counted as expired), and an inbox left with
	// nothing retained is deleted.
	DefaultRetention = 7 * 24 * time.Hour
)

// maxEpochStep bounds epochStep: see Memory.userEpoch and Redis's key layout.
const maxEpochStep = time.Hour

// epochStep is how often, at most, a user's epoch for a new inbox moves on: the
// retention period, at most maxEpochStep, at least a millisecond.
func epochStep(retention time.Duration) time.Duration {
	return max(min(retention, maxEpochStep), time.Millisecond)
}

// LimitCounter is implemented by stores that count what their limits cost
// senders and recipients: appends refused by the quota (ErrRecipientFull) and
// messages dropped unacknowledged because they outlived the retention period. The
// counts are this process's, from zero at start (a Prometheus counter's
// semantics).
type LimitCounter interface {
	Refused() uint64
	Expired() uint64
}

// InboxCounter is implemented by stores that count their inboxes: Inboxes is how
// many exist now (for Redis, as of the latest sweep), DeletedInboxes how many this
// process deleted for holding nothing retained.
type InboxCounter interface {
	Inboxes() int64
	DeletedInboxes() uint64
}

// Sweeper is implemented by stores that drop expired messages and delete empty
// inboxes in the background. Sweep does one bounded step of that work and reports
// whether more is waiting; the Server calls it periodically (see
// ServerConfig.SweepInterval).
type Sweeper interface {
	Sweep(ctx context.Context) (more bool, err error)
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
	quota        Quota
	retention    time.Duration
	now          func() time.Time // the store's clock (tests)
	// replicas and replicaWait are WithReplicas's (Redis only).
	replicas    int
	replicaWait time.Duration
}

func newStoreOptions(perUser int, opts []StoreOption) storeOptions {
	o := storeOptions{dedupeWindow: DefaultDedupeWindow, now: time.Now, retention: DefaultRetention,
		quota: Quota{Messages: DefaultQuotaMessages, Bytes: DefaultQuotaBytes}}
	if perUser > 0 {
		o.quota.Messages = perUser
	}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithQuotaBytes sets the quota's payload bytes (see Quota); n <= 0 keeps the
// default.
func WithQuotaBytes(n int64) StoreOption {
	return func(o *storeOptions) {
		if n > 0 {
			o.quota.Bytes = n
		}
	}
}

// WithRetention sets how long a store keeps a message, acknowledged or not; d <= 0
// keeps DefaultRetention.
func WithRetention(d time.Duration) StoreOption {
	return func(o *storeOptions) {
		if d > 0 {
			o.retention = d
		}
	}
}

// WithClock sets the clock a store reads for retention, dedupe windows and epoch
// steps (tests); nil keeps time.Now. Redis's own key TTLs run on Redis's clock.
func WithClock(now func() time.Time) StoreOption {
	return func(o *storeOptions) {
		if now != nil {
			o.now = now
		}
	}
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
