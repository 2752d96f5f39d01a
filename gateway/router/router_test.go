package router

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/gateway/link"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var secret = []byte("router-test-secret-0123")

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// fakeState is a session table with an optional delay per lookup.
type fakeState struct {
	mu       sync.Mutex
	sessions map[uint64]state.Session
	delay    time.Duration
	lookups  atomic.Int64
	down     atomic.Bool // every lookup fails, as with the state service killed
}

func (f *fakeState) Lookup(_ context.Context, uid uint64) (state.Session, bool, error) {
	f.lookups.Add(1)
	if f.down.Load() {
		return state.Session{}, false, errors.New("state lookup: link: not connected")
	}
	time.Sleep(f.delay) // a slow state service; not synchronisation
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[uid]
	return s, ok, nil
}

func (f *fakeState) set(s state.Session) {
	f.mu.Lock()
	f.sessions[s.UID] = s
	f.mu.Unlock()
}

// fakeGateway is a link server answering pushes for the users it holds.
type fakeGateway struct {
	id    string
	srv   *link.Server
	mu    sync.Mutex
	users map[uint64]bool
	got   map[uint64][]uint64 // uid → seqs delivered, in order
	ids   map[uint64]int      // message id → deliveries
	cond  *sync.Cond
	stop  func()
	// hold, while set, is what every push waits on before it is answered (a frozen
	// gateway); pushes counts the pushes received.
	hold   atomic.Pointer[chan struct{}]
	pushes atomic.Int64
}

func startFakeGateway(t *testing.T, id string, users ...uint64) *fakeGateway {
	return startFakeGatewayAt(t, id, "127.0.0.1:0", users...)
}

// startFakeGatewayAt starts a fake gateway listening on addr.
func startFakeGatewayAt(t *testing.T, id, addr string, users ...uint64) *fakeGateway {
	t.Helper()
	g := &fakeGateway{id: id, users: map[uint64]bool{}, got: map[uint64][]uint64{}, ids: map[uint64]int{}}
	g.cond = sync.NewCond(&g.mu)
	for _, u := range users {
		g.users[u] = true
	}
	srv, err := link.Listen(link.ServerConfig{Addr: addr, Secret: secret, Logger: quiet(),
		Handler: func(_ context.Context, r *link.Request) ([]byte, error) {
			_, m, err := gwlink.DecodePush(r.Body)
			if err != nil {
				return nil, err
			}
			g.pushes.Add(1)
			if h := g.hold.Load(); h != nil {
				<-*h
			}
			g.mu.Lock()
			defer g.mu.Unlock()
			if !g.users[m.To] {
				return []byte{gwlink.PushNotHere}, nil
			}
			g.got[m.To] = append(g.got[m.To], m.Seq)
			g.ids[m.ID]++
			g.cond.Broadcast()
			return []byte{gwlink.PushDelivered}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	g.stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(g.stop)
	g.srv = srv
	return g
}

// freeze makes every push wait until the returned release is called.
func (g *fakeGateway) freeze() (release func()) {
	ch := make(chan struct{})
	g.hold.Store(&ch)
	return sync.OnceFunc(func() { g.hold.Store(nil); close(ch) })
}

// recipients returns the users something was delivered to here, in order.
func (g *fakeGateway) recipients() []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var uids []uint64
	for uid := range g.got {
		uids = append(uids, uid)
	}
	slices.Sort(uids)
	return uids
}

func (g *fakeGateway) table(epoch uint64) state.Gateway {
	return state.Gateway{ID: g.id, LinkAddr: g.srv.Addr(), Epoch: epoch, Expires: time.Now().Add(time.Hour)}
}

// waitSeqs waits until uid has n deliveries here and returns them.
func (g *fakeGateway) waitSeqs(t *testing.T, uid uint64, n int) []uint64 {
	t.Helper()
	done := make(chan struct{})
	timer := time.AfterFunc(10*time.Second, func() { g.mu.Lock(); close(done); g.cond.Broadcast(); g.mu.Unlock() })
	defer timer.Stop()
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.got[uid]) < n {
		select {
		case <-done:
			t.Fatalf("%s: %d of %d deliveries to %d", g.id, len(g.got[uid]), n, uid)
		default:
		}
		g.cond.Wait()
	}
	return append([]uint64(nil), g.got[uid]...)
}

func (g *fakeGateway) move(uid uint64, here bool) {
	g.mu.Lock()
	g.users[uid] = here
	g.mu.Unlock()
}

type fixture struct {
	r    *Router
	st   *fakeState
	reg  *prometheus.Registry
	feed *feed
}

// feed is a link client standing in for a msg server: it sends route
// notifications and records the settles it gets back.
type feed struct {
	c       *link.Client
	mu      sync.Mutex
	settled []msg.Settle
}

func dialFeed(t *testing.T, addr, name string) *feed {
	t.Helper()
	fd := &feed{}
	fd.c = link.Dial(link.ClientConfig{Addr: addr, Secret: secret, Name: name, Logger: quiet(),
		OnNotify: func(method uint16, body []byte) {
			if method != msg.SettleMethod {
				t.Errorf("the feed got notification %d", method)
				return
			}
			ss, err := msg.DecodeSettles(nil, body)
			if err != nil {
				t.Errorf("settle body: %v", err)
			}
			fd.mu.Lock()
			fd.settled = append(fd.settled, ss...)
			fd.mu.Unlock()
		}})
	t.Cleanup(fd.c.Close)
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := fd.c.WaitConnected(wctx); err != nil {
		t.Fatal(err)
	}
	return fd
}

// send notifies the router of message seq to `to` (id = seq).
func (fd *feed) send(t *testing.T, to, seq uint64) {
	t.Helper()
	m := msg.Message{Seq: seq, ID: seq, From: 1, To: to, Payload: []byte("x")}
	if err := fd.c.Notify(msg.RouteMethod, msg.AppendMessage(nil, &m)); err != nil {
		t.Fatal(err)
	}
}

// settles returns the settles received so far.
func (fd *feed) settles() []msg.Settle {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	return append([]msg.Settle(nil), fd.settled...)
}

// waitSettles waits until the feed got n settles and returns them.
func (fd *feed) waitSettles(t *testing.T, n int) []msg.Settle {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(fd.settles()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d settles, want %d", len(fd.settles()), n)
		}
		time.Sleep(time.Millisecond)
	}
	return fd.settles()
}

