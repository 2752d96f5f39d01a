package reports

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/floodgate/floodgate/loadgen"
)

// GatewayPushSummary is the normal readers' push latency (the push series) of the users
// connected to one gateway when each sample was taken — a message's first
// receipt, or its deadline for a lost one — every agent merged: over the whole
// run and per phase. Per phase is by the agents' own phase clock; their wait for
// the last deadlines counts as the last phase.
type GatewayPushSummary struct {
	// Gateway is the gateway's id as ipconf advertised it (gw-3), its address
	// for agents with a fixed gateway list, or "none" for messages lost to a user
	// that had never dialled.
	Gateway       string  `json:"gateway"`
	PushLatencyUS Latency `json:"push_latency_us"`
	// Phases has every phase of the run, in order (a count of 0 where the
	// gateway's users received nothing in it).
	Phases []GatewayPhasePush `json:"phases"`
}

// GatewayPhasePush is one gateway's push latency in one phase.
type GatewayPhasePush struct {
	Phase         string  `json:"phase"`
	PushLatencyUS Latency `json:"push_latency_us"`
}

// gatewayPush merges the agents' push latency per gateway of the recipient:
// gateways in natural order (gw-2 before gw-10, "none" last), phases in the run's
// order (any phase an agent named that run.json lacks after them). ok is false
// when no agent recorded it (run folders written before agents did).
func (a *analysis) gatewayPush() (out []GatewayPushSummary, ok bool) {
	byGw := map[string]map[string]*hist{}
	var extra []string
	known := map[string]bool{}
	for _, ph := range a.r.info.Phases {
		known[ph.Name] = true
	}
	for _, ag := range a.r.agents {
		if ag.result == nil {
			continue
		}
		for _, g := range ag.result.PushByGateway {
			p, err := hdr.DecodePacked([]byte(g.Hist))
			if err != nil {
				if note := fmt.Sprintf("agent-%d: push latency of gateway %s in phase %s unreadable: %v", ag.index, g.Gateway, g.Phase, err); !slices.Contains(a.r.notes, note) {
					a.r.notes = append(a.r.notes, note)
				}
				continue
			}
			ok = true
			if !known[g.Phase] {
				known[g.Phase] = true
				extra = append(extra, g.Phase)
			}
			phases := byGw[g.Gateway]
			if phases == nil {
				phases = map[string]*hist{}
				byGw[g.Gateway] = phases
			}
			h := phases[g.Phase]
			if h == nil {
				h = &hist{}
				phases[g.Phase] = h
			}
			h.add(p)
		}
	}
	if !ok {
		return nil, false
	}
	order := make([]string, 0, len(a.r.info.Phases)+len(extra))
	for _, ph := range a.r.info.Phases {
		order = append(order, ph.Name)
	}
	order = append(order, extra...)
	gws := make([]string, 0, len(byGw))
	for gw := range byGw {
		gws = append(gws, gw)
	}
	slices.SortFunc(gws, compareGateways)
	for _, gw := range gws {
		var whole hist
		g := GatewayPushSummary{Gateway: gw}
		for _, ph := range order {
			var l Latency
			if h := byGw[gw][ph]; h != nil {
				whole.merge(*h)
				l = h.latency()
			}
			g.Phases = append(g.Phases, GatewayPhasePush{Phase: ph, PushLatencyUS: l})
		}
		g.PushLatencyUS = whole.latency()
		out = append(out, g)
	}
	return out, true
}

// compareGateways orders gateway names naturally: by the text before a trailing
// number, then by the number (gw-2 before gw-10); "none" last.
func compareGateways(x, y string) int {
	if (x == loadgen.NoGateway) != (y == loadgen.NoGateway) {
		if x == loadgen.NoGateway {
			return 1
		}
		return -1
	}
	split := func(s string) (string, int, bool) {
		i := len(s)
		for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
			i--
		}
		n, err := strconv.Atoi(s[i:])
		return s[:i], n, err == nil
	}
	xp, xn, xok := split(x)
	yp, yn, yok := split(y)
	if xok && yok && xp == yp {
		return cmp.Compare(xn, yn)
	}
	return strings.Compare(x, y)
}

