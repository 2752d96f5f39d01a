package chart

import (
	"bytes"
	"image/color"
	"image/png"
	"math"
	"slices"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/recorder"
)

// Twelve distinct series colours, none of them the SLO's, cycling after twelve
// in both directions.
func TestPaletteIsDistinctCyclicAndNeverTheSLO(t *testing.T) {
	t.Parallel()
	for i := range 12 {
		if sameColor(Palette(i), SLOColor()) {
			t.Errorf("Palette(%d) is the SLO colour", i)
		}
		for j := range i {
			if sameColor(Palette(i), Palette(j)) {
				t.Errorf("Palette(%d) = Palette(%d)", i, j)
			}
		}
		for _, k := range []int{i + 12, i + 120, i - 12} {
			if !sameColor(Palette(k), Palette(i)) {
				t.Errorf("Palette(%d) differs from Palette(%d)", k, i)
			}
		}
	}
}

// drawPlot draws a whole plot on a 600 × 300 pt recording canvas.
func drawPlot(p *plot.Plot) []mark {
	rec := &recorder.Canvas{}
	p.Draw(draw.NewCanvas(rec, 600, 300))
	return marks(rec)
}

// New gives the house style: the title and axis labels as given, round ticks,
// a grid, the legend at the top left; Empty says why over unit axes.
func TestNewAndEmptyPanels(t *testing.T) {
	t.Parallel()
	p := New("Connections over time", "time (s)", "connections")
	if p.Title.Text != "Connections over time" || p.X.Label.Text != "time (s)" || p.Y.Label.Text != "connections" {
		t.Fatalf("title %q, x %q, y %q", p.Title.Text, p.X.Label.Text, p.Y.Label.Text)
	}
	if _, ok := p.X.Tick.Marker.(NiceTicks); !ok {
		t.Fatalf("x ticks %T, want NiceTicks", p.X.Tick.Marker)
	}
	if _, ok := p.Y.Tick.Marker.(NiceTicks); !ok {
		t.Fatalf("y ticks %T, want NiceTicks", p.Y.Tick.Marker)
	}
	if !p.Legend.Top || !p.Legend.Left {
		t.Fatal("the legend is not at the top left")
	}
	e := Empty("Reconnects", "time", "clients", "no reconnects in this run")
	if e.X.Min != 0 || e.X.Max != 1 || e.Y.Min != 0 || e.Y.Max != 1 {
		t.Fatalf("empty axes x [%g, %g] y [%g, %g], want unit", e.X.Min, e.X.Max, e.Y.Min, e.Y.Max)
	}
	got := texts(drawPlot(e))
	for _, want := range []string{"Reconnects", "time", "clients", "no reconnects in this run"} {
		if !slices.Contains(got, want) {
			t.Errorf("the empty panel does not say %q: %q", want, got)
		}
	}
	grid := 0
	for _, m := range of(drawPlot(New("t", "x", "y")), "stroke", color.Gray{Y: 225}) {
		if len(m.pts) == 2 {
			grid++
		}
	}
	if grid == 0 {
		t.Fatal("no grid lines")
	}
}

// A series is cut at every NaN or infinite value: one stroke per run of finite
// points, a point alone marked instead (a line of one point draws nothing), one
// legend entry (none unnamed or empty).
func TestAddLinesBreaksAtGaps(t *testing.T) {
	t.Parallel()
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name          string
		series        string
		ys            []float64
		lines, glyphs int
	}{
		{"unbroken", "p99", []float64{1, 2, 3, 4}, 1, 0},
		{"a gap", "p99", []float64{1, 2, nan, 4, 5}, 2, 0},
		{"a point alone", "p99", []float64{1, nan, 3, 4}, 1, 1},
		{"infinities are gaps", "p99", []float64{inf, 1, 2, -inf, 3, nan, 5}, 1, 2},
		{"only points alone", "p99", []float64{1, nan, 3}, 0, 2},
		{"nothing finite", "p99", []float64{nan, nan, inf}, 0, 0},
		{"unnamed", "", []float64{1, 2, nan, 4, 5}, 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			col := Palette(2)
			p := New("t", "x", "y")
			xs := make([]float64, len(tc.ys))
			for i := range xs {
				xs[i] = float64(i)
			}
			AddLines(p, tc.series, xs, tc.ys, Line(col, 1.5))
			if tc.lines+tc.glyphs == 0 {
				p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
			}
			ms := drawPlot(p)
			legend := 0
			if slices.Contains(texts(ms), "p99") {
				legend = 1
			}
			wantLegend := 0
			if tc.series != "" && tc.lines+tc.glyphs > 0 {
				wantLegend = 1
			}
			if legend != wantLegend {
				t.Fatalf("legend entries %d, want %d (texts %q)", legend, wantLegend, texts(ms))
			}
			// The legend's thumbnail is a stroke of the line's too.
			if got := len(of(ms, "stroke", col)) - legend; got != tc.lines {
				t.Fatalf("%d strokes besides the legend's, want %d", got, tc.lines)
			}
			if got := len(of(ms, "fill", col)); got != tc.glyphs {
				t.Fatalf("%d point marks, want %d", got, tc.glyphs)
			}
		})
	}
}

