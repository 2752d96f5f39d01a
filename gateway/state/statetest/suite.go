// Package statetest is the behaviour every state.Store must show, as one test suite
// that each backend's tests run against fresh stores: Memory, Redis, and a Client
// talking to a Server.
//
// Lease expiry is real time: the suite uses TTLs of 150ms where it needs a lease to
// lapse and polls for the lapse with a bounded deadline, and long TTLs everywhere
// else, so it neither sleeps in place of synchronisation nor flakes on a slow host.
package statetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
)

const (
	long  = time.Minute            // a lease that outlives the test
	short = 150 * time.Millisecond // a lease meant to lapse
	bound = 5 * time.Second        // the longest a lapse may take to be seen
)

// Run runs the suite. newStore returns an empty store; it is called once per
// subtest, and subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) state.Store) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, state.Store)
	}{
		{"EpochsIncreaseAcrossAcquires", testEpochsIncrease},
		{"RenewExtendsTheLease", testRenewExtends},
		{"RenewFailsAfterLapse", testRenewFailsAfterLapse},
		{"NewerAcquireSupersedes", testNewerAcquireSupersedes},
		{"RegisterNeedsTheLiveEpoch", testRegisterNeedsLiveEpoch},
		{"LookupReturnsTheValidSession", testLookup},
		{"LapseInvalidatesEverySessionAtOnce", testLapseInvalidatesAll},
		{"ReleaseInvalidatesEverySessionAtOnce", testReleaseInvalidatesAll},
		{"ReleaseOfAStaleEpochLeavesTheNewLease", testStaleRelease},
		{"RegisterReplacesAcrossGateways", testRegisterReplaces},
		{"UnregisterIsCompareAndDelete", testUnregisterCompareAndDelete},
		{"ReregisterNeverOverwritesANewerLogin", testReregister},
		{"ReregisterBatchMatchesReregister", testReregisterBatch},
		{"SetDrainingRoundTrips", testSetDraining},
		{"GatewaysReportLeasesAndLoad", testGatewaysReport},
		{"WebSocketAddressRoundTrips", testWSAddrRoundTrips},
		{"ProbeTellsInvalidFromMiss", testProbe},
		{"ConcurrentUse", testConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

func acquire(t *testing.T, s state.Store, id string, ttl time.Duration) uint64 {
	t.Helper()
	e, err := s.Acquire(ctx(t), state.Gateway{ID: id, Addr: id + ":7000"}, ttl)
	if err != nil {
		t.Fatalf("acquire %s: %v", id, err)
	}
	return e
}

func register(t *testing.T, s state.Store, ses state.Session) {
	t.Helper()
	if _, err := s.Register(ctx(t), ses); err != nil {
		t.Fatalf("register %+v: %v", ses, err)
	}
}

// lookup returns uid's session, or ok false.
func lookup(t *testing.T, s state.Store, uid uint64) (state.Session, bool) {
	t.Helper()
	ses, ok, err := s.Lookup(ctx(t), uid)
	if err != nil {
		t.Fatalf("lookup %d: %v", uid, err)
	}
	if !ok && ses != (state.Session{}) {
		t.Fatalf("lookup %d: not ok, yet returned %+v", uid, ses)
	}
	return ses, ok
}

func wantLeaseLost(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, state.ErrLeaseLost) {
		t.Fatalf("%s: got %v, want ErrLeaseLost", what, err)
	}
}

func gateway(t *testing.T, s state.Store, id string) state.Gateway {
	t.Helper()
	gws, err := s.Gateways(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gws {
		if g.ID == id {
			return g
		}
	}
	t.Fatalf("gateway %s not listed in %+v", id, gws)
	return state.Gateway{}
}

// waitInvalid polls until uid has no valid session, failing after bound.
func waitInvalid(t *testing.T, s state.Store, uid uint64) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if _, ok := lookup(t, s, uid); !ok {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			t.Fatalf("uid %d still valid %v after its lease should have lapsed", uid, bound)
		}
		time.Sleep(5 * time.Millisecond) // polling an observable condition
	}
}

