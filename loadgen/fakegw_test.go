package loadgen

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
)

// fakeGateway is a gateway written for the agent's tests: one process's worth of
// the protocol (LOGIN, SEND, PUSH, SYNC, PING, KICK) over loopback TCP, whose
// answers to SEND and LOGIN the test decides. It stores every message for good,
// per recipient, with seqs 1, 2, 3, … in one incarnation.
type fakeGateway struct {
	t  *testing.T
	ln net.Listener
	// wsln is the WebSocket port (listenWS), nil when the gateway has none.
	wsln net.Listener

	// onSend decides what happens to the n-th SEND (n from 1) of identity id from
	// uid from; nil: store once per identity and acknowledge.
	onSend func(from, id uint64, n int) sendAction
	// noKick: a second login of a uid replaces the first session without kicking it.
	noKick bool
	// traced counts the SEND_TRACED frames received; their messages go to a
	// version 3 recipient as PUSH_TRACED stamped at receipt (guarded by mu).
	traced int
	// stall, if its after is set, stalls the gateway once (see stallSpec).
	stall stallSpec

	mu       sync.Mutex
	sessions map[uint64]*fakeConn    // uid → its live session
	inbox    map[uint64][]proto.Push // uid → stored messages, seq = index+1
	seen     map[[2]uint64]int       // (from, id) → SENDs received
	payload  map[[2]uint64][]byte    // (from, id) → the first SEND's payload
	stored   map[[2]uint64]uint64    // (from, id) → msg id, once stored
	retries  int                     // SENDs whose payload differed from the identity's first
	kicked   int                     // KICK REPLACED frames sent
	nextMsg  uint64
	epoch    uint64 // the store's incarnation
	hold     bool   // store without pushing (as if the router were down)
	mute     bool   // read everything, answer nothing (a gateway gone silent)
	nstored  int    // messages stored, over every incarnation
	// logins counts LOGINs by transport (true: WebSocket); wsFrames the frame
	// types that came in WebSocket messages, wsPushes the PUSHes sent in them.
	logins   map[bool]int
	wsFrames map[proto.Type]int
	wsPushes int
	closed   bool
	wg       sync.WaitGroup
	// sends counts the SEND frames received; stallEnd is closed when the stall
	// ends (nil before it starts).
	sends    int
	stallEnd chan struct{}
}

// stallSpec is a stall of the whole gateway: it starts at the after-th SEND
// received (counted from 1 over every connection) and ends lasts later. A
// silent stall reads nothing more on any connection and answers nothing until
// it ends (the SEND that started it included), as a process paused by a long
// GC or a swapped-out host; a refusing one answers every SEND with ERROR UNAVAILABLE
// and stores nothing meanwhile, as an overloaded store shedding load. Either way
// no message sent during the stall is stored, let alone pushed, before it ends.
type stallSpec struct {
	after  int
	lasts  time.Duration
	refuse bool
}

// stalled reports whether the gateway is in its stall now, and returns the
// channel closed at the stall's end.
func (g *fakeGateway) stalled() (bool, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stallingLocked(), g.stallEnd
}

// stallingLocked is stalled under g.mu.
func (g *fakeGateway) stallingLocked() bool {
	if g.stallEnd == nil {
		return false
	}
	select {
	case <-g.stallEnd:
		return false
	default:
		return true
	}
}

// countSend counts a SEND and starts the stall at the one it is set for.
func (g *fakeGateway) countSend() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sends++
	if g.stall.after == 0 || g.sends != g.stall.after {
		return
	}
	end := make(chan struct{})
	g.stallEnd = end
	time.AfterFunc(g.stall.lasts, func() { close(end) })
}

// sendAction is a fake gateway's answer to one SEND.
type sendAction int

const (
	sendStore       sendAction = iota // store (once per identity) and SEND_ACK
	sendUnavailable                   // ERROR UNAVAILABLE, nothing stored
	sendStoreSilent                   // store (once per identity), no answer: close the sender's connection
	sendStoreTwice                    // store again even if stored (a store without dedupe), SEND_ACK
)

const fakeEpoch = 7

// newFakeGateway starts a fake gateway; configure, if set, sets its behaviour
// before it accepts anything.
func newFakeGateway(t *testing.T, configure func(*fakeGateway)) *fakeGateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{t: t, ln: ln, sessions: map[uint64]*fakeConn{}, inbox: map[uint64][]proto.Push{},
		seen: map[[2]uint64]int{}, payload: map[[2]uint64][]byte{}, stored: map[[2]uint64]uint64{}, epoch: fakeEpoch,
		logins: map[bool]int{}, wsFrames: map[proto.Type]int{}}
	if configure != nil {
		configure(g)
	}
	g.wg.Add(1)
	go g.accept()
	t.Cleanup(g.close)
	return g
}

