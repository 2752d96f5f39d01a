package loadgen

import (
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
)

// User states.
const (
	uOffline    uint8 = iota // no connection; reconnects at u.retryAt
	uConnecting              // TCP connecting
	uLoggingIn               // LOGIN sent
	uActive                  // logged in (and SYNCed at least once)
	// uRelogging: the user's connection ended while its relogin connection was
	// still logging in; that one becomes the user's when it is in.
	uRelogging
)

// loginTimeout bounds a connection attempt from dial to LOGIN_OK: a gateway that
// accepted the TCP connection but does not answer (frozen, overloaded) is given
// up on, as a real client would, and another one is tried.
const loginTimeout = 10 * time.Second

// user is one simulated client. All fields are guarded by the agent's lock.
type user struct {
	uid   uint64
	idx   int32
	conn  *reactor.Conn // the connection the user logs in and sends on
	addr  string        // the gateway conn was dialled to
	state uint8
	slow  bool // reads slowly (or not at all)
	idle  bool // holds a connection, neither sends nor receives
	ws    bool // connects over WebSocket (Plan.WebSocketUser), every connection of it
	// w is the user's receive window (dedupe, order, gaps, SYNC and ack pacing);
	// retired the store incarnation it last retired (0: none).
	w       client.Window[struct{}]
	retired uint64
	// Sends: unanswered holds the ks written on conn that have had neither
	// SEND_ACK nor ERROR; resend the ks to write again once logged in (a SEND
	// unanswered when its connection ended may or may not be stored: the same id
	// again is how a client finds out). Both nil when empty: there is no scan of
	// the ledger per login.
	unanswered []uint64
	resend     []uint64
	// rl is the relogin in progress (behaviours.relogin), nil when none.
	rl *relogin
	// Timing, in agent-clock nanoseconds.
	dialAt     int64 // when the current connection attempt started
	lostAt     int64 // when the last connection was lost (0: never connected)
	retryAt    int64 // when an offline user reconnects
	nextPing   int64
	heartbeat  int64
	lastRx     int64 // when the last frame arrived on the user's connection
	pingAt     int64 // the oldest PING no frame has followed since; 0: none
	idleAfter  int64 // the idle timeout LOGIN_OK announced
	attempt    int   // failed attempts since the last login
	retryHint  int64 // the last KICK's retry-after
	senderPos  int32 // index in the agent's online-senders list, -1 when absent
	tried      bool  // the first connection attempt was made
	drained    bool  // the last KICK was DRAIN: come back after its hint, no backoff
	avoid      int16 // index+1 in the gateway list of the address tried last; 0: none
	quick      uint8 // refused connects retried at once since the last login
	gw         int16 // the number of the gateway addr is (Agent.gwPush); -1 before the first dial
	slowBudget int64 // bytes the slow reader may still read this second
	refillAt   int64 // when the slow reader's budget is next refilled
	// wakeAt is the time of the user's live entry in the agent's timer heap (0:
	// none); rxDirty says the receive window may owe a chore (an ack, a SYNC) that
	// the user's next phase does (timers.go).
	wakeAt  int64
	rxDirty bool
}

// Payload header: the client message id (the agent's base | k), the intended send
// time, the sender's uid. The rest of the payload is zeros, so a retry rebuilds it
// byte for byte from (k, intended time, sender).
func putHeader(p []byte, id uint64, intended int64, from uint64) {
	binary.BigEndian.PutUint64(p[0:], id)
	binary.BigEndian.PutUint64(p[8:], uint64(intended))
	binary.BigEndian.PutUint64(p[16:], from)
}

