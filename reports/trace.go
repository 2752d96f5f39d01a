package reports

import (
	"fmt"
	"slices"
)

// traceHop is one hop of a traced message: the agents record each as its own
// SLI tag (µs), and a traced message's hops add up to its push latency.
type traceHop struct {
	name, tag, what string
}

// traceHops are the hops in the order a message meets them.
func traceHops() []traceHop {
	return []traceHop{
		{"uplink", "trace_uplink", "intended send → gateway read (the generator's lag included)"},
		{"store", "trace_store", "→ stored by msg"},
		{"route", "trace_route", "→ routed to the recipient's gateway"},
		{"gateway", "trace_gateway", "→ PUSH written by that gateway"},
		{"downlink", "trace_downlink", "→ read by the recipient"},
	}
}

// isTraceTag reports whether tag is a trace hop's.
func isTraceTag(tag string) bool {
	return slices.ContainsFunc(traceHops(), func(h traceHop) bool { return h.tag == tag })
}

// HopLatency is one trace hop's latency over a scope (summary_version 5).
type HopLatency struct {
	Hop       string  `json:"hop"` // uplink, store, route, gateway, downlink
	Tag       string  `json:"tag"` // the agents' SLI tag
	LatencyUS Latency `json:"latency_us"`
}

// traced reports whether any agent recorded a trace hop sample.
func (a *analysis) traced() bool {
	for _, h := range traceHops() {
		if a.latency(h.tag, a.whole).count() > 0 {
			return true
		}
	}
	return false
}

// traceHopsIn is every hop's latency over a scope; nil for a run without
// traced messages.
func (a *analysis) traceHopsIn(sc scope) []HopLatency {
	if !a.traced() {
		return nil
	}
	out := make([]HopLatency, 0, len(traceHops()))
	for _, h := range traceHops() {
		out = append(out, HopLatency{Hop: h.name, Tag: h.tag, LatencyUS: a.latency(h.tag, sc).latency()})
	}
	return out
}

// addTrace fills the trace hop figures of the whole run and of each phase.
func (a *analysis) addTrace(s *Summary) {
	if !a.traced() {
		return
	}
	s.TraceHopsUS = a.traceHopsIn(a.whole)
	for i := range s.Phases {
		if i < len(a.phases) {
			s.Phases[i].TraceHopsUS = a.traceHopsIn(a.phases[i])
		}
	}
}

// traceSection is "Where the time goes": each hop's p50 and p99 per phase beside
// the push latency; nil for a run without traced messages.
func traceSection(s *Summary) *section {
	if len(s.TraceHopsUS) == 0 {
		return nil
	}
	head := []string{"scope", "traced"}
	for _, h := range traceHops() {
		head = append(head, h.name+" p50 / p99")
	}
	head = append(head, "Σ hop p50", "push p50 / p99")
	t := table{Caption: "Where the time goes: traced messages per hop (ms)", Head: head}
	ms := func(us int64) string { return fmt.Sprintf("%.2f", float64(us)/1000) }
	pair := func(l Latency) string {
		if l.Count == 0 {
			return "—"
		}
		return ms(l.P50) + " / " + ms(l.P99)
	}
	row := func(name string, hops []HopLatency, push Latency) []string {
		r := []string{name, "0"}
		var sum int64
		for i, h := range hops {
			if i == 0 {
				r[1] = fmtCount(float64(h.LatencyUS.Count))
			}
			r = append(r, pair(h.LatencyUS))
			sum += h.LatencyUS.P50
		}
		return append(r, ms(sum), pair(push))
	}
	t.Rows = append(t.Rows, row("whole run", s.TraceHopsUS, s.PushLatencyUS))
	for _, ph := range s.Phases {
		if len(ph.TraceHopsUS) > 0 {
			t.Rows = append(t.Rows, row(ph.Name, ph.TraceHopsUS, ph.PushLatencyUS))
		}
	}
	what := "A sample of messages carries a trace; the agents record each hop's time as its own histogram, and a traced message's hops add up to its push latency:"
	for _, h := range traceHops() {
		what += fmt.Sprintf(" %s (%s);", h.name, h.what)
	}
	what = what[:len(what)-1] + ". Each hop's percentiles are its own (the p99s of different messages), so only the medians add up, roughly, to the traced messages' median; traced is the count of traced messages (their uplink samples). Push is every message's latency, traced or not."
	return &section{ID: "trace", Title: "Where the time goes", Paras: []string{what}, Tables: []table{t}}
}
