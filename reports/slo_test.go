package reports

import (
	"strings"
	"testing"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/scenario"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/recorder"
)

// parseGates parses gates as a scenario file states them.
func parseGates(t *testing.T, texts ...string) []scenario.Gate {
	t.Helper()
	var out []scenario.Gate
	for _, s := range texts {
		var g scenario.Gate
		if err := g.UnmarshalText([]byte(s)); err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
	}
	return out
}

// The SLO the plots draw is the limit of the scenario's push latency gate that
// bounds it from above: a whole-run gate before a phase's (or the knee's), a
// gate over its whole scope before a worst-window one, a p99 before another
// statistic, else the first written; none, and there is no SLO to take.
func TestPushSLOIsTheScenariosPushGate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		gates  []string
		phases [][]string
		knee   string
		wantMS float64
		wantOK bool
	}{
		{"no gates at all", nil, nil, "", 0, false},
		{"gates on other metrics only", []string{"lost == 0", "connect p99 < 1s", "push_slow p99 < 20ms", "lag p999 < 5ms"}, nil, "", 0, false},
		{"a lower bound is no SLO", []string{"push p99 > 1ms", "push max >= 0s"}, nil, "", 0, false},
		{"a sample count is no SLO", []string{"push count > 1000"}, nil, "", 0, false},
		{"the whole-run p99 gate", []string{"lost == 0", "push p99 < 250ms"}, nil, "", 250, true},
		{"at most, inclusive", []string{"push p99 <= 80ms"}, nil, "", 80, true},
		{"the whole-run gate over the worst window", []string{"worst 10s push p99 < 5s", "push p99 < 100ms"}, nil, "", 100, true},
		{"p99 over another statistic", []string{"push p999 < 1s", "push p99 < 120ms"}, nil, "", 120, true},
		{"another statistic when no p99", []string{"push p999 < 1s"}, nil, "", 1000, true},
		{"the first written of equals", []string{"push p99 < 90ms", "push p99 < 150ms"}, nil, "", 90, true},
		{"a whole-run gate over a phase's", []string{"push p999 < 2s"}, [][]string{{"push p99 < 50ms"}}, "", 2000, true},
		{"a phase's gate when the run has none", []string{"lost == 0"}, [][]string{{"lost == 0"}, {"push p99 < 70ms"}}, "", 70, true},
		{"a phase's worst-window gate", nil, [][]string{{"worst 10s push p99 < 250ms"}, {"worst 10s push p99 < 300ms"}}, "", 250, true},
		{"the knee condition", nil, nil, "push p99 < 100ms", 100, true},
		{"a phase's gate before a worst-window knee", nil, [][]string{{"push p99 < 60ms"}}, "worst 5s push p99 < 10ms", 60, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc := &scenario.Scenario{Gates: parseGates(t, tc.gates...)}
			for _, pg := range tc.phases {
				sc.Phases = append(sc.Phases, scenario.Phase{Gates: parseGates(t, pg...)})
			}
			if tc.knee != "" {
				k := parseGates(t, tc.knee)[0]
				sc.Knee = &k
			}
			ms, ok := pushSLOMS(sc)
			if ok != tc.wantOK || ms != tc.wantMS {
				t.Fatalf("pushSLOMS = %g, %v; want %g, %v", ms, ok, tc.wantMS, tc.wantOK)
			}
		})
	}
	if _, ok := pushSLOMS(nil); ok {
		t.Fatal("a run without a scenario has no SLO of its own")
	}
}

// drawnTexts draws a plot on a recording canvas and returns every text on it.
func drawnTexts(p *plot.Plot) []string {
	rec := &recorder.Canvas{}
	p.Draw(draw.NewCanvas(rec, 900, 300))
	var out []string
	for _, act := range rec.Actions {
		if fs, ok := act.(*recorder.FillString); ok {
			out = append(out, fs.String)
		}
	}
	return out
}

// sloTexts returns the texts that name an SLO.
func sloTexts(texts []string) []string {
	var out []string
	for _, s := range texts {
		if strings.HasPrefix(s, "SLO ") {
			out = append(out, s)
		}
	}
	return out
}

// The push distribution, the push timeline and the connect-time histogram draw
// the scenario's push SLO — line and legend — and no other; a run whose scenario
// has no push latency gate shows the default 100 ms.
func TestPlotsDrawTheScenariosSLO(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		gates      []string
		phaseGates []string
		want       string
	}{
		{"a whole-run gate", []string{"push p99 < 250ms", "lost == 0"}, nil, "SLO 250 ms"},
		{"a phase's worst-window gate", []string{"lost == 0"}, []string{"worst 5s push p99 < 400ms"}, "SLO 400 ms"},
		{"no push gate: the default", []string{"lost == 0"}, nil, "SLO 100 ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fxPhase{name: "steady", secs: 5, gates: tc.phaseGates})
			f.gates = tc.gates
			f.steadySystem(1000)
			r, err := loadRun(f.write(), nil)
			if err != nil {
				t.Fatal(err)
			}
			a := analyse(r)
			plots := map[string]*plot.Plot{
				"distribution": a.distributionPlot(loadgen.TagPush, nil),
				"timeline":     a.timelinePlot(loadgen.TagPush),
				"connect":      a.reconnectPlots()[1],
			}
			for name, p := range plots {
				slos := sloTexts(drawnTexts(p))
				exact := 0
				for _, s := range slos {
					if s == tc.want {
						exact++
					} else if !strings.HasPrefix(s, tc.want+" ") {
						t.Errorf("%s: draws %q, want only %q", name, s, tc.want)
					}
				}
				if exact == 0 || len(slos) < 2 { // the line's label and its legend entry
					t.Errorf("%s: SLO texts %q, want the line and the legend to say %q", name, slos, tc.want)
				}
			}
		})
	}
}
