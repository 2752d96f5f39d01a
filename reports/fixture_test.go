package reports

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/netns"
	"github.com/floodgate/floodgate/runfolder"
)

// keep, when set, is where TestHTMLAndPlots leaves its run folder for a person
// (or a headless browser) to look at: go test ./reports -run HTML -keep /tmp/r
var keep = flag.String("keep", "", "leave the rendered synthetic report in this directory")

// fxPhase is one phase of a synthetic run.
type fxPhase struct {
	name  string
	secs  int
	rate  float64
	gates []string
}

// fixture builds a synthetic run folder the way the runner and the agents write
// one: real HdrHistogram interval logs written by hdrhistogram-go's log writer
// exactly as loadgen's meters do (whole-second base time, intervals relative to
// the agent's epoch), agent results, JSONL samples and run.json.
type fixture struct {
	t      *testing.T
	dir    string
	name   string
	t0     time.Time // traffic start
	phases []fxPhase
	agents int
	pre    int // seconds of connect time before t0 the agents log
	post   int // seconds after the last phase (the wait for the loss deadline)
	gates  []string
	yaml   string // extra scenario YAML (validity, ...)
	// topology replaces the scenario's topology mapping ({gateways: 2, agents: N}).
	topology string

	// values returns what agent a records under tag in its interval k (the
	// interval starting k seconds, plus the agent's sub-second offset, after t0).
	values func(a, k int, tag string) []int64
	counts func(a int) loadgen.Counts // agent a's final message counts
	// recovery returns agent a's record of first deliveries (nil: none).
	recovery func(a int) *loadgen.Recovery
	// hostile returns agent a's hostile classes (nil: none).
	hostile func(a int) []loadgen.HostileResult
	// pushByGateway returns agent a's push latency per gateway and phase (nil:
	// none, as agents wrote before they recorded it).
	pushByGateway func(a int) []loadgen.GatewayPush
	// webSocket returns how many of agent a's users spoke WebSocket, their
	// upgraded connections and refused handshakes (nil: none).
	webSocket func(a int) (users int, conns, refused uint64)
	// extraTags are tags besides loadgen.Tags the agents log (trace hops).
	extraTags []string

	info     runfolder.RunInfo
	metrics  []runfolder.MetricsSample
	procs    []runfolder.ProcessSample
	progress []runfolder.ProgressSample
	alerts   []runfolder.AlertEvent

	// ref collects every value recorded per tag (whole run) and per tag and
	// phase (by the interval's k), to check merges against.
	ref      map[string]*hdr.Histogram
	refPhase map[string]map[string]*hdr.Histogram
}

// newFixture returns a fixture of a run of the given phases with steady push
// traffic: every agent records n values of 1 ms + k µs per interval.
func newFixture(t *testing.T, phases ...fxPhase) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), name: "synthetic", t0: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		phases: phases, agents: 2, pre: 2, post: 2, yaml: "validity: {min_samples: 10}\n",
		ref: map[string]*hdr.Histogram{}, refPhase: map[string]map[string]*hdr.Histogram{}}
	f.values = func(a, k int, tag string) []int64 {
		switch tag {
		case loadgen.TagPush:
			if k < 0 {
				return nil
			}
			vs := make([]int64, 50)
			for i := range vs {
				vs[i] = int64(1000 + 10*i + k + a)
			}
			return vs
		case loadgen.TagLag:
			if k < 0 {
				return nil
			}
			return []int64{50, 80, 120}
		case loadgen.TagConnect:
			if k == -f.pre {
				return []int64{2000, 3000, 4000}
			}
		}
		return nil
	}
	f.counts = func(a int) loadgen.Counts { return loadgen.Counts{Sent: 1000, Acked: 1000, Delivered: 1000} }
	return f
}

// phaseAt returns the phase of second k after t0 ("" before the first; the last
// phase past the end, as the analysis attributes the drain).
func (f *fixture) phaseAt(k int) string {
	if k < 0 {
		return ""
	}
	for _, p := range f.phases {
		if k < p.secs {
			return p.name
		}
		k -= p.secs
	}
	return f.phases[len(f.phases)-1].name
}

// total is the traffic's length in seconds.
func (f *fixture) total() int {
	n := 0
	for _, p := range f.phases {
		n += p.secs
	}
	return n
}

// at returns t0 + s seconds.
func (f *fixture) at(s float64) time.Time { return f.t0.Add(time.Duration(s * float64(time.Second))) }