func readHeader(p []byte) (id uint64, intended int64, from uint64, ok bool) {
	if len(p) < MinPayload {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint64(p[0:]), int64(binary.BigEndian.Uint64(p[8:])), binary.BigEndian.Uint64(p[16:]), true
}

// connRole is what one of a user's connections is to it.
type connRole uint8

const (
	roleNone    connRole = iota // a connection the user no longer cares about
	roleCurrent                 // u.conn
	roleRelogin                 // the second login in progress (u.rl.conn)
	roleOld                     // the connection a relogin replaced, until it ends (u.rl.old)
)

func (u *user) roleOf(c *reactor.Conn) connRole {
	switch {
	case c == u.conn:
		return roleCurrent
	case u.rl != nil && c == u.rl.conn:
		return roleRelogin
	case u.rl != nil && c == u.rl.old:
		return roleOld
	}
	return roleNone
}

// OnOpen implements reactor.Handler: the dial completed; log in.
func (a *Agent) OnOpen(c *reactor.Conn) {
	u := c.Context().(*user)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.opened(c, u)
}

// opened logs u in on c, a connection that is ready for the client protocol (a
// TCP connection, or a WebSocket one past its handshake). Caller holds the lock.
func (a *Agent) opened(c *reactor.Conn, u *user) {
	switch u.roleOf(c) {
	case roleCurrent:
		u.state = uLoggingIn
	case roleRelogin:
	default:
		return
	}
	login := proto.Login{Version: a.trace.version(), UID: u.uid, Token: a.signer.Mint(u.uid, time.Now().Add(24*time.Hour))}
	a.wbuf = login.Append(a.wbuf[:0])
	a.write(u, c, a.wbuf)
}

// OnDeferred implements reactor.Handler (everything is handled inline).
func (a *Agent) OnDeferred(*reactor.Conn, []byte) {}

// OnFrame implements reactor.Handler.
func (a *Agent) OnFrame(c *reactor.Conn, frame []byte) reactor.Disposition {
	u := c.Context().(*user)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.onFrame(c, u, frame)
	return reactor.Handled
}

// onFrame takes one frame of the client protocol that came to u on c, over TCP
// or in a WebSocket message. Caller holds the lock.
func (a *Agent) onFrame(c *reactor.Conn, u *user, frame []byte) {
	role := u.roleOf(c)
	if role == roleNone {
		return
	}
	f, err := proto.ParseFrame(frame)
	if err != nil {
		a.protoErrors++
		c.Close()
		return
	}
	now := a.now()
	if role == roleCurrent {
		u.lastRx = now
	}
	switch f.Type {
	case proto.TypePush, proto.TypePushTraced:
		var p proto.PushTraced
		err := p.Push.Decode(f.Body)
		if f.Type == proto.TypePushTraced {
			err = p.Decode(f.Body)
		}
		if err == nil {
			if f.Type == proto.TypePushTraced {
				a.onPushTraced(u, &p, now)
			} else {
				a.onPush(u, &p.Push, now)
			}
			if role == roleCurrent && u.slow && a.slowRate > 0 {
				u.slowBudget -= int64(len(frame))
				if u.slowBudget < 0 {
					c.PauseReading()
				}
			}
		}
	case proto.TypeSendAck:
		var ack proto.SendAck
		if ack.Decode(f.Body) == nil {
			a.onSendAck(u, role, ack.ClientMsgID)
		}
	case proto.TypeLoginOK:
		var ok proto.LoginOK
		if ok.Decode(f.Body) == nil {
			switch role {
			case roleCurrent:
				a.onLogin(u, &ok, now)
			case roleRelogin:
				a.onReloginOK(u, &ok, now)
			}
		}
	case proto.TypeSyncEnd:
		var e proto.SyncEnd
		if e.Decode(f.Body) == nil {
			a.rxSyncEnd(u, &e, now)
		}
	case proto.TypeKick:
		var k proto.Kick
		if k.Decode(f.Body) == nil {
			a.onKick(u, role, &k, now)
		}
	case proto.TypeError:
		var e proto.Error
		if e.Decode(f.Body) == nil {
			a.onError(u, role, &e, now)
		}
	}
	a.touch(u, now)
}

// onKick records a KICK. A KICK REPLACED is expected on a connection a relogin
// replaces (measured) and unexpected anywhere else (counted; the user reconnects
// once the server closes the connection).
func (a *Agent) onKick(u *user, role connRole, k *proto.Kick, now int64) {
	a.kicks[k.Reason.String()]++
	if k.Reason == proto.ReasonReplaced {
		switch {
		case role == roleOld, role == roleCurrent && u.rl != nil && u.rl.conn != nil:
			if u.rl.kickAt == 0 {
				u.rl.kickAt = now
			}
			a.settleReplace(u, now)
			return
		default:
			a.counts.ReplacedUnexpected++
		}
	}
	if role == roleCurrent {
		u.retryHint = int64(k.RetryAfterMS) * int64(time.Millisecond)
		u.drained = k.Reason == proto.ReasonDrain
	}
}

// OnClose implements reactor.Handler: the user is offline and will reconnect.
func (a *Agent) OnClose(c *reactor.Conn, r reactor.Reason, err error) {
	u := c.Context().(*user)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed(c, u)
}

// closed takes the end of one of u's connections. Caller holds the lock.
func (a *Agent) closed(c *reactor.Conn, u *user) {
	now := a.now()
	defer a.touch(u, now) // its reconnect, or the relogin's bounds
	switch u.roleOf(c) {
	case roleRelogin:
		a.reloginFailed(u, now)
		return
	case roleOld:
		a.oldEnded(u, now)
		return
	case roleNone:
		return
	}
	if u.rl != nil && u.rl.conn != nil && u.state == uActive {
		a.endedBeforeRelogin(u, now)
		return
	}
	if u.state == uActive {
		a.disconnects++
		a.active--
		u.lostAt = now
	} else {
		a.connectFailures++
		u.attempt++
	}
	refused := u.state == uConnecting // the dial itself failed: the gateway is gone or full
	a.leave(u)
	u.state = uOffline
	a.backoff(u, now, refused)
}

// leave takes the user off its connection: no longer a sender, its unanswered
// SENDs to be written again after the next login, its receive window told.
func (a *Agent) leave(u *user) {
	a.removeSender(u)
	u.conn = nil
	u.resend = append(u.resend, u.unanswered...)
	u.unanswered = nil
	a.rxDisconnected(u)
}

// backoff schedules an offline user's reconnect.
func (a *Agent) backoff(u *user, now int64, refused bool) {
	// Full-jitter exponential backoff from the ipconf hints, after the server's own
	// retry hint: a crowd of clients that lost the same gateway must not come back
	// in one wave. A first refused connect is different: the client has a list, so
	// it tries another gateway almost at once (a dead gateway stays in ipconf's list
	// until its lease lapses; waiting out a backoff for it helps nobody).
	// A KICK DRAIN is already spread by the gateway: its hint is the whole wait.
	ceil := min(a.backoffMax, a.backoffBase<<min(u.attempt, 16))
	switch {
	case u.drained:
		ceil = 0
	case refused && int(u.quick) < min(topK, len(a.gateways)):
		u.quick++
		ceil = int64(50 * time.Millisecond) // another gateway of the list, almost at once
	}
	u.retryAt = now + u.retryHint
	if ceil > 0 {
		u.retryAt += rand.Int64N(ceil)
	}
	u.retryHint, u.drained = 0, false
}

// onLogin takes the LOGIN_OK of the user's own connection.
func (a *Agent) onLogin(u *user, ok *proto.LoginOK, now int64) {
	if u.lostAt == 0 {
		a.meters.record(TagConnect, (now-u.dialAt)/1000)
		a.established++
	} else {
		a.meters.record(TagReconnect, (now-u.lostAt)/1000)
		a.reconnects++
	}
	a.activate(u, now)
	if u.lostAt == 0 {
		a.advanceLoginFrontier()
		if a.recvLimit < len(a.recipients) && int(u.idx) < a.recvTarget {
			a.followLogins() // a step's new user is in
		}
	}
	a.loggedIn(u, ok, now)
}

// activate makes a user that was not logged in active.
func (a *Agent) activate(u *user, now int64) {
	u.state = uActive
	u.avoid, u.quick = 0, 0
	a.active++
	a.peakActive = max(a.peakActive, a.active)
	u.attempt = 0
	a.addSender(u)
}

// loggedIn is what follows every LOGIN_OK that makes a connection the user's:
// heartbeats, the receive window, SYNC, and the SENDs to write again.
func (a *Agent) loggedIn(u *user, ok *proto.LoginOK, now int64) {
	u.heartbeat = a.heartbeat
	if u.heartbeat == 0 {
		u.heartbeat = int64(ok.HeartbeatMS) * int64(time.Millisecond)
	}
	// The first heartbeat is jittered so that a reconnect storm does not ping in step.
	u.nextPing = now + rand.Int64N(max(u.heartbeat, 1))
	u.lastRx, u.pingAt, u.idleAfter = now, 0, int64(ok.IdleTimeoutMS)*int64(time.Millisecond)
	a.rxLogin(u, ok)
	a.maybeSync(u, now)
	a.resendAll(u, now)
}

// onPush takes one PUSH: the receive rule (seq-level dedupe and ordering, what a
// real client does), then, on a message's first receipt, the accounting by
// identity and the latency measurement.
func (a *Agent) onPush(u *user, p *proto.Push, now int64) {
	if !a.rxPush(u, p, now) {
		return
	}
	a.firstReceipt(u, p, now)
}

// firstReceipt accounts for a message received for the first time by u (the
// receive rule delivered or held it): by its identity, and its latency. It
// reports whether it recorded the latency (the message's first delivery, in time).
func (a *Agent) firstReceipt(u *user, p *proto.Push, now int64) bool {
	id, intended, from, ok := readHeader(p.Payload)
	if !ok {
		a.protoErrors++
		return false
	}
	k, mine := a.ledger.number(id)
	sender := int64(from) - int64(a.users[0].uid)
	if !mine || from != p.From || sender < 0 || sender >= int64(len(a.users)) {
		a.ledger.c.Phantom++
		return false
	}
	e, r := a.ledger.receive(k, int32(sender), u.idx)
	switch r {
	case RecvFirst:
		a.recordPush(u, (a.toMono(now)-intended)/1000)
		a.noteDelivery(e.intended, now)
		return true
	case RecvLate:
		a.noteDelivery(e.intended, now)
	}
	return false
}

// recordPush records one push latency sample (µs) of recipient u: under its
// reader class's tag and, for a normal reader, also under the gateway it is
// connected to (the one it dialled last) and the current phase.
func (a *Agent) recordPush(u *user, us int64) {
	if u.slow {
		a.meters.record(TagPushSlow, us)
		return
	}
	us = a.meters.record(TagPush, us)
	a.gwPush.record(int(u.gw), a.pushPhase, us)
}

func (a *Agent) addSender(u *user) {
	if u.idle || u.senderPos >= 0 {
		return
	}
	u.senderPos = int32(len(a.senders))
	a.senders = append(a.senders, u.idx)
}

func (a *Agent) removeSender(u *user) {
	if u.senderPos < 0 {
		return
	}
	last := a.senders[len(a.senders)-1]
	a.senders[u.senderPos] = last
	a.users[last].senderPos = u.senderPos
	a.senders = a.senders[:len(a.senders)-1]
	u.senderPos = -1
}
