package reports

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/runfolder"
)

// linearRole is a role whose memory and CPU are exact lines in the load.
type linearRole struct {
	name, role       string
	baseRSS, perConn float64 // bytes
	idleCPU, perMsg  float64 // cores, CPU seconds per message
}

// steppedRun is a capacity run: four 10 s steps of 1k…4k connections and
// 100…400 delivered msg/s, every role's resources exactly linear, p99 rising
// past the SLO in the last step.
func steppedRun(t *testing.T) (*fixture, []linearRole) {
	f := newFixture(t, fxPhase{name: "s1", secs: 10}, fxPhase{name: "s2", secs: 10}, fxPhase{name: "s3", secs: 10}, fxPhase{name: "s4", secs: 10})
	f.post = 0
	p99 := []int64{2000, 5000, 50_000, 300_000}
	f.values = func(a, k int, tag string) []int64 {
		if k < 0 || k >= 40 || (tag != loadgen.TagPush && tag != loadgen.TagLag) {
			return nil
		}
		if tag == loadgen.TagLag {
			return []int64{100}
		}
		vs := make([]int64, 100)
		for i := range vs {
			vs[i] = p99[k/10] // every sample at the step's latency
		}
		return vs
	}
	roles := []linearRole{
		{"gw-1", "gateway", 10 << 20, 1024, 0.05, 12.5e-6}, // each gateway holds half the connections
		{"gw-2", "gateway", 10 << 20, 1024, 0.05, 12.5e-6}, // and handles half the messages
		{"state", "state", 30 << 20, 500, 0.05, 10e-6},
		{"msg", "msg", 40 << 20, 1000, 0.02, 15e-6},
		{"router", "router", 15 << 20, 0, 0.01, 5e-6},
	}
	f.info.Processes = nil
	for _, r := range roles {
		f.info.Processes = append(f.info.Processes, runfolder.ProcessInfo{Name: r.name, Role: r.role, Started: f.at(-5)})
	}
	cpu := map[string]float64{}
	var delivered float64
	for s := -f.pre; s < 40; s++ {
		step := max(0, s/10)
		conns, rate := float64(1000*(step+1)), float64(100*(step+1))
		if s < 0 {
			rate = 0
		}
		ts := f.at(float64(s) + 0.5)
		for _, r := range roles {
			c, m := conns, rate
			if r.role == "gateway" {
				c, m = conns/2, rate/2
				f.metrics = append(f.metrics, runfolder.MetricsSample{T: ts, Process: r.name, Metrics: map[string]float64{
					fmt.Sprintf(`floodgate_reactor_connections{gateway="%s"}`, r.name): c}})
			}
			cpu[r.name] += r.idleCPU + r.perMsg*m
			f.procs = append(f.procs, runfolder.ProcessSample{T: ts, Process: r.name, Role: r.role, RSSBytes: int64(r.baseRSS + r.perConn*c), CPUSecs: cpu[r.name]})
		}
		delivered += rate
		for a := range f.agents {
			f.progress = append(f.progress, runfolder.ProgressSample{T: ts, Snapshot: loadgen.Snapshot{Agent: fmt.Sprintf("agent-%d", a),
				Active: int(conns) / f.agents, Counts: loadgen.Counts{Sent: uint64(delivered) / 2, Delivered: uint64(delivered) / 2}}})
		}
	}
	f.counts = func(a int) loadgen.Counts {
		return loadgen.Counts{Sent: uint64(delivered) / 2, Acked: uint64(delivered) / 2, Delivered: uint64(delivered) / 2}
	}
	return f, roles
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(math.Abs(b), 1e-12) }

