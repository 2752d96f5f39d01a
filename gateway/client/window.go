package client

import (
	"slices"
	"strconv"

	"github.com/floodgate/floodgate/gateway/proto"
)

// Verdict is what a [Window] made of one PUSH.
type Verdict uint8

// Verdicts of [Window.Push].
const (
	// Delivered: first receipt, in order. The push went to deliver, followed by
	// any held messages it unblocked.
	Delivered Verdict = iota + 1
	// Held: first receipt, ahead of a gap. It is kept until the gap fills (or a
	// SYNC_END skips the gap) and then goes to deliver.
	Held
	// Duplicate: already received (same incarnation and seq). Drop it.
	Duplicate
)

// String returns the verdict's name, such as "Held".
func (v Verdict) String() string {
	switch v {
	case Delivered:
		return "Delivered"
	case Held:
		return "Held"
	case Duplicate:
		return "Duplicate"
	}
	return "Verdict(" + strconv.Itoa(int(v)) + ")"
}

// Window is the receive rule of the protocol (PROTOCOL.md §8) for one user:
// it turns the PUSHes, SYNC_ENDs and LOGIN_OKs of any number of connections
// into one delivery of each (epoch, seq), in seq order within an epoch, and
// says when to SYNC and what to acknowledge. T is what the caller keeps for a
// held message (the Go client keeps the proto.Push, a load generator that
// only counts keeps struct{}).
//
// The rule, per incarnation (epoch):
//   - contiguous is the highest seq such that every seq up to it was delivered
//     (or skipped as evicted). A seq ≤ contiguous, or one already held, is a
//     Duplicate; contiguous+1 is Delivered together with the held seqs that now
//     follow without a hole; anything higher is Held and opens a gap.
//   - A PUSH, SYNC_END or LOGIN_OK of a larger epoch than the current one
//     resets the window: contiguous 0, held messages dropped (their
//     incarnation is gone; if one is pushed again it is delivered then), and
//     the old incarnation becomes the retired window. A LOGIN_OK of a smaller
//     epoch resets it too: at login the server's incarnation is the truth.
//   - A PUSH of the retired epoch is checked against the retired window: seqs
//     above its contiguous are delivered once, in increasing order, each moving
//     its contiguous up (nothing can fill the retired incarnation's gaps any
//     more, so a late seq below one already delivered is a Duplicate).
//   - A PUSH of any older epoch is delivered as it comes, without
//     deduplication: it is stale. Callers that count stale messages test
//     p.Epoch < Epoch() on a Delivered verdict (which also holds for the retired
//     epoch's late pushes, which are deduplicated).
//   - SYNC_END of the current epoch: contiguous = max(contiguous, up_to,
//     oldest-1) (never past its head), releasing the held messages it passes,
//     in order, and counting the seqs it skips without having them as evicted. up_to counts only when
//     the SYNC_END answers a SYNC of the same epoch (an unprompted SYNC_END
//     carries up_to 0; a SYNC of another epoch is replayed from the start, so
//     its up_to is not about the seqs the client asked after).
//
// Syncing: NeedSync is true after Login, after a reset, while contiguous is
// below the server's head, or when a gap has been open for gapWait — and never
// while a SYNC is outstanding. A SYNC that made no progress while the client is
// still behind (the missing seq may still be in the middle of being stored)
// holds the next one back by gapWait, so NeedSync cannot make a client spin.
//
// The zero value is ready. A Window is not safe for concurrent use, and deliver
// callbacks must not call back into it (except Epoch and Contiguous). It
// allocates only while a gap is open (the held messages).
type Window[T any] struct {
	epoch      uint64
	contiguous uint64
	head       uint64 // the server's newest seq, as LOGIN_OK and SYNC_END last stated it
	ackedTo    uint64 // the last PUSH_ACK's seq in this epoch (0 on a new connection)
	held       map[uint64]T
	gapSince   int64 // when the open gap opened (or last moved)

	retired struct{ epoch, contiguous uint64 } // epoch 0: none

	due         bool   // a SYNC is owed: after Login or a reset
	outstanding bool   // a SYNC was sent and its SYNC_END has not come
	syncFrom    uint64 // contiguous when the outstanding SYNC was sent
	syncEpoch   uint64 // and its epoch
	stalled     bool   // the last SYNC made no progress while behind
	stallTimed  bool   // stallAt holds the start of the stall wait
	stallAt     int64
}

