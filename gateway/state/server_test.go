package state_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/floodgate/floodgate/gateway/state/statetest"
	"github.com/floodgate/floodgate/internal/promtest"
	"github.com/floodgate/floodgate/internal/redistest"
	"github.com/prometheus/client_golang/prometheus"
)

var testSecret = []byte("state-test-cluster-secret")

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startServer serves cfg (defaults: loopback, the test secret, a Memory store) until
// the returned stop is called or t ends.
func startServer(t *testing.T, cfg state.ServerConfig) (*state.Server, func()) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Secret == nil {
		cfg.Secret = testSecret
	}
	if cfg.Store == nil {
		cfg.Store = state.NewMemory(state.MemoryConfig{})
	}
	cfg.Logger = quiet()
	srv, err := state.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("server did not stop within 5s")
		}
	}
	t.Cleanup(stop)
	return srv, stop
}

// dial connects a client to addr and waits for the connection.
func dial(t *testing.T, addr string, mutate ...func(*state.ClientConfig)) *state.Client {
	t.Helper()
	cfg := state.ClientConfig{Addr: addr, Secret: testSecret, Name: t.Name(), Logger: quiet(),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := state.Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatalf("not connected: %v", err)
	}
	return c
}

// The strongest check of the wire: a Client passes the whole store suite.
func TestClientStore(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store {
		srv, _ := startServer(t, state.ServerConfig{})
		return dial(t, srv.Addr())
	})
}

// Over Redis, served one call at a time per connection and side by side
// (Workers: in order per user and per gateway), the client passes the suite.
func TestClientStoreOverRedis(t *testing.T) {
	rs := redistest.Start(t)
	var n atomic.Int64
	for _, workers := range []int{0, 8} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			statetest.Run(t, func(t *testing.T) state.Store {
				r := newRedis(t, redisClient(t, rs), state.RedisConfig{Prefix: fmt.Sprintf("client%d:", n.Add(1))})
				srv, _ := startServer(t, state.ServerConfig{Store: r, Workers: workers})
				return dial(t, srv.Addr())
			})
		})
	}
}

func TestWrongSecretIsRefused(t *testing.T) {
	srv, _ := startServer(t, state.ServerConfig{})
	c, err := state.Dial(state.ClientConfig{Addr: srv.Addr(), Secret: []byte("not-the-cluster-secret"),
		Logger: quiet(), MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := c.WaitConnected(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a client without the secret: WaitConnected = %v, want it never to connect", err)
	}
	if _, _, err := c.Lookup(t.Context(), 1); !errors.Is(err, link.ErrUnavailable) {
		t.Fatalf("lookup from a refused client: %v, want link.ErrUnavailable", err)
	}
	dial(t, srv.Addr()) // while one holding it connects
}

// snapshots collects what a watch delivers.
type snapshots chan []state.Gateway

func watch(c *state.Client) snapshots {
	ch := make(snapshots, 64)
	c.Watch(func(gws []state.Gateway) {
		select {
		case ch <- gws:
		default: // the test stopped reading
		}
	})
	return ch
}

// await reads snapshots until one satisfies ok, failing after within.
func (ch snapshots) await(t *testing.T, what string, within time.Duration, ok func([]state.Gateway) bool) []state.Gateway {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case gws := <-ch:
			if ok(gws) {
				return gws
			}
		case <-timeout:
			t.Fatalf("no snapshot with %s within %v", what, within)
		}
	}
}

func find(gws []state.Gateway, id string) (state.Gateway, bool) {
	for _, g := range gws {
		if g.ID == id {
			return g, true
		}
	}
	return state.Gateway{}, false
}

