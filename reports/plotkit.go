package reports

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot geometry: PNGs are drawn at plotDPI, plotWidth wide, so that they read
// at their natural size in a browser window and in report.md viewers.
const (
	plotDPI   = 100
	plotWidth = 13 * vg.Inch
	panelH    = 4.2 * vg.Inch
)

// sans is the plots' typeface at a size.
func sans(size vg.Length) font.Font {
	return font.From(font.Font{Typeface: "Liberation", Variant: "Sans"}, size)
}

// Colours with fixed meanings across every plot.
func colSLO() color.Color       { return color.RGBA{R: 200, G: 30, B: 30, A: 255} }
func colFault() color.Color     { return color.NRGBA{R: 255, G: 150, B: 40, A: 64} }
func colFaultEdge() color.Color { return color.RGBA{R: 220, G: 110, B: 0, A: 255} }
func colPhase() color.Color     { return color.Gray{Y: 110} }
func colBaseline() color.Color  { return color.Gray{Y: 120} }

// palette returns the i-th series colour: dark, distinct, and never the SLO red.
func palette(i int) color.Color {
	cs := []color.RGBA{
		{31, 119, 180, 255}, {44, 160, 44, 255}, {148, 103, 189, 255}, {23, 190, 207, 255},
		{140, 86, 75, 255}, {227, 119, 194, 255}, {188, 189, 34, 255}, {127, 127, 127, 255},
		{0, 0, 128, 255}, {0, 100, 0, 255}, {128, 0, 128, 255}, {0, 128, 128, 255},
	}
	return cs[i%len(cs)]
}

// newPlot returns a plot with the house style: a title, labelled axes, a grid,
// readable fonts, the legend at the top left.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = sans(15)
	p.Title.Padding = 6
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Tick.Marker = niceTicks{}
		ax.Label.TextStyle.Font = sans(12)
		ax.Tick.Label.Font = sans(11)
		ax.Padding = 2
	}
	p.Legend.TextStyle.Font = sans(11)
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = 6, -4
	p.Legend.Padding = 2
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = color.Gray{Y: 225}, color.Gray{Y: 225}
	p.Add(g)
	return p
}

// savePNG draws panels stacked top to bottom, sharing the width, into a PNG.
func savePNG(path string, panels ...*plot.Plot) error {
	img := vgimg.NewWith(vgimg.UseWH(plotWidth, panelH*vg.Length(len(panels))), vgimg.UseDPI(plotDPI))
	dc := draw.New(img)
	grid := make([][]*plot.Plot, len(panels))
	for i, p := range panels {
		grid[i] = []*plot.Plot{p}
	}
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadY: 14, PadTop: 6, PadBottom: 6, PadLeft: 6, PadRight: 14}
	cs := plot.Align(grid, tiles, dc)
	for i, p := range panels {
		makeRoomForLegend(p)
		p.Add(legendBackdrop{})
		p.Draw(cs[i][0])
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return writeFile(path, buf.Bytes())
}

// lineStyle returns a solid line of a colour and width.
func lineStyle(c color.Color, w vg.Length) draw.LineStyle {
	return draw.LineStyle{Color: c, Width: w}
}

// addLines adds a series that may have gaps (NaN y values break the line) and a
// single legend entry for it.
func addLines(p *plot.Plot, name string, xs, ys []float64, sty draw.LineStyle) {
	var seg plotter.XYs
	var first *plotter.Line
	flush := func() {
		if len(seg) == 0 {
			return
		}
		l, err := plotter.NewLine(seg)
		if err != nil {
			return
		}
		l.LineStyle = sty
		if len(seg) == 1 {
			// A lone point draws nothing as a line: mark it.
			s, _ := plotter.NewScatter(seg)
			s.GlyphStyle = draw.GlyphStyle{Color: sty.Color, Radius: 2, Shape: draw.CircleGlyph{}}
			p.Add(s)
		}
		p.Add(l)
		if first == nil {
			first = l
		}
		seg = nil
	}
	for i := range xs {
		if math.IsNaN(ys[i]) || math.IsInf(ys[i], 0) {
			flush()
			continue
		}
		seg = append(seg, plotter.XY{X: xs[i], Y: ys[i]})
	}
	flush()
	if first != nil && name != "" {
		p.Legend.Add(name, first)
	}
}

