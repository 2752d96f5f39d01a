package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"time"

	"github.com/floodgate/floodgate/loadgen"
)

// Files `floodgate capacity` writes into a run folder; the report shows the plan
// when capacity.json is there.
const (
	FileCapacity     = "capacity.md"
	FileCapacityJSON = "capacity.json"
	FileCapacityPlot = "capacity.png"
)

// CapacityTarget is the load to plan for and the machines to plan with.
type CapacityTarget struct {
	Users    int64   `json:"users"`          // concurrent connections
	MsgRate  float64 `json:"msg_rate"`       // delivered messages per second
	Cores    int     `json:"machine_cores"`  // per machine
	MemBytes int64   `json:"machine_memory"` // per machine
	// Headroom is the share of each machine's CPU and memory left spare (0.3: plan
	// to 70% utilisation).
	Headroom float64 `json:"headroom"`
	SLOUS    int64   `json:"slo_us"` // push p99 SLO; default 100 ms
	// Nofile is the per-process file limit to size gateways by; 0: the one the
	// run measured (RunInfo.NofileHard). FDReserve is what a gateway keeps for
	// anything but client sockets (listeners, links, logs).
	Nofile    uint64 `json:"nofile"`
	FDReserve int    `json:"fd_reserve"`
}

// CapacityStep is one phase of a stepped-load run, measured over the second half
// of the phase (the first half lets the step settle).
type CapacityStep struct {
	Phase           string                  `json:"phase"`
	P99US           int64                   `json:"push_p99_us"`
	Samples         int64                   `json:"push_samples"`
	Connections     float64                 `json:"connections"` // Σ gateway connections (mean), or the agents' logged-in users
	DeliveredPerSec float64                 `json:"delivered_per_s"`
	MeetsSLO        bool                    `json:"meets_slo"`
	Roles           map[string]RoleResource `json:"roles"`
}

// RoleResource is a role's resources in one step, summed over its processes.
type RoleResource struct {
	Processes int     `json:"processes"`
	RSSBytes  float64 `json:"rss_bytes"` // mean
	CPUCores  float64 `json:"cpu_cores"` // CPU seconds per second
}

// RoleFit is one role's fitted costs: memory against connections (Mem.Slope is
// bytes per connection) and CPU against delivered messages (CPU.Slope is CPU
// seconds per message).
type RoleFit struct {
	Role      string `json:"role"`
	Processes int    `json:"processes"` // processes of the role in the run
	Mem       *Fit   `json:"memory,omitempty"`
	CPU       *Fit   `json:"cpu,omitempty"`
	Note      string `json:"note,omitempty"` // why a fit is missing
}

// RoleNeed is what the target needs of one role.
type RoleNeed struct {
	Role      string  `json:"role"`
	Processes int     `json:"processes"`
	Machines  int     `json:"machines"`
	CPUCores  float64 `json:"cpu_cores"`
	MemBytes  float64 `json:"memory_bytes"`
	Binding   string  `json:"binding"` // what decided the count: fds, cpu, memory, N+1
}

// CapacityPlan is capacity.json.
type CapacityPlan struct {
	Scenario string         `json:"scenario"`
	Target   CapacityTarget `json:"target"`
	Steps    []CapacityStep `json:"steps"`
	Fits     []RoleFit      `json:"fits"`
	Needs    []RoleNeed     `json:"needs"`
	Machines int            `json:"machines"` // total
	// MaxRateMeetingSLO is the highest delivered rate of a step whose p99 met the
	// SLO (measured, not interpolated); nil if none did.
	MaxRateMeetingSLO *float64 `json:"max_rate_meeting_slo"`
	Assumptions       []string `json:"assumptions"`
	Warnings          []string `json:"warnings"`
}

// sizedRoles are the roles a plan must size; the gateway comes first.
func sizedRoles() []string { return []string{"gateway", "state", "msg", "router"} }

// PlanCapacity reads a stepped-load run (each phase more connections and/or a
// higher rate), fits each role's memory per connection and CPU per message
// across the steps, sizes the target, and writes capacity.json, capacity.md and
// capacity.png into the run folder.
func PlanCapacity(runDir string, t CapacityTarget, log *slog.Logger) (*CapacityPlan, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if t.Users <= 0 || t.MsgRate <= 0 || t.Cores <= 0 || t.MemBytes <= 0 {
		return nil, errors.New("capacity: users, message rate, machine cores and memory must all be positive")
	}
	if t.Headroom < 0 || t.Headroom >= 1 {
		return nil, fmt.Errorf("capacity: headroom %v: want a share in [0, 1)", t.Headroom)
	}
	if t.SLOUS == 0 {
		t.SLOUS = defaultSLOMS * 1000
	}
	r, err := loadRun(runDir, log)
	if err != nil {
		return nil, err
	}
	a := analyse(r)
	if t.Nofile == 0 {
		t.Nofile = r.info.NofileHard
	}
	plan, err := a.planCapacity(t)
	if err != nil {
		return nil, err
	}
	if err := a.writeCapacity(plan); err != nil {
		return nil, err
	}
	return plan, nil
}

