package loadgen

import (
	"context"
	"math"
	"time"
)

// Timing of the scheduler and of the users' periodic chores.
const (
	// hiccupEvery is the longest the scheduler sleeps. It wakes at every send's
	// intended time, at every first connect's turn, at a refused SEND's retry, at
	// the end of an interval and at a progress report, and at least this often;
	// the lateness of every wake past the time it was planned for is a hiccup
	// sample, so a stall of the agent is seen to within hiccupEvery (reports read
	// the hiccup max against a bound of 200 ms or more; during traffic every send
	// is a wake too, and lag times each send exactly). Users' timers (timers.go)
	// are run at every wake: they are coarse (heartbeats, timeouts, chores every
	// sweepEvery). A wake of an idle agent costs about 50 µs of CPU on this
	// machine (the Go runtime's netpoller and thread hand-offs): at 10 ms an idle
	// agent spent 9 ms of CPU a second, at 50 ms 5.
	hiccupEvery = 50 * time.Millisecond
	// sweepEvery is how often a user with a chore pending (an ack to flush, a gap
	// to time, a slow reader's budget) is looked at (timers.go).
	sweepEvery = 100 * time.Millisecond
	// settleTimeout bounds the connect phase when no Start signal is given.
	settleTimeout = 2 * time.Minute
)

// run state of the scheduler
type runState struct {
	t0          int64   // traffic start (agent clock); -1 before
	tEnd        int64   // end of the last phase
	nextConnect int     // next user to connect for the first time
	connectAt   float64 // when it may (agent clock, ns)
	nextSend    float64 // intended time of the next send slot
	phase       int     // current phase index (-1 before t0)
	phaseEnd    int64
	rate        float64 // this segment's messages per second in the current phase
	churn       float64 // this segment's disconnects per second
	churnDebt   float64
	relogin     float64 // this segment's relogins per second
	reloginDebt float64
	lastTraffic int64 // when traffic last ran (churn and relogins accrue by elapsed time)
	sending     bool  // the current phase has a send at nextSend
	lastRotate  int64
	lastReport  int64
	startWait   bool
	target      int // users to have connected: the pacer dials up to here
	// hostileStarted: the hostile connections were started (with the first phase).
	hostileStarted bool
}

