package loadgen

// Message states in the ledger.
const (
	stSent      uint8 = 1 << iota // a SEND was written
	stAcked                       // the server acknowledged it (stored)
	stDelivered                   // its recipient received it (first time)
)

// entry is one scheduled message, by number k.
type entry struct {
	intended int64 // intended send time, monotonic ns
	to       int32 // recipient's user index
	state    uint8
}

// ledger tracks every message from scheduling to its end, which is exactly one of:
// delivered (within the deadline), lost (acknowledged but not delivered by the
// deadline) or failed (never acknowledged, not delivered: the send itself failed).
// So delivered + lost + failed = sent, checked, not assumed. Message numbers k
// rise with intended time, so entries end in order; the ring only holds the ones in
// flight. Not safe for concurrent use (the agent's lock).
type ledger struct {
	ring   []entry
	mask   uint64
	next   uint64 // the next k to hand out; k starts at 1
	oldest uint64 // the oldest k not yet ended
	c      Counts
}

// Counts is the message accounting of an agent (or of a whole run, summed).
type Counts struct {
	Sent       uint64 `json:"sent"`
	Acked      uint64 `json:"acked_by_server"`
	Delivered  uint64 `json:"delivered"`
	Lost       uint64 `json:"lost"`
	LostSlow   uint64 `json:"lost_slow"`    // of Lost, those whose recipient was a slow reader when it ended
	Failed     uint64 `json:"failed"`       // sent, never acknowledged, never delivered
	Late       uint64 `json:"late"`         // delivered after the deadline (already counted lost or failed)
	Duplicates uint64 `json:"duplicates"`   // pushes of a seq the client already had (dropped)
	OutOfOrder uint64 `json:"out_of_order"` // pushes that arrived ahead of a gap
	Evicted    uint64 `json:"evicted"`      // seqs the server no longer held at SYNC
	Skipped    uint64 `json:"skipped"`      // send slots with no sender online
	Overflow   uint64 `json:"overflow"`     // messages ended early because the ledger was full
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
	c.OutOfOrder += o.OutOfOrder
	c.Evicted += o.Evicted
	c.Skipped += o.Skipped
	c.Overflow += o.Overflow
}

// Sub returns c minus o: the counts of an interval, from two cumulative snapshots.
func (c Counts) Sub(o Counts) Counts {
	return Counts{
		Sent: c.Sent - o.Sent, Acked: c.Acked - o.Acked, Delivered: c.Delivered - o.Delivered,
		Lost: c.Lost - o.Lost, LostSlow: c.LostSlow - o.LostSlow, Failed: c.Failed - o.Failed, Late: c.Late - o.Late,
		Duplicates: c.Duplicates - o.Duplicates, OutOfOrder: c.OutOfOrder - o.OutOfOrder, Evicted: c.Evicted - o.Evicted,
		Skipped: c.Skipped - o.Skipped, Overflow: c.Overflow - o.Overflow,
	}
}

func newLedger(capacity int) *ledger {
	n := 1 << 16
	for n < capacity {
		n <<= 1
	}
	return &ledger{ring: make([]entry, n), mask: uint64(n - 1), next: 1, oldest: 1}
}

// add schedules a message and returns its number. A full ring ends the oldest
// message early (as if its deadline had passed) rather than grow: counted as overflow.
func (l *ledger) add(intended int64, to int32, ended func(e entry, lost bool)) uint64 {
	if l.next-l.oldest == uint64(len(l.ring)) {
		l.c.Overflow++
		l.end(ended)
	}
	k := l.next
	l.next++
	l.ring[k&l.mask] = entry{intended: intended, to: to, state: stSent}
	l.c.Sent++
	return k
}

// ack records the server's acknowledgement of k. The server acknowledges each SEND
// once, so every ack counts — also one for a message already delivered and ended
// (a push can beat its own SEND_ACK).
func (l *ledger) ack(k uint64) {
	if k == 0 || k >= l.next {
		return // not ours
	}
	l.c.Acked++
	if k >= l.oldest {
		l.ring[k&l.mask].state |= stAcked
	}
}

// deliver records k's receipt. It returns the entry and whether this is its first
// delivery within the deadline (then the caller records its latency).
func (l *ledger) deliver(k uint64) (entry, bool) {
	if k >= l.next || k == 0 {
		return entry{}, false
	}
	if k < l.oldest {
		l.c.Late++ // its deadline passed: it was counted lost or failed then
		return entry{}, false
	}
	e := &l.ring[k&l.mask]
	if e.state&stDelivered != 0 {
		return *e, false
	}
	e.state |= stDelivered
	l.c.Delivered++
	return *e, true
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
