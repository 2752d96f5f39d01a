package loadgen

import (
	"math"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
)

// User timers: the scheduler visits a user only when the user has something due
// (a heartbeat, a PONG or idle timeout, a reconnect, a login timeout, a relogin
// bound, a receive-window chore, a slow reader's budget), never every user on a
// fixed cadence. An idle connection therefore costs a visit or two per heartbeat,
// not ten a second.
//
// Each user has at most one live entry in a min-heap of wake-up times: its
// user.wakeAt. Whenever something changes what a user waits for (a frame, a
// close, a dial, a relogin, its reader class), touch recomputes its next due time
// (nextVisit) and moves the entry earlier if need be; an entry left behind by such
// a move is stale (its time is not the user's wakeAt) and is dropped when popped.
// A due time that only moves later (the idle timeout after every frame) is not
// followed: the visit finds nothing due and schedules the next one. Stale
// entries are bounded: past staleBound the heap is rebuilt from the users'
// wakeAt.
//
// Chores without a deadline of their own — an acknowledgement to flush, a gap in
// the receive window to time, a SYNC held back after one that made no progress, a
// slow reader's budget to refill — are done at the user's phase: a fixed offset
// in a sweepEvery cycle spread over the users by index, as a round-robin sweep of
// every user each sweepEvery would reach it.

// never is the due time of a user with nothing due.
const never = math.MaxInt64

// pingBatch is the grid heartbeats are sent on: a PING due at t goes out at the
// next multiple of pingBatch of the agent clock, together with every other PING
// due in that slot, so that their PONGs come back together and the reactor reads
// them in a few wake-ups instead of one each. A PING is up to pingBatch late;
// the next one keeps the schedule (the interval stays the heartbeat on average).
// A heartbeat shorter than 400 ms is batched on an eighth of itself.
//
// The grid is the scheduler's longest sleep, hiccupEvery, so batching adds no
// wake-up, and a batch stays small: a whole second's PINGs at once (12,500 users
// with a 20 s heartbeat: 625 writes in one wake, and their PONGs together) stalled
// the agent ~140 ms every second and put its generator lag p99 at 40-55 ms
// (silent-death), against 3 ms with one PING per wake.
const pingBatch = hiccupEvery

// roundUp is t rounded up to a multiple of d.
func roundUp(t, d int64) int64 { return (t + d - 1) / d * d }

// userWake is one heap entry: visit user idx at at (agent clock).
type userWake struct {
	at  int64
	idx int32
}

// wakeHeap is a min-heap of user wake-ups by time (hand-written: container/heap
// would box every entry).
type wakeHeap []userWake