// planCapacity measures the steps, fits and sizes.
func (a *analysis) planCapacity(t CapacityTarget) (*CapacityPlan, error) {
	plan := &CapacityPlan{Scenario: a.r.info.Scenario, Target: t}
	if plan.Scenario == "" {
		plan.Scenario = a.r.scenario.Name
	}
	for i := range a.phases {
		plan.Steps = append(plan.Steps, a.capacityStep(i, t))
	}
	if len(plan.Steps) < 2 {
		return nil, fmt.Errorf("capacity: the run has %d phase(s); a capacity run steps the load over at least two", len(plan.Steps))
	}
	for _, st := range plan.Steps {
		if st.MeetsSLO && (plan.MaxRateMeetingSLO == nil || st.DeliveredPerSec > *plan.MaxRateMeetingSLO) {
			v := st.DeliveredPerSec
			plan.MaxRateMeetingSLO = &v
		}
	}
	roles := sizedRoles()
	for _, st := range plan.Steps {
		for role := range st.Roles {
			if !slices.Contains(roles, role) && role != "agent" {
				roles = append(roles, role)
			}
		}
	}
	for _, role := range roles {
		plan.Fits = append(plan.Fits, fitRole(role, plan.Steps))
	}
	if err := plan.size(); err != nil {
		return nil, err
	}
	return plan, nil
}

// capacityStep measures phase i over its second half.
func (a *analysis) capacityStep(i int, t CapacityTarget) CapacityStep {
	w, sc := a.r.info.Phases[i], a.phases[i]
	from, to := w.Start.Add(w.End.Sub(w.Start)/2), w.End
	push := a.latency(loadgen.TagPush, a.window(w.Name, from, to)).latency()
	st := CapacityStep{Phase: w.Name, P99US: push.P99, Samples: push.Count, Roles: map[string]RoleResource{}}
	st.MeetsSLO = push.Count > 0 && push.P99 < t.SLOUS
	if tl, ok := a.counts(sc); ok && w.End.After(w.Start) {
		st.DeliveredPerSec = float64(tl.msgs.Delivered) / w.End.Sub(w.Start).Seconds()
	}
	// Connections: the mean of the gateways' summed gauge over the window.
	conns := a.gatewaySeries(selector{name: metricConns})
	if lo, hi, ok := secondsRange(conns); ok {
		xs, ys := perSecond(conns, a.relExits(), lo, hi, 2)
		var sum float64
		var n int
		for k := range xs {
			if x := xs[k]; !math.IsNaN(ys[k]) && x >= a.s.tl.rel(from) && x < a.s.tl.rel(to) {
				sum, n = sum+ys[k], n+1
			}
		}
		if n > 0 {
			st.Connections = sum / float64(n)
		}
	}
	if st.Connections == 0 {
		if v, _, ok := a.peakEstablished(scope{phase: w.Name, from: from, to: to}); ok {
			st.Connections = float64(v)
		}
	}
	// Resources per role, summed over the role's processes.
	rss := map[string][]float64{}
	cpu := map[string][]point{}
	for _, p := range a.r.procs {
		if within(p.T, from, to) {
			rss[p.Process] = append(rss[p.Process], float64(p.RSSBytes))
		}
		cpu[p.Process] = append(cpu[p.Process], point{p.T, p.CPUSecs})
	}
	for proc, vs := range rss {
		role := a.roles[proc]
		rr := st.Roles[role]
		rr.Processes++
		rr.RSSBytes += mean(vs)
		if c, ok := cpuRate(cpu[proc], a.restarts[proc], from, to); ok {
			rr.CPUCores += c
		}
		st.Roles[role] = rr
	}
	return st
}

// cpuRate is a process's CPU seconds per second over [from, to].
func cpuRate(pts []point, starts []time.Time, from, to time.Time) (float64, bool) {
	inc, ok := increase(pts, starts, from, to)
	if !ok {
		return 0, false
	}
	var first, last time.Time
	for _, p := range pts {
		if !p.t.After(from) {
			first = p.t
			continue
		}
		if p.t.After(to) {
			break
		}
		if first.IsZero() {
			first = p.t
		}
		last = p.t
	}
	if dt := last.Sub(first).Seconds(); dt > 0 {
		return inc / dt, true
	}
	return 0, false
}

