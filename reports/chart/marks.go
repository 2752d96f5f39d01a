package chart

import (
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// HLine is a labelled horizontal reference line across the whole panel (an
// SLO, a bound). It is drawn only if Y is within the y range; its label sits
// above it at the right.
type HLine struct {
	Y     float64
	Label string
	Style draw.LineStyle
}

// Plot implements plot.Plotter.
func (h HLine) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	y := trY(h.Y)
	if !c.ContainsY(y) {
		return
	}
	c.StrokeLine2(h.Style, c.Min.X, y, c.Max.X, y)
	sty := draw.TextStyle{Color: h.Style.Color, Font: Sans(11), Handler: p.TextHandler, XAlign: draw.XRight, YAlign: draw.YBottom}
	c.FillText(sty, vg.Point{X: c.Max.X - 4, Y: y + 2}, h.Label)
}

// Thumbnail implements plot.Thumbnailer.
func (h HLine) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(h.Style, c.Min.X, y, c.Max.X, y)
}

// VLine is a labelled vertical reference line across the whole panel. It is
// drawn only if X is within the x range; its label sits to its right near the
// bottom, over a translucent box.
type VLine struct {
	X     float64
	Label string
	Style draw.LineStyle
}

// Plot implements plot.Plotter.
func (v VLine) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	x := trX(v.X)
	if !c.ContainsX(x) {
		return
	}
	c.StrokeLine2(v.Style, x, c.Min.Y, x, c.Max.Y)
	sty := draw.TextStyle{Color: v.Style.Color, Font: Sans(11), Handler: p.TextHandler, XAlign: draw.XLeft, YAlign: draw.YBottom}
	pt := vg.Point{X: x + 4, Y: c.Min.Y + 20}
	labelBox(c, pt, sty.Width(v.Label), sty.Height(v.Label), true)
	c.FillText(sty, pt, v.Label)
}

// Thumbnail implements plot.Thumbnailer.
func (v VLine) Thumbnail(c *draw.Canvas) {
	x := c.Center().X
	c.StrokeLine2(v.Style, x, c.Min.Y, x, c.Max.Y)
}

// Span is a stretch of a time axis with a label. A window is drawn as a shaded
// stretch from From to To; otherwise the span is an instant at From, drawn as a
// line.
type Span struct {
	From, To float64
	Label    string
	Window   bool
}

// MinWindowWidth is the narrowest a window is shaded, so that a short one stays
// visible (and tells itself apart from an instant) at any time scale.
const MinWindowWidth = vg.Length(3)

// FaultShading shades fault windows (Jepsen-style) and labels them along the
// top; an instantaneous fault is a vertical line. A span is cut at the panel's
// edges, and dropped if wholly outside. Labels that would overlap drop to the
// next row.
type FaultShading struct{ Spans []Span }

// Plot implements plot.Plotter.
func (f FaultShading) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	sty := draw.TextStyle{Color: FaultEdgeColor(), Font: Sans(10), Handler: p.TextHandler, XAlign: draw.XLeft, YAlign: draw.YTop}
	var rows labelRows
	for _, s := range f.Spans {
		x0, x1 := trX(s.From), trX(s.To)
		if !s.Window {
			x1 = x0
		}
		if x1 < c.Min.X || x0 > c.Max.X {
			continue
		}
		x0, x1 = max(x0, c.Min.X), min(x1, c.Max.X)
		if s.Window {
			x1 = max(x1, min(x0+MinWindowWidth, c.Max.X))
			c.FillPolygon(FaultColor(), []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
		} else {
			c.StrokeLine2(faultMarkStyle(), x0, c.Min.Y, x0, c.Max.Y)
		}
		w := sty.Width(s.Label)
		lx := min(x0+3, c.Max.X-w-2)
		row := rows.place(lx, w)
		pt := vg.Point{X: lx, Y: c.Max.Y - 3 - vg.Length(row)*sty.Height(s.Label)}
		labelBox(c, pt, w, sty.Height(s.Label), false)
		c.FillText(sty, pt, s.Label)
	}
}

// Thumbnail implements plot.Thumbnailer.
func (FaultShading) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(FaultColor(), []vg.Point{c.Min, {X: c.Max.X, Y: c.Min.Y}, c.Max, {X: c.Min.X, Y: c.Max.Y}})
}

// faultMarkStyle is the line of a fault without an end.
func faultMarkStyle() draw.LineStyle { return Line(FaultEdgeColor(), 1.5) }

// FaultMarkThumb is the legend's sample of a fault without an end.
type FaultMarkThumb struct{}

// Thumbnail implements plot.Thumbnailer.
func (FaultMarkThumb) Thumbnail(c *draw.Canvas) {
	x := c.Center().X
	c.StrokeLine2(faultMarkStyle(), x, c.Min.Y, x, c.Max.Y)
}

// labelRows stacks labels along an edge of a panel: a label that would overlap
// the last one placed on a row goes to the next row.
type labelRows []vg.Length // each row's right end so far

// place returns the row for a label from x to x+w and reserves that stretch
// (plus a gap of 6 points).
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

// PhaseMarks draws a dashed line at each span's start (a phase), its label
// along the bottom; starts outside the x range are left out.
type PhaseMarks struct{ Spans []Span }

// Plot implements plot.Plotter.
func (m PhaseMarks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	line := Dashed(PhaseColor(), 1, 3, 3)
	sty := draw.TextStyle{Color: PhaseColor(), Font: Sans(10), Handler: p.TextHandler, XAlign: draw.XLeft, YAlign: draw.YBottom}
	var rows labelRows
	for _, s := range m.Spans {
		x := trX(s.From)
		if x < c.Min.X || x > c.Max.X {
			continue
		}
		c.StrokeLine2(line, x, c.Min.Y, x, c.Max.Y)
		w := sty.Width(s.Label)
		lx := min(x+3, c.Max.X-w-2)
		row := rows.place(lx, w)
		pt := vg.Point{X: lx, Y: c.Min.Y + 3 + vg.Length(row)*sty.Height(s.Label)}
		labelBox(c, pt, w, sty.Height(s.Label), true)
		c.FillText(sty, pt, s.Label)
	}
}

// Note writes a line of text in the middle of a panel ("no reconnects").
type Note struct{ Text string }

// Plot implements plot.Plotter.
func (n Note) Plot(c draw.Canvas, p *plot.Plot) {
	sty := draw.TextStyle{Color: color.Gray{Y: 90}, Font: Sans(14), Handler: p.TextHandler, XAlign: draw.XCenter, YAlign: draw.YCenter}
	c.FillText(sty, c.Center(), n.Text)
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
