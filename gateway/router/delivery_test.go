package router

// End-to-end delivery through faults: a real msg server and router, a fake gateway
// and the state service's memory store. Every test breaks one hop, heals it, and
// checks that every stored message reaches the gateway within 2s of the heal.

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/floodgate/floodgate/internal/redistest"
	"github.com/floodgate/floodgate/internal/testnet"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// healBound is how soon after a fault heals every pending message must have reached
// its online recipient.
const healBound = 2 * time.Second

// rig is a state store with one gateway lease, and a fake gateway holding users.
type rig struct {
	t     *testing.T
	st    *state.Memory
	gw    *fakeGateway
	epoch uint64
}

func newRig(t *testing.T, users ...uint64) *rig {
	t.Helper()
	g := &rig{t: t, st: state.NewMemory(state.MemoryConfig{}), gw: startFakeGateway(t, "gw-a")}
	epoch, err := g.st.Acquire(context.Background(), state.Gateway{ID: "gw-a", LinkAddr: g.gw.srv.Addr()}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	g.epoch = epoch
	g.online(users...)
	return g
}

// online registers sessions for users on the gateway.
func (g *rig) online(users ...uint64) {
	g.t.Helper()
	for _, uid := range users {
		if _, err := g.st.Register(context.Background(), state.Session{UID: uid, Gateway: "gw-a", Conn: uid, Epoch: g.epoch}); err != nil {
			g.t.Fatal(err)
		}
		g.gw.move(uid, true)
	}
}

// startRouter runs a router on addr, fed the gateway table, until the test ends or
// stop is called (stop returns once Serve has).
func (g *rig) startRouter(addr string, lookup Lookup) (r *Router, reg *prometheus.Registry, stop func()) {
	g.t.Helper()
	reg = prometheus.NewRegistry()
	r, err := New(Config{Addr: addr, Secret: secret, State: lookup, Registry: reg, Logger: quiet()})
	if err != nil {
		g.t.Fatal(err)
	}
	table, err := g.st.Gateways(context.Background())
	if err != nil {
		g.t.Fatal(err)
	}
	r.SetGateways(table)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Serve(ctx); close(done) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	g.t.Cleanup(stop)
	return r, reg, stop
}

// startMsg runs a msg server on store, delivering through the router at routerAddr
// with the production defaults, until the test ends or stop is called.
func startMsg(t *testing.T, store msg.Store, routerAddr string) (s *msg.Server, reg *prometheus.Registry, stop func()) {
	t.Helper()
	reg = prometheus.NewRegistry()
	s, err := msg.NewServer(msg.ServerConfig{Addr: "127.0.0.1:0", Secret: secret, Store: store, Router: routerAddr,
		Registry: reg, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return s, reg, stop
}

func dialMsg(t *testing.T, addr string) *msg.Client {
	t.Helper()
	c, err := msg.Dial(msg.ClientConfig{Addr: addr, Secret: secret, Logger: quiet(),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// appendOne stores one message to `to` and returns its id.
func appendOne(t *testing.T, c *msg.Client, to uint64) uint64 {
	t.Helper()
	m := msg.Message{From: 1000, To: to, Payload: []byte("hello")}
	if err := c.Append(context.Background(), &m); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// waitDelivered waits until every id in ids reached the gateway, failing the test
// if that is more than within after since; it returns how long after since it was.
func (g *fakeGateway) waitDelivered(t *testing.T, ids []uint64, since time.Time, within time.Duration) time.Duration {
	t.Helper()
	for {
		g.mu.Lock()
		missing := 0
		for _, id := range ids {
			if g.ids[id] == 0 {
				missing++
			}
		}
		g.mu.Unlock()
		if missing == 0 {
			return time.Since(since)
		}
		if time.Since(since) > within {
			t.Fatalf("%d of %d messages not delivered %v after the heal", missing, len(ids), within)
		}
		time.Sleep(time.Millisecond)
	}
}

// blockingLookup holds every state lookup while blocked.
type blockingLookup struct {
	st      Lookup
	blocked atomic.Pointer[chan struct{}]
	waiting atomic.Int64
}

func (b *blockingLookup) Lookup(ctx context.Context, uid uint64) (state.Session, bool, error) {
	if ch := b.blocked.Load(); ch != nil {
		b.waiting.Add(1)
		defer b.waiting.Add(-1)
		select {
		case <-*ch:
		case <-ctx.Done():
			return state.Session{}, false, ctx.Err()
		}
	}
	return b.st.Lookup(ctx, uid)
}

// The router is killed with messages in flight (their lookups under way), more are
// stored while it is down, and it is restarted on the same address: every stored
// message reaches the gateway within 2s of the restart, because msg replays every
// message the router had not settled when its link comes back.
func TestRouterRestartLosesNothing(t *testing.T) {
	g := newRig(t, 1, 2, 3, 4, 5)
	lookup := &blockingLookup{st: g.st}
	r1, _, stopR1 := g.startRouter("127.0.0.1:0", lookup)
	routerAddr := r1.Addr()
	ms, mreg, _ := startMsg(t, msg.NewMemory(1024), routerAddr)
	waitCounter(t, "router connected", gaugeOf(mreg, "floodgate_msg_router_connected"), func(v float64) bool { return v == 1 })
	c := dialMsg(t, ms.Addr())

	var ids []uint64
	for i := range 10 { // delivered: the routes of 1..5 are cached now
		ids = append(ids, appendOne(t, c, uint64(1+i%5)))
	}
	g.gw.waitDelivered(t, ids, time.Now(), 5*time.Second)

	g.online(6, 7, 8, 9, 10) // not cached: these wait for lookups, which hang
	hang := make(chan struct{})
	lookup.blocked.Store(&hang)
	for uid := uint64(6); uid <= 10; uid++ {
		ids = append(ids, appendOne(t, c, uid))
	}
	waitCounter(t, "lookups hanging", gaugeFunc(func() float64 { return float64(lookup.waiting.Load()) }),
		func(v float64) bool { return v == 5 })
	stopR1() // killed with 5 messages in flight
	lookup.blocked.Store(nil)
	close(hang)

	// Down for 1.5s, storing all along: long enough for msg's reconnect attempts to
	// back off to their longest pause.
	down := time.Now()
	for i := 0; i < 100 && time.Since(down) < 1500*time.Millisecond; i++ {
		ids = append(ids, appendOne(t, c, uint64(1+i%10)))
		time.Sleep(50 * time.Millisecond) // the fault's duration, not synchronisation
	}
	restarted := time.Now()
	_, rreg, _ := g.startRouter(routerAddr, g.st)
	took := g.gw.waitDelivered(t, ids, restarted, healBound)
	t.Logf("%d messages: all delivered %v after the router restart (down %v; bound %v); msg replays %v, redeliveries %v; router deduplicated %v",
		len(ids), took.Round(time.Millisecond), restarted.Sub(down).Round(time.Millisecond), healBound,
		metricOf(t, mreg, "floodgate_msg_replays_total"), metricOf(t, mreg, "floodgate_msg_redeliveries_total"),
		metricOf(t, rreg, "floodgate_router_deduplicated_total"))
	waitCounter(t, "pending", gaugeOf(mreg, "floodgate_msg_pending_messages"), func(v float64) bool { return v == 0 })
}

// frozenStore blocks every call while frozen (a paused msg process, as far as its
// store is concerned), until released or the call's context ends.
type frozenStore struct {
	msg.Store
	frozen  atomic.Pointer[chan struct{}]
	blocked atomic.Int64 // calls waiting now
}

func (f *frozenStore) wait(ctx context.Context) error {
	ch := f.frozen.Load()
	if ch == nil {
		return nil
	}
	f.blocked.Add(1)
	defer f.blocked.Add(-1)
	select {
	case <-*ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *frozenStore) Append(ctx context.Context, m *msg.Message) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	return f.Store.Append(ctx, m)
}

func (f *frozenStore) Ack(ctx context.Context, uid, seq, epoch uint64) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	return f.Store.Ack(ctx, uid, seq, epoch)
}

func (f *frozenStore) Range(ctx context.Context, uid, after uint64, limit int) ([]msg.Message, msg.Window, error) {
	if err := f.wait(ctx); err != nil {
		return nil, msg.Window{}, err
	}
	return f.Store.Range(ctx, uid, after, limit)
}

func (f *frozenStore) Window(ctx context.Context, uid uint64) (msg.Window, error) {
	if err := f.wait(ctx); err != nil {
		return msg.Window{}, err
	}
	return f.Store.Window(ctx, uid)
}

// msg freezes (every store call blocks) while senders keep sending: their appends
// time out and are retried with the same client message id, as a gateway does.
// Once released, every message is stored exactly once and reaches the gateway
// within 2s.
func TestMsgFreezeDeliversSoonAfterRelease(t *testing.T) {
	const users, senders = 5, 10
	g := newRig(t, 1, 2, 3, 4, 5)
	r, _, _ := g.startRouter("127.0.0.1:0", g.st)
	store := &frozenStore{Store: msg.NewMemory(1024)}
	ms, mreg, _ := startMsg(t, store, r.Addr())
	waitCounter(t, "router connected", gaugeOf(mreg, "floodgate_msg_router_connected"), func(v float64) bool { return v == 1 })
	c := dialMsg(t, ms.Addr())
	var ids []uint64
	for uid := uint64(1); uid <= users; uid++ {
		ids = append(ids, appendOne(t, c, uid))
	}
	g.gw.waitDelivered(t, ids, time.Now(), 5*time.Second)

	thaw := make(chan struct{})
	store.frozen.Store(&thaw)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		attempts atomic.Int64
	)
	for i := range senders {
		wg.Go(func() {
			m := msg.Message{From: 2000, To: uint64(1 + i%users), ClientMsgID: uint64(100 + i), Payload: []byte("frozen")}
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) { // a gateway's retries of an unknown outcome
				attempts.Add(1)
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				err := c.Append(ctx, &m)
				cancel()
				if err == nil {
					mu.Lock()
					ids = append(ids, m.ID)
					mu.Unlock()
					return
				}
			}
			t.Errorf("sender %d never stored its message", i)
		})
	}
	waitCounter(t, "append attempts", gaugeFunc(func() float64 { return float64(attempts.Load()) }),
		func(v float64) bool { return v >= 2*senders }) // every sender has retried at least once
	released := time.Now()
	store.frozen.Store(nil)
	close(thaw)
	wg.Wait()
	took := g.gw.waitDelivered(t, ids, released, healBound)
	t.Logf("%d appends attempted during the freeze; all delivered %v after the release", attempts.Load(), took.Round(time.Millisecond))
	var heads uint64
	for uid := uint64(1); uid <= users; uid++ {
		w, err := store.Window(context.Background(), uid)
		if err != nil {
			t.Fatal(err)
		}
		heads += w.Head
	}
	if heads != users+senders {
		t.Fatalf("%d messages stored, want %d: a retried append was stored twice", heads, users+senders)
	}
}

// msg is restarted on Redis while holding messages the router never settled (it
// was down): the new process routes them once the router is up, within 2s.
func TestMsgRestartOnRedisDeliversUnsettled(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(t).Addr})
	t.Cleanup(func() { rdb.Close() })
	g := newRig(t, 1, 2, 3, 4, 5)
	routerAddr := testnet.FreeAddr(t) // the router is down
	first, _, stopFirst := startMsg(t, newRedisStore(t, rdb, "restart:"), routerAddr)
	c := dialMsg(t, first.Addr())
	var ids []uint64
	for i := range 10 {
		ids = append(ids, appendOne(t, c, uint64(1+i%5)))
	}
	stopFirst()

	_, mreg, _ := startMsg(t, newRedisStore(t, rdb, "restart:"), routerAddr)
	up := time.Now()
	g.startRouter(routerAddr, g.st)
	took := g.gw.waitDelivered(t, ids, up, healBound)
	t.Logf("all %d delivered %v after the router came up; msg replays %v",
		len(ids), took.Round(time.Millisecond), metricOf(t, mreg, "floodgate_msg_replays_total"))
}

// gaugeOf reads the unlabelled metric name from reg, as a collector for waitCounter.
func gaugeOf(reg *prometheus.Registry, name string) prometheus.Collector {
	return gaugeFunc(func() float64 {
		v, _ := metricValueOf(reg, name)
		return v
	})
}

func gaugeFunc(f func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "test_value", Help: "a value a test waits on"}, f)
}

// metricOf returns the unlabelled counter or gauge name from reg.
func metricOf(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	v, err := metricValueOf(reg, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func metricValueOf(reg *prometheus.Registry, name string) (float64, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), nil
		case m.Gauge != nil:
			return m.Gauge.GetValue(), nil
		}
	}
	return -1, nil
}

// newRedisStore returns a msg store on rdb under prefix, failing the test if
// NewRedis refuses it.
func newRedisStore(t *testing.T, rdb redis.UniversalClient, prefix string) *msg.Redis {
	t.Helper()
	s, err := msg.NewRedis(rdb, prefix, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
