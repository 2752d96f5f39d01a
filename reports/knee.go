package reports

import (
	"fmt"
	"strings"
	"time"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/scenario"
)

// Knee is summary.json's knee (summary_version 5), for a scenario with a knee:
// condition: the last step (phase) such that every step up to it is valid on its
// own and holds the condition. A stepped run goes past what the machine
// sustains on purpose, and there the agents lag their schedule too, so such a
// run is judged valid or not on the steps up to the knee only (JudgedThrough);
// every step's own validity is in Steps.
type Knee struct {
	// Condition is the scenario's knee: condition, a gate judged over each step.
	Condition string `json:"condition"`
	// Step is the knee step's name, "" when even the first step was invalid or
	// missed the condition; RatePerS its offered message rate (the phase's
	// rate), DeliveredPerS what the agents delivered per second in it, Value the
	// condition's measured value there (microseconds for a latency).
	Step          string   `json:"step"`
	RatePerS      float64  `json:"rate_per_s"`
	DeliveredPerS float64  `json:"delivered_per_s"`
	Value         *float64 `json:"value"`
	Unit          string   `json:"unit"` // us, bytes or count
	// JudgedThrough is the last step the run's validity rests on: the knee, or
	// the first step when there is none.
	JudgedThrough string     `json:"judged_through"`
	Steps         []KneeStep `json:"steps"`
}

// KneeStep is one step of a knee run: its condition and its own validity.
type KneeStep struct {
	Step          string   `json:"step"`
	RatePerS      float64  `json:"rate_per_s"`
	DeliveredPerS float64  `json:"delivered_per_s"`
	Value         *float64 `json:"value"` // the condition's metric; null when not measured
	Holds         bool     `json:"holds"`
	// Valid is the step judged as a whole run is: its generator lag p99.9 within
	// validity.max_lag, its largest agent stall within validity.max_hiccup, at
	// least validity.min_samples push samples; InvalidReasons says what failed.
	Valid          bool     `json:"valid"`
	InvalidReasons []string `json:"invalid_reasons,omitempty"`
	LagP999US      int64    `json:"lag_p999_us"`
	HiccupMaxUS    int64    `json:"hiccup_max_us"`
	PushSamples    int64    `json:"push_samples"`
}

// kneeIndex returns the knee among steps: the last one such that it and every
// step before it are valid and hold the condition; -1 when the first does not.
func kneeIndex(steps []KneeStep) int {
	k := -1
	for i, st := range steps {
		if !st.Valid || !st.Holds {
			break
		}
		k = i
	}
	return k
}

// judgedIndex is the last step a knee run's validity rests on: the knee, or the
// first step when there is none.
func judgedIndex(steps []KneeStep) int { return max(kneeIndex(steps), 0) }

// generatorReasons says why figures over some stretch of a run cannot be
// trusted: the generator's lag p99.9 or its largest stall beyond the validity
// bounds, no lag samples at all, or too few push samples. Empty: trustworthy.
func generatorReasons(lag, hiccup, push Latency, v scenario.Validity) []string {
	var out []string
	if lag.Count == 0 {
		out = append(out, "no generator lag samples: whether the generator kept up is unknown")
	} else if lim := v.MaxLag.D(); time.Duration(lag.P999)*time.Microsecond > lim {
		out = append(out, fmt.Sprintf("generator lag p99.9 %s exceeds the %s bound: the generator could not keep its schedule",
			fmtUS(float64(lag.P999)), fmtUS(float64(lim.Microseconds()))))
	}
	if lim := v.MaxHiccup.D(); time.Duration(hiccup.Max)*time.Microsecond > lim {
		out = append(out, fmt.Sprintf("generator hiccup %s exceeds the %s bound: an agent stalled", fmtUS(float64(hiccup.Max)), fmtUS(float64(lim.Microseconds()))))
	}
	if push.Count < int64(v.MinSamples) {
		out = append(out, fmt.Sprintf("%d push latency samples, fewer than the %d required", push.Count, int64(v.MinSamples)))
	}
	return out
}

