package loadgen

import (
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
)

func TestWakeHeapPopsInTimeOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h wakeHeap
	for i := range 500 {
		h.push(userWake{at: rng.Int64N(1000), idx: int32(i)})
	}
	last := int64(-1)
	for n := 0; len(h) > 0; n++ {
		w := h.pop()
		if w.at < last {
			t.Fatalf("pop %d: at %d after %d", n, w.at, last)
		}
		last = w.at
	}
}

// timerAgent is an agent of n users, without a reactor: enough for the timers of
// users whose visits write nothing (offline ones that were never dialled). The
// zero reactor.Conn values below only mark a connection as present.
func timerAgent(n int) *Agent {
	a := &Agent{pongTimeout: int64(DefaultPongTimeout)}
	for i := range n {
		a.users = append(a.users, &user{idx: int32(i), senderPos: -1, gw: -1})
	}
	return a
}

// A user's next visit is the earliest of what it waits for, and nothing at all
// for a user with nothing due: an idle connection is not looked at between its
// heartbeats.
func TestNextVisitIsTheEarliestDueTime(t *testing.T) {
	const now = int64(50 * time.Second)
	s := int64(time.Second)
	a := timerAgent(10)
	a.slowRate = 1000
	phase := a.nextPhase(a.users[3], now)
	for _, tc := range []struct {
		name string
		u    user
		want int64
	}{
		{"never dialled", user{state: uOffline}, never},
		{"offline, retrying", user{state: uOffline, tried: true, retryAt: now + 2*s}, now + 2*s},
		{"logging in: its login timeout", user{state: uLoggingIn, conn: &reactor.Conn{}, dialAt: now}, now + int64(loginTimeout) + 1},
		{"idle and quiet: its next heartbeat", user{state: uActive, heartbeat: 120 * s, nextPing: now + 90*s, lastRx: now}, now + 90*s},
		{"a heartbeat due mid-slot: the end of its PING batch", user{state: uActive, heartbeat: 120 * s, nextPing: now + 90*s + 1}, now + 90*s + int64(pingBatch)},
		{"a short heartbeat: batched on an eighth of it", user{state: uActive, heartbeat: 200 * int64(time.Millisecond), nextPing: now + 1}, now + 25*int64(time.Millisecond)},
		{"a PING unanswered: its PONG timeout", user{state: uActive, heartbeat: 120 * s, nextPing: now + 90*s, pingAt: now - s}, now - s + int64(DefaultPongTimeout) + 1},
		{"the idle timeout comes first", user{state: uActive, heartbeat: 120 * s, nextPing: now + 90*s, idleAfter: 30 * s, lastRx: now - 10*s}, now + 20*s + 1},
		{"a receive chore: its phase", user{state: uActive, heartbeat: 120 * s, nextPing: now + 90*s, rxDirty: true}, phase},
		{"a slow reader: its phase", user{state: uActive, slow: true, nextPing: now + 90*s, heartbeat: 120 * s}, phase},
		{"a slow reader refilled this cycle", user{state: uActive, slow: true, refillAt: phase + int64(sweepEvery)}, phase + int64(sweepEvery)},
		{"a relogin's new connection: its login timeout", user{state: uActive, rl: &relogin{conn: &reactor.Conn{}, started: now}}, now + int64(loginTimeout) + 1},
		{"a relogin waiting for its kick: the late bound", user{state: uActive, rl: &relogin{loginAt: now}}, now + int64(replaceBound) + 1},
		{"a late relogin: the give-up bound", user{state: uRelogging, rl: &relogin{loginAt: now, late: true}}, now + int64(replaceGiveUp) + 1},
	} {
		u := tc.u
		u.idx = 3
		if got := a.nextVisit(&u, now); got != tc.want {
			t.Errorf("%s: next visit %d, want %d", tc.name, got, tc.want)
		}
	}
}

// Phases spread the users over a sweepEvery cycle, and a user's phase recurs
// every sweepEvery.
func TestNextPhaseSpreadsUsersOverTheCycle(t *testing.T) {
	a := timerAgent(100)
	p := int64(sweepEvery)
	for _, now := range []int64{0, 1, p - 1, p, 7*p + 3} {
		for _, u := range a.users {
			at := a.nextPhase(u, now)
			if at <= now || at > now+p {
				t.Fatalf("user %d at %d: phase %d is not within (now, now+cycle]", u.idx, now, at)
			}
			if off := int64(u.idx) * p / 100; (at-off)%p != 0 {
				t.Fatalf("user %d: phase %d is not at its offset %d", u.idx, at, off)
			}
		}
	}
}

// Moving a user's wake-up earlier leaves a stale entry behind, which is skipped;
// the heap never holds more than its bound however often that happens.
func TestTimerHeapSkipsStaleEntriesAndStaysBounded(t *testing.T) {
	a := timerAgent(10)
	for round := range 1000 {
		for _, u := range a.users {
			a.wakeUserAt(u, int64(1_000_000-round))
		}
		if len(a.wakes) > a.staleBound() {
			t.Fatalf("round %d: %d entries, bound %d", round, len(a.wakes), a.staleBound())
		}
	}
	a.runUserTimers(1_000_000)
	if len(a.wakes) != 0 {
		t.Fatalf("%d entries left after every wake-up passed", len(a.wakes))
	}
	for _, u := range a.users {
		if u.wakeAt != 0 {
			t.Fatalf("user %d still waits for %d", u.idx, u.wakeAt)
		}
	}
}

