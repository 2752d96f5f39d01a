package state_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
	"github.com/floodgate/floodgate/gateway/state/statetest"
)

func TestMemoryStore(t *testing.T) {
	statetest.Run(t, func(*testing.T) state.Store { return state.NewMemory(state.MemoryConfig{}) })
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newFakeMemory(retention time.Duration) (*state.Memory, *fakeClock) {
	clk := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	return state.NewMemory(state.MemoryConfig{Now: clk.Now, Retention: retention, Shards: 4}), clk
}

// A lease ending in each possible way makes its sessions garbage that one Sweep
// reclaims, leaving live sessions alone; a second Sweep finds nothing to do.
func TestMemorySweepReclaimsDeadEpochs(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(m *state.Memory, clk *fakeClock, epoch uint64) error
	}{
		{"lapse", func(_ *state.Memory, clk *fakeClock, _ uint64) error { clk.Advance(11 * time.Second); return nil }},
		{"release", func(m *state.Memory, _ *fakeClock, e uint64) error { return m.Release(t.Context(), "gw-a", e) }},
		{"new epoch", func(m *state.Memory, _ *fakeClock, _ uint64) error {
			_, err := m.Acquire(t.Context(), state.Gateway{ID: "gw-a"}, 10*time.Second)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, clk := newFakeMemory(time.Hour)
			ctx := t.Context()
			ea, _ := m.Acquire(ctx, state.Gateway{ID: "gw-a"}, 10*time.Second)
			eb, _ := m.Acquire(ctx, state.Gateway{ID: "gw-b"}, time.Hour)
			for uid := range uint64(100) {
				gw, e := "gw-a", ea
				if uid%4 == 0 {
					gw, e = "gw-b", eb
				}
				if _, err := m.Register(ctx, state.Session{UID: uid + 1, Gateway: gw, Conn: uid, Epoch: e}); err != nil {
					t.Fatal(err)
				}
			}
			if n, _ := m.Sessions(ctx); n != 100 {
				t.Fatalf("%d valid sessions, want 100", n)
			}
			if n, _ := m.Sweep(ctx); n != 0 {
				t.Fatalf("sweep with every lease live reclaimed %d", n)
			}
			if err := tc.end(m, clk, ea); err != nil {
				t.Fatal(err)
			}
			if n, _ := m.Sessions(ctx); n != 25 {
				t.Fatalf("%d valid sessions after gw-a's lease ended, want 25", n)
			}
			if m.Stored() != 100 {
				t.Fatalf("%d stored before the sweep, want 100 (nothing reclaimed yet)", m.Stored())
			}
			if n, err := m.Sweep(ctx); n != 75 || err != nil {
				t.Fatalf("sweep reclaimed %d (%v), want 75", n, err)
			}
			if m.Stored() != 25 {
				t.Fatalf("%d stored after the sweep, want 25", m.Stored())
			}
			if n, _ := m.Sweep(ctx); n != 0 {
				t.Fatalf("second sweep reclaimed %d", n)
			}
		})
	}
}

func TestMemoryLookupReclaimsDeadSessions(t *testing.T) {
	m, _ := newFakeMemory(time.Hour)
	ctx := t.Context()
	e, _ := m.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Minute)
	m.Register(ctx, state.Session{UID: 1, Gateway: "gw-a", Conn: 1, Epoch: e})
	m.Release(ctx, "gw-a", e)
	if _, st, _ := m.Probe(ctx, 1); st != state.LookupInvalid {
		t.Fatalf("probe after release: %v", st)
	}
	if m.Stored() != 0 {
		t.Fatalf("%d stored after a lookup found the session dead", m.Stored())
	}
	if _, st, _ := m.Probe(ctx, 1); st != state.LookupMiss {
		t.Fatalf("second probe: %v", st)
	}
}

// A dead gateway is listed for the retention, then forgotten; coming back, it still
// gets a larger epoch.
func TestMemoryForgetsGatewaysAfterRetention(t *testing.T) {
	m, clk := newFakeMemory(time.Minute)
	ctx := t.Context()
	e1, _ := m.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Second)
	clk.Advance(30 * time.Second)
	m.Sweep(ctx)
	if gws, _ := m.Gateways(ctx); len(gws) != 1 {
		t.Fatalf("dead gateway dropped before its retention: %+v", gws)
	}
	clk.Advance(time.Minute)
	m.Sweep(ctx)
	if gws, _ := m.Gateways(ctx); len(gws) != 0 {
		t.Fatalf("dead gateway still listed after its retention: %+v", gws)
	}
	if err := m.SetDraining(ctx, "gw-a", true); !errors.Is(err, state.ErrUnknownGateway) {
		t.Fatalf("draining a forgotten gateway: %v", err)
	}
	if e2, _ := m.Acquire(ctx, state.Gateway{ID: "gw-a"}, time.Second); e2 <= e1 {
		t.Fatalf("epoch %d after forgetting epoch %d", e2, e1)
	}
}

// Epochs start above the clock in microseconds, so a restarted store never reissues
// an epoch a peer may still cache.
func TestMemoryEpochsStartAboveTheClock(t *testing.T) {
	m, clk := newFakeMemory(time.Hour)
	e, _ := m.Acquire(t.Context(), state.Gateway{ID: "gw-a"}, time.Second)
	if floor := uint64(clk.Now().UnixMicro()); e <= floor {
		t.Fatalf("first epoch %d, want above %d", e, floor)
	}
}

func TestMemoryRejectsBadArguments(t *testing.T) {
	m, _ := newFakeMemory(time.Hour)
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"empty id", func() error { _, err := m.Acquire(ctx, state.Gateway{}, time.Second); return err }()},
		{"zero ttl", func() error { _, err := m.Acquire(ctx, state.Gateway{ID: "a"}, 0); return err }()},
		{"sub-ms ttl", func() error { _, err := m.Acquire(ctx, state.Gateway{ID: "a"}, time.Microsecond); return err }()},
	} {
		if tc.err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
