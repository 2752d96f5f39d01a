package reports

import (
	"image/color"
	"testing"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/runfolder"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/recorder"
)

// Every fault with an end is a window from its start to its end (network faults
// included, whatever their action); a kill is a window until the process came
// back, if it did; any other fault is an instant, and so is one not applied.
// The summary gives the duration of the faults with an end and their heal.
func TestFaultWindowsAndMarkers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 20})
	f.info.Processes = []runfolder.ProcessInfo{
		{Name: "gw-1", Role: "gateway", Started: f.at(-3)},
		{Name: "gw-3", Role: "gateway", Started: f.at(-3), Exited: f.at(8), ExitCause: "fault"},
		{Name: "gw-3", Role: "gateway", Started: f.at(11)},
		{Name: "gw-4", Role: "gateway", Started: f.at(-3), Exited: f.at(9), ExitCause: "fault"},
	}
	type want struct {
		from, to   float64
		window     bool
		label      string
		durationMS float64 // 0: none
	}
	cases := []struct {
		ev   runfolder.FaultEvent
		want want
	}{
		{runfolder.FaultEvent{Action: "partition", Target: "gw-2", At: f.at(2), End: f.at(7)}, want{2, 7, true, "partition gw-2", 5000}},
		{runfolder.FaultEvent{Action: "loss", Target: "gw-1", At: f.at(3), End: f.at(3.5)}, want{3, 3.5, true, "loss gw-1", 500}},
		{runfolder.FaultEvent{Action: "bandwidth", Target: "gw-1", At: f.at(4), End: f.at(6)}, want{4, 6, true, "bandwidth gw-1", 2000}},
		{runfolder.FaultEvent{Action: "blackhole", Target: "gw-2", At: f.at(5)}, want{5, 5, false, "blackhole gw-2", 0}},
		{runfolder.FaultEvent{Action: "pause", Target: "msg", At: f.at(6), End: f.at(8)}, want{6, 8, true, "pause msg", 2000}},
		{runfolder.FaultEvent{Action: "kill", Target: "gw-3", At: f.at(8)}, want{8, 11, true, "kill gw-3", 0}},
		{runfolder.FaultEvent{Action: "kill", Target: "gw-4", At: f.at(9)}, want{9, 9, false, "kill gw-4", 0}},
		{runfolder.FaultEvent{Action: "partition", Target: "gw-1", At: f.at(10), End: f.at(12), Error: "no such host"},
			want{10, 10, false, "partition gw-1 (not applied)", 2000}},
		{runfolder.FaultEvent{Action: "drain", Target: "gw-1", At: f.at(13)}, want{13, 13, false, "drain gw-1", 0}},
	}
	for _, c := range cases {
		f.info.Faults = append(f.info.Faults, c.ev)
	}
	f.steadySystem(1000)
	r, err := loadRun(f.write(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := analyse(r)
	spans := a.faultSpans()
	sums := a.faultSummaries()
	if len(spans) != len(cases) || len(sums) != len(cases) {
		t.Fatalf("%d spans, %d summaries for %d faults", len(spans), len(sums), len(cases))
	}
	for i, c := range cases {
		w, sp := c.want, spans[i]
		if sp.label != w.label || sp.window != w.window || sp.from != w.from || sp.to != w.to {
			t.Errorf("%s: span %+v, want from %g to %g window %v label %q", c.ev.Action, sp, w.from, w.to, w.window, w.label)
		}
		d := sums[i].DurationMS
		switch {
		case w.durationMS == 0 && d != nil:
			t.Errorf("%s %s: duration %g ms, want none", c.ev.Action, c.ev.Target, *d)
		case w.durationMS != 0 && (d == nil || *d != w.durationMS):
			t.Errorf("%s %s: duration %v, want %g ms", c.ev.Action, c.ev.Target, d, w.durationMS)
		}
	}
}

// A network fault's end is its heal: the summary measures the time from it to
// the last delivery of the messages pending at it, as for a pause.
func TestNetworkFaultHealsAtItsEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 10})
	f.info.Faults = []runfolder.FaultEvent{{Action: "partition", Target: "gw-2", At: f.at(2), End: f.at(5)}}
	f.recovery = func(a int) *loadgen.Recovery {
		r := &loadgen.Recovery{Start: f.t0, BucketMS: 100}
		for i := range 80 {
			r.LastDeliveryMS = append(r.LastDeliveryMS, int64(i*100+50))
		}
		r.LastDeliveryMS[30] = 5750 // intended during the partition, delivered 750 ms after the heal
		return r
	}
	f.steadySystem(1000)
	r, err := loadRun(f.write(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := analyse(r).faultSummaries()[0].HealToLastDeliveryMS
	if got == nil || *got < 749 || *got > 751 {
		t.Fatalf("heal to last delivery %v, want 750 ms", got)
	}
}

// faultDrawing is what faultShading drew on a canvas whose x is one point per
// second: each shaded stretch's x extent and each fault line's x.
type faultDrawing struct {
	shaded [][2]vg.Length
	lines  []vg.Length
}

// drawFaults draws spans on a 100 × 50 pt canvas over x from 0 to 100 s.
func drawFaults(t *testing.T, spans []span) faultDrawing {
	t.Helper()
	rec := &recorder.Canvas{}
	c := draw.NewCanvas(rec, 100, 50)
	p := plot.New()
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 100, 0, 1
	faultShading{spans}.Plot(c, p)
	var d faultDrawing
	var cur color.Color
	same := func(a, b color.Color) bool {
		r1, g1, b1, a1 := a.RGBA()
		r2, g2, b2, a2 := b.RGBA()
		return r1 == r2 && g1 == g2 && b1 == b2 && a1 == a2
	}
	for _, act := range rec.Actions {
		switch x := act.(type) {
		case *recorder.SetColor:
			cur = x.Color
		case *recorder.Fill:
			if !same(cur, colFault()) {
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
			if !same(cur, colFaultEdge()) {
				continue
			}
			d.lines = append(d.lines, x.Path[0].Pos.X)
		}
	}
	return d
}

// A window is shaded between its start and its end — at least minWindowWidth,
// so a short one stays a window — and an instant is a line at its time.
func TestFaultShadingDrawsWindowsAndMarkers(t *testing.T) {
	t.Parallel()
	near := func(a, b vg.Length) bool { return a-b < 0.01 && b-a < 0.01 }
	tests := []struct {
		name   string
		spans  []span
		shaded [][2]vg.Length
		lines  []vg.Length
	}{
		{"a window", []span{{from: 20, to: 45, label: "partition gw-2", window: true}}, [][2]vg.Length{{20, 45}}, nil},
		{"an instant", []span{{from: 60, to: 60, label: "blackhole gw-3"}}, nil, []vg.Length{60}},
		{"a window too short to see", []span{{from: 30, to: 30.5, label: "loss gw-1", window: true}}, [][2]vg.Length{{30, 30 + minWindowWidth}}, nil},
		{"both", []span{{from: 10, to: 15, label: "pause msg", window: true}, {from: 70, to: 70, label: "kill gw-1"}},
			[][2]vg.Length{{10, 15}}, []vg.Length{70}},
		{"a window past the end is cut at the edge", []span{{from: 90, to: 130, label: "bandwidth gw-4", window: true}}, [][2]vg.Length{{90, 100}}, nil},
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
