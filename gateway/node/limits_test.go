package node_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Before LOGIN a frame over the pre-login limit is kicked FRAME_TOO_LARGE at its
// header, without waiting for the rest (before, the gateway carried up to 64 KiB of
// it for as long as the peer cared to trickle); a LOGIN with a 512-byte token fits.
func TestPreLoginFrameLimit(t *testing.T) {
	g := startGateway(t, nil)
	c := g.dial(t)
	c.WriteRaw(binary.BigEndian.AppendUint32(nil, 60_000)) // the header of a 60 KB frame
	c.WriteRaw(make([]byte, 100))
	start := time.Now()
	expectKick(t, c, proto.ReasonProtocol, proto.CodeFrameTooLarge)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("kicked after %v, want at once", took)
	}
	// A LOGIN with a 512-byte token is read whole: its token is judged.
	big := g.dial(t)
	big.WriteRaw((&proto.Login{Version: proto.Version, UID: 5, Token: make([]byte, 512)}).Append(nil))
	expectKick(t, big, proto.ReasonAuth, proto.CodeBadToken)
	// Once logged in, max_frame applies.
	in, _ := g.login(t, 1)
	in.Send(1, 2, 0, make([]byte, 8<<10))
	if f := next(t, in); f.Type != proto.TypeSendAck {
		t.Fatalf("8 KiB SEND after login: got %v", client.AsError(f))
	}
	if v := testutil.ToFloat64(metric(t, g.reg, "floodgate_gateway_limit_closes_total", "frame_too_large")); v != 1 {
		t.Fatalf("limit_closes{frame_too_large} = %v, want 1", v)
	}
}

// A connection that does not log in within the login deadline is kicked
// IDLE/LOGIN_TIMEOUT, whether silent or trickling an unfinished LOGIN; one that
// logged in is not.
func TestLoginDeadline(t *testing.T) {
	const deadline = 400 * time.Millisecond
	g := startGateway(t, func(c *node.Config) { c.LoginTimeout = deadline })
	in, _ := g.login(t, 1)
	start := time.Now()
	silent := g.dial(t)
	trickler := g.dial(t)
	login := (&proto.Login{Version: proto.Version, UID: 2, Token: g.signer.Mint(2, time.Now().Add(time.Hour))}).Append(nil)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 50ms, never the last one
		for i := 0; i < len(login)-1; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if trickler.WriteRaw(login[i:i+1]) != nil {
				return
			}
		}
	}()
	for _, c := range []*client.Conn{silent, trickler} {
		expectKick(t, c, proto.ReasonIdle, proto.CodeLoginTimeout)
	}
	if took := time.Since(start); took > deadline+time.Second {
		t.Fatalf("kicked after %v, want about %v", took, deadline)
	}
	in.Ping(1)
	if f := next(t, in); f.Type != proto.TypePong {
		t.Fatalf("logged-in connection: got %v", client.AsError(f))
	}
	if v := testutil.ToFloat64(metric(t, g.reg, "floodgate_gateway_limit_closes_total", "login_timeout")); v != 2 {
		t.Fatalf("limit_closes{login_timeout} = %v, want 2", v)
	}
}

// Frames behind a KICK are not handled: a malformed PUSH_ACK (kicked by a worker)
// followed, in the same write, by a SEND — the SEND is never stored. (Before, the
// SEND queued behind the PUSH_ACK ran after the KICK.)
func TestNothingAfterAKickIsHandled(t *testing.T) {
	store := msg.NewMemory(100)
	g := startGateway(t, func(c *node.Config) { c.Backend = node.NewLocal(store) })
	a, _ := g.login(t, 1)
	var b []byte
	b = rawFrame(proto.TypePushAck, []byte{1, 2, 3}) // too short: MALFORMED
	b = (&proto.Send{ClientMsgID: 1, To: 2, Payload: []byte("after the kick")}).Append(b)
	b = (&proto.Send{ClientMsgID: 2, To: 2, Payload: []byte("after the kick")}).Append(b)
	a.WriteRaw(b)
	expectKick(t, a, proto.ReasonProtocol, proto.CodeMalformed)
	recipient, ok := g.login(t, 2)
	if ok.LastSeq != 0 {
		t.Fatalf("recipient's head = %d: a SEND behind the KICK was stored", ok.LastSeq)
	}
	recipient.Ping(1)
	if f := next(t, recipient); f.Type != proto.TypePong {
		t.Fatalf("got %v, want PONG (no PUSH)", f.Type)
	}
}