func startRouter(t *testing.T, st *fakeState, options ...func(*Config)) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := Config{Addr: "127.0.0.1:0", Secret: secret, State: st, Registry: reg, Logger: quiet()}
	for _, o := range options {
		o(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &fixture{r: r, st: st, reg: reg, feed: dialFeed(t, r.Addr(), "msg")}
}

func (f *fixture) send(t *testing.T, to, seq uint64) {
	t.Helper()
	f.feed.send(t, to, seq)
}

func (f *fixture) routed(result string) float64 { return testutil.ToFloat64(f.r.m.routed[result]) }

// waitRouted waits until the router has counted n outcomes of a kind (the count
// follows the gateway's answer, which the test's fake sees first).
func (f *fixture) waitRouted(t *testing.T, result string, n float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.routed(result) != n {
		if time.Now().After(deadline) {
			t.Fatalf("routed %s = %v, want %v", result, f.routed(result), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Messages reach the gateway holding each recipient, in order per recipient, with
// one state lookup per recipient however many messages queue behind it.
func TestRoutesToTheRightGatewayInOrder(t *testing.T) {
	a := startFakeGateway(t, "gw-a", 1, 2)
	b := startFakeGateway(t, "gw-b", 3)
	st := &fakeState{sessions: map[uint64]state.Session{}, delay: 20 * time.Millisecond}
	st.set(state.Session{UID: 1, Gateway: "gw-a", Conn: 10, Epoch: 7})
	st.set(state.Session{UID: 2, Gateway: "gw-a", Conn: 11, Epoch: 7})
	st.set(state.Session{UID: 3, Gateway: "gw-b", Conn: 12, Epoch: 4})
	f := startRouter(t, st)
	f.r.SetGateways([]state.Gateway{a.table(7), b.table(4)})

	const n = 500
	for seq := uint64(1); seq <= n; seq++ {
		for _, uid := range []uint64{1, 2, 3} {
			f.send(t, uid, seq)
		}
	}
	for _, c := range []struct {
		g   *fakeGateway
		uid uint64
	}{{a, 1}, {a, 2}, {b, 3}} {
		seqs := c.g.waitSeqs(t, c.uid, n)
		for i, s := range seqs {
			if s != uint64(i+1) {
				t.Fatalf("uid %d: delivery %d has seq %d (out of order)", c.uid, i, s)
			}
		}
	}
	if l := st.lookups.Load(); l != 3 {
		t.Errorf("%d state lookups for 3 recipients, want 3 (coalesced, then cached)", l)
	}
	f.waitRouted(t, "delivered", 3*n)
}

// A user who moved: the old gateway answers NOT_HERE, the router drops the stale
// route, looks the user up again and delivers to the new gateway.
func TestNotHereReroutesToWhereTheUserMoved(t *testing.T) {
	a := startFakeGateway(t, "gw-a", 1)
	b := startFakeGateway(t, "gw-b")
	st := &fakeState{sessions: map[uint64]state.Session{}}
	st.set(state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: 1})
	f := startRouter(t, st)
	f.r.SetGateways([]state.Gateway{a.table(1), b.table(1)})
	f.send(t, 1, 1)
	a.waitSeqs(t, 1, 1)

	a.move(1, false)
	b.move(1, true)
	st.set(state.Session{UID: 1, Gateway: "gw-b", Conn: 2, Epoch: 1})
	f.send(t, 1, 2)
	if got := b.waitSeqs(t, 1, 1); got[0] != 2 {
		t.Fatalf("gw-b got %v", got)
	}
	if v := testutil.ToFloat64(f.r.m.reroutes); v != 1 {
		t.Errorf("reroutes = %v, want 1", v)
	}
}

// A new epoch for a gateway (it restarted, or its lease was lost) invalidates every
// cached route through it at once: the next message is looked up again.
func TestEpochChangeInvalidatesCachedRoutes(t *testing.T) {
	a := startFakeGateway(t, "gw-a", 1)
	st := &fakeState{sessions: map[uint64]state.Session{}}
	st.set(state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: 1})
	f := startRouter(t, st)
	f.r.SetGateways([]state.Gateway{a.table(1)})
	f.send(t, 1, 1)
	a.waitSeqs(t, 1, 1)
	f.send(t, 1, 2)
	a.waitSeqs(t, 1, 2)
	if l := st.lookups.Load(); l != 1 {
		t.Fatalf("lookups %d before the epoch change, want 1", l)
	}
	st.set(state.Session{UID: 1, Gateway: "gw-a", Conn: 5, Epoch: 2})
	f.r.SetGateways([]state.Gateway{a.table(2)})
	f.send(t, 1, 3)
	a.waitSeqs(t, 1, 3)
	if l := st.lookups.Load(); l != 2 {
		t.Fatalf("lookups %d after the epoch change, want 2", l)
	}
}

// An offline recipient's message is settled at once (it stays stored for the
// recipient's SYNC); one for a gateway that stays unreachable is retried, from a
// fresh lookup each time, for the retry window, then given up unsettled (the msg
// service resends it).
func TestOfflineIsSettledAndUnreachableGivenUp(t *testing.T) {
	st := &fakeState{sessions: map[uint64]state.Session{}}
	st.set(state.Session{UID: 2, Gateway: "gw-gone", Conn: 1, Epoch: 1})
	f := startRouter(t, st, func(c *Config) { c.RetryWindow = 500 * time.Millisecond })
	f.send(t, 1, 1) // nobody
	f.send(t, 2, 1) // a gateway the router has no link to
	f.waitRouted(t, "offline", 1)
	if got := f.feed.waitSettles(t, 1); got[0] != (msg.Settle{UID: 1, Seq: 1, ID: 1}) {
		t.Fatalf("settled %+v, want uid 1's message", got)
	}
	f.waitRouted(t, "unreachable", 1) // after its retry window
	if l := st.lookups.Load(); l < 3 {
		t.Errorf("the unreachable route was not looked up again (%d lookups)", l)
	}
	if got := f.feed.settles(); len(got) != 1 {
		t.Fatalf("settled %+v: the message given up must not be", got)
	}
	if n, _ := f.r.inFlight(); n != 0 {
		t.Fatalf("%d messages still in flight", n)
	}
}

// A recipient whose gateway died and who logged in elsewhere: the push to the dead
// gateway fails, the router drops the cached route, looks again, and delivers to
// the new gateway — although the dead gateway's epoch is still live in its table.
func TestUnreachableGatewayReroutesToTheNewSession(t *testing.T) {
	a := startFakeGateway(t, "gw-a", 1)
	b := startFakeGateway(t, "gw-b", 1)
	st := &fakeState{sessions: map[uint64]state.Session{}}
	st.set(state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: 1})
	f := startRouter(t, st)
	f.r.SetGateways([]state.Gateway{a.table(1), b.table(1)})
	f.send(t, 1, 1)
	a.waitSeqs(t, 1, 1)
	f.waitRouted(t, "delivered", 1) // the router has gw-a's answer: seq 1 is done
	a.srv.Peers()[0].Close()        // gw-a "dies": its link drops and cannot come back
	aStop := a.stop
	aStop()
	st.set(state.Session{UID: 1, Gateway: "gw-b", Conn: 2, Epoch: 1})
	f.send(t, 1, 2)
	if got := b.waitSeqs(t, 1, 1); got[0] != 2 {
		t.Fatalf("gw-b got %v", got)
	}
}

// waitLookups waits until the state service has been asked at least n times.
func (f *fixture) waitLookups(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.st.lookups.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d state lookups, want at least %d", f.st.lookups.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// While the state service is down, messages to an online recipient are not given
// up on (nothing would make that client SYNC): the router keeps looking up, later
// messages queue behind, and once state answers all of them arrive, in order.
func TestFailedLookupsAreRetriedUntilStateAnswers(t *testing.T) {
	a := startFakeGateway(t, "gw-a", 1)
	st := &fakeState{sessions: map[uint64]state.Session{}}
	st.set(state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: 1})
	st.down.Store(true)
	f := startRouter(t, st)
	f.r.SetGateways([]state.Gateway{a.table(1)})
	for seq := uint64(1); seq <= 3; seq++ {
		f.send(t, 1, seq)
	}
	f.waitLookups(t, 3) // the first lookup and two retries failed
	f.send(t, 1, 4)
	st.down.Store(false)
	if got := a.waitSeqs(t, 1, 4); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
		t.Fatalf("delivered %v, want [1 2 3 4]", got)
	}
	f.waitRouted(t, "delivered", 4)
	if v := f.routed("error"); v != 0 {
		t.Errorf("routed error = %v, want 0", v)
	}
	if v := testutil.ToFloat64(f.r.m.lookupRetries); v < 2 {
		t.Errorf("lookup retries = %v, want >= 2", v)
	}
}

// A state service that stays down past the retry window: the router stops (the
// messages stay stored for SYNC) and counts them as errors.
func TestLookupsFailingPastTheWindowAreGivenUp(t *testing.T) {
	st := &fakeState{sessions: map[uint64]state.Session{}}
	st.down.Store(true)
	f := startRouter(t, st, func(c *Config) { c.RetryWindow = 300 * time.Millisecond })
	f.send(t, 1, 1)
	f.send(t, 1, 2)
	f.waitRouted(t, "error", 2)
	if l := st.lookups.Load(); l < 2 {
		t.Errorf("%d lookups, want the first and at least one retry", l)
	}
}

// waitCounter waits until cond holds for the metric c.
func waitCounter(t *testing.T, name string, c prometheus.Collector, cond func(float64) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond(testutil.ToFloat64(c)) {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v", name, testutil.ToFloat64(c))
		}
		time.Sleep(time.Millisecond)
	}
}

