package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fill appends n messages of size bytes each to uid's inbox in store, from uid 9.
func fill(t *testing.T, store msg.Store, uid uint64, n, size int) msg.Message {
	t.Helper()
	var m msg.Message
	for i := 1; i <= n; i++ {
		p := bytes.Repeat([]byte{byte(i)}, size)
		m = msg.Message{From: 9, To: uid, ClientTS: int64(i), Payload: p}
		if err := store.Append(context.Background(), &m); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// A client that SYNCs a backlog of 256 messages of 64 KiB and reads as fast as it
// can gets all of them, in order, and is never kicked: each SYNC reply is paced by
// the connection's output room (before, one reply of 16 MiB hit the 1 MiB hard cap
// and the server kicked the reader for its own replay).
func TestPromptReaderGetsABigBacklogWithoutAKick(t *testing.T) {
	store := msg.NewMemory(1024, msg.WithQuotaBytes(32<<20)) // a backlog of 16 MiB
	g := startGateway(t, func(c *node.Config) { c.Backend = node.NewLocal(store) })
	payload := proto.MaxPayload(proto.DefaultMaxFrame)
	fill(t, store, 7, 256, payload)
	c, ok := g.login(t, 7)
	if ok.LastSeq != 256 || ok.Oldest != 1 || ok.MaxPayload != uint32(payload) {
		t.Fatalf("LOGIN_OK %+v", ok)
	}
	var got []uint64
	syncs := 0
	for len(got) < 256 && syncs < 300 {
		syncs++
		after := uint64(len(got))
		if err := c.Sync(after, ok.Epoch, 0); err != nil {
			t.Fatal(err)
		}
		for {
			f := next(t, c)
			if f.Type == proto.TypeKick {
				t.Fatalf("kicked after %d of 256 messages: %v", len(got), client.AsError(f))
			}
			if f.Type == proto.TypeSyncEnd {
				var e proto.SyncEnd
				if err := e.Decode(f.Body); err != nil || e.Head != 256 || e.Epoch != ok.Epoch || e.UpTo != uint64(len(got)) {
					t.Fatalf("SYNC_END %+v (%v) after %d messages", e, err, len(got))
				}
				break
			}
			var p proto.Push
			if err := p.Decode(f.Body); err != nil || p.Seq != uint64(len(got)+1) || len(p.Payload) != payload || p.Epoch != ok.Epoch {
				t.Fatalf("push %+v (%v), want seq %d with %d bytes", p.Seq, err, len(got)+1, payload)
			}
			got = append(got, p.Seq)
		}
	}
	if len(got) != 256 {
		t.Fatalf("got %d of 256 messages in %d SYNCs", len(got), syncs)
	}
	if syncs < 2 {
		t.Errorf("one SYNC carried 16 MiB: the reply was not paced")
	}
}

// A reader that stops reading is kicked SLOW; when it reads at last it finds whole
// frames, then the KICK, then the end of the stream — never a torn PUSH.
func TestSlowReaderGetsWholeFramesThenKick(t *testing.T) {
	store := msg.NewMemory(1024)
	g := startGateway(t, func(c *node.Config) {
		c.Backend = node.NewLocal(store)
		c.Reactor.WriteHardCap = 128 << 10
		c.Reactor.WriteHighWater = 32 << 10
		c.Reactor.SocketSendBuffer = 16 << 10
		c.Reactor.Linger = 20 * time.Second
	})
	slow, _ := g.login(t, 7)
	slow.NetConn().(*net.TCPConn).SetReadBuffer(16 << 10)
	sender, _ := g.login(t, 8)
	payload := bytes.Repeat([]byte{'p'}, 20000) // frames that straddle socket-buffer boundaries
	kicked := false
	for i := 1; i <= 200 && !kicked; i++ {
		if err := sender.Send(uint64(i), 7, int64(i), payload); err != nil {
			t.Fatal(err)
		}
		if f := next(t, sender); f.Type != proto.TypeSendAck {
			t.Fatalf("send %d: %v", i, client.AsError(f))
		}
		kicked = testutil.ToFloat64(metric(t, g.reg, "floodgate_gateway_kicks_total", "SLOW")) > 0
	}
	if !kicked {
		t.Fatal("a reader that never reads was not kicked SLOW after 200 pushes of 20 KB")
	}
	// Now read everything: only whole, well-formed frames, ending with KICK SLOW.
	slow.NetConn().SetReadDeadline(time.Now().Add(20 * time.Second))
	seq := uint64(0)
	for {
		f, err := slow.Next()
		if err != nil {
			t.Fatalf("after %d pushes: %v (want whole frames, then KICK SLOW)", seq, err)
		}
		if f.Type == proto.TypeKick {
			var k *client.KickError
			if !errors.As(client.AsError(f), &k) || k.Reason != proto.ReasonSlow {
				t.Fatalf("got %v, want KICK SLOW", client.AsError(f))
			}
			break
		}
		var p proto.Push
		if f.Type != proto.TypePush || p.Decode(f.Body) != nil || p.Seq != seq+1 || !bytes.Equal(p.Payload, payload) {
			t.Fatalf("frame after push %d: %v seq %d, %d bytes", seq, f.Type, p.Seq, len(p.Payload))
		}
		seq = p.Seq
	}
	if _, err := slow.Next(); err != io.EOF {
		t.Fatalf("after the KICK: %v, want EOF", err)
	}
}

// An acknowledgement counted in another incarnation acknowledges nothing, and a SYNC
// from another incarnation replays this one from its start: a client still counting
// in a store that was lost must not ack away the new store's messages.
func TestAcksAndSyncsOfAnotherIncarnation(t *testing.T) {
	store := msg.NewMemory(1024)
	g := startGateway(t, func(c *node.Config) { c.Backend = node.NewLocal(store) })
	last := fill(t, store, 7, 3, 10)
	c, ok := g.login(t, 7)
	if ok.Epoch != last.Epoch || ok.LastSeq != 3 {
		t.Fatalf("LOGIN_OK %+v, want epoch %d head 3", ok, last.Epoch)
	}
	c.Ack(3, ok.Epoch+1) // an old client's ack of seq 3 in a lost incarnation
	c.Sync(2, ok.Epoch+1, 0)
	var seqs []uint64
	for {
		f := next(t, c)
		if f.Type == proto.TypeSyncEnd {
			var e proto.SyncEnd
			e.Decode(f.Body)
			if e.UpTo != 3 || e.Epoch != ok.Epoch || e.Oldest != 1 {
				t.Fatalf("SYNC_END %+v: want up_to 3, oldest 1 (nothing acked), epoch %d", e, ok.Epoch)
			}
			break
		}
		var p proto.Push
		p.Decode(f.Body)
		seqs = append(seqs, p.Seq)
	}
	if fmt.Sprint(seqs) != "[1 2 3]" {
		t.Fatalf("replayed %v, want [1 2 3] (from the start of this incarnation)", seqs)
	}
	// The right epoch acknowledges.
	c.Ack(2, ok.Epoch)
	c.Sync(0, ok.Epoch, 0)
	for f := next(t, c); f.Type != proto.TypeSyncEnd; f = next(t, c) {
		var p proto.Push
		if p.Decode(f.Body); p.Seq != 3 {
			t.Fatalf("after acking 2: replayed seq %d", p.Seq)
		}
	}
}

// LOGIN as uid 0 is refused: uid 0 is not a user (it can never receive).
func TestLoginAsUIDZeroIsRefused(t *testing.T) {
	g := startGateway(t, nil)
	c := g.dial(t)
	if _, err := c.Login(0, g.signer.Mint(0, time.Now().Add(time.Hour))); err == nil {
		t.Fatal("LOGIN as uid 0 accepted")
	} else if k, ok := errors.AsType[*client.KickError](err); !ok || k.Code != proto.CodeMalformed {
		t.Fatalf("LOGIN as uid 0: %v, want KICK PROTOCOL MALFORMED", err)
	}
}

// More than MaxUnansweredSends SENDs waiting for the store are refused with
// RATE_LIMITED (not stored), and each SEND is answered exactly once.
func TestUnansweredSendsAreCapped(t *testing.T) {
	release := make(chan struct{})
	g := startGateway(t, func(c *node.Config) {
		c.Backend = &stallingBackend{Local: node.NewLocal(msg.NewMemory(4096)), release: release}
		withoutRates(c) // the in-flight cap, not the rate, must refuse here
	})
	c, _ := g.login(t, 1)
	const n = node.MaxUnansweredSends + 10
	var batch []byte
	for i := 1; i <= n; i++ {
		m := proto.Send{ClientMsgID: uint64(i), To: 2, Payload: []byte("x")}
		batch = m.Append(batch)
	}
	if err := c.WriteRaw(batch); err != nil {
		t.Fatal(err)
	}
	limited := map[uint64]bool{}
	for len(limited) < n-node.MaxUnansweredSends {
		f := next(t, c)
		var e proto.Error
		if f.Type != proto.TypeError || e.Decode(f.Body) != nil || e.Code != proto.CodeRateLimited {
			t.Fatalf("got %v before the store answered anything", f.Type)
		}
		limited[e.Ref] = true
	}
	close(release)
	acked := map[uint64]bool{}
	for len(acked) < node.MaxUnansweredSends {
		f := next(t, c)
		var a proto.SendAck
		if f.Type != proto.TypeSendAck || a.Decode(f.Body) != nil || limited[a.ClientMsgID] || acked[a.ClientMsgID] {
			t.Fatalf("got %v %+v: want one SEND_ACK per SEND that was not refused", f.Type, a)
		}
		acked[a.ClientMsgID] = true
	}
}

// stallingBackend holds every Send until release is closed.
type stallingBackend struct {
	*node.Local
	release chan struct{}
}

func (b *stallingBackend) Send(from uint64, m *proto.Send, _ *msg.Trace, closed func() bool, done func(uint64, error)) {
	cp := *m
	cp.Payload = append([]byte(nil), m.Payload...)
	go func() {
		<-b.release
		b.Local.Send(from, &cp, nil, closed, done)
	}()
}

// Frames written behind LOGIN, before the client could have seen LOGIN_OK, are a
// violation (NOT_LOGGED_IN), even in the same write; the same frames after LOGIN_OK
// are served. (Before, LOGIN and PING in one write got LOGIN_OK, then PONG.)
func TestFramesPipelinedBehindLoginAreRefused(t *testing.T) {
	g := startGateway(t, nil)
	c := g.dial(t)
	login := proto.Login{Version: proto.Version, UID: 5, Token: g.signer.Mint(5, time.Now().Add(time.Hour))}
	ping := proto.Ping{TS: 1}
	if err := c.WriteRaw(ping.Append(login.Append(nil))); err != nil {
		t.Fatal(err)
	}
	if f := next(t, c); f.Type != proto.TypeLoginOK {
		t.Fatalf("got %v, want LOGIN_OK first", f.Type)
	}
	if f := next(t, c); f.Type != proto.TypeKick { // never a PONG
		t.Fatalf("got %v after LOGIN_OK, want the KICK", f.Type)
	}

	// The well-behaved client waits for LOGIN_OK.
	d, _ := g.login(t, 7)
	d.Ping(2)
	if f := next(t, d); f.Type != proto.TypePong {
		t.Fatalf("got %v, want PONG", f.Type)
	}
}

// When the workers are far behind, a new LOGIN is turned away at once with KICK
// BUSY and a retry hint, instead of waiting behind the others longer than its client
// would: load shedding, so that a slow backend cannot feed a login storm.
func TestLoginsAreShedWhileWorkersAreFarBehind(t *testing.T) {
	release := make(chan struct{})
	g := startGateway(t, func(c *node.Config) {
		c.Backend = &stallingLogins{Local: node.NewLocal(msg.NewMemory(16)), release: release}
		c.Reactor.Workers = 1
		c.MaxWaiting = 2
	})
	defer close(release)
	// One login occupies the only worker; three more wait for it.
	for uid := uint64(1); uid <= 4; uid++ {
		c := g.dial(t)
		c.WriteRaw((&proto.Login{Version: proto.Version, UID: uid, Token: g.signer.Mint(uid, time.Now().Add(time.Hour))}).Append(nil))
	}
	waitNode(t, "three logins waiting for the worker", func() bool { return g.Reactor().Stats().WorkerQueue == 3 })
	late := g.dial(t)
	_, err := late.Login(9, g.signer.Mint(9, time.Now().Add(time.Hour)))
	var k *client.KickError
	if !errors.As(err, &k) || k.Reason != proto.ReasonBusy || k.Code != proto.CodeServerFull || k.RetryAfterMS < 1000 {
		t.Fatalf("login while 3 wait (limit 2): %v, want KICK BUSY SERVER_FULL with a retry hint", err)
	}
}

// stallingLogins holds every Login until release is closed.
type stallingLogins struct {
	*node.Local
	release chan struct{}
}

func (b *stallingLogins) Login(ctx context.Context, s node.Session) (msg.Window, error) {
	<-b.release
	return b.Local.Login(ctx, s)
}

// waitNode polls cond until it holds, failing after 10s.
func waitNode(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
