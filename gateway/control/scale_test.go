package control

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
)

// even returns n live gateways sharing conns evenly, each with maxConns.
func even(clk *clock, n, conns, maxConns int) []state.Gateway {
	gws := make([]state.Gateway, n)
	for i := range gws {
		gws[i] = gw(clk, fmt.Sprintf("g%d", i), conns/n)
		gws[i].Load.MaxConns = maxConns
	}
	return gws
}

func TestRecommendationTargets(t *testing.T) {
	for _, tc := range []struct {
		name             string
		n, conns, max    int
		draining         int // how many of the n are draining
		action           Action
		gateways, target int
	}{
		{"high utilisation scales out toward mid-band", 4, 3600, 1000, 0, ActionScaleOut, 4, 7},
		{"just over the high watermark adds at least one", 4, 3040, 1000, 0, ActionScaleOut, 4, 6},
		{"low utilisation scales in", 10, 1000, 1000, 0, ActionScaleIn, 10, 2},
		{"scale in never below the minimum", 3, 600, 1000, 0, ActionScaleIn, 3, 2},
		{"at the minimum nothing is removed", 2, 100, 1000, 0, ActionNone, 2, 2},
		{"in band", 4, 2000, 1000, 0, ActionNone, 4, 4},
		{"one gateway is below the minimum", 1, 100, 1000, 0, ActionScaleOut, 1, 2},
		{"no gateways", 0, 0, 1000, 0, ActionScaleOut, 0, 2},
		{"no capacity reported", 3, 0, 0, 0, ActionNone, 3, 3},
		{"draining gateways' clients count against the rest", 4, 2400, 1000, 1, ActionScaleOut, 3, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			s := newService(t, clk, &fakeStore{}, func(c *Config) { c.Sustain = 10 * time.Second })
			for range 3 { // held for longer than Sustain
				gws := even(clk, tc.n, tc.conns, tc.max)
				for i := range tc.draining {
					gws[i].Draining = true
				}
				s.Update(gws)
				clk.Advance(6 * time.Second)
			}
			r := s.Recommendation()
			if r.Action != tc.action || r.Gateways != tc.gateways || r.Target != tc.target || r.Reason == "" {
				t.Fatalf("got %+v, want %s %d → %d", r, tc.action, tc.gateways, tc.target)
			}
		})
	}
}

func TestRecommendationHysteresis(t *testing.T) {
	clk := newClock()
	s := newService(t, clk, &fakeStore{}, func(c *Config) { c.Sustain = 30 * time.Second })
	if r := s.Recommendation(); r.Action != ActionNone || !strings.Contains(r.Reason, "no gateway table") {
		t.Fatalf("before any table: %+v", r)
	}
	for i, st := range []struct {
		advance time.Duration
		conns   int // over 4 gateways of 1000
		want    Action
	}{
		{0, 3600, ActionNone},                // high, just started
		{20 * time.Second, 3600, ActionNone}, // high for 20s
		{5 * time.Second, 2800, ActionNone},  // dips into the band: starts over
		{5 * time.Second, 3600, ActionNone},  // high again, from here
		{29 * time.Second, 3600, ActionNone}, // 29s
		{time.Second, 3600, ActionScaleOut},  // 30s: recommended
		{time.Second, 3600, ActionScaleOut},  // and stays so
		{time.Second, 1000, ActionNone},      // low: a new pending call, not an instant flip
		{30 * time.Second, 1000, ActionScaleIn},
	} {
		clk.Advance(st.advance)
		s.Update(even(clk, 4, st.conns, 1000))
		if r := s.Recommendation(); r.Action != st.want {
			t.Fatalf("step %d: %+v, want %s", i, r, st.want)
		}
	}
}
