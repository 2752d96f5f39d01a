package loadgen

import (
	"github.com/floodgate/floodgate/gateway/proto"
)

// The receive rule: seq-level dedupe, reordering and gap filling per user, what a
// real client does before its app sees a message. Every function here holds the
// agent's lock.

// rxLogin takes a LOGIN_OK into the user's receive window: a new incarnation of
// the user's store resets it (what the old one held is gone; the ledger counts the
// loss).
func (a *Agent) rxLogin(u *user, ok *proto.LoginOK) {
	if u.epoch != 0 && ok.Epoch != u.epoch {
		u.contiguous, u.ackedTo, u.ahead = 0, 0, nil
	}
	u.epoch = ok.Epoch
	u.syncing = false
}

// rxDisconnected forgets what was in flight on the user's connection.
func (a *Agent) rxDisconnected(u *user) {
	u.syncing = false
	u.ahead = nil
}

// sync asks for everything after the contiguous seq.
func (a *Agent) sync(u *user) {
	if u.conn == nil {
		return
	}
	u.syncing = true
	s := proto.Sync{AfterSeq: u.contiguous, Epoch: u.epoch}
	a.wbuf = s.Append(a.wbuf[:0])
	u.conn.Write(a.wbuf)
}

// rxSyncEnd takes a SYNC_END, prompted or not: it moves past evicted seqs and
// asks again while the server holds more.
func (a *Agent) rxSyncEnd(u *user, e *proto.SyncEnd) {
	if e.Epoch != u.epoch && e.Epoch != 0 {
		u.contiguous, u.ackedTo, u.ahead = 0, 0, nil
		u.epoch = e.Epoch
	}
	u.syncing = false
	if e.Oldest > u.contiguous+1 {
		// Evicted from the window before this client got them: gone for good.
		a.counts.Evicted += e.Oldest - u.contiguous - 1
		u.contiguous = e.Oldest - 1
		a.drainAhead(u)
	}
	if u.contiguous < e.Head {
		a.sync(u)
		return
	}
	if u.slow && a.slowRate == 0 && u.conn != nil {
		u.conn.PauseReading() // a reader that stopped: the server must deal with it
	}
}

// rxPush takes one PUSH through the receive rule and reports whether it is the
// first receipt of its seq (delivered or held back ahead of a gap).
func (a *Agent) rxPush(u *user, p *proto.Push, now int64) bool {
	if p.Epoch != u.epoch && p.Epoch != 0 {
		if p.Epoch < u.epoch {
			a.counts.Redelivered++ // an older incarnation's push: dropped
			return false
		}
		u.contiguous, u.ackedTo, u.ahead = 0, 0, nil
		u.epoch = p.Epoch
	}
	switch {
	case p.Seq <= u.contiguous:
		a.counts.Redelivered++
		return false
	case p.Seq > u.contiguous+1:
		if _, dup := u.ahead[p.Seq]; dup {
			a.counts.Redelivered++
			return false
		}
		if u.ahead == nil {
			u.ahead = map[uint64]struct{}{}
		}
		if len(u.ahead) == 0 {
			u.gapSince = now
		}
		u.ahead[p.Seq] = struct{}{}
		a.counts.OutOfOrder++
	default:
		u.contiguous = p.Seq
		a.drainAhead(u)
	}
	if u.contiguous-u.ackedTo >= 16 {
		a.ack(u)
	}
	return true
}

func (a *Agent) drainAhead(u *user) {
	for len(u.ahead) > 0 {
		if _, ok := u.ahead[u.contiguous+1]; !ok {
			break
		}
		delete(u.ahead, u.contiguous+1)
		u.contiguous++
	}
	for seq := range u.ahead {
		if seq <= u.contiguous {
			delete(u.ahead, seq)
		}
	}
	if len(u.ahead) == 0 {
		u.ahead = nil
	}
}

// ack acknowledges the contiguous seq on the user's connection.
func (a *Agent) ack(u *user) {
	if u.conn == nil || u.state != uActive || u.contiguous == u.ackedTo {
		return
	}
	m := proto.PushAck{Seq: u.contiguous, Epoch: u.epoch}
	a.wbuf = m.Append(a.wbuf[:0])
	u.conn.Write(a.wbuf)
	u.ackedTo = u.contiguous
}

// rxSweep is the receive rule's periodic work: a gap older than gapWait is
// filled by SYNC; acks are flushed.
func (a *Agent) rxSweep(u *user, now int64) {
	if len(u.ahead) > 0 && !u.syncing && now-u.gapSince > int64(gapWait) {
		a.sync(u)
	}
	a.ack(u)
}
