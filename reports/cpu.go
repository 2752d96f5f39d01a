package reports

import (
	"slices"
	"time"
)

// PhaseCPU is where the CPU went in one phase (summary_version 5): each server
// role's cores (CPU seconds per second, summed over the role's processes), its
// CPU per delivered message, and the load agents apart. CPU comes from
// processes.jsonl (each process's utime+stime, sampled every second, a
// restarted process's incarnations added up), interpolated at the phase's
// edges; delivered messages from progress.jsonl, the same way, so both cover
// exactly the phase (the last phase without the wait for the final deadlines).
type PhaseCPU struct {
	WindowS       float64            `json:"window_s"`
	Delivered     float64            `json:"delivered"`
	DeliveredPerS float64            `json:"delivered_per_s"`
	Cores         map[string]float64 `json:"cores"`      // server role → cores
	USPerMsg      map[string]float64 `json:"us_per_msg"` // server role → CPU µs per delivered message; empty when none was delivered
	// ServerCores and ServerUSPerMsg are every role but the agents together.
	ServerCores    float64  `json:"server_cores"`
	ServerUSPerMsg *float64 `json:"server_us_per_msg"`
	Agents         AgentCPU `json:"agents"`
}

// AgentCPU is the load agents' CPU over a window, summed over agents.
type AgentCPU struct {
	Processes int      `json:"processes"`
	Cores     float64  `json:"cores"`
	USPerMsg  *float64 `json:"us_per_msg"` // per delivered message
	// ConnS is the connection-seconds the agents held (their logged-in users
	// integrated over the window); USPerConnS their CPU per connection-second,
	// what holding a connection costs the harness.
	ConnS      float64  `json:"conn_s"`
	USPerConnS *float64 `json:"us_per_conn_s"`
	USPerLogin *float64 `json:"us_per_login,omitempty"` // the connect window only
}

// ConnectCPU is the initial population's connect (summary_version 5): from the
// agents' start to the last first login (connections.establish_s), the logins
// per second and each role's CPU per login. Idle work (heartbeats, scrapes) in
// the window is charged to the logins too.
type ConnectCPU struct {
	WindowS          float64            `json:"window_s"`
	Logins           int64              `json:"logins"`
	LoginsPerS       float64            `json:"logins_per_s"`
	Cores            map[string]float64 `json:"cores"`
	USPerLogin       map[string]float64 `json:"us_per_login"`
	ServerCores      float64            `json:"server_cores"`
	ServerUSPerLogin *float64           `json:"server_us_per_login"`
	Agents           AgentCPU           `json:"agents"`
}

// roleAgent is the load agents' role.
const roleAgent = "agent"

// cumulative is readings of a quantity that only grows (CPU seconds, delivered
// messages), in time order.
type cumulative []point

// foldRestarts makes one process's CPU readings a single growing series across
// its incarnations: a reading below the one before it, or the first after a
// restart (a start time in starts), begins a new incarnation, which continues
// from the last reading of the one before.
func foldRestarts(pts []point, starts []time.Time) cumulative {
	out := make(cumulative, 0, len(pts))
	var offset float64
	for i, p := range pts {
		if i > 0 && (p.v < pts[i-1].v || restartedBetween(starts, pts[i-1].t, p.t)) {
			offset += pts[i-1].v
		}
		out = append(out, point{p.t, p.v + offset})
	}
	return out
}

// at is the series' value at t, linear between the readings around it; before
// the first reading it is the first, after the last the last (a process not yet
// started, or gone, adds nothing to a window).
func (c cumulative) at(t time.Time) float64 {
	if len(c) == 0 {
		return 0
	}
	i, _ := slices.BinarySearchFunc(c, t, func(p point, t time.Time) int { return p.t.Compare(t) })
	switch {
	case i == 0:
		return c[0].v
	case i == len(c):
		return c[len(c)-1].v
	}
	a, b := c[i-1], c[i]
	span := b.t.Sub(a.t)
	if span <= 0 {
		return b.v
	}
	return a.v + (b.v-a.v)*float64(t.Sub(a.t))/float64(span)
}

// growth is how much the series grew over [from, to].
func (c cumulative) growth(from, to time.Time) float64 { return c.at(to) - c.at(from) }

// integral is the area under a gauge's readings over [from, to], in value ×
// seconds: the readings joined by straight lines, held flat before the first and
// after the last.
func integral(g cumulative, from, to time.Time) float64 {
	if len(g) == 0 || !to.After(from) {
		return 0
	}
	var sum float64
	prevT, prevV := from, g.at(from)
	for _, p := range g {
		if !p.t.After(from) {
			continue
		}
		if !p.t.Before(to) {
			break
		}
		sum += (prevV + p.v) / 2 * p.t.Sub(prevT).Seconds()
		prevT, prevV = p.t, p.v
	}
	return sum + (prevV+g.at(to))/2*to.Sub(prevT).Seconds()
}

// usage is the CPU the processes used over a window, and what the agents did.
type usage struct {
	secs        float64
	cpu         map[string]float64 // role → CPU seconds (agents included)
	procs       map[string]int     // role → processes sampled in the window
	delivered   float64            // messages the agents delivered
	established float64            // first logins
	connS       float64            // connection-seconds held
}

// cpuData is a run's CPU and progress readings, ready for windows.
type cpuData struct {
	cpu         map[string]cumulative // process → folded CPU seconds
	role        map[string]string     // process → role
	delivered   []cumulative          // per agent
	established []cumulative          // per agent: first logins
	active      []cumulative          // per agent: logged-in users (a gauge)
}

