package reports

import (
	"math"
	"slices"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/floodgate/floodgate/loadgen"
	"gonum.org/v1/plot"
)

// nan is a gap in a per-second series.
var nan = math.NaN()

// sameSeries reports whether two series agree, NaN matching NaN.
func sameSeries(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool {
		return x == y || math.IsNaN(x) && math.IsNaN(y) || math.Abs(x-y) < 1e-9
	})
}

// A reading is carried forward over up to stale missed seconds (a missed
// scrape is not a drop to zero), never past its process's exit; the latest
// reading in a second wins; sources add up; NaN where none has a value.
func TestPerSecondCarriesReadingsForwardAndSums(t *testing.T) {
	t.Parallel()
	a := []tpoint{{0.5, 10}, {1.5, 12}, {4.5, 14}}
	tests := []struct {
		name   string
		src    map[string][]tpoint
		exits  map[string][]float64
		lo, hi int
		stale  int
		want   []float64
	}{
		{"carried over a short gap", map[string][]tpoint{"a": a}, nil, 0, 4, 2, []float64{10, 12, 12, 12, 14}},
		{"not past stale seconds", map[string][]tpoint{"a": a}, nil, 0, 4, 1, []float64{10, 12, 12, nan, 14}},
		{"not past an exit", map[string][]tpoint{"a": a}, map[string][]float64{"a": {2.2}}, 0, 4, 2, []float64{10, 12, nan, nan, 14}},
		{"another process's exit is not ours", map[string][]tpoint{"a": a}, map[string][]float64{"b": {2.2}}, 0, 4, 2, []float64{10, 12, 12, 12, 14}},
		{"the latest in a second", map[string][]tpoint{"a": {{0.2, 5}, {0.8, 7}}}, nil, 0, 0, 2, []float64{7}},
		{"sources add up", map[string][]tpoint{"a": {{0.5, 1}, {1.5, 1}, {2.5, 1}}, "b": {{1.5, 2}}}, nil, 0, 3, 0, []float64{1, 3, 1, nan}},
		{"before the first reading", map[string][]tpoint{"a": {{2.5, 4}}}, nil, 0, 3, 5, []float64{nan, nan, 4, 4}},
		{"negative seconds", map[string][]tpoint{"a": {{-1.5, 3}, {0.5, 6}}}, nil, -2, 0, 2, []float64{3, 3, 6}},
		{"readings outside the range", map[string][]tpoint{"a": {{-5, 1}, {9, 1}}}, nil, 0, 2, 2, []float64{nan, nan, nan}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			xs, ys := perSecond(tc.src, tc.exits, tc.lo, tc.hi, tc.stale)
			if !sameSeries(ys, tc.want) {
				t.Fatalf("ys %v, want %v", ys, tc.want)
			}
			for i, x := range xs {
				if x != float64(tc.lo+i) {
					t.Fatalf("xs %v: not every whole second from %d", xs, tc.lo)
				}
			}
		})
	}
	if xs, ys := perSecond(map[string][]tpoint{"a": a}, nil, 3, 2, 2); xs != nil || ys != nil {
		t.Fatalf("an empty range gave %v %v", xs, ys)
	}
}

// Cumulative readings become per-second rates at the second of the later
// reading; a drop or a restart between two readings counts from zero; sources
// add up; readings at the same instant are skipped.
func TestRatesFromCumulativeReadings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		src      map[string][]tpoint
		restarts map[string][]float64
		want     []float64
	}{
		{"steady", map[string][]tpoint{"a": {{0.5, 0}, {1.5, 10}, {2.5, 30}}}, nil, []float64{nan, 10, 20, nan}},
		{"over two seconds", map[string][]tpoint{"a": {{0.5, 0}, {2.5, 30}}}, nil, []float64{nan, nan, 15, nan}},
		{"a counter that dropped", map[string][]tpoint{"a": {{0.5, 0}, {1.5, 100}, {2.5, 5}}}, nil, []float64{nan, 100, 5, nan}},
		{"a restart between", map[string][]tpoint{"a": {{0.5, 0}, {1.5, 100}, {2.5, 150}}}, map[string][]float64{"a": {2.0}}, []float64{nan, 100, 150, nan}},
		{"a restart at the earlier reading is before it", map[string][]tpoint{"a": {{0.5, 0}, {1.5, 100}, {2.5, 150}}}, map[string][]float64{"a": {1.5}}, []float64{nan, 100, 50, nan}},
		{"sources add up", map[string][]tpoint{"a": {{0.5, 0}, {1.5, 10}}, "b": {{0.5, 0}, {1.5, 5}, {3.5, 25}}}, nil, []float64{nan, 15, nan, 10}},
		{"the same instant twice", map[string][]tpoint{"a": {{0.5, 0}, {0.5, 50}, {1.5, 60}}}, nil, []float64{nan, 10, nan, nan}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ys := rates(tc.src, tc.restarts, 0, 3)
			if !sameSeries(ys, tc.want) {
				t.Fatalf("ys %v, want %v", ys, tc.want)
			}
		})
	}
}

