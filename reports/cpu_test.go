package reports

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/floodgate/floodgate/runfolder"
)

// A restarted process's CPU counts on from where its last incarnation stopped,
// whether the restart is known from run.json or only shows as a drop.
func TestFoldRestarts(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	pts := func(vs ...float64) []point {
		out := make([]point, len(vs))
		for i, v := range vs {
			out[i] = point{at(i), v}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		in     []point
		starts []time.Time
		want   []float64
	}{
		{"one incarnation", pts(1, 2, 4), nil, []float64{1, 2, 4}},
		{"a drop starts a new incarnation", pts(1, 3, 0.5, 1.5), nil, []float64{1, 3, 3.5, 4.5}},
		{"a known restart with a higher first reading", pts(1, 3, 4, 5), []time.Time{at(2)}, []float64{1, 3, 7, 8}},
		{"two restarts", pts(2, 0.1, 0.2, 0.1), []time.Time{at(1), at(3)}, []float64{2, 2.1, 2.2, 2.3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := foldRestarts(tc.in, tc.starts)
			for i, p := range got {
				if math.Abs(p.v-tc.want[i]) > 1e-9 {
					t.Fatalf("folded %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// Values between readings are interpolated, and held flat outside them; a
// gauge's integral is the area under its readings joined by straight lines.
func TestCumulativeAtAndIntegral(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	c := cumulative{{at(0), 10}, {at(2), 20}, {at(4), 20}}
	for _, tc := range []struct {
		t    float64
		want float64
	}{{-5, 10}, {0, 10}, {1, 15}, {2, 20}, {3, 20}, {9, 20}} {
		if got := c.at(at(tc.t)); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("at(%g) = %g, want %g", tc.t, got, tc.want)
		}
	}
	for _, tc := range []struct {
		from, to, want float64
	}{
		{0, 2, 30},   // (10+20)/2 × 2
		{1, 3, 37.5}, // 15→20 over 1 s, then 20 flat for 1 s
		{-1, 0, 10},  // flat before the first reading
		{4, 6, 40},   // flat after the last
		{3, 3, 0},
	} {
		if got := integral(c, at(tc.from), at(tc.to)); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("integral(%g, %g) = %g, want %g", tc.from, tc.to, got, tc.want)
		}
	}
}

// Each phase's cores per role, CPU per delivered message, the agents' own
// figures and the connect window's CPU per login come out of the samples.
func TestCPUPerRolePerPhase(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "a", secs: 4}, fxPhase{name: "b", secs: 6})
	f.steadySystem(1000) // gateways 0.1 cores each, state, msg, router 0.05; 100 deliveries/s per agent
	for s := -f.pre; s <= f.total()+f.post; s++ {
		for a := range f.agents {
			f.procs = append(f.procs, runfolder.ProcessSample{T: f.at(float64(s) + 0.5), Process: fmt.Sprintf("agent-%d", a), Role: "agent", CPUSecs: 0.3 * float64(s+f.pre)})
		}
	}
	f.info.Connecting = runfolder.ConnectWindow{Start: f.at(-1.5), End: f.at(-0.5), Established: 1000}
	s := build(t, f)
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %g, want %g", what, got, want)
		}
	}
	c := s.Phases[1].CPU
	if c == nil {
		t.Fatal("phase b has no CPU figures")
	}
	near("window", c.WindowS, 6)
	near("delivered/s", c.DeliveredPerS, 200)
	near("gateway cores", c.Cores["gateway"], 0.2)
	near("msg cores", c.Cores["msg"], 0.05)
	near("server cores", c.ServerCores, 0.35)
	near("gateway µs/msg", c.USPerMsg["gateway"], 1000)
	near("server µs/msg", deref0(c.ServerUSPerMsg), 1750)
	near("agent cores", c.Agents.Cores, 0.6)
	near("agent µs/msg", deref0(c.Agents.USPerMsg), 3000)
	near("agent connection-seconds", c.Agents.ConnS, 6000)
	near("agent µs per connection-second", deref0(c.Agents.USPerConnS), 600)
	if _, ok := c.Cores["agent"]; ok || c.Agents.Processes != 2 {
		t.Errorf("agents mixed into the server roles: %v, %d agent processes", c.Cores, c.Agents.Processes)
	}
	k := s.ConnectCPU
	if k == nil {
		t.Fatal("no connect CPU")
	}
	near("logins/s", k.LoginsPerS, 1000)
	near("gateway µs/login", k.USPerLogin["gateway"], 200)
	near("server µs/login", deref0(k.ServerUSPerLogin), 350)
	near("agent µs/login", deref0(k.Agents.USPerLogin), 600)
	if sec := cpuSection(s); sec == nil || len(sec.Tables) != 3 || sec.Tables[0].Head[2] != "gateway" || sec.Tables[1].Rows[1][len(sec.Tables[1].Rows[1])-3] != "1,750" {
		t.Fatalf("CPU section %+v", sec)
	}
}
