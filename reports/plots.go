package reports

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/reports/chart"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

// plotFile is one PNG written beside the report.
type plotFile struct {
	File    string // name within the run folder
	Title   string
	Caption string
}

// tagTitle names an SLI tag for humans.
func tagTitle(tag string) string {
	switch tag {
	case loadgen.TagPush:
		return "push latency, normal readers"
	case loadgen.TagPushSlow:
		return "push latency, slow readers"
	case loadgen.TagConnect:
		return "first connect time (dial → LOGIN_OK)"
	case loadgen.TagReconnect:
		return "reconnect time (disconnect → LOGIN_OK)"
	case loadgen.TagLag:
		return "generator lag (actual − intended send)"
	case loadgen.TagHiccup:
		return "generator hiccups (scheduler stalls)"
	case loadgen.TagReplace:
		return "replace time (relogin's LOGIN_OK → old session's KICK REPLACED)"
	}
	for _, h := range traceHops() {
		if h.tag == tag {
			return "trace hop " + h.name + " (" + h.what + ")"
		}
	}
	return tag
}

// savePNG draws panels stacked into one PNG (chart.PNG) at path.
func savePNG(path string, panels ...*plot.Plot) error {
	b, err := chart.PNG(panels...)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return writeFile(path, b)
}

// writePlots draws every plot into the run folder. The plots are independent
// and rasterising is the slow part of a report, so they are drawn concurrently;
// the analysis is only read meanwhile.
func (a *analysis) writePlots(s *Summary, base *baseline) ([]plotFile, error) {
	type job struct {
		f      plotFile
		panels func() []*plot.Plot
	}
	var jobs []job
	for _, tag := range loadgen.Tags {
		if a.latency(tag, a.whole).count() == 0 {
			continue
		}
		f := plotFile{File: "latency_" + tag + ".png", Title: "Distribution: " + tagTitle(tag),
			Caption: "HdrHistogram percentile distribution over the whole run and per phase; x is 1/(1−p) on a log scale."}
		if base != nil {
			f.Caption += " Grey: " + base.label + "."
		}
		jobs = append(jobs, job{f, func() []*plot.Plot { return []*plot.Plot{a.distributionPlot(tag, base)} }})
	}
	for _, tag := range []string{loadgen.TagPush, loadgen.TagPushSlow} {
		if a.latency(tag, a.whole).count() == 0 {
			continue
		}
		f := plotFile{File: "timeline_" + tag + ".png", Title: "Over time: " + tagTitle(tag),
			Caption: "p50, p99, p99.9 and max per interval, every agent merged; shaded: fault windows (from the fault to its heal), lines: faults without one."}
		jobs = append(jobs, job{f, func() []*plot.Plot { return []*plot.Plot{a.timelinePlot(tag)} }})
	}
	jobs = append(jobs,
		job{plotFile{File: "connections.png", Title: "Connections",
			Caption: "Connections each gateway holds (scraped) and clients logged in (agents); connects and disconnects per second."}, a.connectionPlots},
		job{plotFile{File: "send_rate.png", Title: "Offered and achieved load",
			Caption: "The plan's offered send rate against what the agents sent and received; generator lag against its validity bound."}, a.ratePlots},
		job{plotFile{File: "reconnect.png", Title: "Reconnect and connect times",
			Caption: "How long clients took to log in again after losing their connection, and to log in the first time."}, a.reconnectPlots},
		job{plotFile{File: "resources.png", Title: "Process resources",
			Caption: "Resident memory and CPU per process (agents summed; gateways summed when there are many)."}, a.resourcePlots},
	)
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = savePNG(filepath.Join(a.r.dir, j.f.File), j.panels()...)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make([]plotFile, len(jobs))
	for i, j := range jobs {
		out[i] = j.f
	}
	return out, nil
}

// percentileCurve returns a series' percentile distribution: x = 1/(1−p) at 25
// points a decade up to the top sample, y in milliseconds.
func percentileCurve(h hist) (xs, ys []float64) {
	n := h.count()
	if n == 0 {
		return nil, nil
	}
	for k := 0; ; k++ {
		x := math.Pow(10, float64(k)/25)
		if x >= float64(n) {
			break
		}
		xs = append(xs, x)
		ys = append(ys, float64(h.p.ValueAtPercentile(100*(1-1/x)))/1000)
	}
	return append(xs, float64(n)), append(ys, float64(h.p.Max())/1000)
}