// logMsTicks marks a log axis of milliseconds at every decade, labelled as
// durations ("100 ms", "1 s"), with 2× and 5× ticks that are labelled too when
// the axis spans less than three decades.
type logMsTicks struct{}

// Ticks implements plot.Ticker.
func (logMsTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= lo {
		return nil
	}
	dense := math.Log10(hi/lo) < 3
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		d := math.Pow(10, e)
		ts = append(ts, plot.Tick{Value: d, Label: tickMS(d)})
		for _, m := range []float64{2, 5} {
			t := plot.Tick{Value: m * d}
			if dense {
				t.Label = tickMS(m * d)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// niceTicks marks a linear axis at a round step (1, 2 or 5 × 10ⁿ) giving at
// most ten labels, printed without spurious decimals.
type niceTicks struct{}

// Ticks implements plot.Ticker.
func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
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
	for v := math.Ceil(lo/minor) * minor; v <= hi+minor/1e6; v += minor {
		t := plot.Tick{Value: v}
		if r := math.Round(v / step); math.Abs(v/step-r) < 1e-6 {
			t.Label = tickNumber(r * step)
		}
		ts = append(ts, t)
	}
	return ts
}

// tickNumber prints a round tick value: 2500 as "2,500", 0.25 as "0.25", 3e6 as "3M".
func tickNumber(v float64) string {
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
		return fmtCount(v)
	}
	return strconv.FormatFloat(math.Round(v*1e6)/1e6, 'f', -1, 64)
}

// timeTicks marks a time axis in whole seconds at a round step (1, 2, 5, 10, 15,
// 30 s, 1, 2, 5, 10 min …) giving at most a dozen labels, with unlabelled ticks
// between.
type timeTicks struct{}

// Ticks implements plot.Ticker.
func (timeTicks) Ticks(lo, hi float64) []plot.Tick {
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
	for v := math.Ceil(lo/minor) * minor; v <= hi; v += minor {
		t := plot.Tick{Value: v}
		if r := math.Round(v / step); math.Abs(v/step-r) < 1e-9 {
			t.Label = strconv.FormatFloat(r*step, 'f', -1, 64)
		}
		ts = append(ts, t)
	}
	return ts
}

// percentileTicks marks an axis of 1/(1−p) at 0%, 50%, 90%, 99%, … up to hi.
type percentileTicks struct{}

// Ticks implements plot.Ticker.
func (percentileTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := []plot.Tick{{Value: 1, Label: "0%"}, {Value: 2, Label: "50%"}, {Value: 5}}
	for x, nines := 10.0, 1; x <= hi*1.0001; x, nines = x*10, nines+1 {
		label := strconv.FormatFloat(100-100/x, 'f', max(nines-2, 0), 64) + "%"
		ts = append(ts, plot.Tick{Value: x, Label: label})
		for _, m := range []float64{2, 5} {
			ts = append(ts, plot.Tick{Value: x * m})
		}
	}
	return ts
}

// hline is a labelled horizontal reference line across the whole plot (the SLO).
type hline struct {
	y     float64
	label string
	style draw.LineStyle
}

// Plot implements plot.Plotter.
func (h hline) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	y := trY(h.y)
	if !c.ContainsY(y) {
		return
	}
	c.StrokeLine2(h.style, c.Min.X, y, c.Max.X, y)
	sty := draw.TextStyle{Color: h.style.Color, Font: sans(11), Handler: p.TextHandler, XAlign: draw.XRight, YAlign: draw.YBottom}
	c.FillText(sty, vg.Point{X: c.Max.X - 4, Y: y + 2}, h.label)
}

// Thumbnail implements plot.Thumbnailer.
func (h hline) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(h.style, c.Min.X, y, c.Max.X, y)
}

