package control

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
)

var (
	epoch0     = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	secret     = []byte("cluster-key-for-the-control-tests-0123")
	adminToken = []byte("admin-token-for-the-control-tests-0123")
)

// clock is a manually advanced clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: epoch0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// drainCall is one SetDraining call seen by fakeStore.
type drainCall struct {
	id string
	on bool
}

// fakeStore is a Store holding a table the test sets. SetDraining records its
// calls and, like the real store, sets the flag in the table.
type fakeStore struct {
	mu          sync.Mutex
	gws         []state.Gateway
	err         error // returned by SetDraining when set
	calls       []drainCall
	gatewaysErr error
}

func (f *fakeStore) Gateways(context.Context) ([]state.Gateway, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.gws), f.gatewaysErr
}

func (f *fakeStore) SetDraining(_ context.Context, id string, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, drainCall{id, on})
	if f.err != nil {
		return f.err
	}
	for i := range f.gws {
		if f.gws[i].ID == id {
			f.gws[i].Draining = on
			return nil
		}
	}
	return state.ErrUnknownGateway
}

func (f *fakeStore) set(gws ...state.Gateway) {
	f.mu.Lock()
	f.gws = gws
	f.mu.Unlock()
}

func (f *fakeStore) drainCalls() []drainCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func newService(t *testing.T, clk *clock, store Store, mutate ...func(*Config)) *Service {
	t.Helper()
	cfg := Config{Now: clk.Now, LinkSecret: secret, AdminToken: adminToken, Logger: slog.New(slog.DiscardHandler)}
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// gw is a live gateway (lease valid for 3s from now) holding conns of 1000.
func gw(clk *clock, id string, conns int) state.Gateway {
	return state.Gateway{ID: id, Addr: id + ":7000", LinkAddr: id + ":7002", Epoch: 1,
		Expires: clk.Now().Add(3 * time.Second), Load: state.Load{Conns: conns, MaxConns: 1000}}
}

// brief is an event without its seq, time and detail, for comparisons.
type brief struct {
	kind     Kind
	gateway  string
	resolved bool
}

func (b brief) String() string {
	if b.resolved {
		return fmt.Sprintf("%s(%s) resolved", b.kind, b.gateway)
	}
	return fmt.Sprintf("%s(%s)", b.kind, b.gateway)
}

func briefs(events []Event) []brief {
	out := []brief{}
	for _, e := range events {
		out = append(out, brief{e.Kind, e.Gateway, e.Resolved})
	}
	return out
}

func raised(k Kind, gw string) brief   { return brief{k, gw, false} }
func resolved(k Kind, gw string) brief { return brief{k, gw, true} }