func (g *fakeGateway) addr() string { return g.ln.Addr().String() }

func (g *fakeGateway) close() {
	g.mu.Lock()
	g.closed = true
	for _, c := range g.sessions {
		c.nc.Close()
	}
	g.mu.Unlock()
	g.ln.Close()
	if g.wsln != nil {
		g.wsln.Close()
	}
	g.wg.Wait()
}

func (g *fakeGateway) accept() {
	defer g.wg.Done()
	for {
		nc, err := g.ln.Accept()
		if err != nil {
			return
		}
		c := &fakeConn{g: g, nc: nc}
		g.wg.Add(1)
		go c.serve()
	}
}

// fakeConn is one client connection of the fake gateway.
type fakeConn struct {
	g   *fakeGateway
	nc  net.Conn
	wmu sync.Mutex
	uid uint64
	v3  bool // logged in with proto.VersionTrace (guarded by the gateway's mu)
	ws  bool // a WebSocket connection: each frame goes out in one binary message
}

// write sends b, whole frames of the client protocol, as they are on TCP or one
// binary message each on WebSocket.
func (c *fakeConn) write(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ws {
		b = wrapFrames(c.g, b)
	}
	c.nc.Write(b) //nolint:errcheck // a closed connection: the client is gone
}

func (c *fakeConn) serve() {
	defer c.g.wg.Done()
	defer c.nc.Close()
	r := bufio.NewReader(c.nc)
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			c.gone()
			return
		}
		frame := make([]byte, 4+binary.BigEndian.Uint32(hdr[:]))
		copy(frame, hdr[:])
		if _, err := io.ReadFull(r, frame[4:]); err != nil {
			c.gone()
			return
		}
		f, err := proto.ParseFrame(frame)
		if err != nil {
			c.g.t.Errorf("fake gateway: %v", err)
			return
		}
		if !c.handle(f) {
			return
		}
	}
}

// gone forgets a closed connection's session.
func (c *fakeConn) gone() {
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sessions[c.uid] == c {
		delete(g.sessions, c.uid)
	}
}

// handle serves one frame; false ends the connection.
func (c *fakeConn) handle(f proto.Frame) bool {
	g := c.g
	g.mu.Lock()
	muted := g.mute
	g.mu.Unlock()
	if muted {
		return true
	}
	if f.Type == proto.TypeSend || f.Type == proto.TypeSendTraced {
		g.countSend()
	}
	if stalled, end := g.stalled(); stalled && !g.stall.refuse {
		<-end // a silent stall: this connection reads nothing until it ends
	}
	switch f.Type {
	case proto.TypeLogin:
		var m proto.Login
		if m.Decode(f.Body) != nil {
			return false
		}
		g.mu.Lock()
		c.uid = m.UID
		c.v3 = m.Version == proto.VersionTrace
		g.logins[c.ws]++
		epoch := g.epoch
		if old := g.sessions[m.UID]; old != nil && !g.noKick {
			old.write(proto.AppendKick(nil, proto.ReasonReplaced, proto.CodeSessionReplaced, 0, ""))
			old.nc.Close()
			g.kicked++
		}
		g.sessions[m.UID] = c
		head := uint64(len(g.inbox[m.UID]))
		g.mu.Unlock()
		ok := proto.LoginOK{Session: m.UID, Epoch: epoch, LastSeq: head, Oldest: 1, HeartbeatMS: 30000, IdleTimeoutMS: 90000, MaxFrame: 1 << 20, MaxPayload: 1 << 16}
		c.write(ok.Append(nil))
	case proto.TypeSend, proto.TypeSendTraced: // one layout; answered with a plain PUSH
		var m proto.Send
		if m.Decode(f.Body) != nil {
			return false
		}
		return c.send(&m, f.Type == proto.TypeSendTraced)
	case proto.TypeSync:
		var m proto.Sync
		if m.Decode(f.Body) != nil {
			return false
		}
		g.mu.Lock()
		msgs := g.inbox[c.uid]
		after := m.AfterSeq
		if m.Epoch != g.epoch {
			after = 0 // another incarnation's seq: replay from the start
		}
		var b []byte
		upTo := after
		for i := int(min(after, uint64(len(msgs)))); i < len(msgs); i++ {
			b = msgs[i].Append(b)
			upTo = msgs[i].Seq
		}
		end := proto.SyncEnd{UpTo: upTo, Head: uint64(len(msgs)), Oldest: 1, Epoch: g.epoch}
		g.mu.Unlock()
		c.write(end.Append(b))
	case proto.TypePing:
		var m proto.Ping
		m.Decode(f.Body)
		pong := proto.Pong{TS: m.TS}
		c.write(pong.Append(nil))
	}
	return true
}

