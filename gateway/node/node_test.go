package node_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var secret = []byte("test-secret-0123456789")

type gateway struct {
	*node.Node
	addr   string
	signer *proto.Signer
	reg    *prometheus.Registry
	stop   func()
}

func startGateway(t *testing.T, mutate func(*node.Config)) *gateway {
	t.Helper()
	signer, err := proto.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := node.Config{
		ID:        "gw-test",
		Reactor:   reactor.Config{Addr: "127.0.0.1:0", ShutdownTimeout: 2 * time.Second},
		Heartbeat: 10 * time.Second,
		Signer:    signer,
		Backend:   node.NewLocal(msg.NewMemory(1000)),
		Registry:  reg,
		Logger:    slog.New(slog.DiscardHandler),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { stopNow(t, cancel, done) }) }
	t.Cleanup(stop)
	return &gateway{Node: n, addr: n.Reactor().Addr().String(), signer: signer, reg: reg, stop: stop}
}

// withoutRates turns the rate limits off, for tests that send at full speed.
func withoutRates(c *node.Config) { c.Rates = &node.Rates{} }

func stopNow(t *testing.T, cancel func(), done chan error) {
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("gateway did not stop")
	}
}

func (g *gateway) dial(t *testing.T) *client.Conn {
	t.Helper()
	c, err := client.Dial(g.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.NetConn().SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func (g *gateway) login(t *testing.T, uid uint64) (*client.Conn, proto.LoginOK) {
	t.Helper()
	c := g.dial(t)
	ok, err := c.Login(uid, g.signer.Mint(uid, time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatalf("login %d: %v", uid, err)
	}
	return c, ok
}

// next reads one frame, failing the test on a KICK or read error.
func next(t *testing.T, c *client.Conn) proto.Frame {
	t.Helper()
	f, err := c.Next()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return f
}

// expectKick reads until a KICK, checks its reason and code, then checks EOF.
func expectKick(t *testing.T, c *client.Conn, reason proto.Reason, code proto.Code) *client.KickError {
	t.Helper()
	for {
		f, err := c.Next()
		if err != nil {
			t.Fatalf("waiting for KICK %v %v: %v", reason, code, err)
		}
		if f.Type != proto.TypeKick {
			continue
		}
		var k *client.KickError
		if !errors.As(client.AsError(f), &k) || k.Reason != reason || k.Code != code {
			t.Fatalf("got %v, want KICK %v %v", client.AsError(f), reason, code)
		}
		if _, err := c.Next(); err != io.EOF {
			t.Fatalf("after KICK: %v, want EOF", err)
		}
		return k
	}
}

func TestLoginAndPing(t *testing.T) {
	g := startGateway(t, nil)
	c, ok := g.login(t, 42)
	if ok.Session == 0 || ok.Epoch == 0 || ok.LastSeq != 0 || ok.HeartbeatMS != 10000 || ok.IdleTimeoutMS != 30000 || ok.MaxFrame != proto.DefaultMaxFrame {
		t.Fatalf("LOGIN_OK %+v", ok)
	}
	c.Ping(123456789)
	f := next(t, c)
	var p proto.Pong
	if f.Type != proto.TypePong || p.Decode(f.Body) != nil || p.TS != 123456789 {
		t.Fatalf("got %v, want PONG 123456789", f.Type)
	}
	if g.Sessions() != 1 {
		t.Fatalf("Sessions = %d", g.Sessions())
	}
}

// Users on the same gateway: every SEND is acknowledged after it is stored, and
// the recipient gets every seq once, in order, with the sender's payload.
func TestSendPushBetweenLocalUsers(t *testing.T) {
	const n = 2000
	// 2,000 SENDs at full speed, and a recipient quota that holds every one: the
	// sender may run n ahead of it.
	g := startGateway(t, func(c *node.Config) { withoutRates(c); c.Backend = node.NewLocal(msg.NewMemory(n)) })
	a, _ := g.login(t, 1)
	b, _ := g.login(t, 2)
	go func() {
		for i := 1; i <= n; i++ {
			if err := a.Send(uint64(i), 2, int64(i), fmt.Appendf(nil, "m%d", i)); err != nil {
				return
			}
		}
	}()
	acks := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			f, err := a.Next()
			if err != nil {
				acks <- err
				return
			}
			var ack proto.SendAck
			if f.Type != proto.TypeSendAck || ack.Decode(f.Body) != nil || ack.ClientMsgID != uint64(i) || ack.MsgID == 0 {
				acks <- fmt.Errorf("ack %d: got %v %+v", i, f.Type, ack)
				return
			}
		}
		acks <- nil
	}()
	for i := 1; i <= n; i++ {
		f := next(t, b)
		var p proto.Push
		if f.Type != proto.TypePush || p.Decode(f.Body) != nil {
			t.Fatalf("push %d: got %v", i, f.Type)
		}
		if p.Seq != uint64(i) || p.From != 1 || p.ClientTS != int64(i) || string(p.Payload) != fmt.Sprintf("m%d", i) {
			t.Fatalf("push %d: %+v", i, p)
		}
		if i%100 == 0 {
			b.Ack(p.Seq, p.Epoch)
		}
	}
	if err := <-acks; err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(metric(t, g.reg, "floodgate_gateway_pushes_total", "delivered")); v != n {
		t.Fatalf("pushes delivered = %v, want %d", v, n)
	}
}

// An offline recipient finds everything on LOGIN + SYNC, in order.
func TestOfflineRecipientCatchesUpBySync(t *testing.T) {
	g := startGateway(t, withoutRates) // 300 SENDs at full speed
	a, _ := g.login(t, 10)
	for i := 1; i <= 300; i++ {
		a.Send(uint64(i), 20, 0, []byte{byte(i)})
		if f := next(t, a); f.Type != proto.TypeSendAck {
			t.Fatalf("got %v", f.Type)
		}
	}
	b, ok := g.login(t, 20)
	if ok.LastSeq != 300 {
		t.Fatalf("LastSeq = %d, want 300", ok.LastSeq)
	}
	// Two rounds: the server's SYNC limit is 256.
	var got []uint64
	after := uint64(0)
	for round := 0; round < 3 && after < ok.LastSeq; round++ {
		b.Sync(after, ok.Epoch, 0)
		for {
			f := next(t, b)
			if f.Type == proto.TypeSyncEnd {
				var end proto.SyncEnd
				end.Decode(f.Body)
				if end.Head != 300 || end.Oldest != 1 {
					t.Fatalf("SYNC_END %+v", end)
				}
				after = end.UpTo
				break
			}
			var p proto.Push
			p.Decode(f.Body)
			got = append(got, p.Seq)
		}
	}
	if len(got) != 300 {
		t.Fatalf("replayed %d, want 300", len(got))
	}
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("replay out of order at %d: %d", i, s)
		}
	}
	b.Ack(300, ok.Epoch)
	b.Sync(300, ok.Epoch, 0)
	var end proto.SyncEnd
	if f := next(t, b); f.Type != proto.TypeSyncEnd || end.Decode(f.Body) != nil || end.UpTo != 300 {
		t.Fatalf("empty sync: %v %+v", f.Type, end)
	}
}