// knee judges every phase that ran as a step of a knee run and finds the knee;
// nil when the scenario asks for none. phases are the run's phase summaries.
func (a *analysis) knee(phases []PhaseSummary) *Knee {
	cond := a.r.scenario.Knee
	if cond == nil {
		return nil
	}
	k := &Knee{Condition: cond.Text, Unit: unitOf(cond.Metric), Steps: []KneeStep{}}
	if cond.Stat == "count" {
		k.Unit = "count"
	}
	for i, ps := range phases {
		st := KneeStep{Step: ps.Name, RatePerS: a.phaseRate(ps.Name), DeliveredPerS: ps.DeliveredPerSec}
		g := a.evalGate(*cond, a.phases[i])
		st.Value, st.Holds = g.Value, g.Pass
		lag, hic, push := ps.LatencyUS[loadgen.TagLag], ps.LatencyUS[loadgen.TagHiccup], ps.LatencyUS[loadgen.TagPush]
		st.LagP999US, st.HiccupMaxUS, st.PushSamples = lag.P999, hic.Max, push.Count
		st.InvalidReasons = generatorReasons(lag, hic, push, a.r.scenario.Validity)
		st.Valid = len(st.InvalidReasons) == 0
		k.Steps = append(k.Steps, st)
	}
	if len(k.Steps) == 0 {
		return k
	}
	k.JudgedThrough = k.Steps[judgedIndex(k.Steps)].Step
	if i := kneeIndex(k.Steps); i >= 0 {
		st := k.Steps[i]
		k.Step, k.RatePerS, k.DeliveredPerS, k.Value = st.Step, st.RatePerS, st.DeliveredPerS, st.Value
	}
	return k
}

// phaseRate is the message rate the scenario offers in a phase: its own rate:,
// else the scenario's traffic.rate.
func (a *analysis) phaseRate(name string) float64 {
	sc := a.r.scenario
	for _, p := range sc.Phases {
		if p.Name == name && p.Rate != nil {
			return float64(*p.Rate)
		}
	}
	return float64(sc.Traffic.Rate)
}

// kneeText is one line naming the knee and the step after it, for the report's
// headline and the lines printed after a run; "" for a run without a knee.
func kneeText(k *Knee) string {
	if k == nil {
		return ""
	}
	if len(k.Steps) == 0 {
		return fmt.Sprintf("knee (%s): no step ran", k.Condition)
	}
	val := func(st KneeStep) string {
		if st.Value == nil {
			return "not measured"
		}
		return fmtValue(*st.Value, k.Unit)
	}
	i := kneeIndex(k.Steps)
	var text string
	if i < 0 {
		st := k.Steps[0]
		text = fmt.Sprintf("no knee: the first step %s (%s msg/s) ", st.Step, fmtCount(st.RatePerS))
		if !st.Valid {
			text += "was invalid"
		} else {
			text += fmt.Sprintf("missed %s (%s)", k.Condition, val(st))
		}
		return text
	}
	st := k.Steps[i]
	text = fmt.Sprintf("knee %s: %s msg/s offered, %s delivered/s, %s (%s)", st.Step, fmtCount(st.RatePerS),
		fmtCount(float64(int64(st.DeliveredPerS+0.5))), val(st), k.Condition)
	if i+1 < len(k.Steps) {
		next := k.Steps[i+1]
		switch {
		case !next.Valid:
			text += fmt.Sprintf("; next %s invalid (%s)", next.Step, next.InvalidReasons[0])
		default:
			text += fmt.Sprintf("; next %s: %s", next.Step, val(next))
		}
	} else {
		text += "; the last step: the knee may lie beyond it"
	}
	return text
}

// kneeSection is the report's table of steps, the knee marked.
func kneeSection(k *Knee) *section {
	if k == nil {
		return nil
	}
	t := table{Head: []string{"", "step", "offered msg/s", "delivered/s", "condition value", "generator lag p99.9", "largest stall", "push samples", "valid"}}
	i := kneeIndex(k.Steps)
	for j, st := range k.Steps {
		status, mark := "fail", ""
		if st.Holds && st.Valid {
			status = "pass"
		}
		switch {
		case j == i:
			mark = "← knee"
		case j == judgedIndex(k.Steps):
			mark = "judged"
		}
		value := "not measured"
		if st.Value != nil {
			value = fmtValue(*st.Value, k.Unit)
		}
		valid := "valid"
		if !st.Valid {
			valid = "invalid: " + strings.Join(st.InvalidReasons, "; ")
		}
		t.Rows = append(t.Rows, []string{status, strings.TrimSpace(st.Step + " " + mark), fmtCount(st.RatePerS), fmtCount(float64(int64(st.DeliveredPerS + 0.5))),
			value, fmtUS(float64(st.LagP999US)), fmtUS(float64(st.HiccupMaxUS)), fmtCount(float64(st.PushSamples)), valid})
		t.Status = append(t.Status, status)
	}
	sec := section{ID: "knee", Title: "Knee", Tables: []table{t},
		Paras: []string{kneeText(k) + ".",
			fmt.Sprintf("The knee is the last step such that it and every step before it hold %s and are valid on their own (generator lag p99.9, largest agent stall and push samples within the scenario's validity bounds). The run's validity rests on the steps up to the knee (the first step when there is none, here through %s); past the knee the machine saturates and the agents lag, and those steps are shown with their own validity.", k.Condition, k.JudgedThrough)}}
	return &sec
}
