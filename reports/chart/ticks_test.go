package chart

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/plot"
)

// labels returns the labelled ticks' labels, in order.
func labels(ts []plot.Tick) []string {
	var out []string
	for _, t := range ts {
		if t.Label != "" {
			out = append(out, t.Label)
		}
	}
	return out
}

// Tick labels print the shortest exact text: durations in the largest unit
// that keeps them at or above one, round numbers with thousands separators or
// an M or G suffix, and nothing for rounding noise around zero.
func TestTickLabels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got, want string
	}{
		{TickMS(0.5), "500 µs"}, {TickMS(0.02), "20 µs"}, {TickMS(0.001), "1 µs"}, {TickMS(1), "1 ms"}, {TickMS(20), "20 ms"},
		{TickMS(250), "250 ms"}, {TickMS(999), "999 ms"}, {TickMS(1000), "1 s"}, {TickMS(1500), "1.5 s"}, {TickMS(20_000), "20 s"},

		{TickNumber(0), "0"}, {TickNumber(1e-13), "0"}, {TickNumber(-1e-13), "0"}, {TickNumber(5), "5"}, {TickNumber(2500), "2,500"},
		{TickNumber(-2500), "-2,500"}, {TickNumber(999_999), "999,999"}, {TickNumber(0.25), "0.25"}, {TickNumber(0.1 + 0.2), "0.3"},
		{TickNumber(-0.5), "-0.5"}, {TickNumber(1e6), "1M"}, {TickNumber(3e6), "3M"}, {TickNumber(2.5e6), "2.5M"},
		{TickNumber(-4e6), "-4M"}, {TickNumber(1.5e9), "1.5G"}, {TickNumber(2e9), "2G"},

		{groupThousands(0), "0"}, {groupThousands(7), "7"}, {groupThousands(999), "999"}, {groupThousands(1000), "1,000"},
		{groupThousands(12_345), "12,345"}, {groupThousands(123_456), "123,456"}, {groupThousands(1_234_567), "1,234,567"},
		{groupThousands(-1), "-1"}, {groupThousands(-1000), "-1,000"}, {groupThousands(-123_456_789), "-123,456,789"},
	}
	for i, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("label %d: %q, want %q", i, tc.got, tc.want)
		}
	}
}

// A log axis of milliseconds is labelled at every decade, and at 2× and 5× too
// when it spans less than three decades; a range that is not positive,
// increasing and finite has no ticks.
func TestLogMsTicks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		lo, hi float64
		want   []string
	}{
		{"three decades: decades only", 1, 1000, []string{"1 ms", "10 ms", "100 ms", "1 s"}},
		{"under three decades: 2× and 5× too", 1, 500, []string{"1 ms", "2 ms", "5 ms", "10 ms", "20 ms", "50 ms", "100 ms", "200 ms", "500 ms", "1 s", "2 s", "5 s"}},
		{"sub-millisecond", 0.05, 0.5, []string{"10 µs", "20 µs", "50 µs", "100 µs", "200 µs", "500 µs", "1 ms", "2 ms", "5 ms"}},
		{"zero low end", 0, 10, nil},
		{"negative low end", -1, 10, nil},
		{"empty range", 10, 10, nil},
		{"reversed range", 10, 1, nil},
		{"infinite high end", 1, math.Inf(1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := LogMsTicks{}.Ticks(tc.lo, tc.hi)
			if got := labels(ts); !slices.Equal(got, tc.want) {
				t.Fatalf("labels %q, want %q", got, tc.want)
			}
			// Every decade has its 2× and 5× tick, labelled or not.
			if len(ts)%3 != 0 {
				t.Fatalf("%d ticks: not a decade, a 2× and a 5× each", len(ts))
			}
		})
	}
}

// A linear axis is labelled at a round step giving at most ten steps, with four
// unlabelled ticks between labels; an empty or non-finite range has no ticks.
func TestNiceTicks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		lo, hi float64
		want   []string
	}{
		{"step 10", 0, 100, []string{"0", "10", "20", "30", "40", "50", "60", "70", "80", "90", "100"}},
		{"step 500 with thousands", 0, 2500, []string{"0", "500", "1,000", "1,500", "2,000", "2,500"}},
		{"step 0.05", 0.5, 0.8, []string{"0.5", "0.55", "0.6", "0.65", "0.7", "0.75", "0.8"}},
		{"negative", -20, 20, []string{"-20", "-15", "-10", "-5", "0", "5", "10", "15", "20"}},
		{"millions", 0, 5e6, []string{"0", "500,000", "1M", "1.5M", "2M", "2.5M", "3M", "3.5M", "4M", "4.5M", "5M"}},
		{"empty range", 3, 3, nil},
		{"reversed range", 3, 1, nil},
		{"infinite", 0, math.Inf(1), nil},
		{"not a number", math.NaN(), 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := NiceTicks{}.Ticks(tc.lo, tc.hi)
			if got := labels(ts); !slices.Equal(got, tc.want) {
				t.Fatalf("labels %q, want %q", got, tc.want)
			}
			if len(tc.want) > 0 && len(ts) != 5*(len(tc.want)-1)+1 {
				t.Fatalf("%d ticks for %d labels, want four between each", len(ts), len(tc.want))
			}
		})
	}
}

