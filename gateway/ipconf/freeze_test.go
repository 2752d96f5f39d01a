package ipconf

import (
	"slices"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
)

// TestFreeze runs sequences of tables through Update and checks, after each, the
// advertised ids (sorted) and the frozen flag.
func TestFreeze(t *testing.T) {
	const freeze = 30 * time.Second
	type step struct {
		advance time.Duration
		table   func(clk *clock) []state.Gateway
		want    []string
		frozen  bool
	}
	four := func(clk *clock) []state.Gateway { return fleet(clk, 100, 200, 300, 400) }
	only := func(keep ...string) func(clk *clock) []state.Gateway {
		return func(clk *clock) []state.Gateway {
			var out []state.Gateway
			for _, g := range four(clk) {
				if slices.Contains(keep, g.ID) {
					out = append(out, g)
				}
			}
			return out
		}
	}
	all := []string{"g0", "g1", "g2", "g3"}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"one gateway lapsing drops out at once", []step{
			{0, four, all, false},
			{time.Second, only("g0", "g1", "g2"), []string{"g0", "g1", "g2"}, false},
		}},
		{"losing exactly half is believed", []step{
			{0, four, all, false},
			{time.Second, only("g0", "g1"), []string{"g0", "g1"}, false},
		}},
		{"losing more than half freezes for the freeze period", []step{
			{0, four, all, false},
			{time.Second, only("g0"), all, true},
			{freeze - time.Second, only("g0"), all, true},
			{time.Second, only("g0"), []string{"g0"}, false}, // period over: accepted
			{time.Second, only("g0"), []string{"g0"}, false}, // and it is the new baseline
		}},
		{"an empty table freezes too", []step{
			{0, four, all, false},
			{time.Second, only(), all, true},
		}},
		{"the fleet coming back lifts the freeze at once", []step{
			{0, four, all, false},
			{time.Second, only("g0"), all, true},
			{time.Second, four, all, false},
			{time.Second, only("g0", "g1", "g2"), []string{"g0", "g1", "g2"}, false},
		}},
		{"new gateways are advertised during a freeze", []step{
			{0, four, all, false},
			{time.Second, func(clk *clock) []state.Gateway {
				return append(only("g0")(clk), gw(clk, "n1", 0), gw(clk, "n2", 0))
			}, append(slices.Clone(all), "n1", "n2"), true},
		}},
		{"a mass drain is not a loss", []step{
			{0, four, all, false},
			{time.Second, func(clk *clock) []state.Gateway {
				gws := four(clk)
				for i := 1; i < 4; i++ {
					gws[i].Draining = true
				}
				return gws
			}, []string{"g0"}, false},
		}},
		{"a vanished gateway marked draining drops out of a frozen list", []step{
			{0, four, all, false},
			{time.Second, func(clk *clock) []state.Gateway {
				gws := four(clk)
				for i := 1; i < 4; i++ {
					gws[i].Expires = clk.Now() // lapsed
				}
				gws[3].Draining = true
				return gws
			}, []string{"g0", "g1", "g2"}, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			s := newService(t, clk, func(c *Config) { c.FreezeFor = freeze })
			for i, st := range tc.steps {
				clk.Advance(st.advance)
				s.Update(st.table(clk))
				v := s.current.Load()
				got := ids(s)
				slices.Sort(got)
				if !slices.Equal(got, st.want) || v.frozen != st.frozen {
					t.Fatalf("step %d: advertised %v frozen %v, want %v frozen %v", i, got, v.frozen, st.want, st.frozen)
				}
				wantGauge := 0.0
				if st.frozen {
					wantGauge = 1
				}
				if g := gaugeValue(t, s.metrics.frozen); g != wantGauge {
					t.Fatalf("step %d: frozen gauge %v, want %v", i, g, wantGauge)
				}
			}
		})
	}
}
