package loadgen

import (
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/ws"
)

// listenWS opens the fake gateway's WebSocket port (PROTOCOL.md §2.1) and returns
// its address. Its connections do the server's handshake with the ws codec, must
// offer the floodgate subprotocol, and must mask every frame (the codec's server
// Decoder refuses an unmasked one, which fails the test); each binary message is
// one frame of the client protocol, served as on TCP.
func (g *fakeGateway) listenWS() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.t.Fatal(err)
	}
	g.wsln = ln
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c := &fakeConn{g: g, nc: nc, ws: true}
			g.wg.Add(1)
			go c.serveWS()
		}
	}()
	return ln.Addr().String()
}

// serveWS serves one WebSocket connection: the handshake, then client frames.
func (c *fakeConn) serveWS() {
	defer c.g.wg.Done()
	defer c.nc.Close()
	defer c.gone()
	var buf []byte
	chunk := make([]byte, 64<<10)
	read := func() bool {
		n, err := c.nc.Read(chunk)
		buf = append(buf, chunk[:n]...)
		return err == nil || (n > 0 && !errors.Is(err, io.EOF))
	}
	var req ws.Upgrade
	for {
		var n int
		var err error
		if req, n, err = ws.ParseUpgrade(buf); err != nil {
			c.g.t.Errorf("fake gateway: handshake: %v", err)
			return
		} else if n > 0 {
			buf = buf[n:]
			break
		}
		if !read() {
			return
		}
	}
	if !req.Offers(wsProtocol) {
		c.g.t.Errorf("fake gateway: the client offered %v, not %q", req.Protocols, wsProtocol)
	}
	c.wmu.Lock()
	c.nc.Write(ws.AppendResponse(nil, &req, wsProtocol))
	c.wmu.Unlock()
	var d ws.Decoder
	for {
		m, n, err := d.Decode(buf)
		if err != nil {
			c.g.t.Errorf("fake gateway: client frame: %v", err) // an unmasked frame among others
			return
		}
		if n == 0 {
			if !read() {
				return
			}
			continue
		}
		buf = buf[n:]
		switch m.Op {
		case ws.OpBinary:
			f, err := proto.ParseFrame(m.Payload)
			if err != nil {
				c.g.t.Errorf("fake gateway: a binary message that is not one frame: %v", err)
				return
			}
			c.g.mu.Lock()
			c.g.wsFrames[f.Type]++
			c.g.mu.Unlock()
			if !c.handle(f) {
				return
			}
		case ws.OpClose:
			c.wmu.Lock()
			c.nc.Write(ws.AppendClose(nil, m.Code, ""))
			c.wmu.Unlock()
			return
		case ws.OpPing:
			c.wmu.Lock()
			c.nc.Write(ws.AppendFrame(nil, ws.OpPong, m.Payload))
			c.wmu.Unlock()
		}
	}
}

// wrapFrames puts each client-protocol frame of b in a binary message of its own,
// counting the PUSHes among them.
func wrapFrames(g *fakeGateway, b []byte) []byte {
	var out []byte
	pushes := 0
	for len(b) >= 4 {
		n := 4 + int(binary.BigEndian.Uint32(b))
		if b[4] == byte(proto.TypePush) || b[4] == byte(proto.TypePushTraced) {
			pushes++
		}
		out = ws.AppendFrame(out, ws.OpBinary, b[:n])
		b = b[n:]
	}
	g.mu.Lock()
	g.wsPushes += pushes
	g.mu.Unlock()
	return out
}

// wsCounts returns the LOGINs by transport, the frames of each type that came over
// WebSocket and the PUSHes sent over it.
func (g *fakeGateway) wsCounts() (tcpLogins, wsLogins int, frames map[proto.Type]int, pushes int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	frames = map[proto.Type]int{}
	for k, v := range g.wsFrames {
		frames[k] = v
	}
	return g.logins[false], g.logins[true], frames, g.wsPushes
}

// A plan's WebSocket share of users connect to the WebSocket port, log in, send,
// receive their pushes and acknowledge them through real WebSocket framing
// (masked client frames, checked by the fake's server-side decoder), and every
// message is accounted for and measured as for TCP users.
func TestWebSocketUsersSpeakTheProtocolInMaskedMessages(t *testing.T) {
	g := newFakeGateway(t, nil)
	plan := fakePlan([]string{g.addr()}, 20, 400, 2)
	plan.WSGateways = []string{g.listenWS()}
	plan.WebSocketShare = 0.5
	res := runAgent(t, newAgent(t, plan))
	assertEveryMessageDelivered(t, res.Messages)
	if res.Established != 20 || res.WebSocketUsers != 10 || res.WebSocketConns != 10 || res.WebSocketRefused != 0 || res.ProtocolErrors != 0 {
		t.Fatalf("established %d, websocket users %d, upgraded %d, refused %d, protocol errors %d; want 20, 10, 10, 0, 0",
			res.Established, res.WebSocketUsers, res.WebSocketConns, res.WebSocketRefused, res.ProtocolErrors)
	}
	tcpLogins, wsLogins, frames, pushes := g.wsCounts()
	if tcpLogins != 10 || wsLogins != 10 {
		t.Fatalf("logins: %d over TCP, %d over WebSocket; want 10 and 10", tcpLogins, wsLogins)
	}
	if frames[proto.TypeLogin] != 10 || frames[proto.TypeSend]+frames[proto.TypeSendTraced] == 0 || frames[proto.TypePushAck] == 0 || pushes == 0 {
		t.Fatalf("over WebSocket: frames %v, %d pushes; want LOGINs, SENDs, PUSH_ACKs and pushes", frames, pushes)
	}
	if p := res.Latency[TagPush]; p.Count != int64(res.Messages.Delivered) {
		t.Fatalf("%d push latency samples for %d deliveries: a transport's pushes went unmeasured", p.Count, res.Messages.Delivered)
	}
}