// A delivered message is settled back to the msg connection that sent it, naming
// its uid, seq and id.
func TestDeliveredMessagesAreSettled(t *testing.T) {
	a := startFakeGateway(t, "gw-a", 1, 2)
	st := &fakeState{sessions: map[uint64]state.Session{}}
	st.set(state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: 1})
	st.set(state.Session{UID: 2, Gateway: "gw-a", Conn: 2, Epoch: 1})
	f := startRouter(t, st)
	f.r.SetGateways([]state.Gateway{a.table(1)})
	for seq := uint64(1); seq <= 3; seq++ {
		f.send(t, 1, seq)
	}
	f.send(t, 2, 4)
	got := f.feed.waitSettles(t, 4)
	slices.SortFunc(got, func(x, y msg.Settle) int { return int(x.ID) - int(y.ID) })
	want := []msg.Settle{{UID: 1, Seq: 1, ID: 1}, {UID: 1, Seq: 2, ID: 2}, {UID: 1, Seq: 3, ID: 3}, {UID: 2, Seq: 4, ID: 4}}
	if !slices.Equal(got, want) {
		t.Fatalf("settled %+v, want %+v", got, want)
	}
	f.waitRouted(t, "delivered", 4)
}

// A message resent while the router is still working on it is not routed twice,
// and its settle goes to the msg connection that sent it last (an earlier one may
// be gone).
func TestMessagesInFlightAreRoutedOnce(t *testing.T) {
	a := startFakeGateway(t, "gw-a", 1)
	st := &fakeState{sessions: map[uint64]state.Session{}, delay: 200 * time.Millisecond}
	st.set(state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: 1})
	f := startRouter(t, st)
	f.r.SetGateways([]state.Gateway{a.table(1)})
	second := dialFeed(t, f.r.Addr(), "msg-2")
	f.send(t, 1, 1)
	waitCounter(t, "received", f.r.m.received, func(v float64) bool { return v == 1 })
	second.send(t, 1, 1) // the lookup takes 200ms: all of these find it in flight
	second.send(t, 1, 1)
	waitCounter(t, "deduplicated", f.r.m.deduplicated, func(v float64) bool { return v == 2 })
	if got := second.waitSettles(t, 1); !slices.Equal(got, []msg.Settle{{UID: 1, Seq: 1, ID: 1}}) {
		t.Fatalf("the latest sender got settles %+v", got)
	}
	if got := a.waitSeqs(t, 1, 1); len(got) != 1 {
		t.Fatalf("delivered %v, want seq 1 once", got)
	}
	if got := f.feed.settles(); len(got) != 0 {
		t.Fatalf("the first sender got settles %+v", got)
	}
	f.send(t, 1, 1) // settled: a resend now is a new delivery
	if got := a.waitSeqs(t, 1, 2); !slices.Equal(got, []uint64{1, 1}) {
		t.Fatalf("delivered %v, want seq 1 twice", got)
	}
}