func (f *fixture) record(tag, phase string, v int64) {
	h := f.ref[tag]
	if h == nil {
		h = loadgen.NewHistogram()
		f.ref[tag] = h
	}
	h.RecordValue(v)
	if phase == "" {
		return
	}
	if f.refPhase[phase] == nil {
		f.refPhase[phase] = map[string]*hdr.Histogram{}
	}
	ph := f.refPhase[phase][tag]
	if ph == nil {
		ph = loadgen.NewHistogram()
		f.refPhase[phase][tag] = ph
	}
	ph.RecordValue(v)
}

// write writes the run folder and returns its path.
func (f *fixture) write() string {
	t := f.t
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(f.dir, runfolder.DirHlog), 0o755))

	// scenario.yaml
	var y strings.Builder
	topo := f.topology
	if topo == "" {
		topo = fmt.Sprintf("{gateways: 2, agents: %d}", f.agents)
	}
	fmt.Fprintf(&y, "name: %s\ntopology: %s\nclients: {count: 1000}\n", f.name, topo)
	if len(f.gates) > 0 {
		fmt.Fprintf(&y, "gates: [%s]\n", quoteAll(f.gates))
	}
	y.WriteString(f.yaml)
	y.WriteString("phases:\n")
	for _, p := range f.phases {
		fmt.Fprintf(&y, "  - name: %s\n    duration: %ds\n", p.name, p.secs)
		if p.rate > 0 {
			fmt.Fprintf(&y, "    rate: %g/s\n", p.rate)
		}
		if len(p.gates) > 0 {
			fmt.Fprintf(&y, "    gates: [%s]\n", quoteAll(p.gates))
		}
	}
	must(os.WriteFile(filepath.Join(f.dir, runfolder.FileScenario), []byte(y.String()), 0o644))

	// plan.json
	plan := loadgen.Plan{Users: 1000, Traffic: loadgen.Traffic{Rate: 100, Pattern: "pairs", PayloadBytes: 64},
		Interval: loadgen.Duration(time.Second), Deadline: loadgen.Duration(10 * time.Second)}
	for _, p := range f.phases {
		ph := loadgen.Phase{Name: p.name, Duration: loadgen.Duration(time.Duration(p.secs) * time.Second)}
		if p.rate > 0 {
			r := p.rate
			ph.Rate = &r
		}
		plan.Phases = append(plan.Phases, ph)
	}
	writeJSONFile(t, filepath.Join(f.dir, runfolder.FilePlan), plan)

	// run.json
	info := f.info
	info.Scenario, info.ScenarioFile, info.Mode = f.name, "scenarios/"+f.name+".yaml", netns.ModeLoopback
	info.Kernel, info.CPUs, info.GoVersion, info.Agents, info.Clients = "6.1.0-test", 8, "go1.26", f.agents, 1000
	if info.NofileHard == 0 {
		info.NofileHard = 20000
	}
	info.Started, info.TrafficStart = f.at(-float64(f.pre)-1), f.t0
	info.TrafficEnd, info.Ended = f.at(float64(f.total())), f.at(float64(f.total()+f.post)+1)
	s := 0
	for _, p := range f.phases {
		info.Phases = append(info.Phases, runfolder.PhaseWindow{Name: p.name, Start: f.at(float64(s)), End: f.at(float64(s + p.secs))})
		s += p.secs
	}
	if info.Processes == nil {
		for _, p := range []runfolder.ProcessInfo{{Name: "gw-1", Role: "gateway"}, {Name: "gw-2", Role: "gateway"}, {Name: "state", Role: "state"},
			{Name: "msg", Role: "msg"}, {Name: "router", Role: "router"}} {
			p.Started = info.Started
			info.Processes = append(info.Processes, p)
		}
	}
	writeJSONFile(t, filepath.Join(f.dir, runfolder.FileRun), info)

	// agents
	for a := range f.agents {
		f.writeAgent(a)
	}
	writeJSONL(t, filepath.Join(f.dir, runfolder.FileMetrics), f.metrics)
	writeJSONL(t, filepath.Join(f.dir, runfolder.FileProcesses), f.procs)
	writeJSONL(t, filepath.Join(f.dir, runfolder.FileProgress), f.progress)
	writeJSONL(t, filepath.Join(f.dir, runfolder.FileAlerts), f.alerts)
	return f.dir
}

