package scenario

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/floodgate/floodgate/internal/units"
)

// badFunc records one problem: where, the key path, and what was expected.
type badFunc = func(at Pos, path, f string, a ...any)

// perProcess is the most connections one process holds here: fewer than 20,000
// sockets (RLIMIT_NOFILE), less some for its own files.
const perProcess = 18000

// check finds the impossible values and combinations, each at its line. Each
// part checks its own values, in the order the file's sections come, so a
// file's problems are reported in the same order every time.
func (s *Scenario) check(file string) Errors {
	var errs Errors
	bad := func(at Pos, path, f string, a ...any) {
		errs = append(errs, &Error{File: file, Pos: at, Path: path, Msg: fmt.Sprintf(f, a...)})
	}
	s.checkHeader(file, bad)
	s.Topology.check(bad)
	s.checkClients(bad)
	s.Components.Gateway.check(bad)
	s.Traffic.check(bad)
	s.checkBehaviours(bad)
	s.checkPhases(bad)
	s.checkKnee(bad)
	if a := s.Autoscale; a != nil && a.Max < s.Topology.Gateways {
		bad(a.At, "autoscale.max", "%d is below the %d gateways the run starts with", a.Max, s.Topology.Gateways)
	}
	return errs
}

// checkHeader checks the name (and that it is the file's) and the mode.
func (s *Scenario) checkHeader(file string, bad badFunc) {
	if !validName(s.Name) {
		bad(s.At, "name", "%q: use letters, digits and dashes", s.Name)
	}
	if base := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)); file != "" && s.Name != base && filepath.Ext(file) != "" {
		bad(s.At, "name", "%q differs from the file name %q: make them match, so `make scenario S=%s` finds it", s.Name, base, s.Name)
	}
	switch s.Mode {
	case "auto", "netns", "loopback":
	default:
		bad(s.At, "mode", "%q: expected auto, netns or loopback", s.Mode)
	}
}

// check checks the host counts, the backends and the Redis deployment.
func (t Topology) check(bad badFunc) {
	if t.Gateways < 1 || t.Gateways > 100 {
		bad(t.At, "topology.gateways", "%d: expected 1 to 100", t.Gateways)
	}
	if t.Agents < 1 || t.Agents > 100 {
		bad(t.At, "topology.agents", "%d: expected 1 to 100", t.Agents)
	}
	if b := t.Backend.State; b != "memory" && b != "redis" {
		bad(t.Backend.At, "topology.backend.state", "%q: expected memory or redis", b)
	}
	if b := t.Backend.Msg; b != "memory" && b != "redis" && b != "redis-replicated" {
		bad(t.Backend.At, "topology.backend.msg", "%q: expected memory, redis or redis-replicated", b)
	}
	t.checkRedis(bad)
}

// checkClients checks the client count, alone and spread over the agents.
func (s *Scenario) checkClients(bad badFunc) {
	c, agents := s.Clients, s.Topology.Agents
	if c.Count < 1 {
		bad(c.At, "clients.count", "must be at least 1")
	}
	if agents >= 1 && int64(c.Count) > int64(agents)*perProcess {
		bad(c.At, "clients.count", "%d clients over %d agents is %d per agent: at most %d fit in one process (RLIMIT_NOFILE); use more agents",
			c.Count, agents, int64(c.Count)/int64(agents), perProcess)
	}
}

// check checks a gateway's connection limit and its write watermarks.
func (g GatewaySettings) check(bad badFunc) {
	if g.MaxConns > perProcess {
		bad(g.At, "components.gateway.max_conns", "%d: at most %d fit in one gateway process (RLIMIT_NOFILE); use more gateways", g.MaxConns, perProcess)
	}
	if g.WriteHardCap > 0 && g.WriteHighWater > g.WriteHardCap {
		bad(g.At, "components.gateway.write_high_water", "%v is above write_hard_cap %v", g.WriteHighWater, g.WriteHardCap)
	}
}

// check checks the pattern, its parameters, and the payload size.
func (tr Traffic) check(bad badFunc) {
	switch tr.Pattern {
	case "pairs":
	case "zipf":
		if tr.ZipfS != 0 && tr.ZipfS <= 1 {
			bad(tr.At, "traffic.zipf_s", "%v: must be greater than 1", tr.ZipfS)
		}
	case "groups":
		if tr.GroupSize < 2 {
			bad(tr.At, "traffic.group_size", "the groups pattern needs a group_size of at least 2")
		}
	default:
		bad(tr.At, "traffic.pattern", "%q: expected pairs, zipf or groups", tr.Pattern)
	}
	if tr.Payload < 24 || tr.Payload > 60<<10 {
		bad(tr.At, "traffic.payload", "%v: expected 24B (the measurement header) to 60KiB", tr.Payload)
	}
}