// A gateway that does not answer a push (frozen) counts as unreachable after the
// push timeout, and the push is retried; once it answers, the message is settled
// once, however many of its pushes the gateway then answers.
func TestFrozenGatewayPushesTimeOutAndAreRetried(t *testing.T) {
	a := startFakeGateway(t, "gw-a", 1)
	st := &fakeState{sessions: map[uint64]state.Session{}}
	st.set(state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: 1})
	f := startRouter(t, st, func(c *Config) { c.PushTimeout = 100 * time.Millisecond })
	f.r.SetGateways([]state.Gateway{a.table(1)})
	release := a.freeze()
	f.send(t, 1, 1)
	waitCounter(t, "push timeouts", f.r.m.pushTimeouts, func(v float64) bool { return v >= 2 })
	released := time.Now()
	release()
	f.feed.waitSettles(t, 1)
	if d := time.Since(released); d > 2*time.Second {
		t.Fatalf("settled %v after the gateway came back, want within 2s", d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for { // every push is answered, so no late answer can settle again
		a.mu.Lock()
		answered := int64(a.ids[1])
		a.mu.Unlock()
		if answered == a.pushes.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d pushes answered", answered, a.pushes.Load())
		}
		time.Sleep(time.Millisecond)
	}
	waitCounter(t, "in flight", prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "n"},
		func() float64 { n, _ := f.r.inFlight(); return float64(n) }), func(v float64) bool { return v == 0 })
	if got := f.feed.settles(); len(got) != 1 {
		t.Fatalf("settled %+v, want once", got)
	}
}