func mean(vs []float64) float64 {
	var s float64
	for _, v := range vs {
		s += v
	}
	return s / float64(len(vs))
}

// fitRole fits a role's memory against connections over the steps in which the
// role had processes, and its CPU against delivered rate over those of them that
// met the SLO (when at least two did).
//
// Why only those: in a step past the knee the machine is out of CPU, so a process's
// CPU time measures what it could get, not what its load costs — on a shared box
// the fit's slope can even come out negative. A negative slope is never used: the
// CPU per message is then the busiest usable step's cores ÷ rate (a line through
// the origin, which over-charges the idle cost into every message: conservative).
func fitRole(role string, steps []CapacityStep) RoleFit {
	rf := RoleFit{Role: role}
	var conns, rss []float64
	var all, ok []CapacityStep
	for _, st := range steps {
		rr, has := st.Roles[role]
		if !has {
			continue
		}
		rf.Processes = max(rf.Processes, rr.Processes)
		conns, rss = append(conns, st.Connections), append(rss, rr.RSSBytes)
		all = append(all, st)
		if st.MeetsSLO {
			ok = append(ok, st)
		}
	}
	if rf.Processes == 0 {
		rf.Note = "no process of this role was sampled"
		return rf
	}
	var notes []string
	if f, err := fitLine(conns, rss); err == nil {
		rf.Mem = &f
	} else {
		notes = append(notes, "memory: "+err.Error())
	}
	cpuSteps := ok
	if len(ok) < 2 {
		cpuSteps = all
		notes = append(notes, fmt.Sprintf("CPU fitted over every step: only %d met the SLO", len(ok)))
	}
	var rate, cores []float64
	for _, st := range cpuSteps {
		rate, cores = append(rate, st.DeliveredPerSec), append(cores, st.Roles[role].CPUCores)
	}
	if f, err := fitLine(rate, cores); err == nil {
		if f.Slope < 0 {
			f = throughOrigin(rate, cores)
			notes = append(notes, "CPU: the fitted slope was negative; CPU per message is the busiest step's cores ÷ rate")
		}
		rf.CPU = &f
	} else {
		notes = append(notes, "CPU: "+err.Error())
	}
	for _, n := range notes {
		rf.Note += n + "; "
	}
	if rf.Note != "" {
		rf.Note = rf.Note[:len(rf.Note)-2]
	}
	return rf
}

