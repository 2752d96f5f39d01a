package loadgen

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
)

// Retrying a SEND refused for now (ERROR UNAVAILABLE or RATE_LIMITED): after
// retryBase, doubling per attempt up to retryMax, with jitter over the upper half
// so that a crowd of refused senders does not come back in one wave.
const (
	retryBase = 100 * time.Millisecond
	retryMax  = time.Second
)

// send schedules message from → to with its intended time and writes its SEND.
func (a *Agent) send(from, to *user, intended int64) {
	mono := a.toMono(intended)
	k := a.ledger.add(mono, from.idx, to.idx, a.onEnded)
	a.writeSend(from, k, mono, to)
}

// writeSend writes the SEND of message k on the sender's connection and notes it
// unanswered there. The payload is rebuilt from (k, intended time, sender), so a
// retry is byte for byte the first attempt. A failed write leaves k unanswered:
// the connection is ending, and k goes out again after the next login.
func (a *Agent) writeSend(from *user, k uint64, intended int64, to *user) {
	id := a.ledger.id(k)
	putHeader(a.payload, id, intended, from.uid)
	m := proto.Send{ClientMsgID: id, To: to.uid, ClientTS: intended, Payload: a.payload}
	if a.trace.traced(k) { // the same for every attempt of k
		a.wbuf = (*proto.SendTraced)(&m).Append(a.wbuf[:0])
	} else {
		a.wbuf = m.Append(a.wbuf[:0])
	}
	from.unanswered = append(from.unanswered, k)
	a.write(from, from.conn, a.wbuf)
}

// retry writes message k again with the same client message id if the client
// still wants it (not acknowledged, its deadline not passed) and its sender is
// logged in; a sender that is not waits with it until its next login.
func (a *Agent) retry(k uint64, now int64) {
	e, ok := a.ledger.pending(k, a.toMono(now), int64(a.plan.Deadline))
	if !ok {
		return
	}
	from := a.users[e.from]
	if from.state != uActive || from.conn == nil {
		from.resend = append(from.resend, k)
		return
	}
	a.ledger.c.Retried++
	a.writeSend(from, k, e.intended, a.users[e.to])
}

// resendAll writes again, after a login, every SEND the user had unanswered when a
// connection of its ended, or that was refused while it was offline.
func (a *Agent) resendAll(u *user, now int64) {
	ks := u.resend
	u.resend = nil
	for _, k := range ks {
		a.retry(k, now)
	}
}

// onSendAck takes a SEND_ACK on one of the user's connections.
func (a *Agent) onSendAck(u *user, role connRole, id uint64) {
	k, mine := a.ledger.number(id)
	if !mine {
		return
	}
	a.ledger.ack(k)
	a.answered(u, role, k)
}

// answered takes k off the unanswered list of the connection that answered it.
func (a *Agent) answered(u *user, role connRole, k uint64) bool {
	switch role {
	case roleCurrent:
		var ok bool
		u.unanswered, ok = removeK(u.unanswered, k)
		return ok
	case roleOld:
		var ok bool
		u.rl.oldUnanswered, ok = removeK(u.rl.oldUnanswered, k)
		return ok
	}
	return false
}

// removeK removes k from ks (keeping the order, as ks go out again in it) and
// returns nil for an empty list.
func removeK(ks []uint64, k uint64) ([]uint64, bool) {
	i := slices.Index(ks, k)
	if i < 0 {
		return ks, false
	}
	ks = slices.Delete(ks, i, i+1)
	if len(ks) == 0 {
		return nil, true
	}
	return ks, true
}

// onError takes an ERROR. One that refers to a SEND of this agent says the
// message was certainly not stored: UNAVAILABLE and RATE_LIMITED are retried
// with the same id after a backoff; any other code (BAD_RECIPIENT,
// PAYLOAD_TOO_LARGE) is final, and the message ends failed at its deadline.
func (a *Agent) onError(u *user, role connRole, e *proto.Error, now int64) {
	a.serverErrors++
	a.errorCodes[e.Code.String()]++
	k, mine := a.ledger.number(e.Ref)
	if !mine || k == 0 {
		if e.Ref == 0 && role == roleCurrent {
			a.rxSyncFailed(u) // a refused SYNC: the window asks again later
		}
		return
	}
	a.answered(u, role, k)
	if e.Code != proto.CodeUnavailable && e.Code != proto.CodeRateLimited {
		return
	}
	ent := a.ledger.retained(k)
	if ent == nil {
		return
	}
	d := int64(retryBase) << min(ent.attempts, 5)
	d = min(d, int64(retryMax))
	ent.attempts++
	heap.Push(&a.retries, retryAt{at: now + d/2 + rand.Int64N(d/2+1), k: k})
}

// flushRetries writes the refused SENDs whose backoff has passed.
func (a *Agent) flushRetries(now int64) {
	for len(a.retries) > 0 && a.retries[0].at <= now {
		r := heap.Pop(&a.retries).(retryAt)
		a.retry(r.k, now)
	}
}

// retryAt is a refused SEND's next attempt.
type retryAt struct {
	at int64 // agent clock
	k  uint64
}

// retryHeap orders the refused SENDs by their next attempt (container/heap).
type retryHeap []retryAt

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h retryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// Push implements heap.Interface.
func (h *retryHeap) Push(x any) { *h = append(*h, x.(retryAt)) }

// Pop implements heap.Interface.
func (h *retryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
