package chart

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Geometry: PNGs are drawn at DPI, Width wide and PanelHeight high per panel,
// so that they read at their natural size in a browser window and in Markdown
// viewers.
const (
	DPI         = 100
	Width       = 13 * vg.Inch
	PanelHeight = 4.2 * vg.Inch
)

// Sans is the charts' typeface at a size.
func Sans(size vg.Length) font.Font {
	return font.From(font.Font{Typeface: "Liberation", Variant: "Sans"}, size)
}

// SLOColor is the colour of limits: SLO lines, validity bounds, the offered rate.
func SLOColor() color.Color { return color.RGBA{R: 200, G: 30, B: 30, A: 255} }

// FaultColor is the translucent fill of a fault window.
func FaultColor() color.Color { return color.NRGBA{R: 255, G: 150, B: 40, A: 64} }

// FaultEdgeColor is the colour of a fault's label and of a fault without an end.
func FaultEdgeColor() color.Color { return color.RGBA{R: 220, G: 110, B: 0, A: 255} }

// PhaseColor is the colour of phase marks.
func PhaseColor() color.Color { return color.Gray{Y: 110} }

// BaselineColor is the colour of a baseline run drawn for comparison.
func BaselineColor() color.Color { return color.Gray{Y: 120} }

// Palette returns the i-th series colour: dark, distinct, cycling after twelve,
// and never SLOColor.
func Palette(i int) color.Color {
	cs := []color.RGBA{
		{31, 119, 180, 255}, {44, 160, 44, 255}, {148, 103, 189, 255}, {23, 190, 207, 255},
		{140, 86, 75, 255}, {227, 119, 194, 255}, {188, 189, 34, 255}, {127, 127, 127, 255},
		{0, 0, 128, 255}, {0, 100, 0, 255}, {128, 0, 128, 255}, {0, 128, 128, 255},
	}
	return cs[((i%len(cs))+len(cs))%len(cs)]
}

// Line returns a solid line of a colour and width.
func Line(c color.Color, w vg.Length) draw.LineStyle {
	return draw.LineStyle{Color: c, Width: w}
}

// Dashed returns a dashed line of a colour and width, dash long and gap apart.
func Dashed(c color.Color, w, dash, gap vg.Length) draw.LineStyle {
	sty := Line(c, w)
	sty.Dashes = []vg.Length{dash, gap}
	return sty
}

// SLOStyle is the line of a limit: dashed, in SLOColor.
func SLOStyle() draw.LineStyle { return Dashed(SLOColor(), 2, 8, 4) }

// New returns a panel in the house style: a title, labelled axes with round
// ticks, a grid, readable fonts, the legend at the top left.
func New(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = Sans(15)
	p.Title.Padding = 6
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Tick.Marker = NiceTicks{}
		ax.Label.TextStyle.Font = Sans(12)
		ax.Tick.Label.Font = Sans(11)
		ax.Padding = 2
	}
	p.Legend.TextStyle.Font = Sans(11)
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = 6, -4
	p.Legend.Padding = 2
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = color.Gray{Y: 225}, color.Gray{Y: 225}
	p.Add(g)
	return p
}

// Empty returns a panel that says why it has no data, over unit axes.
func Empty(title, xLabel, yLabel, why string) *plot.Plot {
	p := New(title, xLabel, yLabel)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.Add(Note{why})
	return p
}

// PNG draws panels stacked top to bottom, sharing the width, and encodes them
// as a PNG. It raises each panel's y range to make room for its legend and adds
// the legend's backdrop, so a panel is drawn once.
func PNG(panels ...*plot.Plot) ([]byte, error) {
	img := vgimg.NewWith(vgimg.UseWH(Width, PanelHeight*vg.Length(len(panels))), vgimg.UseDPI(DPI))
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
		return nil, fmt.Errorf("encoding png: %w", err)
	}
	return buf.Bytes(), nil
}

// AddLines adds a series that may have gaps (a NaN or infinite y breaks the
// line; a point alone between gaps is marked) under a single legend entry, none
// if name is empty.
func AddLines(p *plot.Plot, name string, xs, ys []float64, sty draw.LineStyle) {
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
	f := math.Min(float64(h+12)/float64(PanelHeight-chrome), 0.75)
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