// distributionPlot is plot (a): one SLI's percentile distribution.
func (a *analysis) distributionPlot(tag string, base *baseline) *plot.Plot {
	p := chart.New(fmt.Sprintf("%s — percentile distribution", tagTitle(tag)),
		"percentile (x = 1/(1−p), log scale)", "latency (log scale)")
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = chart.PercentileTicks{}, chart.LogMsTicks{}
	whole := a.latency(tag, a.whole)
	xs, ys := percentileCurve(whole)
	chart.AddLines(p, fmt.Sprintf("whole run (%s samples)", fmtCount(float64(whole.count()))), xs, ys, chart.Line(chart.Palette(0), 2.5))
	if len(a.phases) > 1 {
		for i, sc := range a.phases {
			h := a.latency(tag, sc)
			if h.count() == 0 {
				continue
			}
			xs, ys := percentileCurve(h)
			chart.AddLines(p, "phase "+sc.phase, xs, ys, chart.Line(chart.Palette(i+1), 1.3))
		}
	}
	if base != nil {
		sty := chart.Dashed(chart.BaselineColor(), 2, 6, 3)
		if bh, ok := base.hists[tag]; ok && bh.count() > 0 {
			xs, ys := percentileCurve(bh)
			chart.AddLines(p, base.label, xs, ys, sty)
		} else if base.sum != nil {
			if l, ok := base.sum.LatencyUS[tag]; ok && l.Count > 0 {
				pts := plotter.XYs{}
				for _, q := range []struct {
					x  float64
					us int64
				}{{2, l.P50}, {10, l.P90}, {100, l.P99}, {1000, l.P999}, {1e4, l.P9999}, {float64(l.Count), l.Max}} {
					if q.x <= float64(l.Count) {
						pts = append(pts, plotter.XY{X: q.x, Y: float64(q.us) / 1000})
					}
				}
				if sc, err := plotter.NewScatter(pts); err == nil {
					sc.GlyphStyle.Color, sc.GlyphStyle.Radius = chart.BaselineColor(), 4
					p.Add(sc)
					p.Legend.Add(base.label+" (its summary's percentiles)", sc)
				}
			}
		}
	}
	sloMS := a.pushSLO()
	slo := sloLine(sloMS)
	p.Add(slo)
	p.Legend.Add(slo.Label, slo)
	p.X.Min = 1
	p.X.Max = max(p.X.Max, 100)
	p.Y.Max = max(p.Y.Max, sloMS*1.5)
	p.Y.Min = min(p.Y.Min, sloMS/2)
	return p
}

// faultSpans returns the faults on the timeline: a window for every fault with
// an end (a pause until SIGCONT, a network fault until its heal, a restart until
// the process served again) and for a kill until the process came back (if it
// did); any other fault is an instant.
func (a *analysis) faultSpans() []chart.Span {
	tl := a.s.tl
	var out []chart.Span
	for _, f := range a.r.info.Faults {
		end := f.End
		if end.IsZero() && f.Action == "kill" {
			for _, t := range a.restarts[f.Target] {
				if t.After(f.At) {
					end = t
					break
				}
			}
		}
		label := f.Action
		if f.Target != "" {
			label += " " + f.Target
		}
		if f.Error != "" {
			label += " (not applied)"
		}
		sp := chart.Span{From: tl.rel(f.At), To: tl.rel(f.At), Label: label}
		if end.After(f.At) && f.Error == "" {
			sp.To, sp.Window = tl.rel(end), true
		}
		out = append(out, sp)
	}
	return out
}

// phaseSpans returns the phases' windows.
func (a *analysis) phaseSpans() []chart.Span {
	var out []chart.Span
	for _, ph := range a.r.info.Phases {
		out = append(out, chart.Span{From: a.s.tl.rel(ph.Start), To: a.s.tl.rel(ph.End), Label: ph.Name})
	}
	return out
}

// decorate adds the phase marks and fault shading to a time plot.
func (a *analysis) decorate(p *plot.Plot) {
	p.Add(chart.PhaseMarks{Spans: a.phaseSpans()})
	spans := a.faultSpans()
	if len(spans) == 0 {
		return
	}
	fs := chart.FaultShading{Spans: spans}
	p.Add(fs)
	var windows, instants bool
	for _, s := range spans {
		windows, instants = windows || s.Window, instants || !s.Window
	}
	if windows {
		p.Legend.Add("fault window", fs)
	}
	if instants {
		p.Legend.Add("fault", chart.FaultMarkThumb{})
	}
}