func TestSecondsRangeSpansEverySource(t *testing.T) {
	t.Parallel()
	if _, _, ok := secondsRange(); ok {
		t.Fatal("no sources, yet a range")
	}
	if _, _, ok := secondsRange(map[string][]tpoint{"a": nil}); ok {
		t.Fatal("no points, yet a range")
	}
	lo, hi, ok := secondsRange(map[string][]tpoint{"a": {{3.2, 1}, {0.1, 1}}}, map[string][]tpoint{"b": {{-1.5, 1}}, "c": {{7.99, 0}}})
	if !ok || lo != -2 || hi != 7 {
		t.Fatalf("range %d..%d (%v), want -2..7", lo, hi, ok)
	}
}

func TestExitedBetweenIsHalfOpen(t *testing.T) {
	t.Parallel()
	exits := []float64{2, 5}
	for _, tc := range []struct {
		a, b float64
		want bool
	}{
		{0, 1, false}, {1, 2, true}, {2, 3, false}, {4, 5, true}, {5, 9, false}, {0, 9, true},
	} {
		if got := exitedBetween(exits, tc.a, tc.b); got != tc.want {
			t.Errorf("exitedBetween(%v, %g, %g) = %v, want %v", exits, tc.a, tc.b, got, tc.want)
		}
	}
	if exitedBetween(nil, 0, 100) {
		t.Fatal("no exits, yet one between")
	}
}

// histOf returns a series holding the given values in microseconds.
func histOf(t *testing.T, vs ...int64) hist {
	t.Helper()
	p := hdr.NewPacked(1, int64(time.Hour/time.Microsecond), 3)
	for _, v := range vs {
		if err := p.RecordValue(v); err != nil {
			t.Fatal(err)
		}
	}
	var h hist
	h.add(p)
	return h
}

// A percentile curve runs from x = 1 (p0) at 25 points a decade to x = the
// sample count, where it reaches the maximum; latencies never fall as x grows.
func TestPercentileCurve(t *testing.T) {
	t.Parallel()
	if xs, ys := percentileCurve(hist{}); xs != nil || ys != nil {
		t.Fatalf("an empty series gave %v %v", xs, ys)
	}
	var vs []int64
	for i := range 1000 {
		vs = append(vs, int64(1000+i*10)) // 1 ms to 11 ms
	}
	xs, ys := percentileCurve(histOf(t, vs...))
	if xs[0] != 1 || xs[len(xs)-1] != 1000 || len(xs) != 76 {
		t.Fatalf("%d points from %g to %g, want 76 from 1 to 1000", len(xs), xs[0], xs[len(xs)-1])
	}
	if last := ys[len(ys)-1]; math.Abs(last-11) > 0.01 {
		t.Fatalf("the curve ends at %g ms, want the maximum, 11 ms", last)
	}
	if math.Abs(ys[0]-1) > 0.01 {
		t.Fatalf("the curve starts at %g ms, want the minimum, 1 ms", ys[0])
	}
	for i := 1; i < len(xs); i++ {
		if xs[i] <= xs[i-1] || ys[i] < ys[i-1] {
			t.Fatalf("point %d (%g, %g) after (%g, %g): not increasing", i, xs[i], ys[i], xs[i-1], ys[i-1])
		}
	}
	xs, ys = percentileCurve(histOf(t, 1500))
	if !slices.Equal(xs, []float64{1}) || !slices.Equal(ys, []float64{1.5}) {
		t.Fatalf("one sample: %v %v, want one point at (1, 1.5 ms)", xs, ys)
	}
}