// send serves one SEND as the test's onSend decides.
func (c *fakeConn) send(m *proto.Send, traced bool) bool {
	in := time.Now().UnixNano()
	g := c.g
	g.mu.Lock()
	if traced {
		g.traced++
	}
	key := [2]uint64{c.uid, m.ClientMsgID}
	g.seen[key]++
	n := g.seen[key]
	if first, ok := g.payload[key]; !ok {
		g.payload[key] = append([]byte(nil), m.Payload...)
	} else if string(first) != string(m.Payload) {
		g.retries++
	}
	act := sendStore
	switch {
	case g.stall.refuse && g.stallingLocked():
		act = sendUnavailable
	case g.onSend != nil:
		act = g.onSend(c.uid, m.ClientMsgID, n)
	}
	var push *proto.Push
	var to *fakeConn
	var toV3 bool
	msgID, stored := g.stored[key]
	if act != sendUnavailable && (!stored || act == sendStoreTwice) {
		g.nextMsg++
		msgID = g.nextMsg
		g.stored[key] = msgID
		p := proto.Push{Seq: uint64(len(g.inbox[m.To]) + 1), Epoch: g.epoch, MsgID: msgID, From: c.uid, ClientTS: m.ClientTS,
			Payload: append([]byte(nil), m.Payload...)}
		g.inbox[m.To] = append(g.inbox[m.To], p)
		g.nstored++
		if !g.hold {
			push, to = &p, g.sessions[m.To]
			toV3 = to != nil && to.v3
		}
	}
	g.mu.Unlock()
	switch {
	case push != nil && to != nil && traced && toV3:
		out := time.Now().UnixNano()
		pt := proto.PushTraced{Push: *push, Trace: proto.Trace{GatewayIn: in, Stored: in, Routed: out, GatewayOut: out}}
		to.write(pt.Append(nil))
	case push != nil && to != nil:
		to.write(push.Append(nil))
	}
	switch act {
	case sendUnavailable:
		c.write(proto.AppendError(nil, proto.CodeUnavailable, m.ClientMsgID, ""))
	case sendStoreSilent:
		return false
	default:
		ack := proto.SendAck{ClientMsgID: m.ClientMsgID, MsgID: msgID}
		c.write(ack.Append(nil))
	}
	return true
}

// identities returns how many identities the gateway saw, how many SENDs, and how
// many of those carried other bytes than their identity's first.
func (g *fakeGateway) identities() (ids, sends, changed int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.seen {
		ids++
		sends += n
	}
	return ids, sends, g.retries
}

// kicks returns how many KICK REPLACED frames the gateway sent at logins.
func (g *fakeGateway) kicks() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.kicked
}

// inject stores a message for uid as the gateway's next seq and pushes it if uid
// is online: a test's way to make the store misbehave.
func (g *fakeGateway) inject(to, from uint64, payload []byte) {
	g.mu.Lock()
	g.nextMsg++
	p := proto.Push{Seq: uint64(len(g.inbox[to]) + 1), Epoch: g.epoch, MsgID: g.nextMsg, From: from, Payload: payload}
	g.inbox[to] = append(g.inbox[to], p)
	c := g.sessions[to]
	g.mu.Unlock()
	if c != nil {
		c.write(p.Append(nil))
	}
}

// storedMessage returns a stored message and its recipient, once there is one
// whose recipient is online.
func (g *fakeGateway) storedMessage() (proto.Push, uint64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for to, msgs := range g.inbox {
		if len(msgs) > 0 && g.sessions[to] != nil {
			return msgs[0], to, true
		}
	}
	return proto.Push{}, 0, false
}

// kickAll kicks every session REPLACED and closes it, as a confused directory
// would.
func (g *fakeGateway) kickAll() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for uid, c := range g.sessions {
		c.write(proto.AppendKick(nil, proto.ReasonReplaced, proto.CodeSessionReplaced, 0, ""))
		c.nc.Close()
		delete(g.sessions, uid)
		n++
	}
	return n
}

// setHold makes the gateway store without pushing (true) or push again (false).
func (g *fakeGateway) setHold(hold bool) {
	g.mu.Lock()
	g.hold = hold
	g.mu.Unlock()
}

// restartStore is a memory store's restart: a new, larger incarnation, and
// everything stored (the dedupe record too) gone.
func (g *fakeGateway) restartStore() {
	g.mu.Lock()
	g.epoch++
	g.inbox = map[uint64][]proto.Push{}
	g.stored = map[[2]uint64]uint64{}
	g.mu.Unlock()
}

// storedCount is how many messages were stored, over every incarnation.
func (g *fakeGateway) storedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nstored
}

// online counts the sessions.
func (g *fakeGateway) online() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sessions)
}