// A SEND flood within the frame burst: the SEND burst is stored, the rest is
// answered RATE_LIMITED (not stored), and the connection stays: SEND-rate refusals
// never kick (a client flushing its queue refills its window before its first
// RATE_LIMITED arrives).
func TestSendFloodIsRateLimitedNotKicked(t *testing.T) {
	store := msg.NewMemory(1000)
	rates := node.DefaultRates()
	g := startGateway(t, func(c *node.Config) { c.Backend = node.NewLocal(store); c.Rates = &rates })
	a, _ := g.login(t, 1)
	const n = 500 // two windows' worth and under the frame burst: only the SEND rate refuses
	var b []byte
	for i := 1; i <= n; i++ {
		b = (&proto.Send{ClientMsgID: uint64(i), To: 2, Payload: []byte("x")}).Append(b)
	}
	b = (&proto.Ping{TS: 42}).Append(b)
	a.WriteRaw(b)
	acked, limited := 0, 0
	for acked+limited < n {
		f := next(t, a)
		var se *client.ServerError
		switch err := client.AsError(f); {
		case f.Type == proto.TypeSendAck:
			acked++
		case errors.As(err, &se) && se.Code == proto.CodeRateLimited:
			limited++
		case f.Type == proto.TypePong:
		default:
			t.Fatalf("after %d acks and %d refusals: got %v", acked, limited, err)
		}
	}
	// The burst passes (plus what the rate refilled meanwhile).
	if acked < rates.SendBurst || acked > rates.SendBurst+20 {
		t.Fatalf("acked %d, limited %d; want ~%d acked", acked, limited, rates.SendBurst)
	}
	if v := testutil.ToFloat64(metric(t, g.reg, "floodgate_gateway_rate_limited_total", "SEND")); v != float64(limited) {
		t.Fatalf("rate_limited{SEND} = %v, want %d", v, limited)
	}
	a.WriteRaw((&proto.Ping{TS: 43}).Append(nil))
	for f := next(t, a); f.Type != proto.TypePong || !bytes.Contains(f.Body, []byte{43}); f = next(t, a) {
	}
	if v := testutil.ToFloat64(metric(t, g.reg, "floodgate_gateway_limit_closes_total", "rate_exceeded")); v != 0 {
		t.Fatalf("limit_closes{rate_exceeded} = %v, want 0", v)
	}
	recipient, ok := g.login(t, 2)
	if int(ok.LastSeq) != acked {
		t.Fatalf("stored %d, want the %d acknowledged", ok.LastSeq, acked)
	}
	recipient.Close()
}

// A flood of frames over the per-connection frame rate: the burst is handled, the
// rest dropped (PING gets no PONG), and persistent refusals kick RATE_EXCEEDED; a
// SEND over the frame rate is answered RATE_LIMITED, a SYNC RATE_LIMITED ref 0.
func TestFrameFloodIsRateLimitedThenKicked(t *testing.T) {
	rates := node.Rates{FramesPerSec: 1, FrameBurst: 10, MaxRefusals: 5, RefusalWindow: time.Minute}
	g := startGateway(t, func(c *node.Config) { c.Rates = &rates })
	a, _ := g.login(t, 1)
	var b []byte
	for i := range 10 {
		b = (&proto.Ping{TS: int64(i)}).Append(b)
	}
	b = (&proto.Send{ClientMsgID: 77, To: 2, Payload: []byte("x")}).Append(b)
	b = (&proto.Sync{}).Append(b)
	for i := range 100 {
		b = (&proto.Ping{TS: int64(i)}).Append(b)
	}
	a.WriteRaw(b)
	pongs := 0
	for range 10 {
		if f := next(t, a); f.Type == proto.TypePong {
			pongs++
		}
	}
	var se *client.ServerError
	if err := client.AsError(next(t, a)); !errors.As(err, &se) || se.Code != proto.CodeRateLimited || se.Ref != 77 {
		t.Fatalf("SEND over the frame rate: got %v, want ERROR RATE_LIMITED ref 77", err)
	}
	if err := client.AsError(next(t, a)); !errors.As(err, &se) || se.Code != proto.CodeRateLimited || se.Ref != 0 {
		t.Fatalf("SYNC over the frame rate: got %v, want ERROR RATE_LIMITED ref 0", err)
	}
	k := expectKick(t, a, proto.ReasonPolicy, proto.CodeRateExceeded)
	if pongs != 10 || k.RetryAfterMS == 0 {
		t.Fatalf("pongs %d (want 10), retry %d", pongs, k.RetryAfterMS)
	}
	if v := testutil.ToFloat64(metric(t, g.reg, "floodgate_gateway_rate_limited_total", "PING")); v != 4 {
		t.Fatalf("rate_limited{PING} = %v, want 4 (with the SEND and the SYNC: 6 refusals)", v)
	}

	// The flooder, back at once (once its session is gone), is refused at LOGIN
	// until its hint's earliest end, with a hint covering what is left; other
	// users are not.
	waitNode(t, "the kicked session gone", func() bool { return g.Sessions() == 0 })
	again := g.dial(t)
	var kick *client.KickError
	if _, err := again.Login(1, g.signer.Mint(1, time.Now().Add(time.Hour))); !errors.As(err, &kick) ||
		kick.Reason != proto.ReasonPolicy || kick.Code != proto.CodeRateExceeded || kick.RetryAfterMS < 5_000 {
		t.Fatalf("the flooder's next LOGIN: %v, want KICK POLICY RATE_EXCEEDED with a hint of several seconds", err)
	}
	if v := testutil.ToFloat64(metric(t, g.reg, "floodgate_gateway_logins_total", "penalized")); v != 1 {
		t.Fatalf("logins{penalized} = %v, want 1", v)
	}
	other, _ := g.login(t, 3)
	other.Close()
}

