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
	cond  *sync.Cond
	stop  func()
}

func startFakeGateway(t *testing.T, id string, users ...uint64) *fakeGateway {
	g := &fakeGateway{id: id, users: map[uint64]bool{}, got: map[uint64][]uint64{}}
	g.cond = sync.NewCond(&g.mu)
	for _, u := range users {
		g.users[u] = true
	}
	srv, err := link.Listen(link.ServerConfig{Addr: "127.0.0.1:0", Secret: secret, Logger: quiet(),
		Handler: func(_ context.Context, r *link.Request) ([]byte, error) {
			_, m, err := gwlink.DecodePush(r.Body)
			if err != nil {
				return nil, err
			}
			g.mu.Lock()
			defer g.mu.Unlock()
			if !g.users[m.To] {
				return []byte{gwlink.PushNotHere}, nil
			}
			g.got[m.To] = append(g.got[m.To], m.Seq)
			g.cond.Broadcast()
			return []byte{gwlink.PushDelivered}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	g.stop = func() { cancel(); <-done }
	t.Cleanup(g.stop)
	g.srv = srv
	return g
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
	feed *link.Client
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
	feed := link.Dial(link.ClientConfig{Addr: r.Addr(), Secret: secret, Name: "msg", Logger: quiet()})
	t.Cleanup(feed.Close)
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := feed.WaitConnected(wctx); err != nil {
		t.Fatal(err)
	}
	return &fixture{r: r, st: st, reg: reg, feed: feed}
}

func (f *fixture) send(t *testing.T, to, seq uint64) {
	t.Helper()
	m := msg.Message{Seq: seq, ID: seq, From: 1, To: to, Payload: []byte("x")}
	if err := f.feed.Notify(msg.RouteMethod, msg.AppendMessage(nil, &m)); err != nil {
		t.Fatal(err)
	}
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

// Offline recipients and dead gateways are counted, not retried forever: those
// messages stay stored for the recipient's SYNC.
func TestOfflineAndUnreachableAreCounted(t *testing.T) {
	st := &fakeState{sessions: map[uint64]state.Session{}}
	st.set(state.Session{UID: 2, Gateway: "gw-gone", Conn: 1, Epoch: 1})
	f := startRouter(t, st)
	f.send(t, 1, 1) // nobody
	f.send(t, 2, 1) // a gateway the router has no link to
	f.waitRouted(t, "offline", 1)
	f.waitRouted(t, "unreachable", 1) // after its retries
	if l := st.lookups.Load(); l < 3 {
		t.Errorf("the unreachable route was not looked up again (%d lookups)", l)
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
