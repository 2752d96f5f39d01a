package cluster

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// cuttable is a gateway's view of a shared state store that a partition can cut:
// while cut, every call goes unanswered until its context ends, as across a
// network that drops everything silently.
type cuttable struct {
	state.Store
	cut atomic.Bool
	// slow: calls go unanswered as when cut, but the link still hears from the
	// state service (a service far behind with requests, not a partition).
	slow atomic.Bool
}

// Silent is the link's view: nothing heard while cut.
func (s *cuttable) Silent() time.Duration {
	if s.cut.Load() && !s.slow.Load() {
		return time.Hour
	}
	return 0
}

func (s *cuttable) silence(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func (s *cuttable) Acquire(ctx context.Context, g state.Gateway, ttl time.Duration) (uint64, error) {
	if s.cut.Load() {
		return 0, s.silence(ctx)
	}
	return s.Store.Acquire(ctx, g, ttl)
}

func (s *cuttable) Renew(ctx context.Context, id string, epoch uint64, l state.Load, ttl time.Duration) error {
	if s.cut.Load() {
		return s.silence(ctx)
	}
	return s.Store.Renew(ctx, id, epoch, l, ttl)
}

func (s *cuttable) Gateways(ctx context.Context) ([]state.Gateway, error) {
	if s.cut.Load() {
		return nil, s.silence(ctx)
	}
	return s.Store.Gateways(ctx)
}

// fencedGateway is one running Cluster on a cuttable view of a shared store.
type fencedGateway struct {
	c    *Cluster
	gw   *fakeGateway
	view *cuttable
}

func startFenced(t *testing.T, id string, shared state.Store) *fencedGateway {
	t.Helper()
	view := &cuttable{Store: shared}
	gw := newFakeGateway(node.Session{UID: 1, ID: 1})
	c, err := New(Config{ID: id, LinkAddr: "127.0.0.1:0", Secret: []byte("cluster-test-secret-0123"),
		State: view, Msgs: msg.NewMemory(64), LeaseTTL: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c.Attach(gw)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, ClientAddrs{Addr: "127.0.0.1:7000"}); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-c.Ready()
	return &fencedGateway{c: c, gw: gw, view: view}
}

// waitPeers waits until g knows n peers (its first table fetch).
func (g *fencedGateway) waitPeers(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if p := g.c.peers.Load(); p != nil && len(*p) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never learnt its %d peers", g.c.cfg.ID, n)
		}
	}
}

// waitAnswer waits until g would answer a peer's MethodLease with want.
func (g *fencedGateway) waitAnswer(t *testing.T, want byte) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); g.c.leaseStatus()[0] != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never answered %d to a lease question", g.c.cfg.ID, want)
		}
	}
}

// waitVerdict waits until g has reached verdict ("isolate" or "hold") at least once.
func (g *fencedGateway) waitVerdict(t *testing.T, verdict string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(g.c.m.isolation[verdict]) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q verdict within 10s", g.c.cfg.ID, verdict)
		}
	}
}

func (g *fencedGateway) isolations() int {
	g.gw.mu.Lock()
	defer g.gw.mu.Unlock()
	return g.gw.isolations
}