// checkBehaviours checks the client shares, the hostile connections (alone and
// spread like the clients, over the agents and the gateways) and relogins.
func (s *Scenario) checkBehaviours(bad badFunc) {
	b, t, c := s.Behaviours, s.Topology, s.Clients
	if b.Slow.Fraction+b.Idle > 1 {
		bad(b.At, "behaviours", "slow (%v) and idle (%v) fractions add up to more than 100%%", float64(b.Slow.Fraction), float64(b.Idle))
	}
	if h := b.Hostile; h != nil {
		h.check(bad)
		n := int64(c.Count) + h.Total()
		if t.Agents >= 1 && n/int64(t.Agents) > perProcess {
			bad(h.At, "behaviours.hostile", "%d clients and %d hostile connections over %d agents is %d per agent: at most %d fit in one process (RLIMIT_NOFILE); use more agents",
				c.Count, h.Total(), t.Agents, n/int64(t.Agents), perProcess)
		}
		if t.Gateways >= 1 && n/int64(t.Gateways) > perProcess {
			bad(h.At, "behaviours.hostile", "%d clients and %d hostile connections over %d gateways is %d per gateway: at most %d fit in one process (RLIMIT_NOFILE); use more gateways",
				c.Count, h.Total(), t.Gateways, n/int64(t.Gateways), perProcess)
		}
	}
	if b.Relogin > 0 && t.Gateways < 2 {
		bad(b.At, "behaviours.relogin", "a relogin goes to another gateway: it needs at least 2 gateways, the topology has %d", t.Gateways)
	}
}

// phaseWalk carries what checking a phase needs from the phases before it.
type phaseWalk struct {
	s     *Scenario
	bad   badFunc
	procs map[string]bool // the processes a kill, pause or restart may name
	// gateways is how many gateways run from this phase on: the topology's plus
	// those every scale_out so far started.
	gateways int
	names    map[string]bool // the phase names so far
	stepped  units.Count     // the clients an earlier phase stepped up to
}

// checkPhases checks every phase in order, and each one's faults.
func (s *Scenario) checkPhases(bad badFunc) {
	if len(s.Phases) == 0 {
		bad(s.At, "phases", "at least one phase is required")
	}
	w := &phaseWalk{s: s, bad: bad, procs: map[string]bool{}, gateways: s.Topology.Gateways, names: map[string]bool{}}
	for _, p := range s.Processes() {
		w.procs[p] = true
	}
	for i := range s.Phases {
		w.phase(i, &s.Phases[i])
	}
}

// phase checks phase i, p, against the scenario and the phases before it.
func (w *phaseWalk) phase(i int, p *Phase) {
	bad, s := w.bad, w.s
	path := fmt.Sprintf("phases[%d]", i)
	if w.names[p.Name] {
		bad(p.At, path+".name", "%q used by an earlier phase", p.Name)
	}
	w.names[p.Name] = true
	if p.Duration <= 0 {
		bad(p.At, path+".duration", "must be positive")
	}
	if p.Clients != nil {
		if *p.Clients > s.Clients.Count {
			bad(p.At, path+".clients", "%d is more than clients.count (%d)", *p.Clients, s.Clients.Count)
		}
		if *p.Clients < w.stepped {
			bad(p.At, path+".clients", "%d is fewer than an earlier phase's %d: clients only step up", *p.Clients, w.stepped)
		}
		w.stepped = *p.Clients
	}
	if p.Relogin != nil && *p.Relogin > 0 && s.Topology.Gateways < 2 {
		bad(p.At, path+".relogin", "a relogin goes to another gateway: it needs at least 2 gateways, the topology has %d", s.Topology.Gateways)
	}
	for k, g := range p.Gates {
		if why := hostileGateError(g, true); why != "" {
			bad(p.At, fmt.Sprintf("%s.gates[%d]", path, k), "%s", why)
		}
	}
	if p.SlowFraction != nil && *p.SlowFraction+s.Behaviours.Idle > 1 {
		bad(p.At, path+".slow_fraction", "with idle %v adds up to more than 100%%", float64(s.Behaviours.Idle))
	}
	for j := range p.Faults {
		// By pointer: the checks fill in a network fault's parsed rate.
		w.fault(p, fmt.Sprintf("%s.faults[%d]", path, j), &p.Faults[j])
	}
}

