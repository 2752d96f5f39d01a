package reports

import (
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/floodgate/floodgate/loadgen"
)

// hist accumulates the histograms of one series (one tag over some stretch of the
// run, every agent merged). The zero value is an empty series. Merging is exact:
// every agent uses the same range and precision, so the merged histogram is the
// one a single histogram fed every value would hold.
type hist struct {
	p       *hdr.PackedHistogram
	dropped int64 // counts a merge could not hold (a histogram of another range)
}

// add merges h in; h is not modified or retained.
func (a *hist) add(h *hdr.PackedHistogram) {
	if h == nil || h.TotalCount() == 0 {
		return
	}
	if a.p == nil {
		a.p = h.Clone()
		return
	}
	a.dropped += a.p.Merge(h)
}

// merge adds another series.
func (a *hist) merge(o hist) {
	a.add(o.p)
	a.dropped += o.dropped
}

// count is the number of samples.
func (a hist) count() int64 {
	if a.p == nil {
		return 0
	}
	return a.p.TotalCount()
}

// Latency summarises one latency series, in microseconds: the same figures an agent
// reports for its own histograms. A series with no samples has Count 0 and every
// other field 0: check Count before reading the rest.
type Latency = loadgen.Percentiles

// latency summarises the series. Percentiles are HdrHistogram's: the highest
// value equivalent to the sample at that rank (3 significant digits).
func (a hist) latency() Latency {
	if a.count() == 0 {
		return Latency{}
	}
	v := a.p.ValueAtPercentilesSlice([]float64{50, 90, 99, 99.9, 99.99})
	return Latency{Count: a.p.TotalCount(), P50: v[0], P90: v[1], P99: v[2], P999: v[3], P9999: v[4], Max: a.p.Max()}
}

// stat returns one statistic of the series ("p50" … "max", or "count"), in
// microseconds. ok is false when the series has no samples, except for "count",
// which is a measurement even at zero.
func (a hist) stat(name string) (v float64, ok bool) {
	if name == "count" {
		return float64(a.count()), true
	}
	if a.count() == 0 {
		return 0, false
	}
	l := a.latency()
	switch name {
	case "p50":
		return float64(l.P50), true
	case "p90":
		return float64(l.P90), true
	case "p99":
		return float64(l.P99), true
	case "p999":
		return float64(l.P999), true
	case "p9999":
		return float64(l.P9999), true
	case "max":
		return float64(l.Max), true
	}
	return 0, false
}

// timeline is the run's time grid. Agents close their intervals at their own
// moments, so intervals of different agents do not line up; each interval goes to
// the bin that holds its midpoint, and bins (not raw intervals) are merged across
// agents. Bin i covers [origin + i·step, origin + (i+1)·step). The grid is
// anchored at the traffic start, so phase boundaries (whole steps after it) fall on
// bin edges; an interval is thus placed within half an interval of its true time.
type timeline struct {
	zero   time.Time // t = 0 on every plot: the traffic start
	origin time.Time // start of bin 0: zero plus a whole (possibly negative) number of steps
	step   time.Duration
	n      int
}

// binStart returns the start of bin i.
func (tl timeline) binStart(i int) time.Time { return tl.origin.Add(time.Duration(i) * tl.step) }

// binMid returns the midpoint of bin i.
func (tl timeline) binMid(i int) time.Time { return tl.binStart(i).Add(tl.step / 2) }

// bin returns the index of the bin holding t (possibly out of [0, n)).
func (tl timeline) bin(t time.Time) int { return floorDiv(t.Sub(tl.origin), tl.step) }

// rel returns t in seconds since the traffic start.
func (tl timeline) rel(t time.Time) float64 { return t.Sub(tl.zero).Seconds() }

// floorDiv divides rounding towards minus infinity.
func floorDiv(a, b time.Duration) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return int(q)
}

// series holds every tag's bins, merged across agents.
type series struct {
	tl   timeline
	bins map[string][]hist // tag → bins, len tl.n each
}

// buildSeries lays every agent's intervals on a grid of step anchored at zero
// (the traffic start; the first interval's start if that is unknown).
func buildSeries(agents []agentData, zero time.Time, step time.Duration) series {
	s := series{bins: map[string][]hist{}}
	var first, last time.Time
	for _, a := range agents {
		for _, iv := range a.intervals {
			m := mid(iv)
			if first.IsZero() || m.Before(first) {
				first = m
			}
			if last.IsZero() || m.After(last) {
				last = m
			}
		}
	}
	if zero.IsZero() {
		zero = first
	}
	s.tl = timeline{zero: zero, origin: zero, step: step}
	if first.IsZero() {
		return s
	}
	s.tl.origin = zero.Add(time.Duration(floorDiv(first.Sub(zero), step)) * step)
	s.tl.n = s.tl.bin(last) + 1
	for _, t := range loadgen.Tags {
		s.bins[t] = make([]hist, s.tl.n)
	}
	for _, a := range agents {
		for _, iv := range a.intervals {
			bs, ok := s.bins[iv.tag]
			if !ok {
				bs = make([]hist, s.tl.n)
				s.bins[iv.tag] = bs
			}
			bs[s.tl.bin(mid(iv))].add(iv.h)
		}
	}
	return s
}

// mid is an interval's midpoint.
func mid(iv interval) time.Time { return iv.start.Add(iv.end.Sub(iv.start) / 2) }

// merged returns tag's bins [lo, hi) merged into one series.
func (s series) merged(tag string, lo, hi int) hist {
	var h hist
	bs := s.bins[tag]
	for i := max(lo, 0); i < min(hi, len(bs)); i++ {
		h.merge(bs[i])
	}
	return h
}

// hasTag reports whether any agent logged the tag at all (even with no samples):
// a count of zero is then a measurement, not a missing metric.
func (s series) hasTag(tag string) bool {
	_, ok := s.bins[tag]
	return ok && s.tl.n > 0
}

// binHist is one merged bin with its time span, for the merged logs and plots.
type binHist struct {
	start, end time.Time
	h          hist
}

// timed returns tag's bins with their spans.
func (s series) timed(tag string) []binHist {
	bs := s.bins[tag]
	out := make([]binHist, len(bs))
	for i := range bs {
		out[i] = binHist{start: s.tl.binStart(i), end: s.tl.binStart(i + 1), h: bs[i]}
	}
	return out
}