// schedule is the agent's clock: a timer that wakes it when something is due
// (nextWake) to connect users at the planned rate, send at each message's intended
// time, churn, visit the users that have something due (heartbeats, reconnects,
// gap fills, acks, slow reading: timers.go), end messages at their deadline, and
// rotate the interval histograms. Its own lateness is the hiccup meter.
func (a *Agent) schedule(ctx context.Context) (*Result, error) {
	st := a.newRunState()
	connectRate := a.opts.Segment.share(&a.plan, a.plan.ConnectRate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	planned := int64(-1) // the time the timer was set for (agent clock); -1: the first wake
	var start time.Time
	for {
		select {
		case <-ctx.Done():
			return a.finish(&st, start, true)
		case <-timer.C:
		}
		now := a.now()
		if at, ok := a.startReleased(&st, now); ok {
			start = at
		}
		a.mu.Lock()
		if late := now - planned; planned >= 0 && late > 0 {
			a.meters.record(TagHiccup, late/1000)
		}
		a.connectDue(&st, now, connectRate)
		if st.t0 < 0 && !st.startWait && a.settled(&st, now) {
			start = time.Now()
			a.beginTraffic(&st, now)
		}
		a.advance(ctx, &st, now)
		a.chores(&st, now)
		done := a.drained(&st, now)
		report := a.opts.Progress != nil && now-st.lastReport >= int64(time.Second)
		var snap Snapshot
		if report {
			st.lastReport = now
			snap = a.snapshot(&st)
		}
		planned = a.nextWake(&st, now, connectRate, int64(a.plan.Interval))
		a.mu.Unlock()

		if report {
			a.opts.Progress(snap)
		}
		if done {
			return a.finish(&st, start, false)
		}
		timer.Reset(time.Duration(planned - a.now()))
	}
}

// newRunState is the scheduler's state before its first wake; a stepped run
// starts with its first step's users, and messages go to them alone.
func (a *Agent) newRunState() runState {
	st := runState{t0: -1, phase: -1, startWait: a.opts.Start != nil, target: len(a.users)}
	if u := a.plan.Phases[0].Users; u != nil {
		st.target = a.opts.Segment.shareUsers(&a.plan, *u)
		a.mu.Lock()
		a.recvTarget = st.target
		a.limitRecipients(st.target)
		a.mu.Unlock()
	}
	return st
}

// startReleased takes the shared start time once Options.Start gives it: the
// traffic begins then (at now if it is past). It returns the start and true on
// the wake that took it.
func (a *Agent) startReleased(st *runState, now int64) (time.Time, bool) {
	if !st.startWait {
		return time.Time{}, false
	}
	select {
	case start := <-a.opts.Start:
		st.startWait = false
		at := now + int64(time.Until(start))
		a.mu.Lock()
		a.beginTraffic(st, max(at, now))
		a.mu.Unlock()
		return start, true
	default:
		return time.Time{}, false
	}
}

// connectDue dials the users whose first connect's turn has come, paced at
// connectRate (0: all at once).
func (a *Agent) connectDue(st *runState, now int64, connectRate float64) {
	for st.nextConnect < st.target && (connectRate == 0 || st.connectAt <= float64(now)) {
		u := a.users[st.nextConnect]
		a.dial(u, now)
		a.touch(u, now)
		st.nextConnect++
		if connectRate > 0 {
			st.connectAt = math.Max(st.connectAt, float64(now)-float64(time.Second)/connectRate) + float64(time.Second)/connectRate
		}
	}
}

// advance runs the traffic once it has begun, and starts the hostile
// connections with the first phase and stops their opening after the last.
func (a *Agent) advance(ctx context.Context, st *runState, now int64) {
	if st.t0 < 0 || now < st.t0 {
		return
	}
	a.traffic(st, now)
	if a.hostile == nil {
		return
	}
	phases := len(a.plan.Phases)
	if !st.hostileStarted && st.phase >= 0 && st.phase < phases {
		st.hostileStarted = true
		a.hostile.start(ctx) // its slots take no lock of ours but to dial
	}
	if st.phase >= phases {
		a.hostile.stopOpening()
	}
}

// chores are every wake's rounds: refused SENDs whose backoff passed, the users
// with something due, the messages whose deadline passed, and the interval's end.
func (a *Agent) chores(st *runState, now int64) {
	a.flushRetries(now)
	a.runUserTimers(now)
	a.ledger.expire(a.toMono(now), int64(a.plan.Deadline), a.onEnded)
	if now-st.lastRotate >= int64(a.plan.Interval) {
		a.meters.rotate(time.Now())
		st.lastRotate = now
	}
}

// drained reports whether the run is over: the phases are past, every message
// has ended, and every acknowledgement is in (or the deadline says it is not
// coming).
func (a *Agent) drained(st *runState, now int64) bool {
	c := a.ledger.c
	return st.t0 >= 0 && now >= st.tEnd && a.ledger.inFlight() == 0 &&
		(c.Acked+c.Failed >= c.Sent || now >= st.tEnd+int64(a.plan.Deadline))
}

// nextWake is when the scheduler must run next: the next send's intended time,
// the next first connect's turn, the start of the traffic or of the next phase,
// the next refused SEND's retry, the end of the interval, the next progress
// report — and no later than hiccupEvery from now, nor earlier than now.
func (a *Agent) nextWake(st *runState, now int64, connectRate float64, interval int64) int64 {
	next := now + int64(hiccupEvery)
	if st.nextConnect < st.target && connectRate > 0 {
		next = min(next, int64(math.Ceil(st.connectAt)))
	}
	switch {
	case st.t0 > now:
		next = min(next, st.t0)
	case st.t0 >= 0 && st.phase < len(a.plan.Phases):
		next = min(next, st.phaseEnd)
		if st.sending {
			next = min(next, int64(math.Ceil(st.nextSend)))
		}
	}
	if len(a.retries) > 0 {
		next = min(next, a.retries[0].at)
	}
	next = min(next, st.lastRotate+interval)
	if a.opts.Progress != nil {
		next = min(next, st.lastReport+int64(time.Second))
	}
	// Something already due is planned for now, not for when it fell due: the
	// wake's lateness is the hiccup meter, and it must measure the scheduler's
	// own stall. A send overdue at planning is the generator's lag (measured on
	// its own); and a stepped run's next step raises the connect target with the
	// connect turn last set during the first connects, long past — planned for
	// then, one wake read as a stall of the whole wait (autoscale: 38.7 s).
	return max(next, now)
}

// settled reports whether the connect phase is over: every user had its first
// attempt and none is still in the middle of one (or settleTimeout passed).
func (a *Agent) settled(st *runState, now int64) bool {
	if st.nextConnect < st.target {
		return false
	}
	if now > int64(settleTimeout) {
		return true
	}
	for _, u := range a.users {
		if u.state == uConnecting || u.state == uLoggingIn {
			return false
		}
	}
	return true
}

func (a *Agent) beginTraffic(st *runState, t0 int64) {
	st.t0 = t0
	st.tEnd = t0
	for _, ph := range a.plan.Phases {
		st.tEnd += int64(ph.Duration)
	}
	st.phase = -1
	st.phaseEnd = t0
	st.lastTraffic = t0
	a.log.Info("traffic starts", "established", a.active, "users", len(a.users), "in", time.Duration(t0-a.now()))
}

// traffic advances phases and sends every message whose intended time has come.
// A wake late past a phase's end first sends the rest of that phase's slots, at
// its rate (late, their lag recorded), so that how many messages a plan offers
// does not depend on how promptly the agent woke: a plan run as segments offers
// what it offers run whole.
func (a *Agent) traffic(st *runState, now int64) {
	seg, plan := a.opts.Segment, &a.plan
	for st.phase < len(plan.Phases) {
		if st.phase >= 0 {
			a.sendDue(st, now)
		}
		if now < st.phaseEnd {
			break
		}
		st.phase++
		if st.phase == len(plan.Phases) {
			break
		}
		ph := plan.Phases[st.phase]
		st.rate, st.churn, st.relogin = plan.Traffic.Rate, plan.Behaviour.ChurnPerSec, plan.Behaviour.ReloginPerSec
		slow := plan.Behaviour.SlowFraction
		if ph.Rate != nil {
			st.rate = *ph.Rate
		}
		if ph.ChurnPerSec != nil {
			st.churn = *ph.ChurnPerSec
		}
		if ph.ReloginPerSec != nil {
			st.relogin = *ph.ReloginPerSec
		}
		if ph.SlowFraction != nil {
			slow = *ph.SlowFraction
		}
		a.setSlowFraction(slow, now)
		if ph.Users != nil {
			st.target = max(st.target, seg.shareUsers(plan, *ph.Users))
			a.recvTarget = st.target
			a.followLogins()
		}
		st.nextSend = math.Max(st.nextSend, float64(st.phaseEnd))
		st.phaseEnd += int64(ph.Duration)
		a.pushPhase = st.phase
		a.log.Info("phase", "name", ph.Name, "index", st.phase)
	}
	if st.phase >= len(plan.Phases) {
		return
	}
	elapsed := float64(now-st.lastTraffic) / float64(time.Second)
	st.lastTraffic = now
	st.churnDebt += seg.share(plan, st.churn) * elapsed
	for ; st.churnDebt >= 1; st.churnDebt-- {
		u := a.users[a.rng.IntN(len(a.users))]
		if u.state == uActive && u.conn != nil {
			u.conn.Close() // the user drops and comes back, as churning clients do
		}
	}
	st.reloginDebt += seg.share(plan, st.relogin) * elapsed
	for ; st.reloginDebt >= 1; st.reloginDebt-- {
		// A few draws find an eligible user (active, not already relogging, not a
		// slow reader); a slot that finds none is let go.
		for range 4 {
			if a.startRelogin(a.users[a.rng.IntN(len(a.users))], now) {
				break
			}
		}
	}
}

// sendDue sends the current phase's slots whose intended time has come, up to the
// phase's end.
func (a *Agent) sendDue(st *runState, now int64) {
	seg, plan := a.opts.Segment, &a.plan
	rate := seg.share(plan, st.rate)
	if plan.Traffic.Pattern == "groups" {
		rate /= float64(plan.Traffic.GroupSize - 1) // one post fans out to the rest of the group
	}
	if rate > 0 {
		gap := float64(time.Second) / rate
		for st.nextSend <= float64(now) && st.nextSend < float64(st.phaseEnd) {
			a.sendSlot(int64(st.nextSend), now)
			st.nextSend += gap
		}
	} else {
		// Nothing to send: the next phase's slots start at its own start.
		st.nextSend = math.Min(float64(now), float64(st.phaseEnd))
	}
	st.sending = rate > 0 && st.nextSend < float64(st.phaseEnd)
}

// sendSlot sends the message(s) of one schedule slot with intended time intended.
func (a *Agent) sendSlot(intended, now int64) {
	if len(a.senders) == 0 || a.recvLimit < 2 {
		a.counts.Skipped++
		return
	}
	s := a.users[a.senders[a.rng.IntN(len(a.senders))]]
	a.meters.record(TagLag, (now-intended)/1000)
	switch a.plan.Traffic.Pattern {
	case "groups":
		g := a.plan.Traffic.GroupSize
		base := int(s.idx) / g * g
		for i := base; i < min(base+g, len(a.users)); i++ {
			if to := a.users[i]; to != s && !to.idle {
				a.send(s, to, intended)
			}
		}
	case "zipf":
		to := a.users[a.recipients[a.zipf.Uint64()]]
		if to == s {
			to = a.users[a.recipients[(int(a.zipf.Uint64())+1)%a.recvLimit]]
		}
		a.send(s, to, intended)
	default:
		to := a.users[a.recipients[a.rng.IntN(a.recvLimit)]]
		for to == s {
			to = a.users[a.recipients[a.rng.IntN(a.recvLimit)]]
		}
		a.send(s, to, intended)
	}
}

// onEnded records a message that ended undelivered: a lost one at the deadline, in
// the histogram of its recipient's class, so percentiles see every loss.
func (a *Agent) onEnded(e entry, lost bool) {
	if !lost {
		return
	}
	if a.users[e.to].slow {
		a.ledger.c.LostSlow++
	}
	a.recordPush(a.users[e.to], int64(a.plan.Deadline)/1000)
}

// DefaultPongTimeout is Plan.PongTimeout's default.
const DefaultPongTimeout = 10 * time.Second

// silent reports whether u's gateway went silent: no frame within the PONG
// timeout of a PING, or none for the idle timeout LOGIN_OK announced. A gateway
// that vanished (no FIN, no RST) is otherwise found only by TCP, minutes later.
func (a *Agent) silent(u *user, now int64) bool {
	if u.pingAt != 0 && u.lastRx >= u.pingAt {
		u.pingAt = 0 // something arrived since: the PONG is queued behind it, or came
	}
	return (u.pingAt != 0 && now-u.pingAt > a.pongTimeout) || (u.idleAfter > 0 && now-u.lastRx > u.idleAfter)
}
