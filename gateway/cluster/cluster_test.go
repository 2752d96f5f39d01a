package cluster

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
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/floodgate/floodgate/gateway/state"
)

// fakeGateway holds a fixed set of sessions and records what is delivered to them,
// the window notices they get, and the sessions it is told to kick as replaced.
type fakeGateway struct {
	sessions []node.Session
	mu       sync.Mutex
	got      map[uint64][]uint64 // uid → seqs delivered
	notices  map[uint64]msg.Window
	replaced map[uint64]uint64 // uid → session id kicked as replaced
	isolated bool
	// isolations counts Isolate calls that started an isolation.
	isolations int
	changed    chan struct{} // something happened (buffered 1)
}

func newFakeGateway(sessions ...node.Session) *fakeGateway {
	return &fakeGateway{sessions: sessions, got: map[uint64][]uint64{}, notices: map[uint64]msg.Window{},
		replaced: map[uint64]uint64{}, changed: make(chan struct{}, 1)}
}

func (g *fakeGateway) find(uid, conn uint64) bool {
	for _, s := range g.sessions {
		if s.UID == uid && (conn == 0 || s.ID == conn) {
			return true
		}
	}
	return false
}

func (g *fakeGateway) signal() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

func (g *fakeGateway) Deliver(m *msg.Message, conn uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.find(m.To, conn) {
		return false
	}
	g.got[m.To] = append(g.got[m.To], m.Seq)
	g.signal()
	return true
}

func (g *fakeGateway) Replace(uid, conn uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.find(uid, conn) {
		return false
	}
	g.replaced[uid] = conn
	g.signal()
	return true
}

func (g *fakeGateway) Notice(uid, conn uint64, w msg.Window) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.find(uid, conn) {
		return false
	}
	g.notices[uid] = w
	g.signal()
	return true
}

func (g *fakeGateway) Stats() reactor.Stats { return reactor.Stats{} }
func (g *fakeGateway) Sessions() int        { return len(g.sessions) }
func (g *fakeGateway) EachSession(fn func(node.Session)) {
	for _, s := range g.sessions {
		fn(s)
	}
}
func (g *fakeGateway) Drain(gwlink.DrainRequest) gwlink.DrainStatus { return gwlink.DrainStatus{} }
func (g *fakeGateway) Undrain() gwlink.DrainStatus                  { return gwlink.DrainStatus{} }

// Isolate and Rejoin record the gateway's isolation (isolations counts the starts).
func (g *fakeGateway) Isolate(time.Duration) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.isolated {
		return false
	}
	g.isolated = true
	g.isolations++
	g.signal()
	return true
}

func (g *fakeGateway) Rejoin() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.isolated = false
	g.signal()
}