// The legend's room: a panel with a legend has its y range raised (linear or
// log) so the legend sits above the data, by at most four times; a panel
// without a legend, or with a range that cannot be raised, is left alone.
func TestMakeRoomForLegend(t *testing.T) {
	t.Parallel()
	withLegend := func(entries int, log bool, lo, hi float64) *plot.Plot {
		p := New("t", "x", "y")
		for i := range entries {
			p.Legend.Add(string(rune('a'+i%26))+" series", HLine{Style: Line(Palette(i), 1)})
		}
		if log {
			p.Y.Scale = plot.LogScale{}
		}
		p.Y.Min, p.Y.Max = lo, hi
		return p
	}
	tests := []struct {
		name    string
		p       *plot.Plot
		raised  bool
		atMost  float64 // the new top is at most this
		atLeast float64 // and above this
	}{
		{"linear", withLegend(2, false, 0, 10), true, 40, 10},
		{"log", withLegend(2, true, 1, 100), true, 1e8, 100},
		{"a huge legend: at most four times", withLegend(60, false, 0, 10), true, 40.0001, 39.999},
		{"no legend", withLegend(0, false, 0, 10), false, 0, 0},
		{"log from zero", withLegend(2, true, 0, 100), false, 0, 0},
		{"empty range", withLegend(2, false, 5, 5), false, 0, 0},
		{"infinite", withLegend(2, false, 0, math.Inf(1)), false, 0, 0},
		{"not a number", withLegend(2, false, math.NaN(), 1), false, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := tc.p.Y.Min, tc.p.Y.Max
			makeRoomForLegend(tc.p)
			if tc.p.Y.Min != lo && !(math.IsNaN(lo) && math.IsNaN(tc.p.Y.Min)) {
				t.Fatalf("the bottom moved from %g to %g", lo, tc.p.Y.Min)
			}
			if !tc.raised {
				if tc.p.Y.Max != hi && !(math.IsInf(hi, 0) && math.IsInf(tc.p.Y.Max, 0)) {
					t.Fatalf("the top moved from %g to %g", hi, tc.p.Y.Max)
				}
				return
			}
			if !(tc.p.Y.Max > tc.atLeast && tc.p.Y.Max <= tc.atMost) {
				t.Fatalf("top %g, want in (%g, %g]", tc.p.Y.Max, tc.atLeast, tc.atMost)
			}
		})
	}
}

// The legend's backdrop clears a box the size of the legend at the top left,
// and nothing when there is no legend.
func TestLegendBackdropCoversTheLegend(t *testing.T) {
	t.Parallel()
	p := New("t", "x", "y")
	p.Legend.Add("a rather long legend entry", HLine{Style: SLOStyle()})
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	rec := &recorder.Canvas{}
	legendBackdrop{}.Plot(draw.NewCanvas(rec, 600, 300), p)
	fills := of(marks(rec), "fill", nil)
	r := p.Legend.Rectangle(draw.Canvas{})
	if len(fills) != 1 {
		t.Fatalf("fills %+v, want one box", fills)
	}
	lo, hi := fills[0].pts[0], fills[0].pts[0]
	for _, pt := range fills[0].pts {
		lo.X, lo.Y, hi.X, hi.Y = min(lo.X, pt.X), min(lo.Y, pt.Y), max(hi.X, pt.X), max(hi.Y, pt.Y)
	}
	if hi.X-lo.X < r.Max.X-r.Min.X || hi.Y-lo.Y < r.Max.Y-r.Min.Y || lo.X > 10 || hi.Y < 290 {
		t.Fatalf("box %v–%v does not cover a %v × %v legend at the top left", lo, hi, r.Max.X-r.Min.X, r.Max.Y-r.Min.Y)
	}
	empty := &recorder.Canvas{}
	legendBackdrop{}.Plot(draw.NewCanvas(empty, 600, 300), New("t", "x", "y"))
	if len(empty.Actions) != 0 {
		t.Fatalf("no legend, yet drew %d actions", len(empty.Actions))
	}
}

// PNG stacks the panels at the house geometry: Width across, PanelHeight per
// panel, at DPI.
func TestPNGStacksPanelsAtTheHouseGeometry(t *testing.T) {
	t.Parallel()
	panel := func() *plot.Plot {
		p := New("t", "x", "y")
		AddLines(p, "s", []float64{0, 1, 2}, []float64{1, 3, 2}, Line(Palette(0), 2))
		p.Add(HLine{Y: 2, Label: "SLO", Style: SLOStyle()})
		return p
	}
	px := func(l vg.Length) int { return int(math.Round(float64(l) / vg.Inch.Points() * DPI)) }
	for _, n := range []int{1, 2} {
		panels := make([]*plot.Plot, n)
		for i := range panels {
			panels[i] = panel()
		}
		b, err := PNG(panels...)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%d panels: not a PNG: %v", n, err)
		}
		if cfg.Width != px(Width) || cfg.Height != n*px(PanelHeight) {
			t.Fatalf("%d panels: %d × %d px, want %d × %d", n, cfg.Width, cfg.Height, px(Width), n*px(PanelHeight))
		}
	}
}