// size works out the processes and machines each role needs.
//
// Gateways: enough processes that each holds at most (fd limit − reserve)
// connections, enough machines for their CPU (slope × rate, plus each process's
// idle intercept) and memory (slope × users, plus each process's base) at the
// headroom, at least one process a machine; then one more process, so losing any
// one gateway leaves room for its clients (N+1). Other roles: one process a
// machine, as many as their CPU and memory need, on the stated assumption that
// they shard horizontally.
func (p *CapacityPlan) size() error {
	t := p.Target
	uc, um := float64(t.Cores)*(1-t.Headroom), float64(t.MemBytes)*(1-t.Headroom)
	p.Assumptions = []string{
		fmt.Sprintf("Machines have %d cores and %s; plans use at most %.0f%% of each (headroom %.0f%%).",
			t.Cores, fmtBytes(float64(t.MemBytes)), 100*(1-t.Headroom), 100*t.Headroom),
		"Memory grows linearly with connections and CPU with delivered messages, as fitted over the run's steps (each measured over its second half; CPU only over the steps that met the SLO, since past the knee CPU time measures contention); a role's idle intercept is charged per process.",
		"Messages are one-to-one deliveries at the target rate; fan-out multiplies the delivered rate.",
		"State, msg and router are sized as if they shard horizontally, one process a machine; the run measured them as single processes.",
	}
	if t.Nofile == 0 {
		return errors.New("capacity: the per-process fd limit is unknown (run.json has no nofile_hard): give -nofile")
	}
	fdCap := int64(t.Nofile) - int64(t.FDReserve)
	if fdCap <= 0 {
		return fmt.Errorf("capacity: fd limit %d leaves nothing after reserving %d", t.Nofile, t.FDReserve)
	}
	p.Assumptions = append(p.Assumptions, fmt.Sprintf("A gateway process holds at most %s connections: the fd limit %s (as measured, RunInfo.NofileHard, unless overridden) less %d reserved.",
		fmtCount(float64(fdCap)), fmtCount(float64(t.Nofile)), t.FDReserve))
	var maxConns, maxRate float64
	for _, st := range p.Steps {
		maxConns, maxRate = max(maxConns, st.Connections), max(maxRate, st.DeliveredPerSec)
	}
	if maxConns > 0 && float64(t.Users) > 10*maxConns {
		p.Warnings = append(p.Warnings, fmt.Sprintf("Extrapolation: %s users is %.0f× the most connections measured (%s). Linear fits do not capture what only appears at scale: GC pauses over large heaps, kernel socket and conntrack tables, cache misses, lock contention, network limits.",
			fmtCount(float64(t.Users)), float64(t.Users)/maxConns, fmtCount(maxConns)))
	}
	if maxRate > 0 && t.MsgRate > 10*maxRate {
		p.Warnings = append(p.Warnings, fmt.Sprintf("Extrapolation: %s msg/s is %.0f× the highest delivered rate measured (%s msg/s).",
			fmtCount(t.MsgRate), t.MsgRate/maxRate, fmtCount(math.Round(maxRate))))
	}
	if p.MaxRateMeetingSLO == nil {
		p.Warnings = append(p.Warnings, fmt.Sprintf("No step met the %s p99 SLO: the fitted costs describe a system that was already too slow.", fmtUS(float64(t.SLOUS))))
	} else if t.MsgRate > 0 && maxRate > *p.MaxRateMeetingSLO {
		p.Warnings = append(p.Warnings, fmt.Sprintf("Steps above %s msg/s missed the SLO; the plan sizes by resources, not by latency, so check the per-process rate the plan implies against that.",
			fmtCount(math.Round(*p.MaxRateMeetingSLO))))
	}
	for _, rf := range p.Fits {
		for _, f := range []*Fit{rf.Mem, rf.CPU} {
			if f != nil && f.N > 2 && f.R2 < 0.8 {
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s: a fit has R² %.2f: the line explains its points poorly.", rf.Role, f.R2))
			}
		}
		if rf.Mem == nil || rf.CPU == nil {
			if slices.Contains(sizedRoles(), rf.Role) {
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s is not sized: %s.", rf.Role, rf.Note))
			}
			continue
		}
		need := RoleNeed{Role: rf.Role}
		perProcMem, perProcCPU := rf.Mem.Intercept/float64(rf.Processes), rf.CPU.Intercept/float64(rf.Processes)
		load := func(n int) (cpu, mem float64) {
			return math.Max(0, rf.CPU.Slope*t.MsgRate+perProcCPU*float64(n)), math.Max(0, rf.Mem.Slope*float64(t.Users)+perProcMem*float64(n))
		}
		machines := func(cpu, mem float64) (int, string) {
			mc, mm := int(math.Ceil(cpu/uc)), int(math.Ceil(mem/um))
			if mc >= mm {
				return max(mc, 1), "cpu"
			}
			return max(mm, 1), "memory"
		}
		if rf.Role == "gateway" {
			n := int(math.Ceil(float64(t.Users) / float64(fdCap)))
			procsBy := "fds"
			for range 8 { // converges in a step or two: base costs grow with n
				m, _ := machines(load(n))
				if n >= m {
					break
				}
				n, procsBy = m, "one a machine"
			}
			n++ // N+1: survive losing one gateway
			need.Processes = n
			need.CPUCores, need.MemBytes = load(n)
			var machinesBy string
			need.Machines, machinesBy = machines(need.CPUCores, need.MemBytes)
			need.Binding = fmt.Sprintf("processes: %s, +1 spare (N+1); machines: %s", procsBy, machinesBy)
		} else {
			need.CPUCores, need.MemBytes = load(rf.Processes)
			var by string
			need.Machines, by = machines(need.CPUCores, need.MemBytes)
			need.Processes = need.Machines
			need.Binding = "machines: " + by
		}
		p.Needs = append(p.Needs, need)
		p.Machines += need.Machines
	}
	return nil
}

// writeCapacity writes capacity.json, capacity.md and capacity.png.
func (a *analysis) writeCapacity(p *CapacityPlan) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(a.r.dir, FileCapacityJSON), append(b, '\n')); err != nil {
		return err
	}
	if err := savePNG(filepath.Join(a.r.dir, FileCapacityPlot), capacityPlot(p)); err != nil {
		return err
	}
	d := document{Title: "Capacity plan: " + p.Scenario, Verdict: "", Sections: []section{capacitySection(p)}}
	return writeFile(filepath.Join(a.r.dir, FileCapacity), []byte(renderMarkdownSections(d)))
}

// throughOrigin is the line through the origin and the point of largest x: y/x
// there, no intercept, R² left at 0 (it is not a fit).
func throughOrigin(xs, ys []float64) Fit {
	f := Fit{N: len(xs), XMin: xs[0], XMax: xs[0]}
	best := 0
	for i := range xs {
		f.XMin, f.XMax = math.Min(f.XMin, xs[i]), math.Max(f.XMax, xs[i])
		if xs[i] > xs[best] {
			best = i
		}
	}
	if xs[best] > 0 {
		f.Slope = ys[best] / xs[best]
	}
	return f
}