// waitFor waits until cond holds (under the gateway's lock), failing after 10s.
func (g *fakeGateway) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		g.mu.Lock()
		ok := cond()
		g.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-g.changed:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A gateway that loses its lease (the state service restarted, or it could not renew
// in time) registers its sessions again under a new epoch — except one a newer login
// replaced meanwhile, which it kicks — and tells the others their inbox window:
// messages stored while its sessions were invalid were left in the store, and these
// still-connected clients would otherwise never ask for them.
func TestLeaseLossReregistersNoticesAndKicksTheReplaced(t *testing.T) {
	t.Run("in process", func(t *testing.T) {
		testLeaseLoss(t, state.NewMemory(state.MemoryConfig{}), msg.NewMemory(64))
	})
	t.Run("over links, in batches", func(t *testing.T) {
		st, store := serveStores(t)
		testLeaseLoss(t, st, store)
	})
}

// testSecret is the cluster secret of every test's services.
var testSecret = []byte("cluster-test-secret-0123")

// startStores serves st and a memory msg store on loopback until the test ends,
// and returns their link addresses.
func startStores(t *testing.T, st state.Store) (stateAddr, msgAddr string) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	ss, err := state.NewServer(state.ServerConfig{Addr: "127.0.0.1:0", Secret: testSecret, Store: st, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { ss.Serve(ctx) })
	ms, err := msg.NewServer(msg.ServerConfig{Addr: "127.0.0.1:0", Secret: testSecret, Store: msg.NewMemory(64), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { ms.Serve(ctx) })
	return ss.Addr(), ms.Addr()
}

// serveStores serves a memory state store and a memory msg store on loopback and
// returns clients of both: the gateway's production path (batched calls).
func serveStores(t *testing.T) (*state.Client, *msg.Client) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	stateAddr, msgAddr := startStores(t, state.NewMemory(state.MemoryConfig{}))
	sc, err := state.Dial(state.ClientConfig{Addr: stateAddr, Secret: testSecret, Name: "gw-1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sc.Close)
	mc, err := msg.Dial(msg.ClientConfig{Addr: msgAddr, Secret: testSecret, Name: "gw-1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mc.Close)
	wctx, wcancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer wcancel()
	if err := errors.Join(sc.WaitConnected(wctx), mc.WaitConnected(wctx)); err != nil {
		t.Fatal(err)
	}
	return sc, mc
}

func testLeaseLoss(t *testing.T, st state.Store, store msg.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gw := newFakeGateway(node.Session{UID: 1, ID: 11}, node.Session{UID: 2, ID: 12}, node.Session{UID: 3, ID: 13})
	c := runLeasedCluster(t, ctx, cancel, st, store, gw)
	first := c.epoch.Load()
	for _, s := range gw.sessions {
		if _, err := c.Login(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	// User 1 has one message it acknowledged and two it has not; user 2 has none.
	var m msg.Message
	for range 3 {
		m = msg.Message{From: 9, To: 1, Payload: []byte("x")}
		if err := store.Append(ctx, &m); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Ack(ctx, 1, 1, m.Epoch); err != nil {
		t.Fatal(err)
	}

	// The lease ends under the gateway's feet: its sessions are invalid at once, and
	// user 3 logs in on another gateway before this one registers again.
	if err := st.Release(ctx, "gw-1", first); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Lookup(ctx, 1); ok {
		t.Fatal("session still valid after its gateway's lease ended")
	}
	e2, err := st.Acquire(ctx, state.Gateway{ID: "gw-2"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	newer := state.Session{UID: 3, Gateway: "gw-2", Conn: 99, Epoch: e2}
	if _, err := st.Register(ctx, newer); err != nil {
		t.Fatal(err)
	}

	gw.waitFor(t, "window notices to users 1 and 2 and a kick for user 3", func() bool {
		return len(gw.notices) == 2 && len(gw.replaced) == 1
	})
	if w := gw.notices[1]; w.Head != 3 || w.Oldest != 2 || w.Epoch != m.Epoch {
		t.Errorf("user 1's notice: %+v, want head 3, oldest 2, epoch %d", w, m.Epoch)
	}
	if w := gw.notices[2]; w.Head != 0 {
		t.Errorf("user 2's notice: %+v, want an empty inbox", w)
	}
	if id := gw.replaced[3]; id != 13 {
		t.Errorf("kicked session %d of user 3, want 13", id)
	}
	for _, uid := range []uint64{1, 2} {
		s, ok, err := st.Lookup(ctx, uid)
		if err != nil || !ok || s.Gateway != "gw-1" || s.Epoch == first || s.Epoch != c.epoch.Load() {
			t.Fatalf("uid %d after re-registration: %+v ok=%v err=%v (old epoch %d, now %d)", uid, s, ok, err, first, c.epoch.Load())
		}
	}
	if s, ok, _ := st.Lookup(ctx, 3); !ok || s != newer {
		t.Errorf("user 3's newer login was overwritten: %+v %v", s, ok)
	}
	if got := gw.delivered(1); len(got) != 0 {
		t.Errorf("pushed %v: the client fetches its backlog itself, paced by its reading", got)
	}
}

func (g *fakeGateway) delivered(uid uint64) []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.got[uid])
}

// flakyWindows is a msg store whose first failures Window calls fail, as while the
// msg link redials after a partition heals.
type flakyWindows struct {
	msg.Store
	failures atomic.Int32
}

func (f *flakyWindows) Window(ctx context.Context, uid uint64) (msg.Window, error) {
	if f.failures.Add(-1) >= 0 {
		return msg.Window{}, errors.New("msg link down")
	}
	return f.Store.Window(ctx, uid)
}

// Re-registration after a lease loss does not give up when the message store fails
// for a while: every session kept is still told its window, or its client never
// learns that messages wait for it.
func TestReregistrationTellsEveryWindowDespiteAFlakyStore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := state.NewMemory(state.MemoryConfig{})
	store := &flakyWindows{Store: msg.NewMemory(64)}
	gw := newFakeGateway(node.Session{UID: 1, ID: 11}, node.Session{UID: 2, ID: 12})
	c := runLeasedCluster(t, ctx, cancel, st, store, gw)
	for _, s := range gw.sessions {
		if _, err := c.Login(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	store.failures.Store(5)
	if err := st.Release(ctx, "gw-1", c.epoch.Load()); err != nil {
		t.Fatal(err)
	}
	gw.waitFor(t, "window notices to both users", func() bool { return len(gw.notices) == 2 })
	if n := store.failures.Load(); n >= 0 {
		t.Fatalf("%d failures left: the store never failed", n+1)
	}
}

// runLeasedCluster starts gateway gw-1's cluster side on st and store with a 300 ms
// lease, gw attached, and returns it once it holds its lease; cancel stops it, and
// the test's end waits for it to be stopped.
func runLeasedCluster(t *testing.T, ctx context.Context, cancel context.CancelFunc, st state.Store, store msg.Store, gw *fakeGateway) *Cluster {
	t.Helper()
	c, err := New(Config{ID: "gw-1", LinkAddr: "127.0.0.1:0", Secret: []byte("cluster-test-secret-0123"),
		State: st, Msgs: store, LeaseTTL: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c.Attach(gw)
	done := make(chan struct{})
	go func() { c.Run(ctx, ClientAddrs{Addr: "127.0.0.1:7000"}); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-c.Ready()
	return c
}

// The lease advertises the addresses Run was given: the client port always, the
// WebSocket port only for a gateway that has one.
func TestLeaseAdvertisesTheClientAddresses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addrs ClientAddrs
	}{
		{"with a WebSocket port", ClientAddrs{Addr: "127.0.0.1:7000", WSAddr: "127.0.0.1:7080"}},
		{"without one", ClientAddrs{Addr: "127.0.0.1:7000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := state.NewMemory(state.MemoryConfig{})
			c, err := New(Config{ID: "gw-1", LinkAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:7001",
				Secret: []byte("cluster-test-secret-0123"), State: st, Msgs: msg.NewMemory(64),
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			c.Attach(newFakeGateway())
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { c.Run(ctx, tc.addrs); close(done) }()
			t.Cleanup(func() { cancel(); <-done })
			<-c.Ready()
			gws, err := st.Gateways(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(gws) != 1 {
				t.Fatalf("gateway table %+v, want gw-1 alone", gws)
			}
			g := gws[0]
			if g.ID != "gw-1" || g.Addr != tc.addrs.Addr || g.WSAddr != tc.addrs.WSAddr ||
				g.LinkAddr != c.LinkAddr() || g.AdminAddr != "127.0.0.1:7001" {
				t.Fatalf("advertised %+v, want addresses %+v, link %s, admin 127.0.0.1:7001", g, tc.addrs, c.LinkAddr())
			}
		})
	}
}
