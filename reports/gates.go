package reports

import (
	"fmt"
	"math"
	"strings"

	"github.com/floodgate/floodgate/scenario"
)

// GateResult is one gate's outcome. Value is null when the metric could not be
// measured (no samples, a missing file): such a gate fails (k6#1526), with Note
// saying why. Latency values and limits are in microseconds, sizes in bytes.
type GateResult struct {
	Name   string   `json:"name"`            // the gate as written, e.g. "push p99 < 100ms"
	Phase  string   `json:"phase,omitempty"` // the phase it applies to; empty: the whole run
	Pass   bool     `json:"pass"`
	Value  *float64 `json:"value"`
	Limit  float64  `json:"limit"`
	Unit   string   `json:"unit"` // us, bytes or count
	Metric string   `json:"metric"`
	Stat   string   `json:"stat,omitempty"`
	Op     string   `json:"op"`
	// WorstS is a worst-window gate's window in seconds; WorstAtS is where its worst
	// window starts, in seconds since the traffic start.
	WorstS   float64  `json:"worst_s,omitempty"`
	WorstAtS *float64 `json:"worst_at_s,omitempty"`
	Note     string   `json:"note,omitempty"`
}

// unitOf names a gate metric's unit.
func unitOf(metric string) string {
	switch scenario.Metrics[metric] {
	case scenario.KindLatency:
		return "us"
	case scenario.KindBytes:
		return "bytes"
	case scenario.KindFraction:
		return "fraction"
	}
	return "count"
}

// evalGate evaluates one gate over a scope.
func (a *analysis) evalGate(g scenario.Gate, sc scope) GateResult {
	res := GateResult{Name: g.Text, Phase: sc.phase, Limit: g.Value, Unit: unitOf(g.Metric),
		Metric: g.Metric, Stat: g.Stat, Op: g.Op}
	if g.Stat == "count" {
		res.Unit = "count"
	}
	var (
		v   float64
		ok  bool
		why string
	)
	if g.Worst > 0 {
		res.WorstS = g.Worst.Seconds()
		var at float64
		v, at, ok, why = a.worstWindow(g, sc)
		if ok {
			res.WorstAtS = &at
		}
	} else {
		v, ok, why = a.measure(g.Metric, g.Stat, sc)
	}
	if !ok {
		res.Note = why + ": a gate on a metric that was not measured fails"
		return res
	}
	res.Value = &v
	res.Pass = g.Holds(v)
	return res
}

// measure returns a gate metric over a scope; ok is false (with the reason) when
// it cannot be measured.
func (a *analysis) measure(metric, stat string, sc scope) (v float64, ok bool, why string) {
	if strings.HasPrefix(metric, "hostile_") {
		return a.measureHostile(metric, stat) // whole-run figures: the scenario allows them nowhere else
	}
	if scenario.Metrics[metric] == scenario.KindLatency {
		if !a.s.hasTag(metric) {
			return 0, false, fmt.Sprintf("no %s series in the agents' logs", metric)
		}
		v, ok := a.latency(metric, sc).stat(stat)
		if !ok {
			return 0, false, fmt.Sprintf("no %s samples", metric)
		}
		return v, true, ""
	}
	switch metric {
	case "redis_shard_spread":
		r := a.redisFigures()
		switch {
		case r == nil:
			return 0, false, "no Redis readings in metrics.jsonl"
		case r.ShardSpread == nil:
			return 0, false, "no cluster whose shard primaries stayed primaries throughout the traffic"
		case sc.phase != "":
			return 0, false, "the shard spread is measured over the whole traffic only"
		}
		return *r.ShardSpread, true, ""
	case "sent", "acked", "delivered", "lost", "lost_slow", "lost_normal", "failed", "duplicates", "out_of_order", "evicted",
		"phantom", "misdelivered", "redelivered", "retried", "stale", "relogins", "replace_late", "replaced_unexpected",
		"established", "reconnects":
		t, ok := a.counts(sc)
		if !ok {
			return 0, false, "no agent results or progress reports"
		}
		m := t.msgs
		return float64(map[string]uint64{
			"sent": m.Sent, "acked": m.Acked, "delivered": m.Delivered, "lost": m.Lost, "lost_slow": m.LostSlow, "lost_normal": m.Lost - m.LostSlow, "failed": m.Failed,
			"duplicates": m.Duplicates, "out_of_order": m.OutOfOrder, "evicted": m.Evicted,
			"phantom": m.Phantom, "misdelivered": m.Misdelivered, "redelivered": m.Redelivered, "retried": m.Retried, "stale": m.Stale,
			"relogins": m.Relogins, "replace_late": m.ReplaceLate, "replaced_unexpected": m.ReplacedUnexpected,
			"established": t.established, "reconnects": t.reconnects,
		}[metric]), true, ""
	case "peak_established":
		n, _, ok := a.peakEstablished(sc)
		if !ok {
			return 0, false, "no connection counts recorded"
		}
		return float64(n), true, ""
	case "rejected_busy":
		v, ok := a.gatewayCounter(selector{metricRejected, map[string]string{"reason": "busy"}}, sc)
		if !ok {
			return 0, false, "no gateway reported " + metricRejected
		}
		return v, true, ""
	case "kicks_slow":
		v, ok := a.gatewayCounter(selector{metricKicks, map[string]string{"reason": "SLOW"}}, sc)
		if !ok {
			return 0, false, "no gateway reported " + metricKicks
		}
		return v, true, ""
	case "process_deaths":
		if len(a.r.info.Processes) == 0 {
			return 0, false, "run.json lists no processes"
		}
		return float64(a.deaths(sc)), true, ""
	case "gateway_peak_rss", "gateway_rss_per_conn":
		peakRSS, perConn, okRSS, okPer := a.gatewayMemory(sc)
		if metric == "gateway_peak_rss" {
			if !okRSS {
				return 0, false, "no gateway resource samples"
			}
			return peakRSS, true, ""
		}
		if !okPer {
			return 0, false, "no gateway with both resource samples and connections"
		}
		return perConn, true, ""
	}
	return 0, false, fmt.Sprintf("unknown metric %q", metric)
}

