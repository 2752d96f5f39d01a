package msg_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/internal/promtest"
	"github.com/prometheus/client_golang/prometheus"
)

// routerStub is a link server standing in for the router: it records the route
// notifications it gets and settles messages when the test says.
type routerStub struct {
	srv  *link.Server
	stop func()
	mu   sync.Mutex
	got  []msg.Message
	peer *link.Peer // the msg server that sent the latest notification
}

// startRouterStub listens on addr ("127.0.0.1:0" for any port) until the test ends
// or stop is called.
func startRouterStub(t *testing.T, addr string) *routerStub {
	t.Helper()
	r := &routerStub{}
	srv, err := link.Listen(link.ServerConfig{Addr: addr, Secret: testSecret, Logger: quiet(),
		Handler: func(_ context.Context, req *link.Request) ([]byte, error) {
			if req.Method != msg.RouteMethod || !req.OneWay {
				t.Errorf("router stub got method %d, one-way %v", req.Method, req.OneWay)
				return nil, nil
			}
			m, err := msg.DecodeMessage(bytes.Clone(req.Body))
			if err != nil {
				t.Errorf("router stub: %v", err)
				return nil, nil
			}
			r.mu.Lock()
			r.got, r.peer = append(r.got, m), req.Peer
			r.mu.Unlock()
			return nil, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	r.srv, r.stop = srv, sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(r.stop)
	return r
}

// waitRouted waits until the stub got at least n notifications and returns them.
func (r *routerStub) waitRouted(t *testing.T, n int) []msg.Message {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		got := append([]msg.Message(nil), r.got...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the router got %d route notifications, want %d", len(got), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// settle tells the msg server that sent the latest notification that ms are done.
func (r *routerStub) settle(t *testing.T, ms ...msg.Message) {
	t.Helper()
	var b []byte
	for _, m := range ms {
		b = msg.AppendSettle(b, msg.Settle{UID: m.To, Seq: m.Seq, ID: m.ID})
	}
	r.mu.Lock()
	p := r.peer
	r.mu.Unlock()
	if err := p.Notify(msg.SettleMethod, b); err != nil {
		t.Fatal(err)
	}
}

// waitMetric waits until reg's metric (no labels) reads want.
func waitMetric(t *testing.T, reg *prometheus.Registry, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for got := promtest.Value(t, reg, name); got != want; got = promtest.Value(t, reg, name) {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// startRoutingServer starts a msg server on a memory store that delivers to the
// router at routerAddr; it waits until the link to the router is up if wait.
func startRoutingServer(t *testing.T, routerAddr string, d msg.DeliveryConfig, wait bool) (*msg.Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, _ := startServer(t, msg.ServerConfig{Store: msg.NewMemory(100), Router: routerAddr, Delivery: d, Registry: reg})
	if wait {
		waitMetric(t, reg, "floodgate_msg_router_connected", 1)
	}
	return s, reg
}

// Every stored message reaches the router with its seq, epoch and id, is tracked
// from before the sender's Append returns, is sent again while unsettled, and is
// done with once the router settles it or the recipient acknowledges it.
func TestServerRoutesEveryMessageUntilSettled(t *testing.T) {
	ctx := context.Background()
	rs := startRouterStub(t, "127.0.0.1:0")
	s, reg := startRoutingServer(t, rs.srv.Addr(), msg.DeliveryConfig{ResendMin: 50 * time.Millisecond, ResendMax: 100 * time.Millisecond}, true)
	c := dial(t, s.Addr())
	var sent []msg.Message
	for i, to := range []uint64{1, 1, 2} {
		m := msg.Message{From: 9, To: to, ClientTS: int64(i), Payload: []byte{byte(i)}}
		if err := c.Append(ctx, &m); err != nil {
			t.Fatal(err)
		}
		if got := promtest.Value(t, reg, "floodgate_msg_pending_messages"); got != float64(i+1) {
			t.Fatalf("after Append %d returned: %v pending, want %d", i, got, i+1)
		}
		sent = append(sent, m)
	}
	got := rs.waitRouted(t, 3)
	for _, want := range sent {
		found := false
		for _, g := range got[:3] {
			found = found || (g.Seq == want.Seq && g.Epoch == want.Epoch && g.ID == want.ID && g.To == want.To &&
				g.From == want.From && g.ClientTS == want.ClientTS && bytes.Equal(g.Payload, want.Payload))
		}
		if !found {
			t.Fatalf("the router never got %+v; it got %+v", want, got)
		}
	}
	rs.settle(t, sent[0], sent[1])
	waitMetric(t, reg, "floodgate_msg_pending_messages", 1)
	rs.waitRouted(t, 4) // the unsettled third, resent
	for _, g := range rs.waitRouted(t, 4)[3:] {
		if g.ID != sent[2].ID {
			t.Fatalf("resent %+v, which was settled", g)
		}
	}
	if got := promtest.Value(t, reg, "floodgate_msg_redeliveries_total"); got < 1 {
		t.Fatalf("redeliveries %v, want at least 1", got)
	}
	rs.settle(t, sent[2])
	waitMetric(t, reg, "floodgate_msg_pending_messages", 0)

	acked := msg.Message{From: 9, To: 3}
	if err := c.Append(ctx, &acked); err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(ctx, 3, acked.Seq, acked.Epoch); err != nil {
		t.Fatal(err)
	}
	if got := promtest.Value(t, reg, "floodgate_msg_pending_messages"); got != 0 {
		t.Fatalf("%v pending after the recipient acknowledged its message", got)
	}
}

// Messages unsettled when the router link broke, and those stored while it was
// down, are all sent to the router as soon as it is back.
func TestServerReplaysWhenTheRouterComesBack(t *testing.T) {
	ctx := context.Background()
	rs := startRouterStub(t, "127.0.0.1:0")
	addr := rs.srv.Addr()
	s, reg := startRoutingServer(t, addr, msg.DeliveryConfig{ResendMin: time.Hour, ReconnectMax: 20 * time.Millisecond}, true)
	c := dial(t, s.Addr())
	ids := map[uint64]bool{}
	appendTo := func(to uint64) {
		m := msg.Message{From: 1, To: to}
		if err := c.Append(ctx, &m); err != nil {
			t.Fatal(err)
		}
		ids[m.ID] = true
	}
	appendTo(1)
	appendTo(2)
	rs.waitRouted(t, 2)
	rs.stop()
	waitMetric(t, reg, "floodgate_msg_router_connected", 0)
	appendTo(1)
	appendTo(3)
	back := startRouterStub(t, addr)
	got := back.waitRouted(t, 4)
	for _, m := range got {
		delete(ids, m.ID)
	}
	if len(ids) != 0 {
		t.Fatalf("messages %v were not replayed; the router got %+v", ids, got)
	}
	if got := promtest.Value(t, reg, "floodgate_msg_replays_total"); got < 4 {
		t.Fatalf("replays %v, want at least 4", got)
	}
}

// A deduplicated Append tracks and routes its message again: the first one's
// routing may have been lost with the sender's connection.
func TestServerRoutesDeduplicatedAppendsAgain(t *testing.T) {
	ctx := context.Background()
	rs := startRouterStub(t, "127.0.0.1:0")
	s, reg := startRoutingServer(t, rs.srv.Addr(), msg.DeliveryConfig{ResendMin: time.Hour}, true)
	c := dial(t, s.Addr())
	m := msg.Message{From: 1, To: 2, ClientMsgID: 42}
	if err := c.Append(ctx, &m); err != nil {
		t.Fatal(err)
	}
	rs.settle(t, rs.waitRouted(t, 1)[0])
	waitMetric(t, reg, "floodgate_msg_pending_messages", 0)
	retry := msg.Message{From: 1, To: 2, ClientMsgID: 42}
	if err := c.Append(ctx, &retry); err != nil {
		t.Fatal(err)
	}
	if again := rs.waitRouted(t, 2)[1]; again.ID != m.ID || again.Seq != m.Seq {
		t.Fatalf("routed %+v again, want the first append's message %+v", again, m)
	}
	if got := promtest.Value(t, reg, "floodgate_msg_pending_messages"); got != 1 {
		t.Fatalf("%v pending, want the deduplicated message tracked again", got)
	}
}

// A msg server starting on a Redis store takes over the messages a previous one
// stored but never saw settled (the router was down), routes them once the router
// is up, and unmarks every user it is done with, those without retained messages
// included.
func TestServerOnRedisTakesOverUnsettledMessages(t *testing.T) {
	ctx := context.Background()
	_, rdb := startRedis(t)
	gone := startRouterStub(t, "127.0.0.1:0")
	routerAddr := gone.srv.Addr()
	gone.stop() // the router is down while the first server stores
	d := msg.DeliveryConfig{ReconnectMax: 20 * time.Millisecond, UnmarkInterval: 20 * time.Millisecond, ResendMin: time.Hour}
	store := newRedis(t, rdb, "takeover:", 100)
	first, stopFirst := startServer(t, msg.ServerConfig{Store: store, Router: routerAddr, Delivery: d})
	c := dial(t, first.Addr())
	ids := map[uint64]bool{}
	for i := range 5 {
		m := msg.Message{From: 9, To: uint64(1 + i%3), Payload: []byte{byte(i)}}
		if err := c.Append(ctx, &m); err != nil {
			t.Fatal(err)
		}
		ids[m.ID] = true
	}
	acked := msg.Message{From: 9, To: 5} // marked, but acknowledged behind the tracker's back
	if err := store.Append(ctx, &acked); err != nil {
		t.Fatal(err)
	}
	if err := store.Ack(ctx, 5, acked.Seq, acked.Epoch); err != nil {
		t.Fatal(err)
	}
	stopFirst()
	if got := pendingUsers(t, store); !slices.Equal(got, []uint64{1, 2, 3, 5}) {
		t.Fatalf("pending after the first server: %v, want 1, 2, 3, 5", got)
	}

	rs := startRouterStub(t, routerAddr)
	reg := prometheus.NewRegistry()
	startServer(t, msg.ServerConfig{Store: newRedis(t, rdb, "takeover:", 100), Router: routerAddr, Delivery: d, Registry: reg})
	got := rs.waitRouted(t, 5)
	for _, m := range got {
		delete(ids, m.ID)
	}
	if len(ids) != 0 {
		t.Fatalf("messages %v were not routed after the restart; the router got %+v", ids, got)
	}
	if r := promtest.Value(t, reg, "floodgate_msg_replays_total"); r < 5 {
		t.Fatalf("replays %v, want at least 5", r)
	}
	rs.settle(t, got...)
	deadline := time.Now().Add(5 * time.Second)
	for len(pendingUsers(t, store)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("pending %v after every message was settled", pendingUsers(t, store))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