// A gateway cut off from the state service moves its clients away only when it
// can tell that it, not the state service, is the one cut off: a peer still holds
// its lease, or no peer answers at all. When every peer that answers is cut off
// too (the state service is down) or it knows no peer, it holds its clients —
// kicking them would only send them into a cluster that cannot log anyone in.
// When the cut heals it holds a lease again and rejoins.
func TestCutOffGatewayIsolatesOnlyWhenAPeerStillHoldsItsLease(t *testing.T) {
	for _, tc := range []struct {
		name     string
		gateways int
		cut      []int // which gateways lose the state service
		isolated []int // which of them must isolate; the others must hold
		slow     bool  // the cut ones still hear from it: slow, not gone
	}{
		{name: "one of two behind a slow state service", gateways: 2, cut: []int{0}, slow: true},
		{name: "one of two cut off", gateways: 2, cut: []int{0}, isolated: []int{0}},
		{name: "state down for both", gateways: 2, cut: []int{0, 1}},
		{name: "lone gateway", gateways: 1, cut: []int{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shared := state.NewMemory(state.MemoryConfig{})
			gs := make([]*fencedGateway, tc.gateways)
			for i := range gs {
				gs[i] = startFenced(t, "gw-"+string(rune('1'+i)), shared)
			}
			for _, g := range gs {
				g.waitPeers(t, tc.gateways-1)
				g.waitAnswer(t, gwlink.LeaseHeld) // a TTL of steady contact
			}
			for _, i := range tc.cut {
				gs[i].view.slow.Store(tc.slow)
				gs[i].view.cut.Store(true)
			}
			must := map[int]bool{}
			for _, i := range tc.isolated {
				must[i] = true
			}
			for _, i := range tc.cut {
				switch {
				case tc.slow:
					// No decision at all: its lease lapses, but the service is heard.
					g := gs[i]
					for end := time.Now().Add(5 * g.c.cfg.LeaseTTL); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
						if n := testutil.ToFloat64(g.c.m.isolation["isolate"]) + testutil.ToFloat64(g.c.m.isolation["hold"]); n != 0 {
							t.Fatalf("%s asked its peers behind a state service that still answers", g.c.cfg.ID)
						}
					}
					if g.c.leaseStatus()[0] != 0 {
						t.Fatalf("%s kept a live lease with its renewals unanswered", g.c.cfg.ID)
					}
				case must[i]:
					gs[i].gw.waitFor(t, gs[i].c.cfg.ID+" to isolate itself", func() bool { return gs[i].gw.isolated })
				default:
					gs[i].waitVerdict(t, "hold")
				}
			}
			for i, g := range gs {
				if got, want := g.isolations(), map[bool]int{true: 1}[must[i]]; got != want {
					t.Errorf("%s isolated itself %d times, want %d", g.c.cfg.ID, got, want)
				}
			}
			// The cut heals: a lease is held again, and an isolated gateway rejoins.
			for _, i := range tc.cut {
				gs[i].view.cut.Store(false)
			}
			for _, i := range tc.isolated {
				gs[i].gw.waitFor(t, gs[i].c.cfg.ID+" to rejoin", func() bool { return !gs[i].gw.isolated })
				gs[i].waitAnswer(t, gwlink.LeaseHeld)
			}
		})
	}
}

// A gateway answers a peer that it holds its lease only after a TTL of steady
// contact with the state service: one that has just regained it (the service was
// out for everyone, and this gateway redialled first) must not make a peer still
// redialling take itself for the only one cut off.
func TestLeaseAnswerWaitsForATTLOfSteadyContact(t *testing.T) {
	shared := state.NewMemory(state.MemoryConfig{})
	g := startFenced(t, "gw-1", shared)
	g.waitAnswer(t, gwlink.LeaseHeld)
	g.view.cut.Store(true)
	g.waitAnswer(t, gwlink.LeaseNone)
	g.view.cut.Store(false)
	regained := time.Now()
	for !g.c.stateAnswers.Load() {
		time.Sleep(time.Millisecond) // polling an observable condition
	}
	if b := g.c.leaseStatus()[0]; b != gwlink.LeaseNone && time.Since(regained) < g.c.cfg.LeaseTTL {
		t.Fatalf("answered %d within %v of regaining the state service", b, time.Since(regained))
	}
	g.waitAnswer(t, gwlink.LeaseHeld)
	if took := time.Since(regained); took < g.c.cfg.LeaseTTL {
		t.Fatalf("answered held %v after regaining the state service, want at least a TTL (%v)", took, g.c.cfg.LeaseTTL)
	}
}

// A gateway that wakes from a freeze finds its lease lapsed and its link silent
// for as long as it slept, yet nothing is cut: it renews within moments and must
// not move its clients meanwhile.
func TestGatewayThatWakesToALapsedLeaseDoesNotIsolate(t *testing.T) {
	shared := state.NewMemory(state.MemoryConfig{})
	g1, g2 := startFenced(t, "gw-1", shared), startFenced(t, "gw-2", shared)
	for _, g := range []*fencedGateway{g1, g2} {
		g.waitPeers(t, 1)
		g.waitAnswer(t, gwlink.LeaseHeld)
	}
	g1.view.cut.Store(true) // as seen on waking: silent for long, the lease gone
	for deadline := time.Now().Add(10 * time.Second); g1.c.now() < g1.c.validUntil.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("gw-1's lease never lapsed")
		}
	}
	g1.view.cut.Store(false) // it redials and renews
	for deadline := time.Now().Add(10 * time.Second); g1.c.epoch.Load() == 0 || g1.c.now() >= g1.c.validUntil.Load(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("gw-1 never held its lease again")
		}
	}
	if n := g1.isolations(); n != 0 {
		t.Fatalf("gw-1 isolated itself %d times on waking", n)
	}
}
