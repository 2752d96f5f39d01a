package loadgen

import "math/rand/v2"

// Message states in the ledger.
const (
	stSent      uint8 = 1 << iota // a SEND was written
	stAcked                       // the server acknowledged it (stored)
	stDelivered                   // its recipient received it (first time)
)

// entry is one scheduled message, by number k.
type entry struct {
	intended int64 // intended send time, monotonic ns
	from     int32 // sender's user index
	to       int32 // recipient's user index
	state    uint8
	attempts uint8 // retries after an ERROR UNAVAILABLE or RATE_LIMITED (for the backoff)
}

// Client message ids: an agent's SENDs carry idBase | k, where k is the ledger
// number (below 2^kBits) and idBase a random value above it, drawn anew by every
// agent (not from the plan's seed). Two runs, or two agents, against one message
// store therefore never reuse an id, and a PUSH whose id does not carry this
// agent's base was never sent by it.
const (
	kBits = 40
	kMask = 1<<kBits - 1
)

// newIDBase draws an agent's client message id base: 24 random bits above the
// ledger number's 40, never zero.
func newIDBase() uint64 { return (rand.Uint64()>>kBits | 1) << kBits }

// ledger tracks every message from scheduling to its end, which is exactly one of:
// delivered (within the deadline), lost (acknowledged but not delivered by the
// deadline) or failed (never acknowledged, not delivered: the client gave up on
// it). So delivered + lost + failed = sent, checked, not assumed. Message numbers k
// rise with intended time, so entries end in order; the ring only holds the ones in
// flight, and the ended ones it has not reused yet (the history: an identity seen
// again after its message ended is still recognised as a duplicate while its entry
// is in the ring). Not safe for concurrent use (the agent's lock).
type ledger struct {
	ring   []entry
	mask   uint64
	next   uint64 // the next k to hand out; k starts at 1
	oldest uint64 // the oldest k not yet ended
	base   uint64 // this agent's client message id base
	c      Counts
}

// Counts is the message accounting of an agent (or of a whole run, summed). A
// message is known by its identity, (sender, client message id): every count
// below is about identities unless it says it counts pushes.
type Counts struct {
	Sent      uint64 `json:"sent"`
	Acked     uint64 `json:"acked_by_server"`
	Delivered uint64 `json:"delivered"`
	Lost      uint64 `json:"lost"`
	LostSlow  uint64 `json:"lost_slow"` // of Lost, those whose recipient was a slow reader when it ended
	Failed    uint64 `json:"failed"`    // the client gave up: not acknowledged by its deadline, not delivered
	Late      uint64 `json:"late"`      // delivered after the deadline (already counted lost or failed)
	// Duplicates counts a message handed to the app more than once: a second first
	// receipt of an identity (stored twice, under two seqs). It must be 0.
	Duplicates uint64 `json:"duplicates"`
	// Redelivered counts pushes the receive rule dropped as already held (the same
	// seq again: a replay, a resend after a reconnect). Harmless by design.
	Redelivered uint64 `json:"redelivered"`
	OutOfOrder  uint64 `json:"out_of_order"` // pushes that arrived ahead of a gap (held back)
	// Stale counts pushes of an incarnation older than the one the window retired:
	// the receive rule cannot deduplicate them and hands them over as they come.
	Stale    uint64 `json:"stale"`
	Evicted  uint64 `json:"evicted"`  // seqs the server no longer held at SYNC
	Skipped  uint64 `json:"skipped"`  // send slots with no sender online
	Overflow uint64 `json:"overflow"` // messages ended early because the ledger was full
	// Phantom counts messages received that this agent never sent: an id without
	// its base, an unknown k, or a k whose sender does not match.
	Phantom uint64 `json:"phantom"`
	// Misdelivered counts messages that reached a user other than their recipient.
	Misdelivered uint64 `json:"misdelivered"`
	// Retried counts SENDs written again with the same client message id (after
	// ERROR UNAVAILABLE or RATE_LIMITED, or unanswered when the connection ended).
	Retried uint64 `json:"retried"`
	// Relogins counts second logins on another gateway (behaviours.relogin);
	// ReplaceLate those whose old connection was not kicked REPLACED within 1 s of
	// the new LOGIN_OK (or ended without that kick); ReplacedUnexpected the KICK
	// REPLACED frames on a connection nobody replaced from the agent's side.
	Relogins           uint64 `json:"relogins"`
	ReplaceLate        uint64 `json:"replace_late"`
	ReplacedUnexpected uint64 `json:"replaced_unexpected"`
}

