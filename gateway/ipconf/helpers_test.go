package ipconf

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// epoch0 is the fake clock's start.
var epoch0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

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

// newService returns a Service on clk with a seeded RNG and no log output.
func newService(t *testing.T, clk *clock, mutate ...func(*Config)) *Service {
	t.Helper()
	cfg := Config{Now: clk.Now, Rand: rand.New(rand.NewPCG(1, 2)), Logger: slog.New(slog.DiscardHandler)}
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// gw is a live gateway (lease valid for 3s from now) with conns of 1000 taken.
func gw(clk *clock, id string, conns int) state.Gateway {
	return state.Gateway{ID: id, Addr: id + ":7000", LinkAddr: id + ":7002", Epoch: 1,
		Expires: clk.Now().Add(3 * time.Second), Load: state.Load{Conns: conns, MaxConns: 1000}}
}

// fleet returns live gateways with the given conns, named g0, g1, ...
func fleet(clk *clock, conns ...int) []state.Gateway {
	var gws []state.Gateway
	for i, c := range conns {
		gws = append(gws, gw(clk, "g"+string(rune('0'+i)), c))
	}
	return gws
}

// ids lists the ids of the current view, in score order.
func ids(s *Service) []string {
	var out []string
	if v := s.current.Load(); v != nil {
		for _, e := range v.entries {
			out = append(out, e.ID)
		}
	}
	return out
}

// fakeSource is a Source whose table and error the test sets.
type fakeSource struct {
	mu    sync.Mutex
	gws   []state.Gateway
	err   error
	calls int
}

func (f *fakeSource) Gateways(context.Context) ([]state.Gateway, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return append([]state.Gateway(nil), f.gws...), f.err
}

func (f *fakeSource) set(gws []state.Gateway, err error) {
	f.mu.Lock()
	f.gws, f.err = gws, err
	f.mu.Unlock()
}

// gaugeValue reads a single-series collector.
func gaugeValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}
