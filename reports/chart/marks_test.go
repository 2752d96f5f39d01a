package chart

import (
	"image/color"
	"math"
	"slices"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/recorder"
)

// mark is one thing drawn on a recording canvas: a stroke or a fill with its
// colour and its path's points, or a text at its position.
type mark struct {
	kind string // "stroke", "fill" or "text"
	col  color.Color
	pts  []vg.Point
	text string
}

// sameColor reports whether two colours are the same once premultiplied.
func sameColor(a, b color.Color) bool {
	if a == nil || b == nil {
		return a == b
	}
	r1, g1, b1, a1 := a.RGBA()
	r2, g2, b2, a2 := b.RGBA()
	return r1 == r2 && g1 == g2 && b1 == b2 && a1 == a2
}

// marks returns what was recorded, in order.
func marks(rec *recorder.Canvas) []mark {
	var out []mark
	var cur color.Color
	pts := func(p vg.Path) []vg.Point {
		var ps []vg.Point
		for _, pc := range p {
			if pc.Type == vg.MoveComp || pc.Type == vg.LineComp {
				ps = append(ps, pc.Pos)
			}
		}
		return ps
	}
	for _, act := range rec.Actions {
		switch x := act.(type) {
		case *recorder.SetColor:
			cur = x.Color
		case *recorder.Stroke:
			out = append(out, mark{kind: "stroke", col: cur, pts: pts(x.Path)})
		case *recorder.Fill:
			out = append(out, mark{kind: "fill", col: cur, pts: pts(x.Path)})
		case *recorder.FillString:
			out = append(out, mark{kind: "text", col: cur, pts: []vg.Point{x.Point}, text: x.String})
		}
	}
	return out
}

// drawOn draws a plotter on a 100 × 50 pt canvas over x from 0 to 100 and y from
// 0 to 100: x in points is x, y in points is half of y.
func drawOn(pl plot.Plotter) []mark {
	rec := &recorder.Canvas{}
	p := plot.New()
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 100, 0, 100
	pl.Plot(draw.NewCanvas(rec, 100, 50), p)
	return marks(rec)
}

// thumb draws a legend thumbnail on a 20 × 10 pt canvas.
func thumb(th plot.Thumbnailer) []mark {
	rec := &recorder.Canvas{}
	c := draw.NewCanvas(rec, 20, 10)
	th.Thumbnail(&c)
	return marks(rec)
}

// of returns the marks of a kind in a colour (any colour if col is nil).
func of(ms []mark, kind string, col color.Color) []mark {
	var out []mark
	for _, m := range ms {
		if m.kind == kind && (col == nil || sameColor(m.col, col)) {
			out = append(out, m)
		}
	}
	return out
}

// texts returns the texts drawn.
func texts(ms []mark) []string {
	var out []string
	for _, m := range of(ms, "text", nil) {
		out = append(out, m.text)
	}
	return out
}

// near reports whether two lengths agree to a hundredth of a point.
func near(a, b vg.Length) bool { return math.Abs(float64(a-b)) < 0.01 }

// A horizontal line at a y within the range crosses the whole panel there,
// labelled; outside the range it draws nothing.
func TestHLineDrawnAcrossAtItsYOnlyInRange(t *testing.T) {
	t.Parallel()
	sty := SLOStyle()
	ms := drawOn(HLine{Y: 60, Label: "SLO 60 ms", Style: sty})
	lines := of(ms, "stroke", SLOColor())
	if len(lines) != 1 || len(lines[0].pts) != 2 {
		t.Fatalf("strokes %+v, want one line", lines)
	}
	a, b := lines[0].pts[0], lines[0].pts[1]
	if !near(a.Y, 30) || !near(b.Y, 30) || !near(a.X, 0) || !near(b.X, 100) {
		t.Fatalf("line from %v to %v, want across at y = 30 pt", a, b)
	}
	if got := texts(ms); !slices.Equal(got, []string{"SLO 60 ms"}) {
		t.Fatalf("texts %q", got)
	}
	for _, y := range []float64{-1, 101, 1000} {
		if ms := drawOn(HLine{Y: y, Label: "out", Style: sty}); len(ms) != 0 {
			t.Errorf("y %g outside the range drew %+v", y, ms)
		}
	}
}

// A vertical line at an x within the range runs the panel's height, labelled to
// its right over a box; outside the range it draws nothing.
func TestVLineDrawnUpAtItsXOnlyInRange(t *testing.T) {
	t.Parallel()
	sty := Line(Palette(1), 2)
	ms := drawOn(VLine{X: 30, Label: "highest rate", Style: sty})
	lines := of(ms, "stroke", Palette(1))
	if len(lines) != 1 || !near(lines[0].pts[0].X, 30) || !near(lines[0].pts[1].X, 30) ||
		!near(lines[0].pts[0].Y, 0) || !near(lines[0].pts[1].Y, 50) {
		t.Fatalf("strokes %+v, want one from (30, 0) to (30, 50)", lines)
	}
	txt := of(ms, "text", nil)
	if len(txt) != 1 || txt[0].text != "highest rate" || txt[0].pts[0].X <= 30 {
		t.Fatalf("texts %+v, want the label right of the line", txt)
	}
	if boxes := of(ms, "fill", nil); len(boxes) != 1 {
		t.Fatalf("fills %+v, want the label's box", boxes)
	}
	for _, x := range []float64{-5, 100.5} {
		if ms := drawOn(VLine{X: x, Label: "out", Style: sty}); len(ms) != 0 {
			t.Errorf("x %g outside the range drew %+v", x, ms)
		}
	}
}