// Add sums counts.
func (c *Counts) Add(o Counts) {
	c.Sent += o.Sent
	c.Acked += o.Acked
	c.Delivered += o.Delivered
	c.Lost += o.Lost
	c.LostSlow += o.LostSlow
	c.Failed += o.Failed
	c.Late += o.Late
	c.Duplicates += o.Duplicates
	c.Redelivered += o.Redelivered
	c.OutOfOrder += o.OutOfOrder
	c.Stale += o.Stale
	c.Evicted += o.Evicted
	c.Skipped += o.Skipped
	c.Overflow += o.Overflow
	c.Phantom += o.Phantom
	c.Misdelivered += o.Misdelivered
	c.Retried += o.Retried
	c.Relogins += o.Relogins
	c.ReplaceLate += o.ReplaceLate
	c.ReplacedUnexpected += o.ReplacedUnexpected
}

// Sub returns c minus o: the counts of an interval, from two cumulative snapshots.
func (c Counts) Sub(o Counts) Counts {
	return Counts{
		Sent: c.Sent - o.Sent, Acked: c.Acked - o.Acked, Delivered: c.Delivered - o.Delivered,
		Lost: c.Lost - o.Lost, LostSlow: c.LostSlow - o.LostSlow, Failed: c.Failed - o.Failed, Late: c.Late - o.Late,
		Duplicates: c.Duplicates - o.Duplicates, Redelivered: c.Redelivered - o.Redelivered,
		OutOfOrder: c.OutOfOrder - o.OutOfOrder, Stale: c.Stale - o.Stale, Evicted: c.Evicted - o.Evicted,
		Skipped: c.Skipped - o.Skipped, Overflow: c.Overflow - o.Overflow,
		Phantom: c.Phantom - o.Phantom, Misdelivered: c.Misdelivered - o.Misdelivered, Retried: c.Retried - o.Retried,
		Relogins: c.Relogins - o.Relogins, ReplaceLate: c.ReplaceLate - o.ReplaceLate,
		ReplacedUnexpected: c.ReplacedUnexpected - o.ReplacedUnexpected,
	}
}

func newLedger(capacity int, base uint64) *ledger {
	n := 1 << 16
	for n < capacity {
		n <<= 1
	}
	return &ledger{ring: make([]entry, n), mask: uint64(n - 1), next: 1, oldest: 1, base: base}
}

// id is k's client message id.
func (l *ledger) id(k uint64) uint64 { return l.base | k }

// number returns the k of a client message id, and false if the id does not
// carry this ledger's base (it is not this agent's).
func (l *ledger) number(id uint64) (uint64, bool) {
	if id&^uint64(kMask) != l.base {
		return 0, false
	}
	return id & kMask, true
}

// add schedules a message and returns its number. A full ring ends the oldest
// message early (as if its deadline had passed) rather than grow: counted as overflow.
func (l *ledger) add(intended int64, from, to int32, ended func(e entry, lost bool)) uint64 {
	if l.next-l.oldest == uint64(len(l.ring)) {
		l.c.Overflow++
		l.end(ended)
	}
	k := l.next
	l.next++
	l.ring[k&l.mask] = entry{intended: intended, from: from, to: to, state: stSent}
	l.c.Sent++
	return k
}

