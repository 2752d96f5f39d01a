package reports

import (
	"testing"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/runfolder"
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
		if sp.Label != w.label || sp.Window != w.window || sp.From != w.from || sp.To != w.to {
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