// worstWindow is a worst-window gate's value: the gate's statistic over every
// window of consecutive bins (sliding by one bin) within the scope, and the worst
// of them — the largest for <, <= and ==/!= gates, the smallest for > and >= —
// so the reported window is the one closest to (or furthest past) the limit. A
// scope shorter than the window is one window. Windows without samples are
// skipped; if all are empty the metric was not measured.
func (a *analysis) worstWindow(g scenario.Gate, sc scope) (v, atS float64, ok bool, why string) {
	if !a.s.hasTag(g.Metric) {
		return 0, 0, false, fmt.Sprintf("no %s series in the agents' logs", g.Metric)
	}
	w := max(1, int(math.Ceil(float64(g.Worst)/float64(a.s.tl.step))))
	worse := func(x, cur float64) bool {
		switch g.Op {
		case ">", ">=":
			return x < cur
		case "==", "!=":
			if g.Holds(x) != g.Holds(cur) {
				return !g.Holds(x) // a failing window beats any passing one
			}
		}
		return x > cur
	}
	for i := sc.lo; i == sc.lo || i+w <= sc.hi; i++ {
		x, has := a.s.merged(g.Metric, i, min(i+w, sc.hi)).stat(g.Stat)
		if has && (!ok || worse(x, v)) {
			v, atS, ok = x, a.s.tl.rel(a.s.tl.binStart(i)), true
		}
	}
	if !ok {
		return 0, 0, false, fmt.Sprintf("no %s samples in any %v window", g.Metric, g.Worst)
	}
	return v, atS, true, ""
}

// evalGates evaluates the scenario's gates (over the whole run) and each phase's
// (over that phase). A phase gate whose phase never ran fails.
func (a *analysis) evalGates() []GateResult {
	var out []GateResult
	for _, g := range a.r.scenario.Gates {
		out = append(out, a.evalGate(g, a.whole))
	}
	for _, ph := range a.r.scenario.Phases {
		var sc *scope
		for i := range a.phases {
			if a.phases[i].phase == ph.Name {
				sc = &a.phases[i]
			}
		}
		for _, g := range ph.Gates {
			if sc == nil {
				out = append(out, GateResult{Name: g.Text, Phase: ph.Name, Limit: g.Value, Unit: unitOf(g.Metric),
					Metric: g.Metric, Stat: g.Stat, Op: g.Op, Note: "the phase did not run: a gate that was not measured fails"})
				continue
			}
			out = append(out, a.evalGate(g, *sc))
		}
	}
	return out
}