func testEpochsIncrease(t *testing.T, s state.Store) {
	var last uint64
	for i := range 4 {
		e := acquire(t, s, "gw-a", long)
		if e <= last {
			t.Fatalf("acquire %d gave epoch %d after %d", i, e, last)
		}
		last = e
		if i == 1 {
			if err := s.Release(ctx(t), "gw-a", e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if g := gateway(t, s, "gw-a"); g.Epoch != last {
		t.Fatalf("listed epoch %d, want %d", g.Epoch, last)
	}
	if e := acquire(t, s, "gw-b", long); e == 0 {
		t.Fatal("epoch 0 issued")
	}
}

func testRenewExtends(t *testing.T, s state.Store) {
	// The first lease must not lapse before the renewal arrives, even on a loaded
	// host: give it a few round trips' worth more than short.
	const first = 2 * short
	e := acquire(t, s, "gw-a", first)
	if err := s.Renew(ctx(t), "gw-a", e, state.Load{}, long); err != nil {
		t.Fatalf("renew: %v", err)
	}
	register(t, s, state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e})
	time.Sleep(first + short) // outlive the first TTL: only the renewal keeps the lease
	if _, ok := lookup(t, s, 1); !ok {
		t.Fatal("session invalid after the lease was renewed for a minute")
	}
	if err := s.Renew(ctx(t), "gw-a", e, state.Load{}, long); err != nil {
		t.Fatalf("second renew: %v", err)
	}
	if g := gateway(t, s, "gw-a"); !g.Live(time.Now().Add(long / 2)) {
		t.Fatalf("expiry %v, want about a minute from now", g.Expires)
	}
}

func testRenewFailsAfterLapse(t *testing.T, s state.Store) {
	e := acquire(t, s, "gw-a", long)
	register(t, s, state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e})
	if err := s.Renew(ctx(t), "gw-a", e, state.Load{}, short); err != nil { // the last renewal
		t.Fatal(err)
	}
	waitInvalid(t, s, 1)
	wantLeaseLost(t, "renew after lapse", s.Renew(ctx(t), "gw-a", e, state.Load{}, long))
	_, err := s.Register(ctx(t), state.Session{UID: 2, Gateway: "gw-a", Conn: 2, Epoch: e})
	wantLeaseLost(t, "register after lapse", err)
	wantLeaseLost(t, "renew of an unknown gateway", s.Renew(ctx(t), "gw-nope", e, state.Load{}, long))
	if g := gateway(t, s, "gw-a"); g.Live(time.Now()) || g.Epoch != e {
		t.Fatalf("lapsed gateway listed as %+v", g)
	}
}

func testNewerAcquireSupersedes(t *testing.T, s state.Store) {
	e1 := acquire(t, s, "gw-a", long)
	register(t, s, state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e1})
	e2 := acquire(t, s, "gw-a", long)
	if _, ok := lookup(t, s, 1); ok {
		t.Fatal("session of the superseded epoch still valid")
	}
	wantLeaseLost(t, "renew of the old epoch", s.Renew(ctx(t), "gw-a", e1, state.Load{}, long))
	if err := s.Renew(ctx(t), "gw-a", e2, state.Load{}, long); err != nil {
		t.Fatalf("renew of the new epoch: %v", err)
	}
	register(t, s, state.Session{UID: 1, Gateway: "gw-a", Conn: 2, Epoch: e2})
	if ses, ok := lookup(t, s, 1); !ok || ses.Epoch != e2 || ses.Conn != 2 {
		t.Fatalf("lookup after re-register: %+v %v", ses, ok)
	}
}