func rawFrame(typ proto.Type, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(body)))
	return append(append(b, byte(typ)), body...)
}

// Every class of bad input gets a KICK with its code, then a close, and nothing
// else is affected.
func TestBadInputGetsItsCode(t *testing.T) {
	g := startGateway(t, func(c *node.Config) { c.MaxFrame = 4096 })
	bystander, _ := g.login(t, 999)
	good := func(uid uint64) []byte {
		return (&proto.Login{Version: proto.Version, UID: uid, Token: g.signer.Mint(uid, time.Now().Add(time.Hour))}).Append(nil)
	}
	cases := []struct {
		name     string
		login    bool // log in first
		send     []byte
		halfShut bool
		reason   proto.Reason
		code     proto.Code
	}{
		{"length over max", false, binary.BigEndian.AppendUint32(nil, 4097), false, proto.ReasonProtocol, proto.CodeFrameTooLarge},
		{"zero length", false, []byte{0, 0, 0, 0}, false, proto.ReasonProtocol, proto.CodeBadLength},
		{"truncated length", false, []byte{0, 0}, true, proto.ReasonProtocol, proto.CodeTruncated},
		{"truncated body", true, rawFrame(proto.TypePing, make([]byte, 8))[:9], true, proto.ReasonProtocol, proto.CodeTruncated},
		{"short body", true, rawFrame(proto.TypePing, make([]byte, 3)), false, proto.ReasonProtocol, proto.CodeMalformed},
		{"unknown type", false, rawFrame(0x7f, nil), false, proto.ReasonProtocol, proto.CodeUnknownType},
		{"server frame from client", true, rawFrame(proto.TypePush, make([]byte, 32)), false, proto.ReasonProtocol, proto.CodeUnexpectedFrame},
		// Version 3's types are undefined on a version 2 connection (c.Login announces 2).
		{"SEND_TRACED on version 2", true, (&proto.SendTraced{ClientMsgID: 1, To: 999}).Append(nil), false, proto.ReasonProtocol, proto.CodeUnknownType},
		{"PUSH_TRACED on version 2", true, rawFrame(proto.TypePushTraced, make([]byte, 72)), false, proto.ReasonProtocol, proto.CodeUnknownType},
		{"PUSH_TRACED before LOGIN", false, rawFrame(proto.TypePushTraced, make([]byte, 72)), false, proto.ReasonProtocol, proto.CodeUnexpectedFrame},
		{"frame before LOGIN", false, (&proto.Ping{TS: 1}).Append(nil), false, proto.ReasonProtocol, proto.CodeNotLoggedIn},
		{"SEND before LOGIN", false, (&proto.Send{To: 1}).Append(nil), false, proto.ReasonProtocol, proto.CodeNotLoggedIn},
		{"second LOGIN", true, good(5), false, proto.ReasonProtocol, proto.CodeAlreadyLoggedIn},
		{"unsupported version", false, (&proto.Login{Version: 9, UID: 5, Token: []byte("x")}).Append(nil), false, proto.ReasonProtocol, proto.CodeUnsupportedVersion},
		{"bad token", false, (&proto.Login{Version: proto.Version, UID: 5, Token: []byte("5.99999999999.bogus")}).Append(nil), false, proto.ReasonAuth, proto.CodeBadToken},
		{"expired token", false, (&proto.Login{Version: proto.Version, UID: 5, Token: g.signer.Mint(5, time.Now().Add(-time.Second))}).Append(nil), false, proto.ReasonAuth, proto.CodeTokenExpired},
		{"token for another uid", false, (&proto.Login{Version: proto.Version, UID: 6, Token: g.signer.Mint(5, time.Now().Add(time.Hour))}).Append(nil), false, proto.ReasonAuth, proto.CodeUIDMismatch},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := g.dial(t)
			if tc.login {
				if _, err := c.Login(uint64(100+i), g.signer.Mint(uint64(100+i), time.Now().Add(time.Hour))); err != nil {
					t.Fatal(err)
				}
			}
			c.WriteRaw(tc.send)
			if tc.halfShut {
				c.NetConn().(*net.TCPConn).CloseWrite()
			}
			expectKick(t, c, tc.reason, tc.code)
			bystander.Ping(int64(i))
			if f := next(t, bystander); f.Type != proto.TypePong {
				t.Fatalf("bystander got %v", f.Type)
			}
		})
	}
}

