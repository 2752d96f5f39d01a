package loadgen

import (
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/proto"
)

// The receive rule is gateway/client's Window, one per user, fed by every
// connection of the user (a relogin's old connection included): the harness
// measures the client users get. Every function here holds the agent's lock.

const (
	// gapWait is how long a gap stays open before a SYNC fills it (and how long a
	// SYNC that made no progress holds the next one back): the Go client's default.
	gapWait = 100 * time.Millisecond
	// ackEvery is how far the contiguous seq moves before a PUSH_ACK goes out at
	// once (the Go client's batch); the user's next phase flushes any smaller
	// advance, within sweepEvery (timers.go), where the Go client flushes once it
	// has read what arrived.
	ackEvery = 32
)

// deliverNothing is the Window's deliver callback: the agent accounts for a
// message on its first receipt (Push's verdict), not when the window releases it.
func deliverNothing(uint64, struct{}) {}

// rxLogin takes a LOGIN_OK into the user's window. A new incarnation resets it
// (what the old one held is gone: the ledger counts the loss at the deadline).
func (a *Agent) rxLogin(u *user, ok *proto.LoginOK) {
	u.rxDirty = true
	before := u.w.Epoch()
	u.w.Login(*ok)
	a.noteEpoch(u, before)
}

// noteEpoch remembers the incarnation the window retired when it moved past
// before, so that stale pushes (older than the retired one) can be told apart.
func (a *Agent) noteEpoch(u *user, before uint64) {
	if e := u.w.Epoch(); e != before && before != 0 {
		u.retired = before
	}
}

// rxDisconnected tells the window the user's connection ended.
func (a *Agent) rxDisconnected(u *user) { u.w.Disconnected() }

// maybeSync sends the SYNC the window asks for, on the user's connection.
func (a *Agent) maybeSync(u *user, now int64) {
	if u.conn == nil || u.state != uActive || !u.w.NeedSync(now, int64(gapWait)) {
		return
	}
	s := u.w.Sync(0)
	a.wbuf = s.Append(a.wbuf[:0])
	a.write(u, u.conn, a.wbuf)
}

// rxSyncEnd takes a SYNC_END, prompted or not (a gateway tells a client its
// window unprompted): evictions are counted, and the window says whether to ask
// again.
func (a *Agent) rxSyncEnd(u *user, e *proto.SyncEnd, now int64) {
	u.rxDirty = true
	before := u.w.Epoch()
	a.counts.Evicted += u.w.SyncEnd(e, deliverNothing)
	a.noteEpoch(u, before)
	a.maybeSync(u, now)
	if u.slow && a.slowRate == 0 && u.conn != nil && !u.w.NeedSync(now, int64(gapWait)) {
		u.conn.PauseReading() // a reader that stopped: the server must deal with it
	}
}

// rxSyncFailed takes an ERROR answering a SYNC: the window asks again later.
func (a *Agent) rxSyncFailed(u *user) {
	u.rxDirty = true
	u.w.SyncFailed()
}

// rxPush takes one PUSH through the window and reports whether it is the first
// receipt of its (epoch, seq): delivered or held back ahead of a gap.
func (a *Agent) rxPush(u *user, p *proto.Push, now int64) bool {
	u.rxDirty = true
	before := u.w.Epoch()
	v := u.w.Push(p, struct{}{}, now, deliverNothing)
	a.noteEpoch(u, before)
	switch v {
	case client.Duplicate:
		a.counts.Redelivered++
		return false
	case client.Held:
		a.counts.OutOfOrder++
	case client.Delivered:
		if p.Epoch < u.w.Epoch() && p.Epoch != u.retired {
			a.counts.Stale++ // older than the retired incarnation: not deduplicated
		}
	}
	a.ack(u, ackEvery)
	a.maybeSync(u, now)
	return true
}

// ack sends the PUSH_ACK the window owes once the contiguous seq moved by every
// (0: by any amount).
func (a *Agent) ack(u *user, every uint64) {
	if u.conn == nil || u.state != uActive {
		return
	}
	m, ok := u.w.Ack(every)
	if !ok {
		return
	}
	a.wbuf = m.Append(a.wbuf[:0])
	a.write(u, u.conn, a.wbuf)
}

// rxSweep is the receive rule's periodic work: a gap open for gapWait (or a
// stalled SYNC's wait) ends in a SYNC; acks are flushed. It runs at the user's
// phase while rxDirty holds (timers.go).
func (a *Agent) rxSweep(u *user, now int64) {
	a.maybeSync(u, now)
	a.ack(u, 0)
}

// rxPending reports whether u's window will owe a chore without another frame
// arriving: a SYNC once a gap has been open for gapWait, or once the wait after
// a SYNC that made no progress is over. An ack cannot be owed: rxSweep flushed it,
// and only a frame moves the window. Call it right after rxSweep on an active
// user: maybeSync's NeedSync there started any stall clock, so asking about a
// later time changes nothing; an outstanding SYNC waits for its SYNC_END, a frame.
func (a *Agent) rxPending(u *user, now int64) bool {
	return u.w.NeedSync(now+int64(gapWait), int64(gapWait))
}
