package reports

import (
	"strings"
	"time"

	"github.com/floodgate/floodgate/loadgen"
)

// scope is a stretch of the run that figures and gates are computed over: the
// whole run, or one phase.
type scope struct {
	phase string // "" for the whole run
	// from and to bound the wall-clock window; a zero time leaves that end open.
	// The last phase is open-ended: the agents' wait for the loss deadline after
	// the traffic ends records the last messages' deliveries and losses, and those
	// belong to the last phase.
	from, to time.Time
	lo, hi   int // bins [lo, hi) of the series whose midpoints lie in the window
}

// analysis is a loaded run with its derived series, ready to be measured.
type analysis struct {
	r        *run
	s        series
	whole    scope
	phases   []scope
	restarts map[string][]time.Time
	roles    map[string]string // process name → role
}

// analyse derives the series and scopes of a loaded run.
func analyse(r *run) *analysis {
	a := &analysis{r: r, restarts: restarts(r.info.Processes), roles: map[string]string{}}
	for _, p := range r.info.Processes {
		a.roles[p.Name] = p.Role
	}
	for _, p := range r.procs {
		if _, ok := a.roles[p.Process]; !ok && p.Role != "" {
			a.roles[p.Process] = p.Role
		}
	}
	zero := r.info.TrafficStart
	if zero.IsZero() && len(r.info.Phases) > 0 {
		zero = r.info.Phases[0].Start
	}
	a.s = buildSeries(r.agents, zero, r.interval())
	a.whole = scope{lo: 0, hi: a.s.tl.n}
	for i, ph := range r.info.Phases {
		to := ph.End
		if i == len(r.info.Phases)-1 {
			to = time.Time{}
		}
		a.phases = append(a.phases, a.window(ph.Name, ph.Start, to))
	}
	return a
}

// window is the scope of the wall-clock window [from, to) (a zero to: open-ended),
// with the bins whose midpoints lie in it.
func (a *analysis) window(phase string, from, to time.Time) scope {
	sc := scope{phase: phase, from: from, to: to, lo: a.s.tl.n, hi: a.s.tl.n}
	for b := 0; b < a.s.tl.n; b++ {
		if m := a.s.tl.binMid(b); !m.Before(sc.from) && (sc.to.IsZero() || m.Before(sc.to)) {
			sc.lo = min(sc.lo, b)
			sc.hi = b + 1
		}
	}
	if sc.lo > sc.hi {
		sc.lo = sc.hi
	}
	return sc
}

// isGateway reports whether a process is a gateway (by its recorded role, or by
// the gw-N naming if no role was recorded).
func (a *analysis) isGateway(name string) bool {
	if role, ok := a.roles[name]; ok {
		return role == "gateway"
	}
	return strings.HasPrefix(name, "gw-")
}

// latency returns tag's series merged over a scope.
func (a *analysis) latency(tag string, sc scope) hist { return a.s.merged(tag, sc.lo, sc.hi) }

// tally is what the agents counted: messages, first logins and reconnects.
type tally struct {
	msgs        loadgen.Counts
	established uint64
	reconnects  uint64
}

func (t tally) minus(o tally) tally {
	return tally{
		msgs:        t.msgs.Sub(o.msgs),
		established: t.established - o.established,
		reconnects:  t.reconnects - o.reconnects,
	}
}

func (t *tally) add(o tally) {
	t.msgs.Add(o.msgs)
	t.established += o.established
	t.reconnects += o.reconnects
}

