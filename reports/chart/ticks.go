package chart

import (
	"math"
	"strconv"

	"gonum.org/v1/plot"
)

// maxTicks bounds the ticks a linear ticker returns. A plot needs a few dozen;
// the bound keeps a range far from zero, where adding a step no longer moves
// the value (1e16 + 0.2 == 1e16), from looping forever.
const maxTicks = 1000

// LogMsTicks marks a log axis of milliseconds at every decade, labelled as
// durations ("100 ms", "1 s"), with 2× and 5× ticks that are labelled too when
// the axis spans less than three decades. An axis that is not a finite,
// positive, increasing range has no ticks.
type LogMsTicks struct{}

// Ticks implements plot.Ticker.
func (LogMsTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= lo || math.IsInf(hi, 0) {
		return nil
	}
	dense := math.Log10(hi/lo) < 3
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		d := math.Pow(10, e)
		ts = append(ts, plot.Tick{Value: d, Label: TickMS(d)})
		for _, m := range []float64{2, 5} {
			t := plot.Tick{Value: m * d}
			if dense {
				t.Label = TickMS(m * d)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// NiceTicks marks a linear axis at a round step (1, 2 or 5 × 10ⁿ) giving at
// most ten steps (eleven labels), printed without spurious decimals, with four
// unlabelled ticks between labels.
type NiceTicks struct{}

// Ticks implements plot.Ticker.
func (NiceTicks) Ticks(lo, hi float64) []plot.Tick {
	span := hi - lo
	if span <= 0 || math.IsInf(span, 0) || math.IsNaN(span) {
		return nil
	}
	mag := math.Pow(10, math.Floor(math.Log10(span/10)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * mag; span/step <= 10 {
			break
		}
	}
	var ts []plot.Tick
	minor := step / 5
	for v, n := math.Ceil(lo/minor)*minor, 0; v <= hi+minor/1e6 && n < maxTicks; v, n = v+minor, n+1 {
		t := plot.Tick{Value: v}
		if r := math.Round(v / step); math.Abs(v/step-r) < 1e-6 {
			t.Label = TickNumber(r * step)
		}
		ts = append(ts, t)
	}
	return ts
}

// TickNumber prints a round tick value: 2500 as "2,500", 0.25 as "0.25", 3e6
// as "3M".
func TickNumber(v float64) string {
	if math.Abs(v) < 1e-12 {
		return "0"
	}
	for _, u := range []struct {
		div    float64
		suffix string
	}{{1e9, "G"}, {1e6, "M"}} {
		if math.Abs(v) >= u.div {
			return strconv.FormatFloat(v/u.div, 'f', -1, 64) + u.suffix
		}
	}
	if v == math.Trunc(v) {
		return groupThousands(int64(v))
	}
	return strconv.FormatFloat(math.Round(v*1e6)/1e6, 'f', -1, 64)
}

// groupThousands prints an integer with a comma between groups of three digits.
func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return sign + string(out)
}

// TimeTicks marks a time axis in whole seconds at a round step (1, 2, 5, 10,
// 15, 30 s, 1, 2, 5, 10 min … 4 h) giving at most a dozen steps where that step
// allows, with unlabelled ticks between.
type TimeTicks struct{}

// Ticks implements plot.Ticker.
func (TimeTicks) Ticks(lo, hi float64) []plot.Tick {
	span := hi - lo
	if span <= 0 || math.IsInf(span, 0) || math.IsNaN(span) {
		return nil
	}
	step := 1.0
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400} {
		step = s
		if span/s <= 12 {
			break
		}
	}
	minor := step / 5
	if step == 15 || step == 30 {
		minor = step / 3
	}
	var ts []plot.Tick
	for v, n := math.Ceil(lo/minor)*minor, 0; v <= hi && n < maxTicks; v, n = v+minor, n+1 {
		t := plot.Tick{Value: v}
		if r := math.Round(v / step); math.Abs(v/step-r) < 1e-9 {
			t.Label = strconv.FormatFloat(r*step, 'f', -1, 64)
		}
		ts = append(ts, t)
	}
	return ts
}

// PercentileTicks marks an axis of x = 1/(1−p) at 0%, 50%, 90%, 99%, … up to
// hi (and short of infinity), with unlabelled 2× and 5× ticks between the nines.
type PercentileTicks struct{}

// Ticks implements plot.Ticker.
func (PercentileTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := []plot.Tick{{Value: 1, Label: "0%"}, {Value: 2, Label: "50%"}, {Value: 5}}
	for x, nines := 10.0, 1; x <= hi*1.0001 && !math.IsInf(x, 0); x, nines = x*10, nines+1 {
		label := strconv.FormatFloat(100-100/x, 'f', max(nines-2, 0), 64) + "%"
		ts = append(ts, plot.Tick{Value: x, Label: label})
		for _, m := range []float64{2, 5} {
			ts = append(ts, plot.Tick{Value: x * m})
		}
	}
	return ts
}

// TickMS labels a round number of milliseconds with the shortest exact text:
// "500 µs", "20 ms", "1 s", "1.5 s".
func TickMS(ms float64) string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	switch {
	case ms < 1:
		return f(math.Round(ms*1e6)/1e3) + " µs"
	case ms < 1000:
		return f(ms) + " ms"
	}
	return f(ms/1000) + " s"
}