// retained returns k's entry while the ring still holds it (in flight, or ended
// and not yet reused), else nil.
func (l *ledger) retained(k uint64) *entry {
	if k == 0 || k >= l.next || l.next-k > uint64(len(l.ring)) {
		return nil
	}
	return &l.ring[k&l.mask]
}

// ack records the server's acknowledgement of k, once per message: a retried SEND
// may be acknowledged again. An ack of a message already delivered and ended
// counts too (a push can beat its own SEND_ACK); one beyond the ring's history is
// counted as it cannot be checked.
func (l *ledger) ack(k uint64) {
	if k == 0 || k >= l.next {
		return // not ours
	}
	e := l.retained(k)
	if e == nil {
		l.c.Acked++
		return
	}
	if e.state&stAcked != 0 {
		return
	}
	e.state |= stAcked
	l.c.Acked++
}

// Receipt is what a message's first receipt by a user (after the receive rule's
// seq-level dedupe) turned out to be.
type Receipt uint8

// Receipts.
const (
	// RecvFirst is a message's first delivery, within its deadline: measure it.
	RecvFirst Receipt = iota
	// RecvLate is a first delivery after the message ended lost or failed.
	RecvLate
	// RecvDuplicate is a second delivery of an identity already delivered.
	RecvDuplicate
	// RecvPhantom is a message this agent never sent (or whose sender differs).
	RecvPhantom
	// RecvMisdelivered is one of this agent's messages at a user other than its recipient.
	RecvMisdelivered
	// RecvUnverified is a receipt of a message ended so long ago that its entry
	// has been reused: neither a duplicate nor late can be told; counted late.
	RecvUnverified
)

// receive records that user to received message k from user from, and says what
// it was. For RecvFirst and RecvLate the entry is returned (its intended time).
// Only a delivery to the message's recipient counts as delivered.
func (l *ledger) receive(k uint64, from, to int32) (entry, Receipt) {
	if k == 0 || k >= l.next {
		l.c.Phantom++
		return entry{}, RecvPhantom
	}
	e := l.retained(k)
	if e == nil {
		l.c.Late++
		return entry{}, RecvUnverified
	}
	switch {
	case e.from != from:
		l.c.Phantom++
		return entry{}, RecvPhantom
	case e.to != to:
		l.c.Misdelivered++
		return entry{}, RecvMisdelivered
	case e.state&stDelivered != 0:
		l.c.Duplicates++
		return entry{}, RecvDuplicate
	}
	e.state |= stDelivered // also once ended: a later copy is still a duplicate
	if k < l.oldest {
		l.c.Late++ // its deadline passed: it was counted lost or failed then
		return *e, RecvLate
	}
	l.c.Delivered++
	return *e, RecvFirst
}

// pending reports whether the client still wants k acknowledged at now: it is
// retained, not acknowledged, and its deadline has not passed (then the client
// has given up on it).
func (l *ledger) pending(k uint64, now, deadline int64) (*entry, bool) {
	e := l.retained(k)
	if e == nil || e.state&stAcked != 0 || e.intended+deadline <= now {
		return nil, false
	}
	return e, true
}

// expire ends every message whose deadline has passed at now, in order, calling
// ended for those that end undelivered (lost = acknowledged).
func (l *ledger) expire(now, deadline int64, ended func(e entry, lost bool)) {
	for l.oldest < l.next {
		e := l.ring[l.oldest&l.mask]
		if e.state&stDelivered == 0 && e.intended+deadline > now {
			return
		}
		l.end(ended)
	}
}

// end ends the oldest message.
func (l *ledger) end(ended func(e entry, lost bool)) {
	e := l.ring[l.oldest&l.mask]
	l.oldest++
	if e.state&stDelivered != 0 {
		return
	}
	lost := e.state&stAcked != 0
	if lost {
		l.c.Lost++
	} else {
		l.c.Failed++
	}
	if ended != nil {
		ended(e, lost)
	}
}

// inFlight is how many messages have not ended.
func (l *ledger) inFlight() uint64 { return l.next - l.oldest }