func testRegisterNeedsLiveEpoch(t *testing.T, s state.Store) {
	old := acquire(t, s, "gw-a", long)
	e := acquire(t, s, "gw-a", long)
	rel := acquire(t, s, "gw-r", long)
	if err := s.Release(ctx(t), "gw-r", rel); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		gateway string
		epoch   uint64
	}{
		{"unknown gateway", "gw-nope", e},
		{"epoch 0", "gw-a", 0},
		{"superseded epoch", "gw-a", old},
		{"future epoch", "gw-a", e + 1},
		{"released epoch", "gw-r", rel},
		{"another gateway's epoch", "gw-r", e},
	} {
		_, err := s.Register(ctx(t), state.Session{UID: 9, Gateway: tc.gateway, Conn: 1, Epoch: tc.epoch})
		wantLeaseLost(t, tc.name, err)
	}
	if _, ok := lookup(t, s, 9); ok {
		t.Fatal("a refused registration left a session")
	}
	register(t, s, state.Session{UID: 9, Gateway: "gw-a", Conn: 1, Epoch: e})
}

func testLookup(t *testing.T, s state.Store) {
	e := acquire(t, s, "gw-a", long)
	want := state.Session{UID: 1<<63 + 5, Gateway: "gw-a", Conn: 1<<64 - 1, Epoch: e}
	register(t, s, want)
	if got, ok := lookup(t, s, want.UID); !ok || got != want {
		t.Fatalf("lookup: %+v %v, want %+v", got, ok, want)
	}
	if _, ok := lookup(t, s, 12345); ok {
		t.Fatal("lookup of a user never registered found a session")
	}
}

// registerMany registers n sessions (uids base+1..base+n) on gateway id under epoch.
func registerMany(t *testing.T, s state.Store, id string, epoch, base uint64, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				uid := base + uint64(i) + 1
				if _, err := s.Register(ctx(t), state.Session{UID: uid, Gateway: id, Conn: uid, Epoch: epoch}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("register on %s: %v", id, err)
	}
}

// countValid returns how many of uids base+1..base+n have a valid session.
func countValid(t *testing.T, s state.Store, base uint64, n int) int {
	t.Helper()
	valid := 0
	for i := range n {
		if _, ok := lookup(t, s, base+uint64(i)+1); ok {
			valid++
		}
	}
	return valid
}

func testLapseInvalidatesAll(t *testing.T, s state.Store) {
	const n = 1000
	e := acquire(t, s, "gw-dies", long)
	other := acquire(t, s, "gw-lives", long)
	registerMany(t, s, "gw-dies", e, 0, n)
	registerMany(t, s, "gw-lives", other, 10_000, 10)
	if v := countValid(t, s, 0, n); v != n {
		t.Fatalf("%d of %d sessions valid before the lapse", v, n)
	}
	// Shorten the lease to lapse soon; the gateway then stops renewing.
	if err := s.Renew(ctx(t), "gw-dies", e, state.Load{}, short); err != nil {
		t.Fatal(err)
	}
	took := waitInvalid(t, s, n) // the last one registered
	if v := countValid(t, s, 0, n); v != 0 {
		t.Fatalf("%d of %d sessions still valid once the lease lapsed", v, n)
	}
	if v := countValid(t, s, 10_000, 10); v != 10 {
		t.Fatalf("%d of 10 sessions of the live gateway valid", v)
	}
	t.Logf("lapse seen %v after the last renewal", took)
}

func testReleaseInvalidatesAll(t *testing.T, s state.Store) {
	const n = 1000
	e := acquire(t, s, "gw-a", long)
	registerMany(t, s, "gw-a", e, 0, n)
	if err := s.Release(ctx(t), "gw-a", e); err != nil {
		t.Fatalf("release: %v", err)
	}
	if v := countValid(t, s, 0, n); v != 0 {
		t.Fatalf("%d of %d sessions valid after release", v, n)
	}
	wantLeaseLost(t, "renew after release", s.Renew(ctx(t), "gw-a", e, state.Load{}, long))
	wantLeaseLost(t, "second release", s.Release(ctx(t), "gw-a", e))
	if g := gateway(t, s, "gw-a"); g.Live(time.Now()) {
		t.Fatalf("released gateway listed live: %+v", g)
	}
}