// cpuData gathers the readings from processes.jsonl and progress.jsonl.
func (a *analysis) cpuData() cpuData {
	d := cpuData{cpu: map[string]cumulative{}, role: map[string]string{}}
	raw := map[string][]point{}
	for _, p := range a.r.procs {
		raw[p.Process] = append(raw[p.Process], point{p.T, p.CPUSecs})
		role := a.roles[p.Process]
		if role == "" {
			role = p.Role
		}
		d.role[p.Process] = role
	}
	for name, pts := range raw {
		d.cpu[name] = foldRestarts(pts, a.restarts[name])
	}
	idx := map[string]int{}
	for _, p := range a.r.progress {
		i, ok := idx[p.Agent]
		if !ok {
			i = len(d.delivered)
			idx[p.Agent] = i
			d.delivered, d.established, d.active = append(d.delivered, nil), append(d.established, nil), append(d.active, nil)
		}
		d.delivered[i] = append(d.delivered[i], point{p.T, float64(p.Counts.Delivered)})
		d.established[i] = append(d.established[i], point{p.T, float64(p.Established)})
		d.active[i] = append(d.active[i], point{p.T, float64(p.Active)})
	}
	return d
}

// window measures [from, to].
func (d cpuData) window(from, to time.Time) usage {
	u := usage{secs: to.Sub(from).Seconds(), cpu: map[string]float64{}, procs: map[string]int{}}
	for name, c := range d.cpu {
		if len(c) == 0 || c[0].t.After(to) || c[len(c)-1].t.Before(from) {
			continue
		}
		u.cpu[d.role[name]] += c.growth(from, to)
		u.procs[d.role[name]]++
	}
	for i := range d.delivered {
		u.delivered += d.delivered[i].growth(from, to)
		u.established += d.established[i].growth(from, to)
		u.connS += integral(d.active[i], from, to)
	}
	return u
}

// perUnit is CPU seconds per unit of work in µs; nil when there was no work.
func perUnit(cpuSecs, work float64) *float64 {
	if work <= 0 {
		return nil
	}
	v := cpuSecs / work * 1e6
	return &v
}

// phaseCPU is a window's PhaseCPU.
func (u usage) phaseCPU() *PhaseCPU {
	if u.secs <= 0 || len(u.cpu) == 0 {
		return nil
	}
	p := &PhaseCPU{WindowS: u.secs, Delivered: u.delivered, DeliveredPerS: u.delivered / u.secs}
	p.Cores, p.USPerMsg, p.ServerCores, p.ServerUSPerMsg = u.serverShare(u.delivered)
	p.Agents = u.agents()
	p.Agents.USPerMsg = perUnit(u.cpu[roleAgent], u.delivered)
	return p
}

// serverShare splits the window's server CPU (every role but the agents) by role:
// cores, and CPU µs per unit of work done (nil, and left out per role, for none);
// then the same for the server as a whole.
func (u usage) serverShare(units float64) (cores, usPer map[string]float64, serverCores float64, serverUSPer *float64) {
	cores, usPer = map[string]float64{}, map[string]float64{}
	var server float64
	for role, c := range u.cpu {
		if role == roleAgent {
			continue
		}
		server += c
		cores[role] = c / u.secs
		if v := perUnit(c, units); v != nil {
			usPer[role] = *v
		}
	}
	return cores, usPer, server / u.secs, perUnit(server, units)
}

// agents is the agents' share of a window.
func (u usage) agents() AgentCPU {
	c := u.cpu[roleAgent]
	return AgentCPU{Processes: u.procs[roleAgent], Cores: c / u.secs, ConnS: u.connS, USPerConnS: perUnit(c, u.connS)}
}

// connectCPU is the connect window's figures; logins are the runner's count of
// first logins in it.
func (u usage) connectCPU(logins int64) *ConnectCPU {
	if u.secs <= 0 || len(u.cpu) == 0 {
		return nil
	}
	c := &ConnectCPU{WindowS: u.secs, Logins: logins, LoginsPerS: float64(logins) / u.secs}
	c.Cores, c.USPerLogin, c.ServerCores, c.ServerUSPerLogin = u.serverShare(float64(logins))
	c.Agents = u.agents()
	c.Agents.USPerLogin = perUnit(u.cpu[roleAgent], float64(logins))
	return c
}

// addCPU fills each phase's CPU and the connect window's.
func (a *analysis) addCPU(s *Summary) {
	if len(a.r.procs) == 0 {
		return
	}
	d := a.cpuData()
	for i := range s.Phases {
		if i < len(a.r.info.Phases) {
			w := a.r.info.Phases[i]
			s.Phases[i].CPU = d.window(w.Start, w.End).phaseCPU()
		}
	}
	if w := a.r.info.Connecting; !w.Start.IsZero() && w.End.After(w.Start) {
		u := d.window(w.Start, w.End)
		logins := w.Established
		if logins == 0 {
			logins = int64(u.established)
		}
		s.ConnectCPU = u.connectCPU(logins)
	}
}

// serverRoles orders the server roles a set of figures has: the stack's own
// first, in the order a message meets them, then any other (redis) by name.
func serverRoles(have ...map[string]float64) []string {
	known := []string{"gateway", "state", "msg", "router", "ipconf", "control"}
	seen := map[string]bool{}
	for _, m := range have {
		for r := range m {
			seen[r] = true
		}
	}
	var out, extra []string
	for _, r := range known {
		if seen[r] {
			out = append(out, r)
		}
	}
	for r := range seen {
		if !slices.Contains(known, r) {
			extra = append(extra, r)
		}
	}
	slices.Sort(extra)
	return append(out, extra...)
}