// Fitting a run whose resources are exact lines recovers each role's memory per
// connection and CPU per message, and sizes the target from them.
func TestCapacityRecoversSlopes(t *testing.T) {
	t.Parallel()
	f, _ := steppedRun(t)
	if *keep != "" {
		f.dir = filepath.Join(*keep, "capacity")
		if err := os.MkdirAll(f.dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := f.write()
	target := CapacityTarget{Users: 100_000_000, MsgRate: 1_000_000, Cores: 32, MemBytes: 128 << 30, Headroom: 0.3, FDReserve: 1024}
	plan, err := PlanCapacity(dir, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ perConn, perMsg, baseRSS float64 }{
		"gateway": {1024, 12.5e-6, 20 << 20}, // Σ over two gateways: 1 KiB × conns/2 each, 12.5 µs × msgs/2 each
		"state":   {500, 10e-6, 30 << 20},
		"msg":     {1000, 15e-6, 40 << 20},
		"router":  {0, 5e-6, 15 << 20},
	}
	for _, rf := range plan.Fits {
		w, ok := want[rf.Role]
		if !ok {
			continue
		}
		if rf.Mem == nil || rf.CPU == nil {
			t.Fatalf("%s: no fit: %s", rf.Role, rf.Note)
		}
		if !near(rf.Mem.Slope, w.perConn, 0.01) && !(w.perConn == 0 && math.Abs(rf.Mem.Slope) < 1) {
			t.Errorf("%s: memory per connection %.1f, want %.1f", rf.Role, rf.Mem.Slope, w.perConn)
		}
		if !near(rf.Mem.Intercept, w.baseRSS, 0.01) {
			t.Errorf("%s: memory intercept %.0f, want %.0f", rf.Role, rf.Mem.Intercept, w.baseRSS)
		}
		if !near(rf.CPU.Slope, w.perMsg, 0.02) {
			t.Errorf("%s: CPU per message %.3g, want %.3g", rf.Role, rf.CPU.Slope, w.perMsg)
		}
		if rf.CPU.R2 < 0.999 {
			t.Errorf("%s: CPU R² %.4f on an exact line", rf.Role, rf.CPU.R2)
		}
	}
	if plan.MaxRateMeetingSLO == nil || !near(*plan.MaxRateMeetingSLO, 300, 0.05) {
		t.Fatalf("highest rate meeting the SLO: %v, want ~300", deref(plan.MaxRateMeetingSLO))
	}
	fdCap := 20000 - 1024
	wantGW := int(math.Ceil(1e8/float64(fdCap))) + 1 // N+1
	var gw RoleNeed
	for _, n := range plan.Needs {
		if n.Role == "gateway" {
			gw = n
		}
	}
	if gw.Processes != wantGW {
		t.Fatalf("gateways %d, want %d (fd-bound, N+1): %+v", gw.Processes, wantGW, gw)
	}
	// CPU: 12.5 µs × 1M msg/s + 0.05 cores idle × each process; at 70% of 32 cores.
	wantCores := 12.5e-6*1e6 + 0.05*float64(wantGW)
	if !near(gw.CPUCores, wantCores, 0.02) || gw.Machines != int(math.Ceil(gw.CPUCores/(32*0.7))) {
		t.Fatalf("gateway cores %.1f (want %.1f), machines %d", gw.CPUCores, wantCores, gw.Machines)
	}
	if len(plan.Warnings) == 0 {
		t.Fatal("a 25,000× extrapolation must warn")
	}
	for _, name := range []string{FileCapacity, FileCapacityJSON, FileCapacityPlot} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// The report then shows the plan.
	if _, err := BuildWith(dir, Options{NoPlots: true}); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, FileReport))
	if !strings.Contains(string(md), "## Capacity plan") {
		t.Fatal("report.md lacks the capacity plan")
	}
}

func TestFitLine(t *testing.T) {
	for _, tc := range []struct {
		name         string
		xs, ys       []float64
		slope, icept float64
		r2           float64
		wantErr      bool
	}{
		{name: "exact", xs: []float64{1, 2, 3}, ys: []float64{3, 5, 7}, slope: 2, icept: 1, r2: 1},
		{name: "noisy", xs: []float64{1, 2, 3, 4}, ys: []float64{1, 3, 2, 4}, slope: 0.8, icept: 0.5, r2: 0.64},
		{name: "flat x", xs: []float64{2, 2, 2}, ys: []float64{1, 2, 3}, wantErr: true},
		{name: "one point", xs: []float64{1}, ys: []float64{1}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := fitLine(tc.xs, tc.ys)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v", err)
			}
			if err == nil && (!near(f.Slope, tc.slope, 1e-9) || math.Abs(f.Intercept-tc.icept) > 1e-9 || !near(f.R2, tc.r2, 1e-9)) {
				t.Fatalf("fit %+v", f)
			}
		})
	}
}

// CPU is fitted over the steps that met the SLO (past the knee the machine is out
// of CPU and the figures measure contention), and a negative slope is replaced by
// the busiest usable step's cores ÷ rate.
func TestFitRoleCPUUsesUnsaturatedStepsAndNeverANegativeSlope(t *testing.T) {
	step := func(rate, cores float64, meets bool) CapacityStep {
		return CapacityStep{Connections: rate * 10, DeliveredPerSec: rate, MeetsSLO: meets,
			Roles: map[string]RoleResource{"msg": {Processes: 1, RSSBytes: 1e6 + rate*100, CPUCores: cores}}}
	}
	for _, tc := range []struct {
		name      string
		steps     []CapacityStep
		wantSlope float64 // CPU seconds per message
		wantNote  string
	}{
		{"saturated steps are left out of the CPU fit",
			[]CapacityStep{step(1000, 0.11, true), step(2000, 0.21, true), step(4000, 0.2, false), step(8000, 0.15, false)},
			0.0001, ""},
		{"a negative slope falls back to cores ÷ rate at the busiest step",
			[]CapacityStep{step(1000, 0.2, true), step(2000, 0.18, true), step(3000, 0.15, true)},
			0.00005, "negative"},
		{"with fewer than two unsaturated steps every step is used",
			[]CapacityStep{step(1000, 0.1, true), step(2000, 0.2, false), step(3000, 0.3, false)},
			0.0001, "only 1 met the SLO"},
	} {
		rf := fitRole("msg", tc.steps)
		if rf.CPU == nil {
			t.Fatalf("%s: no CPU fit (%s)", tc.name, rf.Note)
		}
		if math.Abs(rf.CPU.Slope-tc.wantSlope) > 1e-9 {
			t.Errorf("%s: CPU slope %g s/msg, want %g", tc.name, rf.CPU.Slope, tc.wantSlope)
		}
		if tc.wantNote != "" && !strings.Contains(rf.Note, tc.wantNote) || tc.wantNote == "" && strings.Contains(rf.Note, "CPU") {
			t.Errorf("%s: note %q, want it to mention %q", tc.name, rf.Note, tc.wantNote)
		}
	}
}
