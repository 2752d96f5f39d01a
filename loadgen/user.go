package loadgen

import (
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
)

// User states.
const (
	uOffline    uint8 = iota // no connection; reconnects at u.retryAt
	uConnecting              // TCP connecting
	uLoggingIn               // LOGIN sent
	uActive                  // logged in (and SYNCed at least once)
)

// user is one simulated client. All fields are guarded by the agent's lock.
type user struct {
	uid   uint64
	idx   int32
	conn  *reactor.Conn
	state uint8
	slow  bool // reads slowly (or not at all)
	idle  bool // holds a connection, neither sends nor receives
	// Delivery: every seq <= contiguous was received; ahead holds seqs received
	// beyond a gap (allocated only while there is one).
	contiguous uint64
	ackedTo    uint64
	ahead      map[uint64]struct{}
	gapSince   int64
	syncing    bool
	epoch      uint64
	// Timing, in agent-clock nanoseconds.
	dialAt     int64 // when the current connection attempt started
	lostAt     int64 // when the last connection was lost (0: never connected)
	retryAt    int64 // when an offline user reconnects
	nextPing   int64
	heartbeat  int64
	attempt    int   // failed attempts since the last login
	retryHint  int64 // the last KICK's retry-after
	senderPos  int32 // index in the agent's online-senders list, -1 when absent
	tried      bool  // the first connection attempt was made
	drained    bool  // the last KICK was DRAIN: come back after its hint, no backoff
	avoid      int16 // index+1 in the gateway list of the address tried last; 0: none
	quick      uint8 // refused connects retried at once since the last login
	slowBudget int64 // bytes the slow reader may still read this second
}

// payload header: k (the message number), intended send time, sender uid.
func putHeader(p []byte, k uint64, intended int64, from uint64) {
	binary.BigEndian.PutUint64(p[0:], k)
	binary.BigEndian.PutUint64(p[8:], uint64(intended))
	binary.BigEndian.PutUint64(p[16:], from)
}

