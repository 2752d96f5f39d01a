package chart

import (
	"image/color"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/recorder"
)

// faultDrawing is what FaultShading drew on a canvas whose x is one point per
// second: each shaded stretch's x extent and each fault line's x.
type faultDrawing struct {
	shaded [][2]vg.Length
	lines  []vg.Length
}

// drawFaults draws spans on a 100 × 50 pt canvas over x from 0 to 100 s.
func drawFaults(t *testing.T, spans []Span) faultDrawing {
	t.Helper()
	rec := &recorder.Canvas{}
	c := draw.NewCanvas(rec, 100, 50)
	p := plot.New()
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 100, 0, 1
	FaultShading{spans}.Plot(c, p)
	var d faultDrawing
	var cur color.Color
	same := sameColor
	for _, act := range rec.Actions {
		switch x := act.(type) {
		case *recorder.SetColor:
			cur = x.Color
		case *recorder.Fill:
			if !same(cur, FaultColor()) {
				continue // a label's background
			}
			lo, hi := vg.Length(1e9), vg.Length(-1e9)
			for _, pc := range x.Path {
				if pc.Type == vg.MoveComp || pc.Type == vg.LineComp {
					lo, hi = min(lo, pc.Pos.X), max(hi, pc.Pos.X)
				}
			}
			d.shaded = append(d.shaded, [2]vg.Length{lo, hi})
		case *recorder.Stroke:
			if !same(cur, FaultEdgeColor()) {
				continue
			}
			d.lines = append(d.lines, x.Path[0].Pos.X)
		}
	}
	return d
}

// A window is shaded between its start and its end — at least MinWindowWidth,
// so a short one stays a window — and an instant is a line at its time.
func TestFaultShadingDrawsWindowsAndMarkers(t *testing.T) {
	t.Parallel()
	near := func(a, b vg.Length) bool { return a-b < 0.01 && b-a < 0.01 }
	tests := []struct {
		name   string
		spans  []Span
		shaded [][2]vg.Length
		lines  []vg.Length
	}{
		{"a window", []Span{{From: 20, To: 45, Label: "partition gw-2", Window: true}}, [][2]vg.Length{{20, 45}}, nil},
		{"an instant", []Span{{From: 60, To: 60, Label: "blackhole gw-3"}}, nil, []vg.Length{60}},
		{"a window too short to see", []Span{{From: 30, To: 30.5, Label: "loss gw-1", Window: true}}, [][2]vg.Length{{30, 30 + MinWindowWidth}}, nil},
		{"both", []Span{{From: 10, To: 15, Label: "pause msg", Window: true}, {From: 70, To: 70, Label: "kill gw-1"}},
			[][2]vg.Length{{10, 15}}, []vg.Length{70}},
		{"a window past the end is cut at the edge", []Span{{From: 90, To: 130, Label: "bandwidth gw-4", Window: true}}, [][2]vg.Length{{90, 100}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := drawFaults(t, tc.spans)
			if len(d.shaded) != len(tc.shaded) || len(d.lines) != len(tc.lines) {
				t.Fatalf("shaded %v and lines %v, want %v and %v", d.shaded, d.lines, tc.shaded, tc.lines)
			}
			for i, w := range tc.shaded {
				if !near(d.shaded[i][0], w[0]) || !near(d.shaded[i][1], w[1]) {
					t.Fatalf("shaded %v, want %v", d.shaded, tc.shaded)
				}
			}
			for i, w := range tc.lines {
				if !near(d.lines[i], w) {
					t.Fatalf("lines %v, want %v", d.lines, tc.lines)
				}
			}
		})
	}
}