// Non-fatal request errors leave the connection open.
func TestRequestErrorsAreNotFatal(t *testing.T) {
	g := startGateway(t, func(c *node.Config) { c.MaxFrame = 2048 })
	c, _ := g.login(t, 1)
	c.Send(7, 0, 0, nil)
	var se *client.ServerError
	if err := client.AsError(next(t, c)); !errors.As(err, &se) || se.Code != proto.CodeBadRecipient || se.Ref != 7 {
		t.Fatalf("send to uid 0: %v", err)
	}
	c.Send(8, 2, 0, bytes.Repeat([]byte{1}, proto.MaxPayload(2048)+1))
	if err := client.AsError(next(t, c)); !errors.As(err, &se) || se.Code != proto.CodePayloadTooLarge || se.Ref != 8 {
		t.Fatalf("oversized payload: %v", err)
	}
	c.Ping(1)
	if f := next(t, c); f.Type != proto.TypePong {
		t.Fatalf("after errors: %v", f.Type)
	}
}

func TestNewLoginReplacesOldSession(t *testing.T) {
	g := startGateway(t, nil)
	old, _ := g.login(t, 5)
	fresh, _ := g.login(t, 5)
	expectKick(t, old, proto.ReasonReplaced, proto.CodeSessionReplaced)
	// Messages now reach the new session, and the old session's close did not
	// remove it.
	sender, _ := g.login(t, 6)
	sender.Send(1, 5, 0, []byte("hi"))
	f := next(t, fresh)
	if f.Type != proto.TypePush {
		t.Fatalf("new session got %v", f.Type)
	}
	if g.Sessions() != 2 {
		t.Fatalf("Sessions = %d, want 2", g.Sessions())
	}
}