// timeAxis is every time plot's x label.
const timeAxis = "time since traffic start (s)"

// timelinePlot is plot (b): percentiles per interval over time.
func (a *analysis) timelinePlot(tag string) *plot.Plot {
	p := chart.New(tagTitle(tag)+" — per interval", timeAxis, "latency (log scale)")
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, chart.LogMsTicks{}
	bins := a.s.bins[tag]
	xs := make([]float64, len(bins))
	stats := []struct {
		name string
		pct  float64 // 0: max
	}{{"p50", 50}, {"p99", 99}, {"p99.9", 99.9}, {"max", 0}}
	ys := make([][]float64, len(stats))
	for j := range stats {
		ys[j] = make([]float64, len(bins))
	}
	for i, b := range bins {
		xs[i] = a.s.tl.rel(a.s.tl.binMid(i))
		for j, st := range stats {
			ys[j][i] = math.NaN()
			if b.count() == 0 {
				continue
			}
			v := b.p.Max()
			if st.pct > 0 {
				v = b.p.ValueAtPercentile(st.pct)
			}
			ys[j][i] = float64(v) / 1000
		}
	}
	a.decorate(p)
	for j, st := range stats {
		chart.AddLines(p, st.name, xs, ys[j], chart.Line(chart.Palette(j), 1.6))
	}
	a.timeBounds(p)
	sloMS := a.pushSLO()
	slo := sloLine(sloMS)
	p.Add(slo)
	p.Legend.Add(slo.Label, slo)
	p.Y.Max = max(p.Y.Max, sloMS*1.5)
	p.Y.Min = min(p.Y.Min/1.5, sloMS/2)
	return p
}

// tpoint is a reading at x seconds since the traffic start.
type tpoint struct{ x, v float64 }

// perSecond lays several sources' readings on a grid of whole seconds: each
// source's latest reading in a second, carried forward up to stale seconds (a
// missed scrape is not a drop to zero) but never past the process's exit (a
// killed gateway's connections do not linger), summed over sources. NaN where no
// source had a value.
func perSecond(src map[string][]tpoint, exits map[string][]float64, lo, hi int, stale int) (xs, ys []float64) {
	n := hi - lo + 1
	if n <= 0 {
		return nil, nil
	}
	xs, ys = make([]float64, n), make([]float64, n)
	for i := range ys {
		xs[i], ys[i] = float64(lo+i), math.NaN()
	}
	for name, pts := range src {
		cur, at := make([]float64, n), make([]float64, n)
		for i := range cur {
			cur[i] = math.NaN()
		}
		for _, p := range pts {
			if i := int(math.Floor(p.x)) - lo; i >= 0 && i < n {
				cur[i], at[i] = p.v, p.x
			}
		}
		last, lastAt, age := math.NaN(), 0.0, 0
		for i := range cur {
			switch {
			case !math.IsNaN(cur[i]):
				last, lastAt, age = cur[i], at[i], 0
			case exitedBetween(exits[name], lastAt, float64(lo+i+1)):
				last = math.NaN()
			default:
				if age++; age > stale {
					last = math.NaN()
				}
			}
			if !math.IsNaN(last) {
				if math.IsNaN(ys[i]) {
					ys[i] = 0
				}
				ys[i] += last
			}
		}
	}
	return xs, ys
}

// exitedBetween reports whether an exit time falls in (a, b].
func exitedBetween(exits []float64, a, b float64) bool {
	for _, e := range exits {
		if e > a && e <= b {
			return true
		}
	}
	return false
}

// relExits returns each process's exit times, in seconds since the traffic start.
func (a *analysis) relExits() map[string][]float64 {
	out := map[string][]float64{}
	for _, p := range a.r.info.Processes {
		if !p.Exited.IsZero() {
			out[p.Name] = append(out[p.Name], a.s.tl.rel(p.Exited))
		}
	}
	return out
}