// Every lease event reaches a watcher at once, though the periodic refresh is an hour
// away: only the immediate pushes and the lapse detector can deliver them.
func TestWatchPushesLeaseEvents(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, _ := startServer(t, state.ServerConfig{Registry: reg, Poll: 20 * time.Millisecond, Refresh: time.Hour})
	gw := dial(t, srv.Addr())
	ch := watch(dial(t, srv.Addr()))
	const prompt = time.Second
	ch.await(t, "the initial table", prompt, func([]state.Gateway) bool { return true })

	ctx := t.Context()
	e, err := gw.Acquire(ctx, state.Gateway{ID: "gw-a", Addr: "10.0.0.1:7000", WSAddr: "10.0.0.1:7080"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ch.await(t, "gw-a live with its addresses", prompt, func(gws []state.Gateway) bool {
		g, ok := find(gws, "gw-a")
		return ok && g.Live(time.Now()) && g.Epoch == e && g.Addr == "10.0.0.1:7000" && g.WSAddr == "10.0.0.1:7080"
	})
	if err := gw.SetDraining(ctx, "gw-a", true); err != nil {
		t.Fatal(err)
	}
	ch.await(t, "gw-a draining", prompt, func(gws []state.Gateway) bool {
		g, ok := find(gws, "gw-a")
		return ok && g.Draining
	})

	// The gateway renews one last time, briefly, and dies.
	const ttl = 150 * time.Millisecond
	if err := gw.Renew(ctx, "gw-a", e, state.Load{}, ttl); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ch.await(t, "gw-a lapsed", ttl+prompt, func(gws []state.Gateway) bool {
		g, ok := find(gws, "gw-a")
		return ok && !g.Live(time.Now())
	})
	t.Logf("lapse pushed %v after the last renewal (ttl %v)", time.Since(start), ttl)
	if v := metric(t, reg, "floodgate_state_lease_lapses_total", nil); v != 1 {
		t.Fatalf("lapses counted: %v, want 1", v)
	}

	eb, _ := gw.Acquire(ctx, state.Gateway{ID: "gw-b"}, time.Minute)
	ch.await(t, "gw-b live", prompt, func(gws []state.Gateway) bool {
		g, ok := find(gws, "gw-b")
		return ok && g.Live(time.Now())
	})
	if err := gw.Release(ctx, "gw-b", eb); err != nil {
		t.Fatal(err)
	}
	ch.await(t, "gw-b released", prompt, func(gws []state.Gateway) bool {
		g, ok := find(gws, "gw-b")
		return ok && !g.Live(time.Now())
	})
	if v := metric(t, reg, "floodgate_state_lease_lapses_total", nil); v != 1 {
		t.Fatalf("lapses counted after a release: %v, want still 1", v)
	}
}

// Loads change with every renewal without any push of their own: the periodic
// refresh carries them.
func TestWatchRefreshesLoads(t *testing.T) {
	srv, _ := startServer(t, state.ServerConfig{Refresh: 100 * time.Millisecond})
	gw := dial(t, srv.Addr())
	ctx := t.Context()
	e, _ := gw.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
	ch := watch(dial(t, srv.Addr()))
	if err := gw.Renew(ctx, "gw-a", e, state.Load{Conns: 4321}, time.Minute); err != nil {
		t.Fatal(err)
	}
	ch.await(t, "the renewed load", 2*time.Second, func(gws []state.Gateway) bool {
		g, ok := find(gws, "gw-a")
		return ok && g.Load.Conns == 4321
	})
}

// The server restarts: the client reconnects, calls work again, and the watch is
// renewed without the watcher doing anything.
func TestClientSurvivesServerRestart(t *testing.T) {
	srv, stop := startServer(t, state.ServerConfig{})
	addr := srv.Addr()
	c := dial(t, addr)
	ch := watch(c)
	ch.await(t, "the initial table", time.Second, func([]state.Gateway) bool { return true })
	stop()

	startServer(t, state.ServerConfig{Addr: addr}) // a new process: empty state
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, err := c.Lookup(t.Context(), 1)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client still failing 5s after the restart: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling an observable condition
	}
	if _, err := c.Acquire(t.Context(), state.Gateway{ID: "gw-new"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	ch.await(t, "the new server's gateway", 2*time.Second, func(gws []state.Gateway) bool {
		_, ok := find(gws, "gw-new")
		return ok
	})
}

func TestServerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, _ := startServer(t, state.ServerConfig{Registry: reg, Poll: 10 * time.Millisecond})
	c := dial(t, srv.Addr())
	ctx := t.Context()
	e, _ := c.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
	c.Renew(ctx, "gw-a", e, state.Load{}, time.Minute)
	c.Renew(ctx, "gw-a", e+1, state.Load{}, time.Minute)
	s1 := state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e}
	c.Register(ctx, s1)
	c.Register(ctx, state.Session{UID: 2, Gateway: "gw-a", Conn: 2, Epoch: e})
	c.Register(ctx, state.Session{UID: 3, Gateway: "gw-a", Conn: 3, Epoch: e + 1})
	c.Lookup(ctx, 1)
	c.Lookup(ctx, 99)
	c.Unregister(ctx, s1)
	c.Unregister(ctx, s1)
	if v := metric(t, reg, "floodgate_state_sessions", nil); v != 1 {
		t.Fatalf("sessions gauge %v, want 1", v)
	}
	c.Release(ctx, "gw-a", e)
	c.Lookup(ctx, 2)
	w := dial(t, srv.Addr())
	watch(w)
	waitMetric(t, reg, "floodgate_state_watchers", nil, 1)

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"floodgate_state_lease_acquires_total", nil, 1},
		{"floodgate_state_lease_renewals_total", map[string]string{"result": "ok"}, 1},
		{"floodgate_state_lease_renewals_total", map[string]string{"result": "lease_lost"}, 1},
		{"floodgate_state_lease_releases_total", nil, 1},
		{"floodgate_state_registrations_total", map[string]string{"result": "ok"}, 2},
		{"floodgate_state_registrations_total", map[string]string{"result": "lease_lost"}, 1},
		{"floodgate_state_lookups_total", map[string]string{"result": "hit"}, 1},
		{"floodgate_state_lookups_total", map[string]string{"result": "miss"}, 1},
		{"floodgate_state_lookups_total", map[string]string{"result": "invalid"}, 1},
		{"floodgate_state_unregisters_total", map[string]string{"result": "deleted"}, 1},
		{"floodgate_state_unregisters_total", map[string]string{"result": "stale"}, 1},
		{"floodgate_state_sessions", nil, 0},
		{"floodgate_state_gateways_live", nil, 0},
	} {
		if got := metric(t, reg, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	w.Close()
	waitMetric(t, reg, "floodgate_state_watchers", nil, 0)
}

func TestClientObservesCallLatency(t *testing.T) {
	srv, _ := startServer(t, state.ServerConfig{})
	reg := prometheus.NewRegistry()
	withReg := func(cfg *state.ClientConfig) { cfg.Registry = reg }
	c := dial(t, srv.Addr(), withReg)
	dial(t, srv.Addr(), withReg) // a second client shares the histogram
	for range 3 {
		if _, _, err := c.Lookup(t.Context(), 7); err != nil {
			t.Fatal(err)
		}
	}
	c.Register(t.Context(), state.Session{UID: 1, Gateway: "none"}) // a remote error still counts
	for _, tc := range []struct {
		method string
		want   float64
	}{{"lookup", 3}, {"register", 1}, {"acquire", 0}} {
		got := metric(t, reg, "floodgate_link_call_seconds", map[string]string{"peer": "state", "method": tc.method})
		if got != tc.want {
			t.Errorf("%s calls observed: %v, want %v", tc.method, got, tc.want)
		}
	}
}

// A malformed request is answered with an error, never a panic or a dropped link.
func TestServerRefusesMalformedRequests(t *testing.T) {
	srv, _ := startServer(t, state.ServerConfig{})
	lc := link.Dial(link.ClientConfig{Addr: srv.Addr(), Secret: testSecret, Name: "raw", Logger: quiet()})
	defer lc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := lc.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		method uint16
		body   string
		code   string
	}{
		{"short register", state.MethodRegister, "1234567", "bad-request"},
		{"short unregister", state.MethodUnregister, "", "bad-request"},
		{"long lookup", state.MethodLookup, "123456789", "bad-request"},
		{"broken JSON", state.MethodAcquire, "{", "bad-request"},
		{"unknown method", 999, "", "bad-request"},
		{"zero ttl", state.MethodAcquire, `{"gateway":{"id":"x"},"ttl_ns":0}`, "bad-request"},
		{"empty gateway id", state.MethodAcquire, `{"gateway":{"id":""},"ttl_ns":1000000000}`, "internal"},
		{"unknown gateway", state.MethodSetDraining, `{"id":"x","draining":true}`, "unknown-gateway"},
	} {
		_, err := lc.Call(ctx, tc.method, []byte(tc.body))
		var re *link.RemoteError
		if !errors.As(err, &re) || !strings.HasPrefix(re.Msg, tc.code+" ") {
			t.Errorf("%s: %v, want a %s error", tc.name, err, tc.code)
		}
	}
	if _, err := lc.Call(ctx, state.MethodGateways, nil); err != nil {
		t.Fatalf("the link did not survive the malformed requests: %v", err)
	}
}

