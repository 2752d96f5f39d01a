package control

import (
	"slices"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestAlerts runs sequences of tables through Update and checks the events each
// one emits.
func TestAlerts(t *testing.T) {
	type step struct {
		advance time.Duration
		table   func(clk *clock) []state.Gateway
		want    []brief
	}
	one := func(mut func(clk *clock, g *state.Gateway)) func(clk *clock) []state.Gateway {
		return func(clk *clock) []state.Gateway {
			g := gw(clk, "g1", 100)
			if mut != nil {
				mut(clk, &g)
			}
			return []state.Gateway{g}
		}
	}
	healthy := one(nil)
	// lapsed keeps the expiry the last renewal set (3s after epoch0).
	lapsed := one(func(_ *clock, g *state.Gateway) { g.Expires = epoch0.Add(3 * time.Second) })
	none := func(*clock) []state.Gateway { return nil }
	loaded := func(conns int, outbound int64, workers int) func(clk *clock) []state.Gateway {
		return one(func(_ *clock, g *state.Gateway) {
			g.Load.Conns, g.Load.OutboundQueued, g.Load.WorkerQueue = conns, outbound, workers
		})
	}
	down, soft, cong := KindGatewayDown, KindOverSoftLimit, KindCongestion
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"a lapsed lease is down until re-acquired", []step{
			{0, healthy, nil},
			{5 * time.Second, lapsed, []brief{raised(down, "g1")}},
			{time.Second, lapsed, nil}, // still down: not raised again
			{time.Second, one(func(_ *clock, g *state.Gateway) { g.Epoch = 2 }), []brief{resolved(down, "g1")}},
		}},
		{"a released lease is not down", []step{
			{0, healthy, nil},
			{time.Second, one(func(clk *clock, g *state.Gateway) { g.Expires = clk.Now() }), nil},
		}},
		{"a lapse whose expiry shifted back a little is still down", []step{
			{0, healthy, nil},
			{5 * time.Second, one(func(_ *clock, g *state.Gateway) { g.Expires = epoch0.Add(2900 * time.Millisecond) }),
				[]brief{raised(down, "g1")}},
		}},
		{"a drained gateway leaving is not down", []step{
			{0, healthy, nil},
			{time.Second, one(func(_ *clock, g *state.Gateway) { g.Draining = true }), nil},
			{5 * time.Second, func(*clock) []state.Gateway { return nil }, nil},
		}},
		{"a gateway dropped from the table is down until it returns", []step{
			{0, healthy, nil},
			{time.Second, none, []brief{raised(down, "g1")}},
			{time.Second, none, nil},
			{time.Second, healthy, []brief{resolved(down, "g1")}},
		}},
		{"a new epoch between two observations lost its sessions", []step{
			{0, healthy, nil},
			{time.Second, one(func(_ *clock, g *state.Gateway) { g.Epoch = 2 }),
				[]brief{raised(down, "g1"), resolved(down, "g1")}},
		}},
		{"a gateway never seen live raises nothing", []step{
			{0, one(func(_ *clock, g *state.Gateway) { g.Expires = epoch0.Add(-time.Second) }), nil},
			{5 * time.Second, none, nil},
		}},
		{"over the soft limit, with a margin before resolving", []step{
			{0, loaded(900, 0, 0), nil}, // at the limit is not over it
			{time.Second, loaded(901, 0, 0), []brief{raised(soft, "g1")}},
			{time.Second, loaded(950, 0, 0), nil},
			{time.Second, loaded(811, 0, 0), nil}, // above 0.9 × 900
			{time.Second, loaded(810, 0, 0), []brief{resolved(soft, "g1")}},
		}},
		{"congestion on either signal, resolved when both clear", []step{
			{0, loaded(0, 64<<20, 0), nil},
			{time.Second, loaded(0, 64<<20+1, 0), []brief{raised(cong, "g1")}},
			{time.Second, loaded(0, 0, 1001), nil},
			{time.Second, loaded(0, 0, 901), nil},
			{time.Second, loaded(0, 0, 900), []brief{resolved(cong, "g1")}},
		}},
		{"a gateway going down resolves its load alerts", []step{
			{0, loaded(1000, 0, 5000), []brief{raised(soft, "g1"), raised(cong, "g1")}},
			{5 * time.Second, lapsed, []brief{raised(down, "g1"), resolved(soft, "g1"), resolved(cong, "g1")}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			s := newService(t, clk, &fakeStore{})
			var seen uint64
			for i, st := range tc.steps {
				clk.Advance(st.advance)
				s.Update(st.table(clk))
				events, last, _ := s.Alerts(seen)
				seen = last
				if got := briefs(events); !slices.Equal(got, append([]brief{}, st.want...)) {
					t.Fatalf("step %d: events %v, want %v", i, got, st.want)
				}
			}
		})
	}
}

func TestAlertMetrics(t *testing.T) {
	clk := newClock()
	s := newService(t, clk, &fakeStore{})
	a, b := gw(clk, "a", 950), gw(clk, "b", 990)
	s.Update([]state.Gateway{a, b})
	check := func(kind Kind, total, active float64) {
		t.Helper()
		if got := testutil.ToFloat64(s.metrics.alerts.WithLabelValues(string(kind))); got != total {
			t.Errorf("alerts_total{%s} = %v, want %v", kind, got, total)
		}
		if got := testutil.ToFloat64(s.metrics.active.WithLabelValues(string(kind))); got != active {
			t.Errorf("active_alerts{%s} = %v, want %v", kind, got, active)
		}
	}
	check(KindOverSoftLimit, 2, 2)
	check(KindGatewayDown, 0, 0)
	clk.Advance(time.Second)
	a.Load.Conns = 0
	s.Update([]state.Gateway{a}) // b vanished
	check(KindOverSoftLimit, 2, 0)
	check(KindGatewayDown, 1, 1)
}