func readHeader(p []byte) (k uint64, intended int64, ok bool) {
	if len(p) < MinPayload {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(p[0:]), int64(binary.BigEndian.Uint64(p[8:])), true
}

// OnOpen implements reactor.Handler: the dial completed; log in.
func (a *Agent) OnOpen(c *reactor.Conn) {
	u := c.Context().(*user)
	a.mu.Lock()
	defer a.mu.Unlock()
	if u.conn != c {
		return
	}
	u.state = uLoggingIn
	login := proto.Login{Version: proto.Version, UID: u.uid, Token: a.signer.Mint(u.uid, time.Now().Add(24*time.Hour))}
	a.wbuf = login.Append(a.wbuf[:0])
	c.Write(a.wbuf)
}

// OnDeferred implements reactor.Handler (everything is handled inline).
func (a *Agent) OnDeferred(*reactor.Conn, []byte) {}

// OnFrame implements reactor.Handler.
func (a *Agent) OnFrame(c *reactor.Conn, frame []byte) reactor.Disposition {
	u := c.Context().(*user)
	a.mu.Lock()
	defer a.mu.Unlock()
	if u.conn != c {
		return reactor.Handled
	}
	f, err := proto.ParseFrame(frame)
	if err != nil {
		a.protoErrors++
		c.Close()
		return reactor.Handled
	}
	now := a.now()
	switch f.Type {
	case proto.TypePush:
		var p proto.Push
		if p.Decode(f.Body) == nil {
			a.onPush(u, &p, now)
			if u.slow && a.slowRate > 0 {
				u.slowBudget -= int64(len(frame))
				if u.slowBudget < 0 {
					c.PauseReading()
				}
			}
		}
	case proto.TypeSendAck:
		var ack proto.SendAck
		if ack.Decode(f.Body) == nil {
			a.ledger.ack(ack.ClientMsgID)
		}
	case proto.TypeLoginOK:
		var ok proto.LoginOK
		if ok.Decode(f.Body) == nil {
			a.onLogin(u, &ok, now)
		}
	case proto.TypeSyncEnd:
		var e proto.SyncEnd
		if e.Decode(f.Body) == nil {
			a.onSyncEnd(u, &e)
		}
	case proto.TypeKick:
		var k proto.Kick
		if k.Decode(f.Body) == nil {
			a.kicks[k.Reason.String()]++
			u.retryHint = int64(k.RetryAfterMS) * int64(time.Millisecond)
			u.drained = k.Reason == proto.ReasonDrain
		}
	case proto.TypeError:
		a.serverErrors++
	}
	return reactor.Handled
}

// OnClose implements reactor.Handler: the user is offline and will reconnect.
func (a *Agent) OnClose(c *reactor.Conn, r reactor.Reason, err error) {
	u := c.Context().(*user)
	a.mu.Lock()
	defer a.mu.Unlock()
	if u.conn != c {
		return
	}
	now := a.now()
	if u.state == uActive {
		a.disconnects++
		a.active--
		u.lostAt = now
	} else {
		a.connectFailures++
		u.attempt++
	}
	refused := u.state == uConnecting // the dial itself failed: the gateway is gone or full
	a.removeSender(u)
	u.conn = nil
	u.state = uOffline
	u.syncing = false
	u.ahead = nil
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

func (a *Agent) onLogin(u *user, ok *proto.LoginOK, now int64) {
	if u.epoch != 0 && ok.Epoch != u.epoch {
		// The server's sequence space was reset (a msg store lost its data): what it
		// held is gone; start over from seq 0 (the ledger counts the loss).
		u.contiguous, u.ackedTo, u.ahead = 0, 0, nil
	}
	u.epoch = ok.Epoch
	u.state = uActive
	u.avoid, u.quick = 0, 0
	a.active++
	a.peakActive = max(a.peakActive, a.active)
	u.attempt = 0
	u.heartbeat = a.heartbeat
	if u.heartbeat == 0 {
		u.heartbeat = int64(ok.HeartbeatMS) * int64(time.Millisecond)
	}
	// The first heartbeat is jittered so that a reconnect storm does not ping in step.
	u.nextPing = now + rand.Int64N(max(u.heartbeat, 1))
	if u.lostAt == 0 {
		a.meters.record(TagConnect, (now-u.dialAt)/1000)
		a.established++
		a.advanceLoginFrontier()
		if a.recvLimit < len(a.recipients) && int(u.idx) < a.recvTarget {
			a.followLogins() // a step's new user is in
		}
	} else {
		a.meters.record(TagReconnect, (now-u.lostAt)/1000)
		a.reconnects++
	}
	a.addSender(u)
	a.sync(u)
}

func (a *Agent) sync(u *user) {
	u.syncing = true
	s := proto.Sync{AfterSeq: u.contiguous, Epoch: u.epoch}
	a.wbuf = s.Append(a.wbuf[:0])
	u.conn.Write(a.wbuf)
}

func (a *Agent) onSyncEnd(u *user, e *proto.SyncEnd) {
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

// onPush takes one PUSH: seq-level dedupe and ordering (what a real client does),
// then the measurement, by message number, on its first delivery.
func (a *Agent) onPush(u *user, p *proto.Push, now int64) {
	switch {
	case p.Seq <= u.contiguous:
		a.counts.Duplicates++
		return
	case p.Seq > u.contiguous+1:
		if _, dup := u.ahead[p.Seq]; dup {
			a.counts.Duplicates++
			return
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
	k, intended, ok := readHeader(p.Payload)
	if !ok {
		a.protoErrors++
		return
	}
	if _, first := a.ledger.deliver(k); first {
		tag := TagPush
		if u.slow {
			tag = TagPushSlow
		}
		a.meters.record(tag, (a.toMono(now)-intended)/1000)
	}
	if u.contiguous-u.ackedTo >= 16 {
		a.ack(u)
	}
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

func (a *Agent) ack(u *user) {
	if u.conn == nil || u.contiguous == u.ackedTo {
		return
	}
	m := proto.PushAck{Seq: u.contiguous, Epoch: u.epoch}
	a.wbuf = m.Append(a.wbuf[:0])
	u.conn.Write(a.wbuf)
	u.ackedTo = u.contiguous
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