// A time axis is labelled in whole seconds at a round step giving at most a
// dozen steps, with minor ticks a fifth of a step (a third for 15 and 30 s).
func TestTimeTicks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		lo, hi     float64
		want       []string
		minorSteps int
	}{
		{"seconds", 0, 10, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}, 5},
		{"step 5", 0, 60, []string{"0", "5", "10", "15", "20", "25", "30", "35", "40", "45", "50", "55", "60"}, 5},
		{"step 30, thirds", 0, 300, []string{"0", "30", "60", "90", "120", "150", "180", "210", "240", "270", "300"}, 3},
		{"step 15, thirds", -10, 170, []string{"0", "15", "30", "45", "60", "75", "90", "105", "120", "135", "150", "165"}, 3},
		{"step 5 min", 0, 3600, []string{"0", "300", "600", "900", "1200", "1500", "1800", "2100", "2400", "2700", "3000", "3300", "3600"}, 5},
		{"empty", 5, 5, nil, 0},
		{"not a number", 0, math.NaN(), nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := TimeTicks{}.Ticks(tc.lo, tc.hi)
			got := labels(ts)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("labels %q, want %q", got, tc.want)
			}
			if len(ts) == 0 {
				return
			}
			between := 0
			for _, tk := range ts[1:] {
				if tk.Label != "" {
					break
				}
				between++
			}
			if tc.want != nil && ts[0].Label != "" && between != tc.minorSteps-1 {
				t.Fatalf("%d unlabelled ticks after the first label, want %d", between, tc.minorSteps-1)
			}
		})
	}
}

// Four hours and more step by four hours: the labels grow past a dozen rather
// than the steps past any round duration, and the ticks stay bounded.
func TestTimeTicksOnVeryLongRuns(t *testing.T) {
	t.Parallel()
	ts := TimeTicks{}.Ticks(0, 48*3600)
	if got := labels(ts); len(got) != 13 || got[1] != "14400" {
		t.Fatalf("labels %q, want every 14400 s", got)
	}
	if ts := (TimeTicks{}).Ticks(0, 1e9); len(ts) > maxTicks {
		t.Fatalf("%d ticks, want at most %d", len(ts), maxTicks)
	}
}

// An axis of 1/(1−p) is labelled at 0%, 50% and each nine up to its top.
func TestPercentileTicks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hi   float64
		want []string
	}{
		{5, []string{"0%", "50%"}},
		{10, []string{"0%", "50%", "90%"}},
		{1000, []string{"0%", "50%", "90%", "99%", "99.9%"}},
		{250_000, []string{"0%", "50%", "90%", "99%", "99.9%", "99.99%", "99.999%"}},
		{math.Inf(1), nil}, // checked apart: bounded
	} {
		ts := PercentileTicks{}.Ticks(1, tc.hi)
		if math.IsInf(tc.hi, 0) {
			if len(ts) > 3*400 {
				t.Fatalf("an infinite axis gave %d ticks", len(ts))
			}
			continue
		}
		if got := labels(ts); !slices.Equal(got, tc.want) {
			t.Errorf("hi %g: labels %q, want %q", tc.hi, got, tc.want)
		}
	}
}

// Far from zero a minor step no longer moves the value (1e16 + 0.04 == 1e16):
// the linear tickers still return, with at most maxTicks ticks.
func TestLinearTickersEndFarFromZero(t *testing.T) {
	t.Parallel()
	for _, r := range [][2]float64{{1e16, 1e16 + 2}, {-1e17, -1e17 + 16}, {1e300, 1.0000001e300}} {
		for name, tk := range map[string]plot.Ticker{"nice": NiceTicks{}, "time": TimeTicks{}} {
			if ts := tk.Ticks(r[0], r[1]); len(ts) > maxTicks {
				t.Errorf("%s ticks over %v: %d, want at most %d", name, r, len(ts), maxTicks)
			}
		}
	}
}

// Any range gives a bounded, increasing list of ticks inside it (within
// rounding), from every ticker.
func FuzzTickers(f *testing.F) {
	for _, seed := range [][2]float64{{0, 1}, {0, 100}, {0.5, 0.8}, {-20, 20}, {1, 1000}, {0.05, 0.5}, {1e16, 1e16 + 2},
		{0, 1e9}, {3, 3}, {5, 1}, {1, 250_000}, {-1e308, 1e308}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, lo, hi float64) {
		for name, tk := range map[string]plot.Ticker{"nice": NiceTicks{}, "time": TimeTicks{}, "logms": LogMsTicks{}} {
			ts := tk.Ticks(lo, hi)
			if len(ts) > maxTicks+3*700 {
				t.Fatalf("%s over [%g, %g]: %d ticks", name, lo, hi, len(ts))
			}
			for i := 1; i < len(ts); i++ {
				if ts[i].Value < ts[i-1].Value {
					t.Fatalf("%s over [%g, %g]: ticks out of order at %d: %v", name, lo, hi, i, ts[i-1:i+1])
				}
			}
			if name == "logms" || len(ts) == 0 {
				continue // log ticks run to the decade past each end
			}
			slack := (hi-lo)/1e3 + 1e-9*max(math.Abs(lo), math.Abs(hi)) // float rounding far from zero
			if ts[0].Value < lo-slack || ts[len(ts)-1].Value > hi+slack {
				t.Fatalf("%s over [%g, %g]: ticks from %g to %g", name, lo, hi, ts[0].Value, ts[len(ts)-1].Value)
			}
		}
	})
}
