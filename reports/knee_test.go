package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floodgate/floodgate/loadgen"
)

// The knee is the last step such that it and every step before it are valid
// and hold the condition; the run is judged on the steps through the knee, or
// on the first step when there is none.
func TestKneeIndex(t *testing.T) {
	t.Parallel()
	step := func(valid, holds bool) KneeStep { return KneeStep{Valid: valid, Holds: holds} }
	for _, tc := range []struct {
		name        string
		steps       []KneeStep
		knee, judge int
	}{
		{"no steps", nil, -1, 0},
		{"every step holds", []KneeStep{step(true, true), step(true, true), step(true, true)}, 2, 2},
		{"the first misses", []KneeStep{step(true, false), step(true, true)}, -1, 0},
		{"the first is invalid", []KneeStep{step(false, true), step(true, true)}, -1, 0},
		{"misses past the knee", []KneeStep{step(true, true), step(true, true), step(true, false), step(false, false)}, 1, 1},
		{"an invalid step ends the knee even if it holds", []KneeStep{step(true, true), step(false, true), step(true, true)}, 0, 0},
		{"a step holding again after a miss does not count", []KneeStep{step(true, true), step(true, false), step(true, true)}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := kneeIndex(tc.steps); got != tc.knee {
				t.Errorf("kneeIndex = %d, want %d", got, tc.knee)
			}
			if got := judgedIndex(tc.steps); got != tc.judge {
				t.Errorf("judgedIndex = %d, want %d", got, tc.judge)
			}
		})
	}
}

// kneeStep is how a synthetic step behaves: its push latency, its generator
// lag and its largest stall, every value in µs.
type kneeStep struct {
	name          string
	rate          float64
	push, lag, hc int64
}

// kneeFixture is a stepped run whose every interval of a step records that
// step's values; knee adds the scenario's knee: condition.
func kneeFixture(t *testing.T, knee bool, steps ...kneeStep) *fixture {
	var phases []fxPhase
	by := map[string]kneeStep{}
	for _, st := range steps {
		phases = append(phases, fxPhase{name: st.name, secs: 3, rate: st.rate})
		by[st.name] = st
	}
	f := newFixture(t, phases...)
	f.yaml = "validity: {min_samples: 100, max_lag: 100ms, max_hiccup: 500ms}\n"
	if knee {
		f.yaml += "knee: push p99 < 100ms\n"
	}
	f.values = func(a, k int, tag string) []int64 {
		if k < 0 {
			return nil
		}
		st := by[f.phaseAt(k)]
		switch tag {
		case loadgen.TagPush:
			vs := make([]int64, 50)
			for i := range vs {
				vs[i] = st.push
			}
			return vs
		case loadgen.TagLag:
			return []int64{st.lag / 2, st.lag}
		case loadgen.TagHiccup:
			return []int64{st.hc}
		}
		return nil
	}
	f.steadySystem(1000)
	return f
}

// A stepped run past the machine's knee: the steps after it lag and stall, which
// makes the whole run invalid without a knee: condition and leaves a knee run
// valid, judged on the steps through its knee, with each later step's own
// validity reported.
func TestKneeJudgesTheStepsUpToIt(t *testing.T) {
	t.Parallel()
	steps := []kneeStep{
		{"step-1k", 1000, 2_000, 5_000, 20_000},
		{"step-2k", 2000, 60_000, 20_000, 40_000},
		{"step-4k", 4000, 150_000, 40_000, 80_000}, // valid, misses 100 ms
		{"step-8k", 8000, 9_000_000, 600_000, 2e6}, // saturated: invalid
	}
	t.Run("knee run", func(t *testing.T) {
		s := build(t, kneeFixture(t, true, steps...))
		k := s.Knee
		if k == nil || k.Step != "step-2k" || k.RatePerS != 2000 || k.JudgedThrough != "step-2k" || k.Condition != "push p99 < 100ms" || k.Unit != "us" {
			t.Fatalf("knee %+v", k)
		}
		if k.Value == nil || *k.Value < 59_000 || *k.Value > 61_000 {
			t.Fatalf("knee value %v, want the step's p99 ≈ 60 ms", deref(k.Value))
		}
		if s.Verdict != VerdictPass || len(s.InvalidReasons) != 0 {
			t.Fatalf("verdict %s, reasons %q: the steps through the knee are valid", s.Verdict, s.InvalidReasons)
		}
		if got := k.Steps[2]; !got.Valid || got.Holds {
			t.Fatalf("step-4k %+v: valid, missing the condition", got)
		}
		if got := k.Steps[3]; got.Valid || !strings.Contains(strings.Join(got.InvalidReasons, ";"), "generator lag") ||
			!strings.Contains(strings.Join(got.InvalidReasons, ";"), "hiccup") || got.HiccupMaxUS < 1_900_000 {
			t.Fatalf("step-8k %+v: invalid by its lag and its stall", got)
		}
		if line := VerdictLine(s, "d"); !strings.Contains(line, "knee step-2k: 2,000 msg/s offered") || !strings.Contains(line, "next step-4k: 150 ms") {
			t.Fatalf("verdict line %q does not name the knee and the step after it", line)
		}
		if fig := FiguresText(s); !strings.Contains(fig, "steps      knee step-2k") {
			t.Fatalf("figures %q do not name the knee", fig)
		}
	})
	t.Run("without a knee: condition the same run is invalid", func(t *testing.T) {
		s := build(t, kneeFixture(t, false, steps...))
		if s.Knee != nil || s.Verdict != VerdictInvalid {
			t.Fatalf("knee %+v verdict %s", s.Knee, s.Verdict)
		}
	})
	t.Run("an invalid first step leaves no knee and an invalid run", func(t *testing.T) {
		bad := append([]kneeStep{{"step-1k", 1000, 2_000, 300_000, 20_000}}, steps[1:]...)
		s := build(t, kneeFixture(t, true, bad...))
		if s.Knee.Step != "" || s.Knee.JudgedThrough != "step-1k" || s.Verdict != VerdictInvalid ||
			!strings.Contains(strings.Join(s.InvalidReasons, ";"), "step step-1k: generator lag") {
			t.Fatalf("knee %+v verdict %s reasons %q", s.Knee, s.Verdict, s.InvalidReasons)
		}
		if !strings.Contains(VerdictLine(s, "d"), "no knee: the first step step-1k (1,000 msg/s) was invalid") {
			t.Fatalf("verdict line %q", VerdictLine(s, "d"))
		}
	})
	t.Run("a first step missing the condition is judged, valid", func(t *testing.T) {
		slow := append([]kneeStep{{"step-1k", 1000, 200_000, 5_000, 20_000}}, steps[1:]...)
		s := build(t, kneeFixture(t, true, slow...))
		if s.Knee.Step != "" || s.Knee.Value != nil || s.Verdict != VerdictPass {
			t.Fatalf("knee %+v verdict %s reasons %q", s.Knee, s.Verdict, s.InvalidReasons)
		}
	})
	t.Run("the report names the knee", func(t *testing.T) {
		f := kneeFixture(t, true, steps...)
		build(t, f)
		md, err := os.ReadFile(filepath.Join(f.dir, FileReport))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"## Knee", "step-2k ← knee", "Knee step-2k: 2,000 msg/s offered"} {
			if !strings.Contains(string(md), want) {
				t.Errorf("report.md lacks %q", want)
			}
		}
	})
}