// rates turns each source's cumulative readings into per-second rates, summed
// over sources per second. A reading below the previous one, or across a restart,
// starts from zero.
func rates(src map[string][]tpoint, restarts map[string][]float64, lo, hi int) (xs, ys []float64) {
	n := hi - lo + 1
	if n <= 0 {
		return nil, nil
	}
	xs, ys = make([]float64, n), make([]float64, n)
	for i := range xs {
		xs[i], ys[i] = float64(lo+i), math.NaN()
	}
	for name, pts := range src {
		for k := 1; k < len(pts); k++ {
			prev, p := pts[k-1], pts[k]
			dt := p.x - prev.x
			if dt <= 0 {
				continue
			}
			d := p.v - prev.v
			restarted := false
			for _, r := range restarts[name] {
				restarted = restarted || (r > prev.x && r <= p.x)
			}
			if d < 0 || restarted {
				d = p.v
			}
			if i := int(math.Floor(p.x)) - lo; i >= 0 && i < n {
				if math.IsNaN(ys[i]) {
					ys[i] = 0
				}
				ys[i] += d / dt
			}
		}
	}
	return xs, ys
}

// relRestarts converts restart times to seconds since the traffic start.
func (a *analysis) relRestarts() map[string][]float64 {
	out := map[string][]float64{}
	for name, ts := range a.restarts {
		for _, t := range ts {
			out[name] = append(out[name], a.s.tl.rel(t))
		}
	}
	return out
}

// span of the system samples, in whole seconds since the traffic start.
func secondsRange(srcs ...map[string][]tpoint) (lo, hi int, ok bool) {
	first := true
	for _, src := range srcs {
		for _, pts := range src {
			for _, p := range pts {
				x := int(math.Floor(p.x))
				if first {
					lo, hi, first = x, x, false
				}
				lo, hi = min(lo, x), max(hi, x)
			}
		}
	}
	return lo, hi, !first
}

// gaugeSeries returns sel's readings per gateway as time points.
func (a *analysis) gatewaySeries(sel selector) map[string][]tpoint {
	out := map[string][]tpoint{}
	for proc, pts := range perProcess(a.r.metrics, sel) {
		if !a.isGateway(proc) {
			continue
		}
		for _, p := range pts {
			out[proc] = append(out[proc], tpoint{a.s.tl.rel(p.t), p.v})
		}
	}
	return out
}

// timeBounds sets a time plot's x range to the run's, with round ticks.
func (a *analysis) timeBounds(p *plot.Plot) {
	p.X.Tick.Marker = chart.TimeTicks{}
	info := a.r.info
	if !info.TrafficStart.IsZero() {
		p.X.Min = min(p.X.Min, 0)
	}
	if !info.TrafficEnd.IsZero() {
		p.X.Max = max(p.X.Max, a.s.tl.rel(info.TrafficEnd))
	}
}

// connectionPlots are plot (c).
func (a *analysis) connectionPlots() []*plot.Plot {
	conns := a.gatewaySeries(selector{name: metricConns})
	active := map[string][]tpoint{}
	for _, p := range a.r.progress {
		active[p.Agent] = append(active[p.Agent], tpoint{a.s.tl.rel(p.T), float64(p.Active)})
	}
	lo, hi, ok := secondsRange(conns, active)
	top := chart.New("Connections over time", timeAxis, "connections")
	if !ok {
		return []*plot.Plot{chart.Empty("Connections over time", timeAxis, "connections", "no gateway metrics or agent progress recorded")}
	}
	a.decorate(top)
	xs, ys := perSecond(conns, a.relExits(), lo, hi, 2)
	chart.AddLines(top, "all gateways (scraped)", xs, ys, chart.Line(chart.Palette(0), 2.5))
	xs, ys = perSecond(active, nil, lo, hi, 2)
	dash := chart.Dashed(chart.Palette(1), 2, 6, 3)
	chart.AddLines(top, "clients logged in (agents)", xs, ys, dash)
	names := sortedKeys(conns)
	if len(names) <= 12 {
		for i, name := range names {
			xs, ys := perSecond(map[string][]tpoint{name: conns[name]}, a.relExits(), lo, hi, 2)
			chart.AddLines(top, name, xs, ys, chart.Line(chart.Palette(i+2), 1.2))
		}
	}
	a.timeBounds(top)
	top.Y.Min = 0
	top.Y.Max = max(top.Y.Max, 1)

	bottom := chart.New("Connects and disconnects per second (gateways)", timeAxis, "per second")
	a.decorate(bottom)
	rs := a.relRestarts()
	xs, ys = rates(a.gatewaySeries(selector{name: metricAccepted}), rs, lo, hi)
	chart.AddLines(bottom, "accepted / s", xs, ys, chart.Line(chart.Palette(1), 1.6))
	xs, ys = rates(a.gatewaySeries(selector{name: metricClosed}), rs, lo, hi)
	chart.AddLines(bottom, "closed / s", xs, ys, chart.Line(chart.Palette(4), 1.6))
	a.timeBounds(bottom)
	bottom.Y.Min = 0
	bottom.Y.Max = max(bottom.Y.Max, 1)
	return []*plot.Plot{top, bottom}
}