// Pushes to an unreachable gateway, or answered NOT_HERE, are retried from fresh
// lookups with pauses of at most a second: once the gateway is back, or the
// session is there, the message arrives within about that long.
func TestRetriesReachTheRecipientSoonAfterTheFaultHeals(t *testing.T) {
	for _, c := range []struct {
		name   string
		break_ func(g *fakeGateway) (heal func(t *testing.T) *fakeGateway)
	}{
		{"gateway down", func(g *fakeGateway) func(t *testing.T) *fakeGateway {
			addr := g.srv.Addr()
			g.stop()
			return func(t *testing.T) *fakeGateway { return startFakeGatewayAt(t, g.id, addr, 1) }
		}},
		{"not here", func(g *fakeGateway) func(t *testing.T) *fakeGateway {
			g.move(1, false)
			return func(*testing.T) *fakeGateway { g.move(1, true); return g }
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := startFakeGateway(t, "gw-a", 1)
			st := &fakeState{sessions: map[uint64]state.Session{}}
			st.set(state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: 1})
			f := startRouter(t, st)
			f.r.SetGateways([]state.Gateway{a.table(1)})
			heal := c.break_(a)
			f.send(t, 1, 1)
			f.send(t, 1, 2)
			waitCounter(t, "reroutes", f.r.m.reroutes, func(v float64) bool { return v >= 6 }) // pauses near a second by now
			healed := time.Now()
			g := heal(t)
			if got := g.waitSeqs(t, 1, 2); !slices.Contains(got, 1) || !slices.Contains(got, 2) {
				t.Fatalf("delivered %v", got)
			}
			if d := time.Since(healed); d > 2*time.Second {
				t.Fatalf("delivered %v after the fault healed, want within 2s", d)
			}
			f.feed.waitSettles(t, 2)
		})
	}
}