// Log bins are a tenth of a decade of milliseconds each, from the lowest
// sample's bin to the highest's, empty ones included; every sample is in one.
func TestLogBins(t *testing.T) {
	t.Parallel()
	h := histOf(t, 1000, 1000, 1000, 1000, 1000, 10_000, 10_000, 10_000)
	bins := logBins(h, 10)
	if len(bins) != 11 {
		t.Fatalf("%d bins, want 11 (1 ms to 10 ms, a tenth of a decade each)", len(bins))
	}
	total := 0.0
	for i, b := range bins {
		total += b.Weight
		if lo := math.Pow(10, float64(i)/10); math.Abs(b.Min-lo) > 1e-9 || math.Abs(b.Max-math.Pow(10, float64(i+1)/10)) > 1e-9 {
			t.Fatalf("bin %d spans %g..%g, want from %g", i, b.Min, b.Max, lo)
		}
		if want := map[int]float64{0: 5, 10: 3}[i]; b.Weight != want {
			t.Fatalf("bin %d holds %g, want %g", i, b.Weight, want)
		}
	}
	if total != 8 {
		t.Fatalf("bins hold %g samples, want 8", total)
	}
	// Sub-microsecond samples count as 1 µs, 3 decades below a millisecond.
	if b := logBins(histOf(t, 1), 1); len(b) != 1 || b[0].Min != 1e-3 {
		t.Fatalf("a 1 µs sample's bin %+v, want one from 0.001 ms", b)
	}
}

// The offered rate is a step per phase that ran: its own rate, or the plan's for
// a phase without one (not the previous phase's).
func TestOfferedRateStepsOverThePhases(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "warm", secs: 10, rate: 500}, fxPhase{name: "plain", secs: 5}, fxPhase{name: "peak", secs: 10, rate: 1000})
	f.steadySystem(1000)
	r, err := loadRun(f.write(), nil)
	if err != nil {
		t.Fatal(err)
	}
	xs, ys := analyse(r).offered()
	if !slices.Equal(xs, []float64{0, 10, 10, 15, 15, 25}) || !slices.Equal(ys, []float64{500, 500, 100, 100, 1000, 1000}) {
		t.Fatalf("offered %v at %v; want 500, the plan's 100, then 1000, over 0–10, 10–15, 15–25 s", ys, xs)
	}
	r.plan = nil
	if xs, ys := analyse(r).offered(); xs != nil || ys != nil {
		t.Fatalf("without a plan: %v %v", xs, ys)
	}
}

// Every SLI tag and trace hop has its own title for humans; an unknown tag is
// shown as it is.
func TestTagTitlesAreDistinctAndReadable(t *testing.T) {
	t.Parallel()
	tags := slices.Clone(loadgen.Tags)
	for _, h := range traceHops() {
		if !slices.Contains(tags, h.tag) {
			tags = append(tags, h.tag)
		}
	}
	seen := map[string]string{}
	for _, tag := range tags {
		title := tagTitle(tag)
		if title == tag || title == "" {
			t.Errorf("tag %q has no title", tag)
		}
		if other, dup := seen[title]; dup {
			t.Errorf("tags %q and %q share the title %q", other, tag, title)
		}
		seen[title] = tag
	}
	if got := tagTitle("made_up"); got != "made_up" {
		t.Errorf("an unknown tag's title %q", got)
	}
}

// A run with no gateway metrics, agent progress or process samples says so on
// the plots that would show them, rather than drawing empty axes.
func TestPlotsWithoutSamplesSaySo(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 5})
	r, err := loadRun(f.write(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := analyse(r)
	for name, tc := range map[string]struct {
		panels []*plot.Plot
		says   string
	}{
		"connections": {a.connectionPlots(), "no gateway metrics or agent progress recorded"},
		"send rate":   {a.ratePlots()[:1], "no agent progress recorded"},
		"resources":   {a.resourcePlots(), "no process samples recorded"},
		"reconnects":  {a.reconnectPlots()[:1], "no reconnects in this run"},
	} {
		if !slices.Contains(drawnTexts(tc.panels[0]), tc.says) {
			t.Errorf("%s: the plot does not say %q: %q", name, tc.says, drawnTexts(tc.panels[0]))
		}
	}
}