// Login takes the LOGIN_OK of a new connection. A LOGIN_OK of another epoch
// than the current one resets the window (reset reports it; the first login of
// a zero Window adopts the epoch without a reset). Either way NeedSync becomes
// true, and the next Ack re-acknowledges contiguous: the last PUSH_ACK may
// have been lost with the old connection.
func (w *Window[T]) Login(ok proto.LoginOK) (reset bool) {
	if ok.Epoch != w.epoch {
		reset = w.epoch != 0
		w.reset(ok.Epoch)
	}
	w.head = max(w.head, ok.LastSeq)
	w.ackedTo = 0
	w.due, w.outstanding, w.stalled = true, false, false
	return reset
}

// reset moves the window to incarnation epoch, retiring the current one. A
// move back to the retired incarnation (only a LOGIN_OK can ask for it)
// restores the retired window instead of starting it from 0, so what it
// delivered is not delivered again.
func (w *Window[T]) reset(epoch uint64) {
	old := w.retired
	if w.epoch != 0 {
		w.retired.epoch, w.retired.contiguous = w.epoch, w.contiguous
	}
	w.epoch, w.contiguous, w.head, w.ackedTo = epoch, 0, 0, 0
	if old.epoch != 0 && old.epoch == epoch {
		w.contiguous = old.contiguous
	}
	w.held = nil
	w.due, w.stalled = true, false
}

// Push takes one PUSH (v is what to keep if it is held) received at now, and
// hands every message that becomes deliverable to deliver, in order. now is any
// monotonic clock, in the unit of NeedSync's arguments.
func (w *Window[T]) Push(p *proto.Push, v T, now int64, deliver func(seq uint64, v T)) Verdict {
	switch {
	case p.Epoch == w.epoch:
	case w.retired.epoch != 0 && p.Epoch == w.retired.epoch:
		if p.Seq <= w.retired.contiguous {
			return Duplicate
		}
		w.retired.contiguous = p.Seq
		deliver(p.Seq, v)
		return Delivered
	case p.Epoch > w.epoch:
		w.reset(p.Epoch)
	default: // stale: older than anything the window remembers
		deliver(p.Seq, v)
		return Delivered
	}
	seq := p.Seq
	switch {
	case seq <= w.contiguous:
		return Duplicate
	case seq == w.contiguous+1:
		w.contiguous = seq
		deliver(seq, v)
		if w.held != nil {
			w.release(deliver)
			if w.held != nil {
				w.gapSince = now // part of the gap filled: what is left waits anew
			}
		}
		return Delivered
	}
	if _, dup := w.held[seq]; dup {
		return Duplicate
	}
	if w.held == nil {
		w.held = make(map[uint64]T)
		w.gapSince = now
	}
	w.held[seq] = v
	return Held
}

// release delivers the held messages that follow contiguous without a hole.
func (w *Window[T]) release(deliver func(seq uint64, v T)) {
	for len(w.held) > 0 {
		v, ok := w.held[w.contiguous+1]
		if !ok {
			return
		}
		delete(w.held, w.contiguous+1)
		w.contiguous++
		deliver(w.contiguous, v)
	}
	w.held = nil
}

// SyncEnd takes a SYNC_END, prompted or not, and delivers what it releases. It
// returns how many seqs it skipped that the client never had: evicted from the
// server before they reached the client, lost for good. Any SYNC_END ends the
// outstanding SYNC; one of an older epoch than the current changes nothing
// else, one of a newer epoch resets the window first.
func (w *Window[T]) SyncEnd(e *proto.SyncEnd, deliver func(seq uint64, v T)) (evicted uint64) {
	answered := w.outstanding
	w.outstanding = false
	switch {
	case e.Epoch == w.epoch:
	case w.retired.epoch != 0 && e.Epoch == w.retired.epoch:
		return 0
	case e.Epoch > w.epoch:
		w.reset(e.Epoch)
	default:
		return 0
	}
	w.head = max(w.head, e.Head)
	target := w.contiguous
	if answered && w.syncEpoch == e.Epoch {
		target = max(target, e.UpTo)
	}
	if e.Oldest > 0 {
		target = max(target, e.Oldest-1)
	}
	target = min(target, max(w.head, w.contiguous)) // never past what the server says exists
	if target > w.contiguous {
		evicted = w.skipTo(target, deliver)
	}
	progress := w.contiguous > w.syncFrom || w.syncEpoch != w.epoch
	if answered && !progress && (w.contiguous < w.head || w.held != nil) {
		w.stalled, w.stallTimed = true, false
	}
	return evicted
}