// A visit keeps coming back at the user's phase while its receive window owes a
// SYNC later (a gap is open), and stops once nothing is owed without a frame.
func TestRxPendingWhileAGapIsOpen(t *testing.T) {
	a := timerAgent(1)
	u := a.users[0]
	now := int64(time.Second)
	u.w.Login(proto.LoginOK{Epoch: 1})
	needSync := func() { u.w.NeedSync(now, int64(gapWait)) } // what rxSweep's maybeSync does first
	steps := []struct {
		name string
		do   func()
		want bool
	}{
		{"a SYNC outstanding: its SYNC_END is a frame", func() { u.w.Sync(0) }, false},
		{"caught up", func() { u.w.SyncEnd(&proto.SyncEnd{Epoch: 1}, deliverNothing) }, false},
		{"seq 2 before seq 1: a gap", func() { u.w.Push(&proto.Push{Epoch: 1, Seq: 2}, struct{}{}, now, deliverNothing) }, true},
		{"seq 1 fills it", func() { u.w.Push(&proto.Push{Epoch: 1, Seq: 1}, struct{}{}, now, deliverNothing) }, false},
	}
	for _, s := range steps {
		s.do()
		needSync()
		if got := a.rxPending(u, now); got != s.want {
			t.Errorf("%s: pending %v, want %v", s.name, got, s.want)
		}
	}
}

// The scheduler sleeps until the earliest thing due, and never longer than
// hiccupEvery: sends wake it at their intended time (lag is measured from it).
func TestSchedulerWakesAtTheEarliestDueTime(t *testing.T) {
	const now = int64(10 * time.Second)
	ms := int64(time.Millisecond)
	a := timerAgent(1)
	a.plan.Phases = []Phase{{Name: "p", Duration: Duration(time.Minute)}}
	running := func() runState {
		return runState{t0: 1, phase: 0, phaseEnd: now + 60*ms, lastRotate: now, lastReport: now}
	}
	for _, tc := range []struct {
		name  string
		st    func() runState
		retry int64
		want  int64
	}{
		{"nothing due: hiccupEvery", running, 0, now + int64(hiccupEvery)},
		{"a send a fraction of a ns after 3.5 ms: the ns after", func() runState { s := running(); s.sending, s.nextSend = true, float64(now)+3.5e6+0.25; return s }, 0, now + 3_500_001},
		{"a send past its time: at once", func() runState { s := running(); s.sending, s.nextSend = true, float64(now-ms); return s }, 0, now},
		{"a new step's first connects, their turn long past: at once", func() runState {
			s := running()
			s.nextConnect, s.target, s.connectAt = 1, 2, float64(now-30*int64(time.Second))
			return s
		}, 0, now},
		{"the phase ends in 2 ms", func() runState { s := running(); s.phaseEnd = now + 2*ms; return s }, 0, now + 2*ms},
		{"traffic starts in 1 ms", func() runState { s := running(); s.t0 = now + ms; return s }, 0, now + ms},
		{"a first connect's turn", func() runState { s := running(); s.target, s.connectAt = 1, float64(now+3*ms); return s }, 0, now + 3*ms},
		{"a refused SEND's retry", running, now + 5*ms, now + 5*ms},
		{"the interval ends", func() runState { s := running(); s.lastRotate = now - int64(time.Second) + ms; return s }, 0, now + ms},
	} {
		a.retries = nil
		if tc.retry != 0 {
			a.retries = retryHeap{{at: tc.retry, k: 1}}
		}
		st := tc.st()
		if got := a.nextWake(&st, now, 1000, int64(time.Second)); got != tc.want {
			t.Errorf("%s: wakes at %d, want %d", tc.name, got, tc.want)
		}
	}
}

// How many messages a plan offers does not depend on how promptly the scheduler
// wakes: a wake late past a phase's end first sends the rest of that phase's
// slots at its rate. (Without senders each slot counts as skipped, which counts
// them.)
func TestEveryPhaseOffersItsSlotsHoweverLateTheWakes(t *testing.T) {
	s := int64(time.Second)
	ms := int64(time.Millisecond)
	timely := func() []int64 {
		var w []int64
		for now := int64(0); now <= 4*s; now += ms {
			w = append(w, now)
		}
		return w
	}
	for _, tc := range []struct {
		name  string
		wakes []int64
	}{
		{"a wake every millisecond", timely()},
		{"late across the first phase's end", []int64{0, 500 * ms, 2500 * ms, 4 * s}},
		{"late past the last phase's end", []int64{0, 1500 * ms, 10 * s}},
		{"one wake after everything", []int64{0, 10 * s}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := timerAgent(0)
			a.log = slog.New(slog.DiscardHandler)
			a.opts.Segment = Segment{Index: 0, Count: 1}
			a.plan = Plan{Users: 100, Traffic: Traffic{Rate: 400, Pattern: "pairs"}, Phases: []Phase{
				{Name: "warm", Duration: Duration(time.Second), Rate: f64(200)},
				{Name: "steady", Duration: Duration(2 * time.Second)},
			}}
			st := runState{t0: 0, tEnd: 3 * s, phase: -1}
			for _, now := range tc.wakes {
				a.traffic(&st, now)
			}
			// 200/s for 1 s, then 400/s for 2 s.
			if a.counts.Skipped != 1000 || st.phase != len(a.plan.Phases) {
				t.Fatalf("%d slots offered, phase %d; want 1000, every phase over", a.counts.Skipped, st.phase)
			}
		})
	}
}
