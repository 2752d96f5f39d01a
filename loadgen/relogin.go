package loadgen

import (
	"net/netip"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
)

// Relogin (behaviours.relogin): an active user opens a second connection to
// another gateway and logs in there without closing the first, as a user does
// who opens the app on a second device. The new connection becomes the user's at
// its LOGIN_OK; the old one must be kicked REPLACED. The replace SLI is the time
// from the new LOGIN_OK to the old connection's KICK REPLACED, clamped at 0 (the
// server may kick the old session before it answers the new login).
const (
	// replaceBound is how soon after the new LOGIN_OK the old connection must be
	// kicked REPLACED; later (or never) counts in ReplaceLate.
	replaceBound = time.Second
	// replaceGiveUp is how long the agent waits for that kick before it closes the
	// old connection itself (recording the wait as the sample).
	replaceGiveUp = 10 * time.Second
)

// relogin is one user's second login, from its dial until the connection it
// replaces has ended.
type relogin struct {
	conn *reactor.Conn // the new connection until its LOGIN_OK; nil after (it is u.conn then)
	addr string        // the gateway it was dialled to
	// old is the replaced connection after the new LOGIN_OK, until it ends;
	// oldUnanswered the ks written on it and not answered yet.
	old           *reactor.Conn
	oldUnanswered []uint64
	started       int64 // dial
	loginAt       int64 // the new connection's LOGIN_OK (0: not yet)
	kickAt        int64 // the old connection's KICK REPLACED (0: not yet)
	oldEnded      bool  // the old connection has ended
	late          bool  // counted in ReplaceLate
	measured      bool  // the replace sample is recorded
}

// startRelogin dials a second connection for an active user, to a gateway other
// than its own when the list has another. Slow readers are left alone: a reader
// that stopped would never read its kick.
func (a *Agent) startRelogin(u *user, now int64) bool {
	if u.state != uActive || u.conn == nil || u.rl != nil || u.slow || len(a.gateways) == 0 {
		return false
	}
	i := a.otherGateway(u.addr)
	if u.ws {
		if i = a.wsIndex(i); i < 0 {
			return false
		}
	}
	addr := a.gateways[i]
	var local netip.Addr
	if len(a.binds) > 0 {
		local = a.binds[int(u.idx)%len(a.binds)]
	}
	c, err := a.dialUser(u, i, local)
	if err != nil {
		return false
	}
	u.rl = &relogin{conn: c, addr: addr, started: now}
	a.touch(u, now) // its login timeout
	return true
}

// otherGateway picks the index of a gateway of the list at random, other than cur
// when there is another.
func (a *Agent) otherGateway(cur string) int {
	n := len(a.gateways)
	i := a.rng.IntN(n)
	if a.gateways[i] == cur && n > 1 {
		i = (i + 1 + a.rng.IntN(n-1)) % n
	}
	return i
}

// onReloginOK makes the new connection the user's: the old one (if it still
// runs) is now the replaced one, and its unanswered SENDs stay its own until it
// ends (it may still answer them).
func (a *Agent) onReloginOK(u *user, ok *proto.LoginOK, now int64) {
	rl := u.rl
	rl.loginAt = now
	a.counts.Relogins++
	c := rl.conn
	rl.conn = nil
	if u.conn != nil {
		rl.old, rl.oldUnanswered = u.conn, u.unanswered
		u.unanswered = nil
	} else {
		rl.oldEnded = true
	}
	u.conn, u.addr, u.gw = c, rl.addr, int16(a.gwPush.of(rl.addr))
	if u.state != uActive {
		a.activate(u, now) // its connection ended while this one logged in
	}
	a.loggedIn(u, ok, now)
	a.settleReplace(u, now)
}

// endedBeforeRelogin: the user's connection ended while its relogin connection
// was still logging in (usually because it was kicked REPLACED before the new
// LOGIN_OK came back). The user waits for the new connection.
func (a *Agent) endedBeforeRelogin(u *user, now int64) {
	if u.rl.kickAt == 0 {
		a.disconnects++ // it ended for another reason
	}
	a.active--
	a.leave(u)
	u.lostAt = now
	u.state = uRelogging
	u.rl.oldEnded = true
}

// reloginFailed: the relogin connection ended before its LOGIN_OK (refused,
// kicked BUSY, timed out). A user whose own connection is gone meanwhile is
// offline now and reconnects as usual.
func (a *Agent) reloginFailed(u *user, now int64) {
	u.rl = nil
	if u.state == uRelogging {
		a.connectFailures++
		u.attempt++
		u.state = uOffline
		a.backoff(u, now, false)
	}
}

// oldEnded: the replaced connection ended. What it left unanswered goes out again
// on the user's connection.
func (a *Agent) oldEnded(u *user, now int64) {
	rl := u.rl
	rl.old = nil
	rl.oldEnded = true
	u.resend = append(u.resend, rl.oldUnanswered...)
	rl.oldUnanswered = nil
	if u.state == uActive {
		a.resendAll(u, now)
	}
	a.settleReplace(u, now)
}

// settleReplace records what can be told of a relogin so far: the replace sample
// once both the new LOGIN_OK and the old KICK REPLACED are in, and the relogin's
// end once the old connection has ended.
func (a *Agent) settleReplace(u *user, now int64) {
	rl := u.rl
	if rl == nil || rl.loginAt == 0 {
		return
	}
	if rl.kickAt != 0 && !rl.measured {
		d := max(0, rl.kickAt-rl.loginAt)
		a.meters.record(TagReplace, d/1000)
		rl.measured = true
		if d > int64(replaceBound) {
			a.lateReplace(rl)
		}
	}
	if rl.oldEnded {
		if rl.kickAt == 0 {
			a.lateReplace(rl) // it ended without a KICK REPLACED
		}
		u.rl = nil
	}
}

// lateReplace counts a relogin whose old connection was not kicked in time, once.
func (a *Agent) lateReplace(rl *relogin) {
	if !rl.late {
		rl.late = true
		a.counts.ReplaceLate++
	}
}

// sweepRelogin bounds a relogin: a new connection that does not log in within
// loginTimeout is closed; an old connection not kicked within replaceBound is
// late, and after replaceGiveUp the agent records the wait and closes it itself.
func (a *Agent) sweepRelogin(u *user, now int64) {
	rl := u.rl
	switch {
	case rl.conn != nil:
		if now-rl.started > int64(loginTimeout) {
			rl.conn.Close() // → reloginFailed
		}
	case rl.loginAt != 0 && rl.kickAt == 0:
		if now-rl.loginAt > int64(replaceBound) {
			a.lateReplace(rl)
		}
		if now-rl.loginAt > int64(replaceGiveUp) && !rl.measured {
			a.meters.record(TagReplace, (now-rl.loginAt)/1000)
			rl.measured = true
			if rl.old != nil {
				rl.old.Close() // → oldEnded
			}
		}
	}
}