// counts returns what the agents counted over a scope. The whole run sums the
// agents' results; a phase is the difference of each agent's progress reports at
// its ends (the last phase ending at the agent's result). Counts are attributed by
// when they were counted: a message lost in one phase is counted in the phase its
// deadline falls in. ok is false when nothing was recorded for the scope.
func (a *analysis) counts(sc scope) (t tally, ok bool) {
	if sc.phase == "" {
		for _, ag := range a.r.agents {
			if res := ag.result; res != nil {
				t.add(tally{msgs: res.Messages, established: res.Established, reconnects: res.Reconnects})
				ok = true
			}
		}
		return t, ok
	}
	finals := map[string]tally{}
	for _, ag := range a.r.agents {
		if res := ag.result; res != nil {
			finals[res.Agent] = tally{msgs: res.Messages, established: res.Established, reconnects: res.Reconnects}
		}
	}
	type span struct{ start, end tally }
	per := map[string]*span{}
	for _, p := range a.r.progress {
		sp := per[p.Agent]
		if sp == nil {
			sp = &span{}
			per[p.Agent] = sp
		}
		cur := tally{msgs: p.Counts, established: p.Established, reconnects: p.Reconnects}
		if !p.T.After(sc.from) {
			sp.start = cur
		}
		if sc.to.IsZero() || !p.T.After(sc.to) {
			sp.end = cur
		}
	}
	for agent, sp := range per {
		end := sp.end
		if f, final := finals[agent]; final && sc.to.IsZero() {
			end = f
		}
		t.add(end.minus(sp.start))
		ok = true
	}
	return t, ok
}

// peakEstablished is the most users logged in at once over a scope, summed over
// agents. For the whole run it is the runner's own peak when recorded; otherwise
// it is rebuilt from the agents' progress reports. exact is false when only the
// agents' individual peaks were available: their sum is an upper bound.
func (a *analysis) peakEstablished(sc scope) (v int64, exact, ok bool) {
	if sc.phase == "" && !a.r.info.Peak.At.IsZero() {
		return a.r.info.Peak.Established, true, true
	}
	active := map[string]int{}
	for _, p := range a.r.progress {
		active[p.Agent] = p.Active
		if !within(p.T, sc.from, sc.to) {
			continue
		}
		var sum int64
		for _, n := range active {
			sum += int64(n)
		}
		v, ok = max(v, sum), true
	}
	if ok || sc.phase != "" {
		return v, true, ok
	}
	for _, ag := range a.r.agents {
		if ag.result != nil {
			v, ok = v+int64(ag.result.PeakActive), true
		}
	}
	return v, false, ok
}

// gatewayCounter sums the increase of a gateway counter over a scope. ok is false
// if no gateway reported the counter in the window.
func (a *analysis) gatewayCounter(sel selector, sc scope) (sum float64, ok bool) {
	for proc, pts := range perProcess(a.r.metrics, sel) {
		if !a.isGateway(proc) {
			continue
		}
		if v, got := increase(pts, a.restarts[proc], sc.from, sc.to); got {
			sum, ok = sum+v, true
		}
	}
	return sum, ok
}

// gatewayMemory returns the gateways' peak RSS (the largest of any gateway) and
// their RSS per connection over a scope: Σ peak RSS ÷ Σ peak connections over the
// gateways that held any. Per-connection figures include each process's fixed
// base (runtime, buffers), so they overstate the marginal cost at low counts; the
// capacity fit separates the two.
func (a *analysis) gatewayMemory(sc scope) (peakRSS float64, perConn float64, okRSS, okPerConn bool) {
	rss := map[string]float64{}
	for _, p := range a.r.procs {
		if a.isGateway(p.Process) && within(p.T, sc.from, sc.to) {
			rss[p.Process] = max(rss[p.Process], float64(p.RSSBytes))
			peakRSS, okRSS = max(peakRSS, float64(p.RSSBytes)), true
		}
	}
	var sumRSS, sumConns float64
	for proc, pts := range perProcess(a.r.metrics, selector{name: metricConns}) {
		r, hasRSS := rss[proc]
		if !a.isGateway(proc) || !hasRSS {
			continue
		}
		if c, ok := peak(pts, sc.from, sc.to); ok && c > 0 {
			sumRSS += r
			sumConns += c
		}
	}
	if sumConns > 0 {
		perConn, okPerConn = sumRSS/sumConns, true
	}
	return peakRSS, perConn, okRSS, okPerConn
}

// deaths counts processes that died by themselves within a scope.
func (a *analysis) deaths(sc scope) int {
	n := 0
	for _, p := range a.r.info.Processes {
		if p.ExitCause == "unexpected" && (sc.phase == "" || within(p.Exited, sc.from, sc.to)) {
			n++
		}
	}
	return n
}