// metric returns the value of the counter or gauge name{labels} (a histogram's
// sample count), 0 if absent.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	var pairs []string
	for k, v := range labels {
		pairs = append(pairs, k, v)
	}
	return max(promtest.Value(t, reg, name, pairs...), 0)
}

// waitMetric polls until name{labels} equals want, failing after 5s.
func waitMetric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for metric(t, reg, name, labels) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v after 5s, want %v", name, labels, metric(t, reg, name, labels), want)
		}
		time.Sleep(5 * time.Millisecond) // polling an observable condition
	}
}

// A login on one gateway makes the server tell the gateway holding the user's
// older session to kick it; a login on the same gateway does not (that gateway
// replaced its own session).
func TestServerTellsTheReplacedGatewayToKick(t *testing.T) {
	srv, _ := startServer(t, state.ServerConfig{})
	kicks := make(chan state.Session, 4)
	kicked := make(chan [2]state.Session, 4)
	var gwA *state.Client
	gwA = dial(t, srv.Addr(), func(c *state.ClientConfig) {
		c.Name = "gw-a"
		c.OnKick = func(prev, by state.Session) {
			kicks <- prev
			gwA.Kicked(prev, by) // gw-a closed it: tell the new session's gateway
		}
	})
	gwB := dial(t, srv.Addr(), func(c *state.ClientConfig) {
		c.Name = "gw-b"
		c.OnKicked = func(prev, by state.Session) { kicked <- [2]state.Session{prev, by} }
	})
	ctx := t.Context()
	ea, err := gwA.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := gwB.Acquire(ctx, state.Gateway{ID: "gw-b"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	old := state.Session{UID: 7, Gateway: "gw-a", Conn: 1, Epoch: ea}
	if _, err := gwA.Register(ctx, old); err != nil {
		t.Fatal(err)
	}
	// Same gateway, a new connection: no kick notification (gw-a kicks its own).
	again := state.Session{UID: 7, Gateway: "gw-a", Conn: 2, Epoch: ea}
	if prev, err := gwA.Register(ctx, again); err != nil || prev != old {
		t.Fatalf("re-login on gw-a: replaced %+v, %v; want %+v", prev, err, old)
	}
	by := state.Session{UID: 7, Gateway: "gw-b", Conn: 5, Epoch: eb}
	if prev, sent, err := gwB.RegisterTakeover(ctx, by); err != nil || prev != again || !sent {
		t.Fatalf("login on gw-b: replaced %+v (kick sent %v), %v; want %+v, sent", prev, sent, err, again)
	}
	select {
	case got := <-kicks:
		if got != again {
			t.Fatalf("gw-a told to kick %+v, want %+v", got, again)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("gw-a was not told to kick the replaced session within 5s")
	}
	select {
	case got := <-kicked:
		if got[0] != again || got[1] != by {
			t.Fatalf("gw-b heard kicked %+v, want %+v by %+v", got, again, by)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("gw-b did not hear that the old session was kicked within 5s")
	}
	// A gateway that is not connected gets no kick, and the login is told so.
	ec, err := gwB.Acquire(ctx, state.Gateway{ID: "gw-c"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	onC := state.Session{UID: 8, Gateway: "gw-c", Conn: 1, Epoch: ec}
	if _, err := gwB.Register(ctx, onC); err != nil {
		t.Fatal(err)
	}
	if prev, sent, err := gwB.RegisterTakeover(ctx, state.Session{UID: 8, Gateway: "gw-b", Conn: 6, Epoch: eb}); err != nil || prev != onC || sent {
		t.Fatalf("login replacing a session on an unconnected gateway: %+v sent %v, %v", prev, sent, err)
	}
	select {
	case got := <-kicks:
		t.Fatalf("an extra kick: %+v", got)
	default:
	}
}

// A batch re-registers each session as Reregister would, one result per session.
func TestServerReregistersInBatches(t *testing.T) {
	srv, _ := startServer(t, state.ServerConfig{})
	c := dial(t, srv.Addr())
	ctx := t.Context()
	e1, err := c.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := c.Acquire(ctx, state.Gateway{ID: "gw-b"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for uid := uint64(1); uid <= 3; uid++ {
		if _, err := c.Register(ctx, state.Session{UID: uid, Gateway: "gw-a", Conn: uid, Epoch: e1}); err != nil {
			t.Fatal(err)
		}
	}
	e2, err := c.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute) // the lease was lost and taken again
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, state.Session{UID: 2, Gateway: "gw-b", Conn: 9, Epoch: eb}); err != nil {
		t.Fatal(err)
	}
	batch := []state.Session{{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e2}, {UID: 2, Gateway: "gw-a", Conn: 2, Epoch: e2},
		{UID: 3, Gateway: "gw-a", Conn: 3, Epoch: e2}}
	errs, err := c.ReregisterBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || !errors.Is(errs[1], state.ErrReplaced) || errs[2] != nil {
		t.Fatalf("results %v, want ok, replaced, ok", errs)
	}
	stale := batch[:1]
	stale[0].Epoch = e1
	if errs, err := c.ReregisterBatch(ctx, stale); err != nil || !errors.Is(errs[0], state.ErrLeaseLost) {
		t.Fatalf("batch under a dead epoch: %v, %v; want lease lost", errs, err)
	}
}

// A login that replaces a session on a gateway whose lease has ended (it was cut
// off, or froze, past its TTL) does not wait for that gateway's answer: the server
// still tells it, but reports the kick as not sent. That gateway fenced itself
// before its lease lapsed and learns of the replacement when it registers again.
func TestReplacingASessionOfALapsedGatewayDoesNotWait(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, _ := startServer(t, state.ServerConfig{Registry: reg})
	kicks := make(chan state.Session, 1)
	gwA := dial(t, srv.Addr(), func(c *state.ClientConfig) {
		c.Name = "gw-a"
		c.OnKick = func(prev, _ state.Session) { kicks <- prev }
	})
	gwB := dial(t, srv.Addr(), func(c *state.ClientConfig) { c.Name = "gw-b" })
	ctx := t.Context()
	ea, err := gwA.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := gwB.Acquire(ctx, state.Gateway{ID: "gw-b"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	old := state.Session{UID: 9, Gateway: "gw-a", Conn: 1, Epoch: ea}
	if _, err := gwA.Register(ctx, old); err != nil {
		t.Fatal(err)
	}
	// gw-a stops renewing; once the server has seen its lease lapse, gw-b logs the
	// user in.
	waitMetric(t, reg, "floodgate_state_gateways_live", nil, 2)
	waitMetric(t, reg, "floodgate_state_gateways_live", nil, 1)
	prev, sent, err := gwB.RegisterTakeover(ctx, state.Session{UID: 9, Gateway: "gw-b", Conn: 2, Epoch: eb})
	if err != nil || prev != old || sent {
		t.Fatalf("login replacing a lapsed gateway's session: replaced %+v (wait for the kick: %v), %v; want %+v, no wait", prev, sent, err, old)
	}
	select {
	case got := <-kicks:
		if got != old {
			t.Fatalf("gw-a told to kick %+v, want %+v", got, old)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("gw-a was not told of the replacement")
	}
	if n := metric(t, reg, "floodgate_state_replacement_kicks_total", map[string]string{"result": "lease_ended"}); n != 1 {
		t.Fatalf("lease_ended kicks = %v, want 1", n)
	}
}