// sloLine is the 100 ms (or the given) SLO line on a millisecond axis.
func sloLine(ms float64) hline {
	sty := lineStyle(colSLO(), 2)
	sty.Dashes = []vg.Length{8, 4}
	return hline{y: ms, label: "SLO " + fmtMS(ms), style: sty}
}

// span is a stretch of the x axis (seconds since the traffic start) with a label.
// A window is drawn as a shaded stretch from from to to; otherwise the span is an
// instant at from, drawn as a line.
type span struct {
	from, to float64
	label    string
	window   bool
}

// minWindowWidth is the narrowest a window is shaded, so that a short one stays
// visible (and tells itself apart from an instant) at any time scale.
const minWindowWidth = vg.Length(3)

// faultShading shades fault windows (Jepsen-style) and labels them along the top;
// an instantaneous fault is a vertical line. Labels that would overlap drop to
// the next row.
type faultShading struct{ spans []span }

// Plot implements plot.Plotter.
func (f faultShading) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	sty := draw.TextStyle{Color: colFaultEdge(), Font: sans(10), Handler: p.TextHandler, XAlign: draw.XLeft, YAlign: draw.YTop}
	var rows labelRows
	for _, s := range f.spans {
		x0, x1 := trX(s.from), trX(s.to)
		if !s.window {
			x1 = x0
		}
		if x1 < c.Min.X || x0 > c.Max.X {
			continue
		}
		x0, x1 = max(x0, c.Min.X), min(x1, c.Max.X)
		if s.window {
			x1 = max(x1, min(x0+minWindowWidth, c.Max.X))
			c.FillPolygon(colFault(), []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
		} else {
			c.StrokeLine2(faultMarkStyle(), x0, c.Min.Y, x0, c.Max.Y)
		}
		w := sty.Width(s.label)
		lx := min(x0+3, c.Max.X-w-2)
		row := rows.place(lx, w)
		pt := vg.Point{X: lx, Y: c.Max.Y - 3 - vg.Length(row)*sty.Height(s.label)}
		labelBox(c, pt, w, sty.Height(s.label), false)
		c.FillText(sty, pt, s.label)
	}
}

// Thumbnail implements plot.Thumbnailer.
func (faultShading) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(colFault(), []vg.Point{c.Min, {X: c.Max.X, Y: c.Min.Y}, c.Max, {X: c.Min.X, Y: c.Max.Y}})
}

// faultMarkStyle is the line of a fault without an end.
func faultMarkStyle() draw.LineStyle { return lineStyle(colFaultEdge(), 1.5) }

// faultMarkThumb is the legend's sample of a fault without an end.
type faultMarkThumb struct{}

// Thumbnail implements plot.Thumbnailer.
func (faultMarkThumb) Thumbnail(c *draw.Canvas) {
	x := c.Center().X
	c.StrokeLine2(faultMarkStyle(), x, c.Min.Y, x, c.Max.Y)
}

// labelRows stacks labels along an edge of a plot: a label that would overlap the
// last one placed on a row goes to the next row.
type labelRows []vg.Length // each row's right end so far

// place returns the row for a label from x to x+w and reserves that stretch.
func (r *labelRows) place(x, w vg.Length) int {
	row := 0
	for row < len(*r) && (*r)[row] > x {
		row++
	}
	if row == len(*r) {
		*r = append(*r, 0)
	}
	(*r)[row] = x + w + 6
	return row
}

// phaseMarks draws a dashed line at each phase start, its name along the bottom.
type phaseMarks struct{ spans []span }

// Plot implements plot.Plotter.
func (m phaseMarks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	line := lineStyle(colPhase(), 1)
	line.Dashes = []vg.Length{3, 3}
	sty := draw.TextStyle{Color: colPhase(), Font: sans(10), Handler: p.TextHandler, XAlign: draw.XLeft, YAlign: draw.YBottom}
	var rows labelRows
	for _, s := range m.spans {
		x := trX(s.from)
		if x < c.Min.X || x > c.Max.X {
			continue
		}
		c.StrokeLine2(line, x, c.Min.Y, x, c.Max.Y)
		w := sty.Width(s.label)
		lx := min(x+3, c.Max.X-w-2)
		row := rows.place(lx, w)
		pt := vg.Point{X: lx, Y: c.Min.Y + 3 + vg.Length(row)*sty.Height(s.label)}
		labelBox(c, pt, w, sty.Height(s.label), true)
		c.FillText(sty, pt, s.label)
	}
}