func (h *wakeHeap) push(w userWake) {
	*h = append(*h, w)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].at <= s[i].at {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *wakeHeap) pop() userWake {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s[r].at < s[l].at {
			m = r
		}
		if s[i].at <= s[m].at {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// staleBound is how many entries the heap may hold beyond one per user before it
// is rebuilt from the live ones.
func (a *Agent) staleBound() int { return 2*len(a.users) + 1024 }

// wakeUserAt makes sure u is visited at or before at.
func (a *Agent) wakeUserAt(u *user, at int64) {
	if u.wakeAt != 0 && u.wakeAt <= at {
		return
	}
	u.wakeAt = at
	a.wakes.push(userWake{at: at, idx: u.idx})
	if len(a.wakes) > a.staleBound() {
		a.rebuildWakes()
	}
}

// rebuildWakes drops the stale entries: the heap becomes one entry per user with
// a visit due.
func (a *Agent) rebuildWakes() {
	a.wakes = a.wakes[:0]
	for _, u := range a.users {
		if u.wakeAt != 0 {
			a.wakes.push(userWake{at: u.wakeAt, idx: u.idx})
		}
	}
}

// touch schedules u's next visit after something changed what it waits for. A
// due time already passed (a condition the last visit could not clear, such as a
// connection still closing) is looked at again at the user's next phase.
func (a *Agent) touch(u *user, now int64) {
	at := a.nextVisit(u, now)
	if at == never {
		return
	}
	if at <= now {
		at = a.nextPhase(u, now)
	}
	a.wakeUserAt(u, at)
}

// nextPhase is the first time after now at u's phase of the sweepEvery cycle.
func (a *Agent) nextPhase(u *user, now int64) int64 {
	p := int64(sweepEvery)
	off := int64(u.idx) * p / int64(len(a.users))
	d := ((now-off)%p + p) % p
	return now - d + p
}

// nextVisit is when u next has something due (never: nothing until an event).
// It mirrors visitUser: every condition visitUser acts on at a time has its time
// here.
func (a *Agent) nextVisit(u *user, now int64) int64 {
	at := int64(never)
	switch u.state {
	case uOffline:
		if u.tried {
			at = min(at, u.retryAt)
		}
	case uConnecting, uLoggingIn:
		if u.conn != nil {
			at = min(at, u.dialAt+int64(loginTimeout)+1)
		}
	case uActive:
		if u.heartbeat > 0 {
			at = min(at, roundUp(u.nextPing, max(min(int64(pingBatch), u.heartbeat/8), 1)))
		}
		if u.pingAt != 0 {
			at = min(at, u.pingAt+a.pongTimeout+1)
		}
		if u.idleAfter > 0 {
			at = min(at, u.lastRx+u.idleAfter+1)
		}
		if u.rxDirty {
			at = min(at, a.nextPhase(u, now))
		}
		if u.slow && a.slowRate > 0 {
			at = min(at, max(u.refillAt, a.nextPhase(u, now)))
		}
	}
	if rl := u.rl; rl != nil {
		switch {
		case rl.conn != nil:
			at = min(at, rl.started+int64(loginTimeout)+1)
		case rl.loginAt != 0 && rl.kickAt == 0:
			if !rl.late {
				at = min(at, rl.loginAt+int64(replaceBound)+1)
			}
			if !rl.measured {
				at = min(at, rl.loginAt+int64(replaceGiveUp)+1)
			}
		}
	}
	return at
}

// runUserTimers visits every user whose wake-up time has come.
func (a *Agent) runUserTimers(now int64) {
	for len(a.wakes) > 0 && a.wakes[0].at <= now {
		w := a.wakes.pop()
		u := a.users[w.idx]
		if u.wakeAt != w.at {
			continue // stale: the user was rescheduled earlier
		}
		u.wakeAt = 0
		a.visitUser(u, now)
		a.touch(u, now)
	}
}

// visitUser does what is due for one user: heartbeats, reconnects, login
// timeouts, gap fills, ack flushes, slow reading, relogins.
func (a *Agent) visitUser(u *user, now int64) {
	switch u.state {
	case uOffline:
		if u.tried && now >= u.retryAt {
			a.dial(u, now)
		}
	case uConnecting, uLoggingIn:
		if now-u.dialAt > int64(loginTimeout) && u.conn != nil {
			u.conn.Close() // a gateway that does not answer: try another
		}
	case uActive:
		if !u.conn.Closed() && a.silent(u, now) { // a closing one was counted when closed
			a.silentCloses++
			u.conn.Close() // as after any lost connection: reconnect with backoff
			return
		}
		if now >= u.nextPing && u.heartbeat > 0 {
			p := proto.Ping{TS: a.toMono(now)}
			a.wbuf = p.Append(a.wbuf[:0])
			a.write(u, u.conn, a.wbuf)
			u.nextPing += u.heartbeat // on schedule: a batched PING is late, never the next one
			if u.nextPing <= now {
				u.nextPing = now + u.heartbeat
			}
			if u.pingAt == 0 {
				u.pingAt = now
			}
		}
		if u.rxDirty {
			a.rxSweep(u, now)
			u.rxDirty = a.rxPending(u, now)
		}
		if u.slow && a.slowRate > 0 && now >= u.refillAt {
			// Once per sweepEvery, at the user's phase (it may be visited more often).
			u.refillAt = a.nextPhase(u, now)
			u.slowBudget = min(u.slowBudget+a.slowRate*int64(sweepEvery)/int64(time.Second), a.slowRate)
			if u.slowBudget > 0 {
				u.conn.ResumeReading()
			}
		}
	}
	if u.rl != nil {
		a.sweepRelogin(u, now)
	}
}