// fault checks f, at path fp in phase p: one action, within the phase, on a
// target that exists by then, with only the keys its action takes.
func (w *phaseWalk) fault(p *Phase, fp string, f *Fault) {
	bad, s := w.bad, w.s
	if n := f.actions(); n != 1 {
		bad(f.At, fp, "exactly one action expected (kill, pause, restart, drain, scale_out, reconnect_storm, connect_flood, partition, loss, bandwidth or blackhole); got %d", n)
		return
	}
	if f.Offset >= p.Duration {
		bad(f.At, fp+".at", "%v is not within the phase's %v", f.Offset, p.Duration)
	}
	switch f.Action() {
	case "kill", "pause", "restart":
		if !w.procs[f.Target()] && !(strings.HasPrefix(f.Target(), "gw-") && isGatewayWithin(f.Target(), w.gateways)) {
			bad(f.At, fp+"."+f.Action(), "%q: expected one of %s", f.Target(), strings.Join(s.Processes(), ", "))
		}
		if f.Action() == "restart" && f.Target() == "redis-primary" {
			bad(f.At, fp+".restart", "redis-primary names whichever server is the primary now: restart the killed one by its name, redis-N")
		}
		if f.Action() == "pause" && f.For <= 0 {
			bad(f.At, fp+".for", "a pause needs a positive for: duration")
		}
	case "drain":
		if !isGatewayWithin(f.Drain, w.gateways) {
			bad(f.At, fp+".drain", "%q: expected a gateway, gw-1 to gw-%d", f.Drain, w.gateways)
		}
	case "scale_out":
		if f.ScaleOut < 0 {
			bad(f.At, fp+".scale_out", "must be positive")
		}
		w.gateways += f.ScaleOut
	case "connect_flood":
		if f.FloodRate <= 0 {
			bad(f.At, fp+".flood_rate", "a connect flood needs a rate, like 5k/s")
		}
	case "partition", "loss", "bandwidth", "blackhole":
		f.checkNetwork(fp, w.gateways, s.Topology.Agents, s.Topology.RedisHosts(), s.Mode, bad)
	}
	f.checkStrayKeys(fp, bad)
}

// actions counts the action keys f sets.
func (f *Fault) actions() int {
	n := 0
	for _, set := range []bool{f.Kill != "", f.Pause != "", f.Restart != "", f.Drain != "", f.ScaleOut != 0,
		f.ReconnectStorm, f.ConnectFlood != 0, f.Partition != nil, f.Loss != "", f.Bandwidth != "", f.Blackhole != ""} {
		if set {
			n++
		}
	}
	return n
}

// checkStrayKeys refuses the keys that belong to another action than f's.
func (f *Fault) checkStrayKeys(fp string, bad badFunc) {
	if !f.Network() && (f.Rate != "" || f.OneWay) {
		bad(f.At, fp, "rate and one_way belong to network faults (loss, bandwidth; partition)")
	}
	if f.Action() != "pause" && !f.Network() && f.For != 0 {
		bad(f.At, fp+".for", "only a pause or a network fault (partition, loss, bandwidth, blackhole) takes for:")
	}
	if f.Action() != "drain" && (f.Batch != 0 || f.Interval != 0) {
		bad(f.At, fp, "batch and interval belong to a drain")
	}
	if f.Action() != "connect_flood" && f.FloodRate != 0 {
		bad(f.At, fp+".flood_rate", "belongs to a connect_flood")
	}
}

// checkKnee refuses a knee that cannot be judged step by step.
func (s *Scenario) checkKnee(bad badFunc) {
	k := s.Knee
	if k == nil {
		return
	}
	switch {
	case k.Worst > 0:
		bad(k.At, "knee", "%q: a knee is judged over each whole step: drop worst", k.Text)
	case isHostileMetric(k.Metric):
		bad(k.At, "knee", "%q: hostile figures are over the whole run, not per step", k.Text)
	case len(s.Phases) < 2:
		bad(k.At, "knee", "a knee needs at least two phases (the steps), the scenario has %d", len(s.Phases))
	}
}

// isGatewayWithin reports whether name is gw-1 … gw-n, written canonically.
func isGatewayWithin(name string, n int) bool {
	var i int
	_, err := fmt.Sscanf(name, "gw-%d", &i)
	return err == nil && fmt.Sprintf("gw-%d", i) == name && i >= 1 && i <= n
}

// validName reports whether s is a scenario name: 1 to 64 letters, digits,
// dashes and underscores.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