// note writes a line of text in the middle of an empty plot ("no reconnects").
type note struct{ text string }

// Plot implements plot.Plotter.
func (n note) Plot(c draw.Canvas, p *plot.Plot) {
	sty := draw.TextStyle{Color: color.Gray{Y: 90}, Font: sans(14), Handler: p.TextHandler, XAlign: draw.XCenter, YAlign: draw.YCenter}
	c.FillText(sty, c.Center(), n.text)
}

// emptyPlot makes a plot that says it has no data, with sane axes.
func emptyPlot(title, xLabel, yLabel, why string) *plot.Plot {
	p := newPlot(title, xLabel, yLabel)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.Add(note{why})
	return p
}

// makeRoomForLegend raises the top of the y axis so that the legend, drawn at
// the top of the data area, sits above the data instead of over it.
func makeRoomForLegend(p *plot.Plot) {
	r := p.Legend.Rectangle(draw.Canvas{})
	h := r.Max.Y - r.Min.Y
	lo, hi := p.Y.Min, p.Y.Max
	if h <= 0 || math.IsInf(lo, 0) || math.IsInf(hi, 0) || math.IsNaN(lo) || math.IsNaN(hi) || hi <= lo {
		return
	}
	const chrome = 85 // title, x axis, tick labels and padding, in points
	f := math.Min(float64(h+12)/float64(panelH-chrome), 0.75)
	if _, isLog := p.Y.Scale.(plot.LogScale); isLog {
		if lo <= 0 {
			return
		}
		l, u := math.Log10(lo), math.Log10(hi)
		p.Y.Max = math.Pow(10, l+(u-l)/(1-f))
		return
	}
	p.Y.Max = lo + (hi-lo)/(1-f)
}

// labelBox clears a translucent white box behind a label at pt (its top-left
// corner, or bottom-left if fromBottom) so it reads over lines.
func labelBox(c draw.Canvas, pt vg.Point, w, h vg.Length, fromBottom bool) {
	y0, y1 := pt.Y-h, pt.Y
	if fromBottom {
		y0, y1 = pt.Y, pt.Y+h
	}
	bg := color.NRGBA{R: 255, G: 255, B: 255, A: 215}
	c.FillPolygon(bg, []vg.Point{{X: pt.X - 1, Y: y0}, {X: pt.X + w + 1, Y: y0}, {X: pt.X + w + 1, Y: y1}, {X: pt.X - 1, Y: y1}})
}

// tickMS labels a round number of milliseconds with the shortest exact text:
// "500 µs", "20 ms", "1 s", "1.5 s".
func tickMS(ms float64) string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	switch {
	case ms < 1:
		return f(math.Round(ms*1e6)/1e3) + " µs"
	case ms < 1000:
		return f(ms) + " ms"
	}
	return f(ms/1000) + " s"
}

// legendBackdrop clears a translucent box where the legend will be drawn (at the
// top left), so that reference lines and shading crossing it do not garble its
// text. It must be the plot's last plotter: the legend is drawn after them all.
type legendBackdrop struct{}

// Plot implements plot.Plotter.
func (legendBackdrop) Plot(c draw.Canvas, p *plot.Plot) {
	r := p.Legend.Rectangle(draw.Canvas{})
	w, h := r.Max.X-r.Min.X, r.Max.Y-r.Min.Y
	if w <= 0 || h <= 0 {
		return
	}
	x0, y1 := c.Min.X+p.Legend.XOffs-3, c.Max.Y+p.Legend.YOffs+3
	bg := color.NRGBA{R: 255, G: 255, B: 255, A: 225}
	c.FillPolygon(bg, []vg.Point{{X: x0, Y: y1 - h - 6}, {X: x0 + w + 8, Y: y1 - h - 6}, {X: x0 + w + 8, Y: y1}, {X: x0, Y: y1}})
}