// offered returns the plan's offered send rate as a step line over the phases
// that ran: a phase's own rate, else the plan's (as loadgen schedules it: a
// phase's rate applies to that phase only).
func (a *analysis) offered() (xs, ys []float64) {
	if a.r.plan == nil {
		return nil, nil
	}
	for _, w := range a.r.info.Phases {
		rate := a.r.plan.Traffic.Rate
		for _, ph := range a.r.plan.Phases {
			if ph.Name == w.Name && ph.Rate != nil {
				rate = *ph.Rate
			}
		}
		xs = append(xs, a.s.tl.rel(w.Start), a.s.tl.rel(w.End))
		ys = append(ys, rate, rate)
	}
	return xs, ys
}

// ratePlots are plot (d).
func (a *analysis) ratePlots() []*plot.Plot {
	sent, got := map[string][]tpoint{}, map[string][]tpoint{}
	for _, p := range a.r.progress {
		x := a.s.tl.rel(p.T)
		sent[p.Agent] = append(sent[p.Agent], tpoint{x, float64(p.Counts.Sent)})
		got[p.Agent] = append(got[p.Agent], tpoint{x, float64(p.Counts.Delivered)})
	}
	top := chart.New("Send rate: offered against achieved", timeAxis, "messages per second")
	a.decorate(top)
	if xs, ys := a.offered(); len(xs) > 0 {
		chart.AddLines(top, "offered (plan)", xs, ys, chart.SLOStyle())
	}
	if lo, hi, ok := secondsRange(sent); ok {
		xs, ys := rates(sent, nil, lo, hi)
		chart.AddLines(top, "sent (agents)", xs, ys, chart.Line(chart.Palette(0), 2))
		xs, ys = rates(got, nil, lo, hi)
		chart.AddLines(top, "delivered (agents)", xs, ys, chart.Line(chart.Palette(1), 1.4))
	} else {
		top.Add(chart.Note{Text: "no agent progress recorded"})
	}
	a.timeBounds(top)
	top.Y.Min = 0
	top.Y.Max = max(top.Y.Max, 1)

	bottom := chart.New("Generator lag (actual − intended send time)", timeAxis, "lag (log scale)")
	bottom.Y.Scale, bottom.Y.Tick.Marker = plot.LogScale{}, chart.LogMsTicks{}
	bins := a.s.bins[loadgen.TagLag]
	xs := make([]float64, len(bins))
	p999, mx := make([]float64, len(bins)), make([]float64, len(bins))
	for i, b := range bins {
		xs[i], p999[i], mx[i] = a.s.tl.rel(a.s.tl.binMid(i)), math.NaN(), math.NaN()
		if b.count() > 0 {
			p999[i], mx[i] = float64(b.p.ValueAtPercentile(99.9))/1000, float64(b.p.Max())/1000
		}
	}
	a.decorate(bottom)
	chart.AddLines(bottom, "lag p99.9", xs, p999, chart.Line(chart.Palette(0), 1.8))
	chart.AddLines(bottom, "lag max", xs, mx, chart.Line(chart.Palette(2), 1.2))
	bound := float64(a.r.scenario.Validity.MaxLag.D()) / float64(time.Millisecond)
	b := chart.HLine{Y: bound, Label: "validity bound (p99.9) " + fmtMS(bound), Style: chart.SLOStyle()}
	bottom.Add(b)
	bottom.Legend.Add(b.Label, b)
	a.timeBounds(bottom)
	bottom.Y.Min = min(bottom.Y.Min, 0.01)
	if math.IsInf(bottom.Y.Min, 0) || bottom.Y.Min <= 0 {
		bottom.Y.Min = 0.01
	}
	bottom.Y.Max = max(bottom.Y.Max, bound*1.5)
	return []*plot.Plot{top, bottom}
}