// The in-flight set is bounded by count and by payload bytes: beyond either the
// oldest message is dropped, unsettled and never pushed (the msg service resends
// it), and the newer ones are delivered.
func TestInFlightSetIsBounded(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  func(*Config)
	}{
		{"count", func(c *Config) { c.MaxInFlight = 3 }},
		{"bytes", func(c *Config) { c.MaxInFlightBytes = 3 }}, // each payload is one byte
	} {
		t.Run(c.name, func(t *testing.T) {
			a := startFakeGateway(t, "gw-a", 1, 2, 3, 4, 5)
			st := &fakeState{sessions: map[uint64]state.Session{}}
			for uid := uint64(1); uid <= 5; uid++ {
				st.set(state.Session{UID: uid, Gateway: "gw-a", Conn: uid, Epoch: 1})
			}
			st.down.Store(true)
			f := startRouter(t, st, c.cfg)
			f.r.SetGateways([]state.Gateway{a.table(1)})
			for uid := uint64(1); uid <= 5; uid++ {
				f.send(t, uid, 1)
			}
			f.waitRouted(t, "dropped", 2)
			if n, b := f.r.inFlight(); n != 3 || b != 3 {
				t.Fatalf("%d messages, %d bytes in flight; want 3 and 3", n, b)
			}
			st.down.Store(false)
			got := f.feed.waitSettles(t, 3)
			var uids []uint64
			for _, s := range got {
				uids = append(uids, s.UID)
			}
			slices.Sort(uids)
			if !slices.Equal(uids, []uint64{3, 4, 5}) {
				t.Fatalf("settled users %v, want the newest three", uids)
			}
			f.waitRouted(t, "delivered", 3)
			if got := a.recipients(); !slices.Equal(got, []uint64{3, 4, 5}) {
				t.Fatalf("delivered to users %v, want 3, 4, 5: a dropped message was pushed", got)
			}
		})
	}
}