// gatewayPushSection is the report's push latency by recipient's gateway; nil
// for a run folder without it.
func gatewayPushSection(s *Summary) *section {
	if len(s.PushByGateway) == 0 {
		return nil
	}
	whole := table{Caption: "Whole run (ms)", Head: []string{"gateway", "share", "count", "p50", "p99", "p99.9", "max"}}
	var total int64
	for _, g := range s.PushByGateway {
		total += g.PushLatencyUS.Count
	}
	for _, g := range s.PushByGateway {
		l := g.PushLatencyUS
		row := latencyRow(g.Gateway, l) // name, count, p50, p90, p99, p99.9, p99.99, max
		share := "—"
		if total > 0 {
			share = fmt.Sprintf("%.1f%%", 100*float64(l.Count)/float64(total))
		}
		whole.Rows = append(whole.Rows, []string{row[0], share, row[1], row[2], row[4], row[5], row[7]})
	}
	sec := &section{ID: "push-by-gateway", Title: "Push latency by recipient's gateway",
		Paras:  []string{"Normal readers' push latency, split by the gateway the recipient was connected to when the sample was taken: at the message's first receipt, or at its deadline for a lost one (so a lost message counts against the gateway its recipient was on when time ran out). Every agent merged; per phase by the agents' phase clock, the wait for the last deadlines counting as the last phase. Slow readers are left out, as in the push series; the counts add up to it. \"none\": messages lost to a user that had never connected. Listed first: each phase in which one gateway's users fared worst — its p50 (else its p99) over the 100 ms SLO and at least twice the best gateway's. Per phase, the p50 tells whose users waited (most of a cut-off gateway's messages are late), the p99 how long the tail was: a frozen gateway's senders delay messages to every gateway's users, so the p99 alone can hide whose gateway was down."},
		Tables: []table{whole}}
	phases := s.PushByGateway[0].Phases
	if len(phases) == 0 {
		return sec
	}
	head := []string{"gateway"}
	for _, ph := range phases {
		head = append(head, ph.Phase)
	}
	p99 := table{Caption: "p50 / p99 per phase (count in brackets)", Head: head}
	for _, g := range s.PushByGateway {
		row := []string{g.Gateway}
		for _, ph := range g.Phases {
			row = append(row, matrixCell(ph.PushLatencyUS))
		}
		p99.Rows = append(p99.Rows, row)
	}
	sec.Tables = append(sec.Tables, p99)
	for i, ph := range phases {
		if b, ok := worstGatewayLine(s.PushByGateway, i); ok {
			sec.Bullets = append(sec.Bullets, "phase "+ph.Phase+": "+b)
		}
	}
	return sec
}

// matrixCell prints one gateway's p50 and p99 in one phase with its count.
func matrixCell(l Latency) string {
	if l.Count == 0 {
		return "—"
	}
	return fmt.Sprintf("%s / %s (%s)", fmtUS(float64(l.P50)), fmtUS(float64(l.P99)), fmtCount(float64(l.Count)))
}

// worstGatewayLine names the gateway whose users fared worst in phase i, against
// the best: by p50 when the worst p50 is over the SLO and at least twice the
// best's (most of that gateway's users waited), else by p99 on the same terms
// (its tail did). ok is false when neither holds or fewer than two gateways had
// samples in the phase: a difference that small is noise, not an outage.
func worstGatewayLine(gs []GatewayPushSummary, i int) (string, bool) {
	slo := int64(defaultSLOMS * 1000)
	for _, by := range []struct {
		name string
		stat func(Latency) int64
	}{{"p50", func(l Latency) int64 { return l.P50 }}, {"p99", func(l Latency) int64 { return l.P99 }}} {
		var worst, best *GatewayPushSummary
		var n int64
		for j := range gs {
			l := gs[j].Phases[i].PushLatencyUS
			if l.Count == 0 {
				continue
			}
			n += l.Count
			if worst == nil || by.stat(l) > by.stat(worst.Phases[i].PushLatencyUS) {
				worst = &gs[j]
			}
			if best == nil || by.stat(l) < by.stat(best.Phases[i].PushLatencyUS) {
				best = &gs[j]
			}
		}
		if worst == nil || worst == best {
			return "", false
		}
		w, b := worst.Phases[i].PushLatencyUS, best.Phases[i].PushLatencyUS
		if by.stat(w) <= slo || by.stat(w) < 2*by.stat(b) {
			continue
		}
		return fmt.Sprintf("by %s, worst %s (p50 %s, p99 %s, max %s; %.1f%% of the phase's samples), best %s (p50 %s, p99 %s)",
			by.name, worst.Gateway, fmtUS(float64(w.P50)), fmtUS(float64(w.P99)), fmtUS(float64(w.Max)), 100*float64(w.Count)/float64(n),
			best.Gateway, fmtUS(float64(b.P50)), fmtUS(float64(b.P99))), true
	}
	return "", false
}
