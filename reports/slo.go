package reports

import (
	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/reports/chart"
	"github.com/floodgate/floodgate/scenario"
)

// defaultSLOMS is the push latency SLO, in milliseconds, where a scenario states
// none: the plots of a run whose scenario has no push latency gate (pushSLOMS),
// the per-gateway split's "fared worst" threshold and a capacity plan's default
// target.
const defaultSLOMS = 100

// pushSLOMS returns the push latency SLO the plots draw, in milliseconds: the
// limit of the scenario's gate on push latency — the same Gate.Value the
// verdict compares the measured value with (evalGate) — among the gates that
// bound it from above (< or <=, not a count). When several do, a whole-run gate
// comes before a phase's (the knee condition counts as one: it is judged over
// each step), a gate over its whole scope before a worst-window one, a p99
// before another statistic, and otherwise the first written. ok is false when
// the scenario has no such gate; the plots then show defaultSLOMS.
func pushSLOMS(sc *scenario.Scenario) (ms float64, ok bool) {
	if sc == nil {
		return 0, false
	}
	var candidates []scenario.Gate
	candidates = append(candidates, sc.Gates...)
	wholeRun := len(candidates)
	for _, ph := range sc.Phases {
		candidates = append(candidates, ph.Gates...)
	}
	if sc.Knee != nil {
		candidates = append(candidates, *sc.Knee)
	}
	rank := func(i int, g scenario.Gate) int {
		r := 0
		if i >= wholeRun {
			r += 4
		}
		if g.Worst > 0 {
			r += 2
		}
		if g.Stat != "p99" {
			r++
		}
		return r
	}
	best, bestRank := -1, 0
	for i, g := range candidates {
		if g.Metric != loadgen.TagPush || g.Stat == "count" || (g.Op != "<" && g.Op != "<=") {
			continue
		}
		if r := rank(i, g); best < 0 || r < bestRank {
			best, bestRank = i, r
		}
	}
	if best < 0 {
		return 0, false
	}
	return candidates[best].Value / 1000, true
}

// pushSLO is the push latency SLO this run's plots draw, in milliseconds: the
// scenario's (pushSLOMS), or defaultSLOMS for a scenario without a push
// latency gate.
func (a *analysis) pushSLO() float64 {
	if ms, ok := pushSLOMS(a.r.scenario); ok {
		return ms
	}
	return defaultSLOMS
}

// sloLine is the line of an SLO of ms milliseconds on a millisecond axis.
func sloLine(ms float64) chart.HLine {
	return chart.HLine{Y: ms, Label: "SLO " + fmtMS(ms), Style: chart.SLOStyle()}
}