// skipTo moves contiguous up to target, delivering the held messages it passes
// in order, then those that follow; it returns the number of seqs passed that
// were not held.
func (w *Window[T]) skipTo(target uint64, deliver func(seq uint64, v T)) uint64 {
	skipped := target - w.contiguous
	if w.held != nil {
		var passed []uint64
		for seq := range w.held {
			if seq <= target {
				passed = append(passed, seq)
			}
		}
		slices.Sort(passed)
		for _, seq := range passed {
			v := w.held[seq]
			delete(w.held, seq)
			w.contiguous = seq
			deliver(seq, v)
		}
		skipped -= uint64(len(passed))
	}
	w.contiguous = target
	if w.held != nil {
		w.release(deliver)
	}
	return skipped
}

// NeedSync reports whether the client should send a SYNC now: after Login or a
// reset, while contiguous is below the server's head, or once a gap has been
// open for gapWait; never while a SYNC is outstanding; and, after a SYNC that
// made no progress while the client was behind, not before gapWait has passed
// since the first NeedSync call that saw it (which starts that clock: call
// NeedSync after every frame and on a timer).
func (w *Window[T]) NeedSync(now, gapWait int64) bool {
	if w.outstanding {
		return false
	}
	if w.stalled {
		if !w.stallTimed {
			w.stallTimed, w.stallAt = true, now
		}
		if now-w.stallAt < gapWait {
			return false
		}
	}
	return w.due || w.contiguous < w.head || (w.held != nil && now-w.gapSince >= gapWait)
}

// Sync returns the SYNC to send now, for the seqs after contiguous in the
// current epoch (limit 0: the server's default), and marks it outstanding
// until a SYNC_END, SyncFailed or Disconnected.
func (w *Window[T]) Sync(limit uint32) proto.Sync {
	w.outstanding, w.due, w.stalled = true, false, false
	w.syncFrom, w.syncEpoch = w.contiguous, w.epoch
	return proto.Sync{AfterSeq: w.contiguous, Epoch: w.epoch, Limit: limit}
}

// SyncFailed records that the outstanding SYNC was answered with ERROR
// (UNAVAILABLE, ref 0) instead of a SYNC_END: it is no longer outstanding, and
// the next one waits gapWait, like a SYNC that made no progress.
func (w *Window[T]) SyncFailed() {
	if !w.outstanding {
		return
	}
	w.outstanding = false
	w.due = true
	w.stalled, w.stallTimed = true, false
}

// Ack returns the PUSH_ACK to send, if contiguous has advanced by at least
// every since the last one (every 0: by any amount). It carries the current
// epoch and never a seq above a gap.
func (w *Window[T]) Ack(every uint64) (proto.PushAck, bool) {
	if w.contiguous <= w.ackedTo || w.contiguous-w.ackedTo < max(every, 1) {
		return proto.PushAck{}, false
	}
	w.ackedTo = w.contiguous
	return proto.PushAck{Seq: w.contiguous, Epoch: w.epoch}, true
}

// Disconnected records that the connection was lost: no SYNC is outstanding
// any more. Held messages stay held; the next Login asks for the rest.
func (w *Window[T]) Disconnected() { w.outstanding = false }

// Contiguous returns the highest seq of the current epoch up to which every
// message was delivered or skipped as evicted.
func (w *Window[T]) Contiguous() uint64 { return w.contiguous }

// Epoch returns the current store incarnation, 0 before any was seen.
func (w *Window[T]) Epoch() uint64 { return w.epoch }

// Held returns how many messages are held ahead of a gap.
func (w *Window[T]) Held() int { return len(w.held) }