// A WebSocket user whose gateway has no WebSocket port takes the next gateway of
// the list that has one; TCP users still spread over both.
func TestWebSocketUsersSkipGatewaysWithoutAWebSocketPort(t *testing.T) {
	plain := newFakeGateway(t, nil)
	withWS := newFakeGateway(t, nil)
	plan := fakePlan([]string{plain.addr(), withWS.addr()}, 30, 0, 1)
	plan.WSGateways = []string{"", withWS.listenWS()}
	plan.WebSocketShare = 1.0 / 3
	res := runAgent(t, newAgent(t, plan))
	if res.Established != 30 || res.WebSocketUsers != 10 || res.WebSocketConns != 10 {
		t.Fatalf("established %d, websocket users %d, upgraded %d; want 30, 10, 10", res.Established, res.WebSocketUsers, res.WebSocketConns)
	}
	plainTCP, plainWS, _, _ := plain.wsCounts()
	wsTCP, wsWS, _, _ := withWS.wsCounts()
	if plainWS != 0 || wsWS != 10 || plainTCP+wsTCP != 20 || plainTCP == 0 || wsTCP == 0 {
		t.Fatalf("logins: gateway without ws %d TCP, %d WebSocket; with ws %d TCP, %d WebSocket", plainTCP, plainWS, wsTCP, wsWS)
	}
}

// Which users connect over WebSocket depends only on their index in the plan: the
// share is exact over any prefix, and segments of a plan pick the same users as
// the whole plan.
func TestWebSocketUsersAreFixedByIndex(t *testing.T) {
	p := Plan{Users: 1000, WebSocketShare: 0.3}
	n := 0
	for i := range p.Users {
		if p.WebSocketUser(i) {
			n++
		}
		if want := int(float64(i+1) * 0.3); n != want {
			t.Fatalf("the first %d users hold %d WebSocket users, want %d", i+1, n, want)
		}
	}
	plan := fakePlan([]string{"127.0.0.1:1"}, 1000, 0, 1)
	plan.WSGateways, plan.WebSocketShare = []string{"127.0.0.1:2"}, 0.3
	for _, segs := range []int{1, 3, 7} {
		total := 0
		for i := range segs {
			// The users New would set up, without the reactors it opens.
			a := &Agent{opts: Options{Segment: Segment{i, segs}}, plan: plan, rng: rand.New(rand.NewPCG(1, uint64(i)))}
			a.setupUsers()
			for _, u := range a.users {
				if u.ws != plan.WebSocketUser(int(u.uid-plan.UIDBase-1)) {
					t.Fatalf("%d segments: user %d's transport differs from the plan's", segs, u.uid)
				}
			}
			total += a.wsUsers
		}
		if total != 300 {
			t.Fatalf("%d segments hold %d WebSocket users, want 300", segs, total)
		}
	}
	if (&Plan{Users: 10}).WebSocketUser(3) {
		t.Fatal("a plan without a WebSocket share has a WebSocket user")
	}
}

// Against a real gateway node (its WebSocket port, the server side of the ws
// codec), mixed users deliver every message both ways between the transports,
// and relogins (a second WebSocket connection for a WebSocket user) replace their
// sessions as on TCP.
func TestWebSocketUsersOnANodeGateway(t *testing.T) {
	var wsAddr string
	addr := startGatewayWith(t, func(c *node.Config) { c.WSAddr = "127.0.0.1:0" }, func(n *node.Node) { wsAddr = n.WSAddr() })
	if wsAddr == "" {
		t.Fatal("the node has no WebSocket port")
	}
	plan := fakePlan([]string{addr}, 40, 400, 3)
	plan.WSGateways = []string{wsAddr}
	plan.WebSocketShare = 0.3
	plan.Behaviour.ReloginPerSec = 20
	res := runAgent(t, newAgent(t, plan))
	c := res.Messages
	assertEveryMessageDelivered(t, c)
	if res.Established != 40 || res.WebSocketUsers != 12 || res.ProtocolErrors != 0 || res.WebSocketRefused != 0 {
		t.Fatalf("established %d, websocket users %d, protocol errors %d, refused %d; want 40, 12, 0, 0",
			res.Established, res.WebSocketUsers, res.ProtocolErrors, res.WebSocketRefused)
	}
	// About 60 relogins among 40 users of which 12 are on WebSocket: some of them
	// are WebSocket users' (all none would have a chance of 0.7^60).
	if c.Relogins < 20 || c.ReplaceLate != 0 || c.ReplacedUnexpected != 0 || res.WebSocketConns <= 12 {
		t.Fatalf("relogins %d, late %d, unexpected %d, upgraded connections %d (want more than the 12 first ones)",
			c.Relogins, c.ReplaceLate, c.ReplacedUnexpected, res.WebSocketConns)
	}
}