func testStaleRelease(t *testing.T, s state.Store) {
	e1 := acquire(t, s, "gw-a", long)
	e2 := acquire(t, s, "gw-a", long)
	register(t, s, state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e2})
	wantLeaseLost(t, "release of the old epoch", s.Release(ctx(t), "gw-a", e1))
	if _, ok := lookup(t, s, 1); !ok {
		t.Fatal("releasing the old epoch invalidated the new one's session")
	}
	if g := gateway(t, s, "gw-a"); !g.Live(time.Now()) || g.Epoch != e2 {
		t.Fatalf("gateway after a stale release: %+v", g)
	}
}

func testRegisterReplaces(t *testing.T, s state.Store) {
	ea := acquire(t, s, "gw-a", long)
	eb := acquire(t, s, "gw-b", long)
	first := state.Session{UID: 42, Gateway: "gw-a", Conn: 1, Epoch: ea}
	moved := state.Session{UID: 42, Gateway: "gw-b", Conn: 7, Epoch: eb}
	if prev, err := s.Register(ctx(t), first); err != nil || prev != (state.Session{}) {
		t.Fatalf("first register: replaced %+v, err %v; want nothing replaced", prev, err)
	}
	if prev, err := s.Register(ctx(t), moved); err != nil || prev != first {
		t.Fatalf("register on another gateway: replaced %+v, err %v; want %+v", prev, err, first)
	}
	if got, ok := lookup(t, s, 42); !ok || got != moved {
		t.Fatalf("after moving gateways: %+v %v, want %+v", got, ok, moved)
	}
	// The old gateway's late cleanup must not remove the new session.
	if del, err := s.Unregister(ctx(t), first); err != nil || del {
		t.Fatalf("late unregister of the old session: deleted %v, err %v", del, err)
	}
	if got, ok := lookup(t, s, 42); !ok || got != moved {
		t.Fatalf("after the late unregister: %+v %v", got, ok)
	}
	// Nor must the old gateway dying.
	if err := s.Release(ctx(t), "gw-a", ea); err != nil {
		t.Fatal(err)
	}
	if got, ok := lookup(t, s, 42); !ok || got != moved {
		t.Fatalf("after the old gateway released: %+v %v", got, ok)
	}
}

func testUnregisterCompareAndDelete(t *testing.T, s state.Store) {
	old := acquire(t, s, "gw-a", long)
	e := acquire(t, s, "gw-a", long)
	acquire(t, s, "gw-b", long)
	cur := state.Session{UID: 5, Gateway: "gw-a", Conn: 2, Epoch: e}
	register(t, s, state.Session{UID: 5, Gateway: "gw-a", Conn: 1, Epoch: e}) // a reconnection follows
	register(t, s, cur)
	for _, tc := range []struct {
		name string
		s    state.Session
	}{
		{"the older connection", state.Session{UID: 5, Gateway: "gw-a", Conn: 1, Epoch: e}},
		{"an older epoch", state.Session{UID: 5, Gateway: "gw-a", Conn: 2, Epoch: old}},
		{"another gateway", state.Session{UID: 5, Gateway: "gw-b", Conn: 2, Epoch: e}},
		{"another user", state.Session{UID: 6, Gateway: "gw-a", Conn: 2, Epoch: e}},
	} {
		if del, err := s.Unregister(ctx(t), tc.s); err != nil || del {
			t.Fatalf("unregister of %s: deleted %v, err %v", tc.name, del, err)
		}
		if got, ok := lookup(t, s, 5); !ok || got != cur {
			t.Fatalf("after unregister of %s: %+v %v", tc.name, got, ok)
		}
	}
	if del, err := s.Unregister(ctx(t), cur); err != nil || !del {
		t.Fatalf("unregister of the current session: deleted %v, err %v", del, err)
	}
	if _, ok := lookup(t, s, 5); ok {
		t.Fatal("session still there after its unregister")
	}
	if del, err := s.Unregister(ctx(t), cur); err != nil || del {
		t.Fatalf("second unregister: deleted %v, err %v", del, err)
	}
}