func TestShutdownKicksEveryone(t *testing.T) {
	g := startGateway(t, nil)
	var cs []*client.Conn
	for uid := uint64(1); uid <= 5; uid++ {
		c, _ := g.login(t, uid)
		cs = append(cs, c)
	}
	unauth := g.dial(t)
	go g.stop()
	for _, c := range append(cs, unauth) {
		k := expectKick(t, c, proto.ReasonShutdown, proto.CodeShuttingDown)
		if k.RetryAfterMS == 0 {
			t.Error("SHUTDOWN without a retry hint")
		}
	}
}

func TestIdleKick(t *testing.T) {
	g := startGateway(t, func(c *node.Config) { c.Reactor.IdleTimeout = 200 * time.Millisecond })
	c, ok := g.login(t, 1)
	if ok.IdleTimeoutMS != 200 {
		t.Fatalf("IdleTimeoutMS = %d", ok.IdleTimeoutMS)
	}
	expectKick(t, c, proto.ReasonIdle, proto.CodeIdleTimeout)
}

func TestBusyKickCarriesRetryHint(t *testing.T) {
	g := startGateway(t, func(c *node.Config) { c.Reactor.MaxConns = 1 })
	g.login(t, 1)
	c := g.dial(t)
	k := expectKick(t, c, proto.ReasonBusy, proto.CodeServerFull)
	if k.RetryAfterMS < 1000 {
		t.Fatalf("BUSY retry hint %dms", k.RetryAfterMS)
	}
}

func TestEchoModeAnswersEveryFrameWithItself(t *testing.T) {
	g := startGateway(t, func(c *node.Config) { c.Echo, c.Signer, c.Backend = true, nil, nil })
	c := g.dial(t)
	in := append(rawFrame(0x42, []byte("anything")), rawFrame(proto.TypePush, []byte("goes"))...)
	c.WriteRaw(in)
	out := make([]byte, len(in))
	if _, err := io.ReadFull(c.NetConn(), out); err != nil || !bytes.Equal(in, out) {
		t.Fatalf("echo: %q, %v", out, err)
	}
}

func metric(t *testing.T, reg *prometheus.Registry, name, label string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return m.GetCounter().GetValue() })
				}
			}
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return nil
}

// Drain kicks every session with DRAIN in paced batches, turns away logins while it
// runs, and ends by itself.
func TestDrainKicksEveryoneInBatches(t *testing.T) {
	g := startGateway(t, nil)
	var cs []*client.Conn
	for uid := uint64(1); uid <= 10; uid++ {
		c, _ := g.login(t, uid)
		cs = append(cs, c)
	}
	st := g.Drain(gwlink.DrainRequest{Batch: 3, Interval: 20 * time.Millisecond, RetryAfter: 100 * time.Millisecond})
	if !st.Started || st.Sessions != 10 {
		t.Fatalf("drain status %+v", st)
	}
	if again := g.Drain(gwlink.DrainRequest{Batch: 3, Interval: time.Second, RetryAfter: time.Second}); again.Started {
		t.Fatal("a second drain started while one runs")
	}
	late := g.dial(t)
	late.WriteRaw((&proto.Login{Version: proto.Version, UID: 50, Token: g.signer.Mint(50, time.Now().Add(time.Hour))}).Append(nil))
	expectKick(t, late, proto.ReasonDrain, proto.CodeDraining)
	for _, c := range cs {
		k := expectKick(t, c, proto.ReasonDrain, proto.CodeDraining)
		if k.RetryAfterMS < 100 || k.RetryAfterMS >= 120 {
			t.Errorf("retry hint %dms, want within [100, 120): RetryAfter plus a share of the interval", k.RetryAfterMS)
		}
	}
	// Logins stay refused after everyone left, until the drain is undone.
	late2 := g.dial(t)
	late2.WriteRaw((&proto.Login{Version: proto.Version, UID: 51, Token: g.signer.Mint(51, time.Now().Add(time.Hour))}).Append(nil))
	expectKick(t, late2, proto.ReasonDrain, proto.CodeDraining)
	g.Undrain()
	if _, err := g.dial(t).Login(60, g.signer.Mint(60, time.Now().Add(time.Hour))); err != nil {
		t.Fatalf("login refused after Undrain: %v", err)
	}
}