// Each phase start within the range is a dashed line with its name along the
// bottom; starts outside it are left out.
func TestPhaseMarksAtEachStartInRange(t *testing.T) {
	t.Parallel()
	ms := drawOn(PhaseMarks{Spans: []Span{{From: -10, To: 0, Label: "before"}, {From: 0, To: 40, Label: "warm"},
		{From: 40, To: 90, Label: "crash"}, {From: 90, To: 130, Label: "recover"}, {From: 130, To: 140, Label: "after"}}})
	var xs []float64
	for _, l := range of(ms, "stroke", PhaseColor()) {
		xs = append(xs, math.Round(float64(l.pts[0].X)))
	}
	if !slices.Equal(xs, []float64{0, 40, 90}) {
		t.Fatalf("phase lines at %v, want 0, 40, 90", xs)
	}
	if got := texts(ms); !slices.Equal(got, []string{"warm", "crash", "recover"}) {
		t.Fatalf("labels %q", got)
	}
	for _, m := range of(ms, "text", nil) {
		if m.pts[0].Y > 25 {
			t.Fatalf("label %q at %v: not along the bottom", m.text, m.pts[0])
		}
	}
}

// Phase labels that would overlap stack upwards; one clear of the last on the
// bottom row goes back to it; one at the right edge is pulled in to fit.
func TestPhaseLabelsStackWhenCrowded(t *testing.T) {
	t.Parallel()
	ms := drawOn(PhaseMarks{Spans: []Span{{From: 10, Label: "alpha"}, {From: 12, Label: "beta"}, {From: 60, Label: "gamma"}}})
	txt := of(ms, "text", nil)
	if len(txt) != 3 {
		t.Fatalf("texts %+v", txt)
	}
	if !(txt[1].pts[0].Y > txt[0].pts[0].Y) {
		t.Fatalf("crowded labels at %v and %v: the second should sit higher", txt[0].pts[0], txt[1].pts[0])
	}
	if !near(txt[2].pts[0].Y, txt[0].pts[0].Y) {
		t.Fatalf("a clear label at %v, want the bottom row (%v)", txt[2].pts[0], txt[0].pts[0])
	}
	edge := of(drawOn(PhaseMarks{Spans: []Span{{From: 99, Label: "omega"}}}), "text", nil)
	w := draw.TextStyle{Font: Sans(10), Handler: plot.New().TextHandler}.Width("omega")
	if len(edge) != 1 || edge[0].pts[0].X+w > 100 {
		t.Fatalf("a label at the right edge drawn at %+v (width %v): it should be pulled in to fit", edge, w)
	}
}

func TestLabelRowsPlaceEachLabelOnTheFirstRowItClears(t *testing.T) {
	t.Parallel()
	var r labelRows
	for i, tc := range []struct {
		x, w vg.Length
		want int
	}{
		{0, 10, 0},  // row 0 ends at 16
		{5, 10, 1},  // overlaps row 0: row 1 ends at 21
		{8, 4, 2},   // overlaps both: row 2 ends at 18
		{16, 10, 0}, // clears row 0 exactly: it ends at 32
		{22, 3, 1},  // clears row 1 (21), not row 0 (32)
		{40, 1, 0},
	} {
		if got := r.place(tc.x, tc.w); got != tc.want {
			t.Fatalf("label %d at %v: row %d, want %d (rows %v)", i, tc.x, got, tc.want, r)
		}
	}
}

// A note is its text at the middle of the panel.
func TestNoteCentred(t *testing.T) {
	t.Parallel()
	const text = "no reconnects in this run"
	ms := drawOn(Note{Text: text})
	w := draw.TextStyle{Font: Sans(14), Handler: plot.New().TextHandler}.Width(text)
	if len(ms) != 1 || ms[0].text != text || !near(ms[0].pts[0].X+w/2, 50) || ms[0].pts[0].Y <= 10 || ms[0].pts[0].Y >= 40 {
		t.Fatalf("drew %+v (width %v), want the text centred on (50, 25)", ms, w)
	}
}

// Each legend thumbnail draws its sample: a line across or up, or a shaded box.
func TestThumbnailsDrawTheirSample(t *testing.T) {
	t.Parallel()
	across := func(m mark) bool { return near(m.pts[0].Y, m.pts[1].Y) && near(m.pts[1].X-m.pts[0].X, 20) }
	up := func(m mark) bool { return near(m.pts[0].X, m.pts[1].X) && near(m.pts[1].Y-m.pts[0].Y, 10) }
	tests := []struct {
		name  string
		th    plot.Thumbnailer
		kind  string
		col   color.Color
		shape func(mark) bool
	}{
		{"hline", HLine{Style: SLOStyle()}, "stroke", SLOColor(), across},
		{"vline", VLine{Style: Line(Palette(3), 1)}, "stroke", Palette(3), up},
		{"fault mark", FaultMarkThumb{}, "stroke", FaultEdgeColor(), up},
		{"fault window", FaultShading{}, "fill", FaultColor(), func(m mark) bool { return len(m.pts) == 4 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms := thumb(tc.th)
			if len(ms) != 1 || ms[0].kind != tc.kind || !sameColor(ms[0].col, tc.col) || !tc.shape(ms[0]) {
				t.Fatalf("drew %+v", ms)
			}
		})
	}
}
