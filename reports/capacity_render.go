package reports

import (
	"fmt"
	"math"
	"strings"

	"github.com/floodgate/floodgate/reports/chart"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// capacitySection lays out a capacity plan for the report and capacity.md.
func capacitySection(p *CapacityPlan) section {
	t := p.Target
	sec := section{ID: "capacity", Title: "Capacity plan",
		Paras: []string{fmt.Sprintf("Target: %s concurrent users, %s delivered msg/s, on machines of %d cores and %s, headroom %.0f%%, p99 SLO %s.",
			fmtCount(float64(t.Users)), fmtCount(t.MsgRate), t.Cores, fmtBytes(float64(t.MemBytes)), 100*t.Headroom, fmtUS(float64(t.SLOUS)))}}
	if p.MaxRateMeetingSLO != nil {
		sec.Paras = append(sec.Paras, fmt.Sprintf("Highest measured rate that met the SLO: %s msg/s.", fmtCount(math.Round(*p.MaxRateMeetingSLO))))
	} else {
		sec.Paras = append(sec.Paras, "No measured step met the SLO.")
	}
	needs := table{Caption: fmt.Sprintf("What the target needs: %d machines", p.Machines),
		Head: []string{"role", "processes", "machines", "CPU (cores)", "memory", "decided by"}}
	for _, n := range p.Needs {
		needs.Rows = append(needs.Rows, []string{n.Role, fmtCount(float64(n.Processes)), fmtCount(float64(n.Machines)),
			fmt.Sprintf("%.1f", n.CPUCores), fmtBytes(n.MemBytes), n.Binding})
	}
	fits := table{Caption: "Fitted costs (least squares: memory over every step, CPU over the steps that met the SLO)",
		Head: []string{"role", "processes", "memory per connection", "memory intercept", "R² (memory)", "CPU per message", "CPU intercept", "R² (CPU)", "note"}}
	for _, f := range p.Fits {
		row := []string{f.Role, fmt.Sprint(f.Processes), "—", "—", "—", "—", "—", "—", f.Note}
		if f.Mem != nil {
			row[2], row[3], row[4] = fmtBytes(f.Mem.Slope), fmtBytes(f.Mem.Intercept), fmt.Sprintf("%.3f (n=%d)", f.Mem.R2, f.Mem.N)
		}
		if f.CPU != nil {
			row[5], row[6], row[7] = fmtUS(f.CPU.Slope*1e6), fmt.Sprintf("%.2f cores", f.CPU.Intercept), fmt.Sprintf("%.3f (n=%d)", f.CPU.R2, f.CPU.N)
		}
		fits.Rows = append(fits.Rows, row)
	}
	steps := table{Caption: "Steps (each phase's second half)",
		Head: []string{"phase", "connections", "delivered msg/s", "push p99", "samples", "meets SLO"}}
	for _, st := range p.Steps {
		meets := "no"
		if st.MeetsSLO {
			meets = "yes"
		}
		steps.Rows = append(steps.Rows, []string{st.Phase, fmtCount(math.Round(st.Connections)), fmtCount(math.Round(st.DeliveredPerSec)),
			fmtUS(float64(st.P99US)), fmtCount(float64(st.Samples)), meets})
	}
	sec.Tables = []table{needs, fits, steps}
	for _, w := range p.Warnings {
		sec.Bullets = append(sec.Bullets, "Warning: "+w)
	}
	for _, a := range p.Assumptions {
		sec.Bullets = append(sec.Bullets, "Assumption: "+a)
	}
	sec.Plots = []plotFile{{File: FileCapacityPlot, Title: "Push p99 against load",
		Caption: "Each step's push p99 against its delivered rate, with the SLO line and the highest rate that met it."}}
	return sec
}

// renderMarkdownSections renders a document without a verdict line.
func renderMarkdownSections(d document) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", d.Title)
	for _, sec := range d.Sections {
		writeMDSection(&b, sec, "##")
	}
	return b.String()
}

// capacityPlot plots each step's p99 against its delivered rate.
func capacityPlot(p *CapacityPlan) *plot.Plot {
	slo := float64(p.Target.SLOUS) / 1000
	pl := chart.New("Push p99 against delivered load, per step", "delivered messages per second", "push p99 (log scale)")
	pl.Y.Scale, pl.Y.Tick.Marker = plot.LogScale{}, chart.LogMsTicks{}
	var pts plotter.XYs
	var labels []string
	for _, st := range p.Steps {
		if st.Samples == 0 {
			continue
		}
		pts = append(pts, plotter.XY{X: st.DeliveredPerSec, Y: float64(st.P99US) / 1000})
		labels = append(labels, fmt.Sprintf("%s (%s conns)", st.Phase, fmtCount(math.Round(st.Connections))))
	}
	if len(pts) == 0 {
		return chart.Empty("Push p99 against delivered load, per step", "delivered messages per second", "push p99 (ms)", "no push samples in any step")
	}
	l, _ := plotter.NewLine(pts)
	l.LineStyle = chart.Line(chart.Palette(0), 2)
	sc, _ := plotter.NewScatter(pts)
	sc.GlyphStyle = draw.GlyphStyle{Color: chart.Palette(0), Radius: 4, Shape: draw.CircleGlyph{}}
	pl.Add(l, sc)
	pl.Legend.Add("p99 per step", l, sc)
	if lb, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: labels}); err == nil {
		for i := range lb.TextStyle {
			lb.TextStyle[i].Font = chart.Sans(10)
		}
		lb.Offset = vg.Point{X: 6, Y: 4}
		pl.Add(lb)
	}
	s := sloLine(slo)
	pl.Add(s)
	pl.Legend.Add(s.Label, s)
	if p.MaxRateMeetingSLO != nil {
		v := chart.VLine{X: *p.MaxRateMeetingSLO, Label: fmt.Sprintf("highest rate meeting the SLO: %s msg/s", fmtCount(math.Round(*p.MaxRateMeetingSLO))),
			Style: chart.Line(chart.Palette(1), 2)}
		pl.Add(v)
		pl.Legend.Add("highest rate meeting the SLO", v)
	}
	pl.X.Min = 0
	pl.X.Max *= 1.25 // room for the point labels
	pl.Y.Max = max(pl.Y.Max, slo*1.5)
	pl.Y.Min = min(pl.Y.Min/1.5, slo/10)
	return pl
}