// reconnectPlots are plot (e): reconnect and first-connect time histograms.
func (a *analysis) reconnectPlots() []*plot.Plot {
	var out []*plot.Plot
	sloMS := a.pushSLO()
	for _, tag := range []string{loadgen.TagReconnect, loadgen.TagConnect} {
		h := a.latency(tag, a.whole)
		title := tagTitle(tag)
		if h.count() == 0 {
			why := "no samples"
			if tag == loadgen.TagReconnect {
				why = "no reconnects in this run"
			}
			out = append(out, chart.Empty(title, "time (log scale)", "clients", why))
			continue
		}
		l := h.latency()
		p := chart.New(fmt.Sprintf("%s — %s samples, p50 %s, p99 %s, max %s", title, fmtCount(float64(l.Count)),
			fmtUS(float64(l.P50)), fmtUS(float64(l.P99)), fmtUS(float64(l.Max))), "time (log scale)", "clients")
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, chart.LogMsTicks{}
		hg := &plotter.Histogram{Bins: logBins(h, 10), FillColor: chart.Palette(0), LineStyle: chart.Line(chart.Palette(8), 0.5)}
		p.Add(hg)
		p.Legend.Add("clients per bin (10 bins a decade)", hg)
		slo := chart.VLine{X: sloMS, Label: "SLO " + fmtMS(sloMS), Style: chart.SLOStyle()}
		p.Add(slo)
		p.Legend.Add(slo.Label+" (push latency's, for scale)", slo)
		p.X.Min, p.X.Max = min(p.X.Min, sloMS/2), max(p.X.Max, sloMS*2)
		p.Y.Min = 0
		out = append(out, p)
	}
	return out
}

// logBins buckets a series into perDecade log-spaced bins of milliseconds.
func logBins(h hist, perDecade int) []plotter.HistogramBin {
	counts := map[int]float64{}
	lo, hi := math.MaxInt, math.MinInt
	h.p.ForEachBucket(func(v, c int64) bool {
		k := int(math.Floor(math.Log10(math.Max(float64(v), 1)/1000) * float64(perDecade)))
		counts[k] += float64(c)
		lo, hi = min(lo, k), max(hi, k)
		return true
	})
	var bins []plotter.HistogramBin
	for k := lo; k <= hi; k++ {
		bins = append(bins, plotter.HistogramBin{
			Min: math.Pow(10, float64(k)/float64(perDecade)), Max: math.Pow(10, float64(k+1)/float64(perDecade)), Weight: counts[k],
		})
	}
	return bins
}

// resourcePlots are plot (f): RSS and CPU per process over time.
func (a *analysis) resourcePlots() []*plot.Plot {
	rss, cpu := map[string][]tpoint{}, map[string][]tpoint{}
	gateways := map[string]bool{}
	for _, p := range a.r.procs {
		x := a.s.tl.rel(p.T)
		rss[p.Process] = append(rss[p.Process], tpoint{x, float64(p.RSSBytes) / (1 << 20)})
		cpu[p.Process] = append(cpu[p.Process], tpoint{x, p.CPUSecs})
		if a.isGateway(p.Process) {
			gateways[p.Process] = true
		}
	}
	lo, hi, ok := secondsRange(rss)
	if !ok {
		return []*plot.Plot{chart.Empty("Resident memory per process", timeAxis, "RSS (MiB)", "no process samples recorded")}
	}
	groups := map[string][]string{} // line name → processes
	for name := range rss {
		g := name
		switch {
		case a.roles[name] == "agent":
			g = "agents (Σ)"
		case gateways[name] && len(gateways) > 6:
			g = "gateways (Σ)"
		}
		groups[g] = append(groups[g], name)
	}
	top := chart.New("Resident memory per process", timeAxis, "RSS (MiB)")
	bottom := chart.New("CPU per process", timeAxis, "CPU (cores)")
	a.decorate(top)
	a.decorate(bottom)
	rs := a.relRestarts()
	for i, g := range sortedKeys(groups) {
		sub, subCPU := map[string][]tpoint{}, map[string][]tpoint{}
		for _, name := range groups[g] {
			sub[name], subCPU[name] = rss[name], cpu[name]
		}
		xs, ys := perSecond(sub, a.relExits(), lo, hi, 2)
		chart.AddLines(top, g, xs, ys, chart.Line(chart.Palette(i), 1.6))
		xs, ys = rates(subCPU, rs, lo, hi)
		chart.AddLines(bottom, g, xs, ys, chart.Line(chart.Palette(i), 1.6))
	}
	for _, p := range []*plot.Plot{top, bottom} {
		a.timeBounds(p)
		p.Y.Min = 0
		p.Y.Max = max(p.Y.Max, 0.1)
		p.Legend.Top, p.Legend.Left = true, true
	}
	return []*plot.Plot{top, bottom}
}