// writeAgent writes hlog/agent-<a>.hlog and .json as loadgen does. The agent's
// epoch is a sub-second offset before t0 − pre, not on a whole second, so the
// whole-second BaseTime line loses its milliseconds and the reader must recover
// them.
func (f *fixture) writeAgent(a int) {
	t := f.t
	off := time.Duration(100+137*a%300) * time.Millisecond // < 0.5 s: interval k stays in bin k
	epoch := f.at(float64(-f.pre)).Add(off)
	file, err := os.Create(filepath.Join(f.dir, runfolder.DirHlog, fmt.Sprintf("agent-%d.hlog", a)))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	lw := hdr.NewHistogramLogWriter(file)
	baseMs := epoch.UnixMilli()
	lw.OutputLogFormatVersion()
	lw.OutputStartTime(baseMs)
	lw.OutputBaseTime(baseMs)
	lw.OutputComment("Floodgate loadgen interval histograms; values in microseconds; Tag = SLI")
	lw.OutputLegend()
	lw.SetBaseTime(baseMs)
	var last time.Time
	for k := -f.pre; k < f.total()+f.post; k++ {
		start, end := epoch.Add(time.Duration(k+f.pre)*time.Second), epoch.Add(time.Duration(k+f.pre+1)*time.Second)
		tags := slices.Clone(loadgen.Tags)
		for _, tag := range f.extraTags {
			if !slices.Contains(tags, tag) {
				tags = append(tags, tag)
			}
		}
		for _, tag := range tags {
			h := loadgen.NewHistogram()
			for _, v := range f.values(a, k, tag) {
				h.RecordValue(v)
				f.record(tag, f.phaseAt(k), v)
			}
			h.SetTag(tag)
			h.SetStartTimeMs(start.UnixMilli())
			h.SetEndTimeMs(end.UnixMilli())
			if err := lw.OutputIntervalHistogram(h); err != nil {
				t.Fatal(err)
			}
		}
		last = end
	}
	res := loadgen.Result{Agent: fmt.Sprintf("agent-%d", a), Users: 1000 / f.agents, Started: f.t0,
		Ended: last.Add(300 * time.Microsecond), Established: uint64(1000 / f.agents), PeakActive: 1000 / f.agents,
		Messages: f.counts(a), Latency: map[string]loadgen.Percentiles{}}
	if f.recovery != nil {
		res.Recovery = f.recovery(a)
	}
	if f.hostile != nil {
		res.Hostile = f.hostile(a)
	}
	if f.pushByGateway != nil {
		res.PushByGateway = f.pushByGateway(a)
	}
	if f.webSocket != nil {
		res.WebSocketUsers, res.WebSocketConns, res.WebSocketRefused = f.webSocket(a)
	}
	writeJSONFile(t, filepath.Join(f.dir, runfolder.DirHlog, fmt.Sprintf("agent-%d.json", a)), res)
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeJSONL[T any](t *testing.T, path string, vs []T) {
	t.Helper()
	if len(vs) == 0 {
		return
	}
	var b strings.Builder
	for _, v := range vs {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// steadySystem fills metrics, process and progress samples for a quiet system:
// two gateways holding conns connections between them, resources flat.
func (f *fixture) steadySystem(conns float64) {
	for s := -f.pre; s <= f.total()+f.post; s++ {
		ts := f.at(float64(s) + 0.5)
		for i, gw := range []string{"gw-1", "gw-2"} {
			f.metrics = append(f.metrics, runfolder.MetricsSample{T: ts, Process: gw, Metrics: map[string]float64{
				fmt.Sprintf(`floodgate_reactor_connections{gateway="%s"}`, gw):                     conns / 2,
				fmt.Sprintf(`floodgate_reactor_rejected_total{gateway="%s",reason="busy"}`, gw):    0,
				fmt.Sprintf(`floodgate_gateway_kicks_total{gateway="%s",reason="SLOW"}`, gw):       0,
				fmt.Sprintf(`floodgate_reactor_accepted_total{gateway="%s"}`, gw):                  conns / 2,
				fmt.Sprintf(`floodgate_reactor_closed_total{gateway="%s",reason="peer"}`, gw):      float64(s + f.pre),
				fmt.Sprintf(`floodgate_reactor_closed_total{gateway="%s",reason="heartbeat"}`, gw): 0,
			}})
			f.procs = append(f.procs, runfolder.ProcessSample{T: ts, Process: gw, Role: "gateway", RSSBytes: int64(20<<20 + i<<20), CPUSecs: 0.1 * float64(s+f.pre)})
		}
		for _, p := range []string{"state", "msg", "router"} {
			f.procs = append(f.procs, runfolder.ProcessSample{T: ts, Process: p, Role: p, RSSBytes: 30 << 20, CPUSecs: 0.05 * float64(s+f.pre)})
		}
		for a := range f.agents {
			c := f.counts(a)
			frac := min(1, max(0, float64(s)/float64(f.total())))
			f.progress = append(f.progress, runfolder.ProgressSample{T: ts, Snapshot: loadgen.Snapshot{Agent: fmt.Sprintf("agent-%d", a),
				Active: int(conns) / f.agents, Established: uint64(conns) / uint64(f.agents),
				Counts: loadgen.Counts{Sent: uint64(frac * float64(c.Sent)), Acked: uint64(frac * float64(c.Acked)),
					Delivered: uint64(frac * float64(c.Delivered)), Lost: uint64(frac * float64(c.Lost))}}})
		}
	}
	f.info.Peak = runfolder.PeakConns{Established: int64(conns), At: f.t0}
}

// demoFixture is a realistic-looking crash-failover run for eyeballing the
// report: lognormal push latencies, gw-2 killed 15 s in and restarted 5 s later,
// its clients reconnecting to gw-1 (push latencies and reconnect times spike, a
// few messages are lost at the 10 s deadline), msg paused for 2 s.
func demoFixture(t *testing.T) *fixture {
	f := newFixture(t, fxPhase{name: "warm", secs: 10, rate: 500}, fxPhase{name: "crash", secs: 20, rate: 1000},
		fxPhase{name: "recover", secs: 10, rate: 1000, gates: []string{"worst 5s push p99 < 150ms"}})
	f.name = "crash-failover"
	f.gates = []string{"push p99 < 100ms", "push p999 < 1s", "lost == 0", "reconnect p99 < 3s", "gateway_rss_per_conn < 64KiB", "process_deaths == 0"}
	f.post = 10
	rng := rand.New(rand.NewPCG(7, 7))
	lognormal := func(medianUS, sigma float64) int64 { return int64(medianUS * math.Exp(sigma*rng.NormFloat64())) }
	f.values = func(a, k int, tag string) []int64 {
		var vs []int64
		switch tag {
		case loadgen.TagPush:
			if k < 0 || k >= 40 {
				return nil
			}
			n := 250
			if k >= 10 {
				n = 500
			}
			for range n {
				v := lognormal(1800, 0.45)
				switch {
				case k >= 15 && k < 18 && rng.Float64() < 0.4:
					v = lognormal(900_000, 0.8) // clients of the killed gateway wait to reconnect
				case k >= 22 && k < 24:
					v += lognormal(600_000, 0.5) // msg paused
				}
				vs = append(vs, v)
			}
			if k >= 25 && k < 28 {
				vs = append(vs, 10_000_000, 10_000_000) // lost: recorded at the deadline
			}
		case loadgen.TagPushSlow:
			if k >= 0 && k < 40 {
				for range 20 {
					vs = append(vs, lognormal(40_000, 0.9))
				}
			}
		case loadgen.TagConnect:
			if k == -f.pre || k == -f.pre+1 {
				for range 250 {
					vs = append(vs, lognormal(3_000, 0.6))
				}
			}
		case loadgen.TagReconnect:
			if k >= 15 && k < 19 {
				for range 60 {
					vs = append(vs, lognormal(1_100_000, 0.5))
				}
			}
		case loadgen.TagLag:
			if k >= 0 && k < 40 {
				for range 200 {
					vs = append(vs, lognormal(60, 0.8))
				}
			}
		case loadgen.TagHiccup:
			if k >= 0 && k < 40 && rng.Float64() < 0.3 {
				vs = append(vs, lognormal(900, 0.7))
			}
		}
		return vs
	}
	f.counts = func(a int) loadgen.Counts {
		return loadgen.Counts{Sent: 17_500, Acked: 17_494, Delivered: 17_488, Lost: 6, Failed: 6, Late: 1}
	}
	// gw-2's users suffer in the crash (they wait to reconnect), everyone a
	// little while msg is paused.
	gwRef := map[string]map[string]*hdr.Histogram{}
	perGw := make([][]loadgen.GatewayPush, f.agents)
	for a := range f.agents {
		var samples []gwSamples
		for _, ph := range []struct {
			name   string
			n      int
			median [2]float64 // gw-1, gw-2
		}{{"warm", 1250, [2]float64{1800, 1800}}, {"crash", 5000, [2]float64{2500, 400_000}}, {"recover", 2500, [2]float64{1900, 2100}}} {
			for g, gw := range []string{"gw-1", "gw-2"} {
				vs := make([]int64, ph.n)
				for i := range vs {
					vs[i] = max(1, lognormal(ph.median[g], 0.6))
				}
				samples = append(samples, gwSamples{gw, ph.name, vs})
			}
		}
		perGw[a] = gatewayPushResults(t, gwRef, samples...)
	}
	f.pushByGateway = func(a int) []loadgen.GatewayPush { return perGw[a] }
	killed, back := f.at(15), f.at(20)
	f.info.Processes = []runfolder.ProcessInfo{
		{Name: "gw-1", Role: "gateway", Started: f.at(-4)},
		{Name: "gw-2", Role: "gateway", Started: f.at(-4), Exited: killed, ExitCause: "fault"},
		{Name: "gw-2", Role: "gateway", Started: back},
		{Name: "state", Role: "state", Started: f.at(-4)}, {Name: "msg", Role: "msg", Started: f.at(-4)},
		{Name: "router", Role: "router", Started: f.at(-4)},
		{Name: "agent-0", Role: "agent", Started: f.at(-4)}, {Name: "agent-1", Role: "agent", Started: f.at(-4)},
	}
	f.info.Faults = []runfolder.FaultEvent{{Phase: "crash", Action: "kill", Target: "gw-2", At: killed},
		{Phase: "crash", Action: "restart", Target: "gw-2", At: back},
		{Phase: "crash", Action: "pause", Target: "msg", At: f.at(22), End: f.at(24)}}
	f.info.Peak = runfolder.PeakConns{Established: 1000, At: f.at(1)}
	f.info.Caveats = []string{"The runner's own caveat: shared 8-CPU machine."}
	f.alerts = []runfolder.AlertEvent{{T: f.at(16), Seq: 1, Time: f.at(15.8), Kind: "gateway_down", Gateway: "gw-2", Detail: "lease expired"},
		{T: f.at(21), Seq: 2, Time: f.at(20.6), Kind: "gateway_down", Gateway: "gw-2", Detail: "lease renewed", Resolved: true}}
	cpu := map[string]float64{}
	for s := -f.pre; s <= 50; s++ {
		ts := f.at(float64(s) + 0.5)
		x := float64(s)
		c1, c2 := 500.0, 500.0
		switch {
		case x >= 15 && x < 20:
			c1, c2 = math.Min(1000, 500+(x-14)*160), -1
		case x >= 20:
			c1, c2 = math.Max(620, 1000-(x-19)*60), math.Min(380, (x-19)*60)
		}
		for _, g := range []struct {
			name  string
			conns float64
			rss   float64
		}{{"gw-1", c1, 18<<20 + c1*9000}, {"gw-2", c2, 18<<20 + c2*9000}} {
			if g.conns < 0 {
				continue
			}
			acc := g.conns
			f.metrics = append(f.metrics, runfolder.MetricsSample{T: ts, Process: g.name, Metrics: map[string]float64{
				`floodgate_reactor_connections{gateway="` + g.name + `"}`:                  g.conns,
				`floodgate_reactor_accepted_total{gateway="` + g.name + `"}`:               acc,
				`floodgate_reactor_closed_total{gateway="` + g.name + `",reason="peer"}`:   math.Max(0, x),
				`floodgate_reactor_rejected_total{gateway="` + g.name + `",reason="busy"}`: 0,
				`floodgate_gateway_kicks_total{gateway="` + g.name + `",reason="SLOW"}`:    math.Floor(math.Max(0, x) / 10),
			}})
			cpu[g.name] += 0.0002*g.conns + 0.02
			if g.name == "gw-2" && x == 20 {
				cpu[g.name] = 0.02 // a new process
			}
			f.procs = append(f.procs, runfolder.ProcessSample{T: ts, Process: g.name, Role: "gateway", RSSBytes: int64(g.rss), CPUSecs: cpu[g.name]})
		}
		for i, p := range []string{"state", "msg", "router"} {
			f.procs = append(f.procs, runfolder.ProcessSample{T: ts, Process: p, Role: p, RSSBytes: int64(25<<20 + i<<22 + int(x)*(1<<17)), CPUSecs: (0.05 + 0.02*float64(i)) * (x + 3)})
		}
		for a := range f.agents {
			name := fmt.Sprintf("agent-%d", a)
			f.procs = append(f.procs, runfolder.ProcessSample{T: ts, Process: name, Role: "agent", RSSBytes: 60 << 20, CPUSecs: 0.3 * (x + 3)})
			sent := math.Max(0, math.Min(x, 10))*250 + math.Max(0, math.Min(x, 40)-10)*500
			active := 500.0
			if x >= 15 && x < 19 {
				active = 500 - 250*math.Max(0, 1-(x-15)/4)
			}
			f.progress = append(f.progress, runfolder.ProgressSample{T: ts, Snapshot: loadgen.Snapshot{Agent: name, Active: int(active), Established: 500,
				Counts: loadgen.Counts{Sent: uint64(sent), Acked: uint64(sent * 0.9996), Delivered: uint64(sent * 0.9993)}}})
		}
	}
	return f
}