// A flood of PUSH_ACKs over the frame rate is dropped without counting towards
// the kick: a recipient acks as fast as it is pushed to.
func TestPushAckRefusalsNeverKick(t *testing.T) {
	rates := node.Rates{FramesPerSec: 1, FrameBurst: 5, MaxRefusals: 3, RefusalWindow: time.Minute}
	g := startGateway(t, func(c *node.Config) { c.Rates = &rates })
	a, _ := g.login(t, 1)
	var b []byte
	for range 50 {
		b = (&proto.PushAck{Seq: 0}).Append(b)
	}
	a.WriteRaw(b)
	waitNode(t, "45 PUSH_ACKs refused", func() bool {
		return testutil.ToFloat64(metric(t, g.reg, "floodgate_gateway_rate_limited_total", "PUSH_ACK")) == 45
	})
	// Still open, and a counted refusal is still judged: three more frames are
	// refused (SYNC answered RATE_LIMITED), the fourth kicks.
	a.WriteRaw(append(append(append((&proto.Sync{}).Append(nil), (&proto.Sync{}).Append(nil)...),
		(&proto.Sync{}).Append(nil)...), (&proto.Sync{}).Append(nil)...))
	expectKick(t, a, proto.ReasonPolicy, proto.CodeRateExceeded)
}

// With a per-address cap, the connection over it gets KICK
// POLICY/TOO_MANY_CONNECTIONS and is counted.
func TestConnectionsPerAddressCap(t *testing.T) {
	g := startGateway(t, func(c *node.Config) { c.Reactor.MaxConnsPerAddr = 1 })
	g.login(t, 1)
	over := g.dial(t)
	k := expectKick(t, over, proto.ReasonPolicy, proto.CodeTooManyConnections)
	if k.RetryAfterMS == 0 {
		t.Fatal("no retry hint")
	}
	if v := testutil.ToFloat64(metric(t, g.reg, "floodgate_reactor_rejected_total", "addr_limit")); v != 1 {
		t.Fatalf("rejected{addr_limit} = %v, want 1", v)
	}
	if v := testutil.ToFloat64(metric(t, g.reg, "floodgate_gateway_limit_closes_total", "too_many_connections")); v != 1 {
		t.Fatalf("limit_closes{too_many_connections} = %v, want 1", v)
	}
}

// A byte burst that cannot hold a max_frame frame is a configuration error.
func TestByteBurstMustHoldAMaxFrame(t *testing.T) {
	signer, _ := proto.NewSigner(secret)
	_, err := node.New(node.Config{
		Reactor: reactor.Config{Addr: "127.0.0.1:0"}, Signer: signer, Backend: node.NewLocal(msg.NewMemory(1)),
		Rates: &node.Rates{BytesPerSec: 1000, ByteBurst: 1000},
	})
	if err == nil {
		t.Fatal("accepted a byte burst smaller than max_frame")
	}
}

// The login deadline is met when the LOGIN arrives: a LOGIN the backend takes
// longer than the deadline to register still gets its LOGIN_OK.
func TestSlowLoginIsNotALoginTimeout(t *testing.T) {
	const deadline = 200 * time.Millisecond
	release := make(chan struct{})
	g := startGateway(t, func(c *node.Config) {
		c.LoginTimeout = deadline
		c.Backend = &stallingLogins{Local: node.NewLocal(msg.NewMemory(16)), release: release}
	})
	c := g.dial(t)
	c.WriteRaw((&proto.Login{Version: proto.Version, UID: 3, Token: g.signer.Mint(3, time.Now().Add(time.Hour))}).Append(nil))
	// Wait past the deadline (observably: the wheel has closed a silent one).
	silent := g.dial(t)
	expectKick(t, silent, proto.ReasonIdle, proto.CodeLoginTimeout)
	close(release)
	if f := next(t, c); f.Type != proto.TypeLoginOK {
		t.Fatalf("slow login: got %v, want LOGIN_OK", client.AsError(f))
	}
}