func testSetDraining(t *testing.T, s state.Store) {
	acquire(t, s, "gw-a", long)
	for _, d := range []bool{true, false, true} {
		if err := s.SetDraining(ctx(t), "gw-a", d); err != nil {
			t.Fatal(err)
		}
		if g := gateway(t, s, "gw-a"); g.Draining != d {
			t.Fatalf("draining %v after setting %v", g.Draining, d)
		}
	}
	if err := s.SetDraining(ctx(t), "gw-nope", true); !errors.Is(err, state.ErrUnknownGateway) {
		t.Fatalf("draining an unknown gateway: %v, want ErrUnknownGateway", err)
	}
	// A new Acquire is a new registration: the gateway starts out not draining.
	acquire(t, s, "gw-a", long)
	if g := gateway(t, s, "gw-a"); g.Draining {
		t.Fatal("draining survived a new Acquire")
	}
}

func testGatewaysReport(t *testing.T, s state.Store) {
	before := time.Now()
	in := state.Gateway{ID: "gw-a", Addr: "10.0.0.1:7000", LinkAddr: "10.0.0.1:7002", AdminAddr: "10.0.0.1:7001",
		WSAddr: "10.0.0.1:7080", Epoch: 999, Expires: before.Add(time.Hour), Draining: true, Load: state.Load{Conns: 9}} // ignored
	e, err := s.Acquire(ctx(t), in, long)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	g := gateway(t, s, "gw-a")
	want := state.Gateway{ID: in.ID, Addr: in.Addr, LinkAddr: in.LinkAddr, AdminAddr: in.AdminAddr, WSAddr: in.WSAddr, Epoch: e}
	checkExpiry(t, g, before, after, long)
	g.Expires = time.Time{}
	if g != want {
		t.Fatalf("listed %+v, want %+v", g, want)
	}

	load := state.Load{Conns: 1200, MaxConns: 50_000, Sessions: 1100, AcceptRate: 12.5, CPU: 0.75,
		OutboundQueued: 1 << 20, WorkerQueue: 3}
	before = time.Now()
	if err := s.Renew(ctx(t), "gw-a", e, load, 2*long); err != nil {
		t.Fatal(err)
	}
	after = time.Now()
	g = gateway(t, s, "gw-a")
	checkExpiry(t, g, before, after, 2*long)
	if g.Load != load {
		t.Fatalf("load %+v, want %+v", g.Load, load)
	}

	e2 := acquire(t, s, "gw-b", long)
	if err := s.Release(ctx(t), "gw-b", e2); err != nil {
		t.Fatal(err)
	}
	gws, err := s.Gateways(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(gws) != 2 {
		t.Fatalf("%d gateways listed, want 2 (the released one included): %+v", len(gws), gws)
	}
}

// checkExpiry checks that g's lease expires ttl after a renewal made between before
// and after. The slack covers the backend's clock resolution and the listing's
// transit time (remote stores re-base expiry on the receiver's clock); the TTLs
// checked differ by a minute.
// testWSAddrRoundTrips checks that a gateway's WebSocket address is listed as
// acquired, and that each Acquire replaces it: a gateway re-acquiring without one
// (its WebSocket port turned off) is no longer listed with the old one.
func testWSAddrRoundTrips(t *testing.T, s state.Store) {
	for _, tc := range []struct {
		name, ws string
	}{
		{"with", "127.0.0.1:7080"},
		{"without", ""},
		{"with again", "127.0.0.1:7081"},
	} {
		in := state.Gateway{ID: "gw-ws", Addr: "127.0.0.1:7000", LinkAddr: "127.0.0.1:7002",
			AdminAddr: "127.0.0.1:7001", WSAddr: tc.ws}
		e, err := s.Acquire(ctx(t), in, long)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		g := gateway(t, s, "gw-ws")
		if g.Epoch != e || g.WSAddr != tc.ws || g.Addr != in.Addr || g.AdminAddr != in.AdminAddr {
			t.Fatalf("%s: listed %+v, want epoch %d and WSAddr %q", tc.name, g, e, tc.ws)
		}
	}
}

func checkExpiry(t *testing.T, g state.Gateway, before, after time.Time, ttl time.Duration) {
	t.Helper()
	const slack = time.Second
	lo, hi := before.Add(ttl-slack), after.Add(ttl+slack)
	if g.Expires.Before(lo) || g.Expires.After(hi) {
		t.Fatalf("expires %v, want within [%v, %v]", g.Expires, lo, hi)
	}
}

func testProbe(t *testing.T, s state.Store) {
	p, ok := s.(state.Prober)
	if !ok {
		t.Skip("not a Prober")
	}
	e := acquire(t, s, "gw-a", long)
	ses := state.Session{UID: 3, Gateway: "gw-a", Conn: 4, Epoch: e}
	register(t, s, ses)
	probe := func(uid uint64) (state.Session, state.LookupStatus) {
		t.Helper()
		got, st, err := p.Probe(ctx(t), uid)
		if err != nil {
			t.Fatal(err)
		}
		return got, st
	}
	if got, st := probe(3); st != state.LookupHit || got != ses {
		t.Fatalf("probe of a valid session: %v %+v", st, got)
	}
	if got, st := probe(77); st != state.LookupMiss || got != (state.Session{}) {
		t.Fatalf("probe of a user never registered: %v %+v", st, got)
	}
	if err := s.Release(ctx(t), "gw-a", e); err != nil {
		t.Fatal(err)
	}
	if got, st := probe(3); st != state.LookupInvalid || got != ses {
		t.Fatalf("first probe after release: %v %+v, want invalid %+v", st, got, ses)
	}
	if _, st := probe(3); st == state.LookupHit {
		t.Fatal("a dead session came back")
	}
}

// testConcurrent mixes registrations, lookups, unregisters, renewals and listings;
// each worker owns its uids, so it knows what its lookups must return. Run it under
// -race.
func testConcurrent(t *testing.T, s state.Store) {
	const workers, rounds, uids = 8, 60, 10
	epochs := map[string]uint64{"gw-a": acquire(t, s, "gw-a", long), "gw-b": acquire(t, s, "gw-b", long)}
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() { // a gateway renewing, and a router listing
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Renew(ctx(t), "gw-a", epochs["gw-a"], state.Load{Conns: 1}, long); err != nil {
				t.Error(err)
				return
			}
			if _, err := s.Gateways(ctx(t)); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			if err := concurrentWorker(ctx(t), s, epochs, uint64(w)*1000, rounds, uids); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(stop)
	bg.Wait()
}

func concurrentWorker(ctx context.Context, s state.Store, epochs map[string]uint64, base uint64, rounds, uids int) error {
	for r := range rounds {
		gw := []string{"gw-a", "gw-b"}[r%2]
		for i := range uids {
			uid := base + uint64(i) + 1
			want := state.Session{UID: uid, Gateway: gw, Conn: uint64(r), Epoch: epochs[gw]}
			if _, err := s.Register(ctx, want); err != nil {
				return fmt.Errorf("register %+v: %w", want, err)
			}
			got, ok, err := s.Lookup(ctx, uid)
			if err != nil || !ok || got != want {
				return fmt.Errorf("lookup %d: %+v %v %v, want %+v", uid, got, ok, err, want)
			}
			if i%3 == 0 {
				if del, err := s.Unregister(ctx, want); err != nil || !del {
					return fmt.Errorf("unregister %+v: %v %v", want, del, err)
				}
			}
		}
	}
	return nil
}

// A gateway that lost its lease registers its sessions again under the new epoch,
// but only those no newer login replaced meanwhile.
func testReregister(t *testing.T, s state.Store) {
	e1 := acquire(t, s, "gw-a", long)
	eb := acquire(t, s, "gw-b", long)
	kept := state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e1}
	taken := state.Session{UID: 2, Gateway: "gw-a", Conn: 2, Epoch: e1}
	swept := state.Session{UID: 3, Gateway: "gw-a", Conn: 3, Epoch: e1}
	for _, ses := range []state.Session{kept, taken, swept} {
		register(t, s, ses)
	}
	e2 := acquire(t, s, "gw-a", long) // the lease was lost and acquired again
	newer := state.Session{UID: 2, Gateway: "gw-b", Conn: 9, Epoch: eb}
	register(t, s, newer)             // uid 2 logged in elsewhere meanwhile
	if _, ok := lookup(t, s, 3); ok { // the lookup reclaims uid 3's dead session
		t.Fatal("a session of the superseded epoch is valid")
	}

	again := func(ses state.Session) error { ses.Epoch = e2; return s.Reregister(ctx(t), ses) }
	if err := again(kept); err != nil {
		t.Fatalf("reregister of a session nobody replaced: %v", err)
	}
	if err := again(swept); err != nil {
		t.Fatalf("reregister of a session whose dead record was reclaimed: %v", err)
	}
	if err := again(taken); !errors.Is(err, state.ErrReplaced) {
		t.Fatalf("reregister over a newer login: %v, want ErrReplaced", err)
	}
	for uid, want := range map[uint64]state.Session{
		1: {UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e2},
		2: newer,
		3: {UID: 3, Gateway: "gw-a", Conn: 3, Epoch: e2},
	} {
		if got, ok := lookup(t, s, uid); !ok || got != want {
			t.Errorf("uid %d: %+v %v, want %+v", uid, got, ok, want)
		}
	}
	wantLeaseLost(t, "reregister under a dead epoch", s.Reregister(ctx(t), kept))
}

// A batch re-registration gives each session what Reregister would: stored,
// replaced by a newer login (left alone), or refused under a dead epoch.
func testReregisterBatch(t *testing.T, s state.Store) {
	b, ok := s.(state.BatchReregisterer)
	if !ok {
		t.Skip("the store re-registers one session at a time")
	}
	e1 := acquire(t, s, "gw-a", long)
	eb := acquire(t, s, "gw-b", long)
	for uid := uint64(1); uid <= 3; uid++ {
		register(t, s, state.Session{UID: uid, Gateway: "gw-a", Conn: uid, Epoch: e1})
	}
	e2 := acquire(t, s, "gw-a", long)
	newer := state.Session{UID: 2, Gateway: "gw-b", Conn: 9, Epoch: eb}
	register(t, s, newer)
	batch := []state.Session{{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e2}, {UID: 2, Gateway: "gw-a", Conn: 2, Epoch: e2},
		{UID: 3, Gateway: "gw-a", Conn: 3, Epoch: e2}, {UID: 4, Gateway: "gw-a", Conn: 4, Epoch: e2}}
	errs, err := b.ReregisterBatch(ctx(t), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 4 || errs[0] != nil || !errors.Is(errs[1], state.ErrReplaced) || errs[2] != nil || errs[3] != nil {
		t.Fatalf("results %v, want stored, replaced, stored, stored", errs)
	}
	for _, want := range []state.Session{batch[0], newer, batch[2], batch[3]} {
		if got, ok := lookup(t, s, want.UID); !ok || got != want {
			t.Errorf("uid %d: %+v %v, want %+v", want.UID, got, ok, want)
		}
	}
	stale := []state.Session{{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e1}}
	if errs, err := b.ReregisterBatch(ctx(t), stale); err != nil || !errors.Is(errs[0], state.ErrLeaseLost) {
		t.Fatalf("a batch under a dead epoch: %v, %v; want lease lost", errs, err)
	}
}
