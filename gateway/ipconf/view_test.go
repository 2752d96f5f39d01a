package ipconf

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestAdvertisesLiveNonDrainingByScore(t *testing.T) {
	clk := newClock()
	s := newService(t, clk)
	gws := fleet(clk, 600, 100, 900, 300, 0, 0, 0)
	gws[4].Draining = true                // withdrawn
	gws[5].Expires = clk.Now()            // lease lapsed
	gws[6].Addr = ""                      // no client address
	gws = append(gws, gw(clk, "g7", 300)) // ties with g3: broken by id
	s.Update(gws)

	if got, want := ids(s), []string{"g1", "g3", "g7", "g0", "g2"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	v := s.current.Load()
	var sum float64
	for _, e := range v.entries {
		sum += e.Weight
	}
	if !near(sum, 1, 1e-9) {
		t.Fatalf("weights sum to %v", sum)
	}
	// Weights are proportional to remaining capacity here: 0.9, 0.7, 0.7, 0.4, 0.1 of 2.8.
	if w := v.entries[0].Weight; !near(w, 0.9/2.8, 1e-9) {
		t.Fatalf("best weight %v, want %v", w, 0.9/2.8)
	}
}

func TestFullFleetGetsEqualWeights(t *testing.T) {
	clk := newClock()
	s := newService(t, clk)
	s.Update(fleet(clk, 1000, 1000, 1000, 1000))
	for _, e := range s.current.Load().entries {
		if e.Weight != 0.25 {
			t.Fatalf("%s weight %v, want 0.25", e.ID, e.Weight)
		}
	}
}

// TestTopKIsWeightedRandom checks the head of the answer is drawn in proportion to
// weight, the tail stays in score order, and K bounds the shuffled part.
func TestTopKIsWeightedRandom(t *testing.T) {
	entries := []entry{ // scores 0.6 : 0.3 : 0.1 in the head
		{ID: "a", Score: 0.6}, {ID: "b", Score: 0.3}, {ID: "c", Score: 0.1},
		{ID: "d", Score: 0.05}, {ID: "e", Score: 0.02},
	}
	v := newView(entries, false, epoch0)
	rng := rand.New(rand.NewPCG(7, 7))
	const n = 40000
	first := map[string]int{}
	heads := map[string]bool{}
	var dst []entry
	for range n {
		dst = v.arrange(dst[:0], 3, rng)
		first[dst[0].ID]++
		heads[dst[0].ID+dst[1].ID+dst[2].ID] = true
		if dst[3].ID != "d" || dst[4].ID != "e" {
			t.Fatalf("tail %v, want d e", dst[3:])
		}
	}
	total := 0.6 + 0.3 + 0.1
	for id, score := range map[string]float64{"a": 0.6, "b": 0.3, "c": 0.1} {
		got, want := float64(first[id])/n, score/total
		// 4 standard deviations of a binomial proportion.
		if tol := 4 * math.Sqrt(want*(1-want)/n); !near(got, want, tol) {
			t.Errorf("%s first in %.4f of answers, want %.4f ± %.4f", id, got, want, tol)
		}
	}
	if len(heads) != 6 {
		t.Errorf("saw %d distinct head orders, want all 6", len(heads))
	}

	for _, tc := range []struct {
		k    int
		want []string // fixed prefix, or nil when shuffled
	}{
		{0, []string{"a", "b", "c", "d", "e"}}, // K=0: pure score order
		{1, []string{"a", "b", "c", "d", "e"}}, // one slot: nothing to shuffle
	} {
		if got := v.arrange(nil, tc.k, rng); !slices.EqualFunc(got, tc.want, func(e entry, id string) bool { return e.ID == id }) {
			t.Errorf("K=%d: %v, want %v", tc.k, got, tc.want)
		}
	}
	if got := v.arrange(nil, 10, rng); len(got) != 5 {
		t.Errorf("K beyond the fleet: %d entries, want 5", len(got))
	}
}

func TestZeroWeightHeadIsShuffledUniformly(t *testing.T) {
	v := &view{entries: []entry{{ID: "a"}, {ID: "b"}}}
	rng := rand.New(rand.NewPCG(3, 4))
	seen := map[string]int{}
	for range 1000 {
		seen[v.arrange(nil, 2, rng)[0].ID]++
	}
	if seen["a"] < 400 || seen["b"] < 400 {
		t.Fatalf("first picks %v: want both near 500", seen)
	}
}

func TestSmoothedLoadDrivesTheOrder(t *testing.T) {
	clk := newClock()
	s := newService(t, clk, func(c *Config) { c.Window = 10 * time.Second })
	s.Update(fleet(clk, 100, 200)) // g0 better
	// g0 spikes for one renewal, one second later: the smoothed g0 stays ahead.
	clk.Advance(time.Second)
	s.Update(fleet(clk, 400, 200))
	if got := ids(s); got[0] != "g0" {
		t.Fatalf("one spike reordered the list: %v", got)
	}
	// Sustained, the spike wins out.
	for range 30 {
		clk.Advance(time.Second)
		s.Update(fleet(clk, 400, 200))
	}
	if got := ids(s); got[0] != "g1" {
		t.Fatalf("a sustained load change did not reorder the list: %v", got)
	}
}
