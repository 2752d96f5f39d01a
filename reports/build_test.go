package reports

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/runfolder"
)

// build writes the fixture and builds its report, without plots (they are
// checked once, in TestHTMLAndPlots, and are slow to draw under -race).
func build(t *testing.T, f *fixture) *Summary {
	t.Helper()
	s, err := BuildWith(f.write(), Options{NoPlots: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// gate finds a gate result by name and phase.
func gate(t *testing.T, s *Summary, name, phase string) GateResult {
	t.Helper()
	for _, g := range s.Gates {
		if g.Name == name && g.Phase == phase {
			return g
		}
	}
	t.Fatalf("no gate %q (phase %q) in %+v", name, phase, s.Gates)
	return GateResult{}
}

// Merging every agent's interval histograms gives exactly the percentiles of one
// histogram fed every value, over the whole run and per phase.
func TestPercentilesMergeAcrossAgents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "warm", secs: 5}, fxPhase{name: "steady", secs: 8})
	f.agents = 3
	rng := rand.New(rand.NewPCG(1, 2))
	f.values = func(a, k int, tag string) []int64 {
		if k < 0 || (tag != loadgen.TagPush && tag != loadgen.TagLag) {
			return nil
		}
		vs := make([]int64, 200+a*50)
		for i := range vs {
			vs[i] = int64(rng.ExpFloat64()*2000*float64(a+1)) + 1 // agents differ, tails heavy
		}
		return vs
	}
	f.steadySystem(1000)
	s := build(t, f)
	if got, want := s.PushLatencyUS, loadgen.Summarise(f.ref[loadgen.TagPush]); got != want {
		t.Fatalf("whole run: merged %+v, single histogram %+v", got, want)
	}
	for _, ph := range s.Phases {
		if got, want := ph.PushLatencyUS, loadgen.Summarise(f.refPhase[ph.Name][loadgen.TagPush]); got != want {
			t.Fatalf("phase %s: merged %+v, single histogram %+v", ph.Name, got, want)
		}
	}
}

// Intervals go to the phase their time falls in; what the agents log after the
// last phase (the wait for the loss deadline) belongs to the last phase, and the
// connect time before the first to no phase.
func TestPhaseAssignment(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "a", secs: 4}, fxPhase{name: "b", secs: 6})
	f.values = func(a, k int, tag string) []int64 {
		switch {
		case tag != loadgen.TagPush:
			return nil
		case k < 0:
			return []int64{999_000} // before traffic: no phase
		case k < 4:
			return []int64{1000, 1000}
		default:
			return []int64{50_000}
		}
	}
	f.steadySystem(1000)
	s := build(t, f)
	a, b := s.Phases[0].PushLatencyUS, s.Phases[1].PushLatencyUS
	// 2 agents × 4 s × 2 values; 2 agents × (6 s + 2 s drain) × 1 value.
	if a.Count != 16 || a.Max != 1000 || b.Count != 16 || b.P50 != b.Max || b.Max < 50_000 || b.Max > 50_050 {
		t.Fatalf("phase a %+v, phase b %+v", a, b)
	}
	if b.Max >= 999_000 || s.PushLatencyUS.Count != 16+16+4 {
		t.Fatalf("the connect-time interval leaked into a phase or out of the whole run: b %+v, whole %+v", b, s.PushLatencyUS)
	}
}

// A worst-window gate sees a burst that the whole-run percentile hides.
func TestWorstWindowGate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 60})
	f.gates = []string{"push p99 < 100ms", "worst 10s push p99 < 100ms", "worst 10s push p99 < 1s"}
	f.values = func(a, k int, tag string) []int64 {
		if tag == loadgen.TagLag && k >= 0 {
			return []int64{100}
		}
		if tag != loadgen.TagPush || k < 0 || k >= 60 {
			return nil
		}
		vs := make([]int64, 100)
		for i := range vs {
			vs[i] = 1000
			if k == 30 && i < 30 {
				vs[i] = 500_000 // one bad second: 0.5% of the run, 3% of any 10 s around it
			}
		}
		return vs
	}
	f.steadySystem(1000)
	s := build(t, f)
	if g := gate(t, s, "push p99 < 100ms", ""); !g.Pass {
		t.Fatalf("whole-run p99 should hide the burst: %+v", g)
	}
	g := gate(t, s, "worst 10s push p99 < 100ms", "")
	if g.Pass || g.Value == nil || *g.Value < 400_000 || g.WorstAtS == nil || *g.WorstAtS < 21 || *g.WorstAtS > 30 {
		t.Fatalf("worst window should catch the burst at 30 s: %+v (at %v)", g, deref(g.WorstAtS))
	}
	if g := gate(t, s, "worst 10s push p99 < 1s", ""); !g.Pass {
		t.Fatalf("%+v", g)
	}
	if s.Verdict != VerdictFail || s.ExitCode != exitcode.GateFailed {
		t.Fatalf("verdict %s exit %d", s.Verdict, s.ExitCode)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// A gate on a metric nothing measured fails, with a note, never passes (k6#1526).
func TestGateOnMissingMetricFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 5, gates: []string{"reconnect p99 < 3s"}})
	f.gates = []string{"kicks_slow == 0", "gateway_rss_per_conn < 4KiB", "push p99 < 100ms"}
	f.yaml = "validity: {min_samples: 10}\n"
	// no metrics.jsonl, no processes.jsonl, no reconnect samples
	s := build(t, f)
	for _, name := range []string{"kicks_slow == 0", "gateway_rss_per_conn < 4KiB"} {
		if g := gate(t, s, name, ""); g.Pass || g.Value != nil || g.Note == "" {
			t.Fatalf("%s: %+v", name, g)
		}
	}
	if g := gate(t, s, "reconnect p99 < 3s", "steady"); g.Pass || g.Value != nil {
		t.Fatalf("a latency gate with zero samples: %+v", g)
	}
	if g := gate(t, s, "push p99 < 100ms", ""); !g.Pass {
		t.Fatalf("%+v", g)
	}
	if s.Verdict != VerdictFail {
		t.Fatalf("verdict %s, want fail", s.Verdict)
	}
}

// Too few push samples, an overloaded generator, a fatal preflight check or the
// runner's own reasons make a run invalid, whatever its gates say.
func TestInvalidRuns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		adjust func(f *fixture)
		reason string
	}{
		{"zero push samples", func(f *fixture) {
			inner := f.values
			f.values = func(a, k int, tag string) []int64 {
				if tag == loadgen.TagPush {
					return nil
				}
				return inner(a, k, tag)
			}
		}, "push latency samples"},
		{"generator lag", func(f *fixture) {
			inner := f.values
			f.values = func(a, k int, tag string) []int64 {
				if tag == loadgen.TagLag && k >= 0 {
					return []int64{200_000}
				}
				return inner(a, k, tag)
			}
		}, "generator lag"},
		{"hiccup", func(f *fixture) {
			inner := f.values
			f.values = func(a, k int, tag string) []int64 {
				if tag == loadgen.TagHiccup && k == 1 {
					return []int64{900_000}
				}
				return inner(a, k, tag)
			}
		}, "hiccup"},
		{"runner", func(f *fixture) { f.info.Invalid = []string{"conntrack table full"} }, "conntrack table full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fxPhase{name: "steady", secs: 5})
			f.gates = []string{"push p99 < 100ms"}
			f.yaml = "validity: {min_samples: 100}\n"
			tc.adjust(f)
			f.steadySystem(1000)
			s := build(t, f)
			if s.Verdict != VerdictInvalid || s.ExitCode != exitcode.Invalid || !strings.Contains(strings.Join(s.InvalidReasons, "\n"), tc.reason) {
				t.Fatalf("verdict %s exit %d reasons %q", s.Verdict, s.ExitCode, s.InvalidReasons)
			}
		})
	}
}

// Lost and failed messages show in the accounting, the gates and the report.
func TestLostMessagesInAccounting(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 5})
	f.gates = []string{"lost == 0", "failed < 10"}
	f.counts = func(a int) loadgen.Counts {
		return loadgen.Counts{Sent: 1000, Acked: 990, Delivered: 980, Lost: 10 + uint64(a), Failed: 5, Duplicates: 2}
	}
	f.steadySystem(1000)
	s := build(t, f)
	m := s.Messages
	if m.Sent != 2000 || m.Lost != 21 || m.Failed != 10 || m.Delivered != 1960 || m.Duplicates != 4 {
		t.Fatalf("accounting %+v", m)
	}
	if g := gate(t, s, "lost == 0", ""); g.Pass || g.Value == nil || *g.Value != 21 {
		t.Fatalf("%+v", g)
	}
	if g := gate(t, s, "failed < 10", ""); g.Pass || *g.Value != 10 {
		t.Fatalf("%+v", g)
	}
	md, err := os.ReadFile(filepath.Join(f.dir, FileReport))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| whole run | 2,000 | 1,980 | 1,960 | 21 | 10 |") {
		t.Fatalf("report.md lacks the accounting row:\n%s", md)
	}
}

// Messages lost to slow readers are counted apart: gates can hold the normal readers
// to zero loss while the slow ones lose theirs, and the headline says how it splits.
func TestLossToSlowReadersIsCountedApart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 5})
	f.gates = []string{"lost_normal == 0", "lost_slow > 0", "lost == 0"}
	f.counts = func(a int) loadgen.Counts {
		return loadgen.Counts{Sent: 1000, Acked: 1000, Delivered: 900, Lost: 100, LostSlow: 100 - uint64(a)}
	}
	f.steadySystem(1000)
	s := build(t, f)
	if m := s.Messages; m.Lost != 200 || m.LostSlow != 199 || m.LostNormal() != 1 {
		t.Fatalf("accounting %+v", m)
	}
	for _, c := range []struct {
		gate  string
		pass  bool
		value float64
	}{{"lost_normal == 0", false, 1}, {"lost_slow > 0", true, 199}, {"lost == 0", false, 200}} {
		if g := gate(t, s, c.gate, ""); g.Pass != c.pass || g.Value == nil || *g.Value != c.value {
			t.Errorf("gate %q: %+v, want pass=%v value=%v", c.gate, g, c.pass, c.value)
		}
	}
	if line, want := VerdictLine(s, f.dir), "lost 200 of 2,000 sent (1 to normal readers, 199 to slow readers)"; !strings.Contains(line, want) {
		t.Errorf("verdict line %q lacks %q", line, want)
	}
	md, err := os.ReadFile(filepath.Join(f.dir, FileReport))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| whole run | 2,000 | 2,000 | 1,800 | 200 (199 slow) |") {
		t.Errorf("report.md lacks the split accounting row:\n%s", md)
	}
}

// A restarted gateway's counters restart at zero: the increase counts both
// incarnations whole.
func TestCountersAcrossRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 10})
	f.gates = []string{"rejected_busy == 14", "kicks_slow == 0", "process_deaths == 0"}
	f.steadySystem(1000)
	restart := f.at(5)
	f.info.Processes = []runfolder.ProcessInfo{
		{Name: "gw-1", Role: "gateway", Started: f.at(-3), Exited: f.at(4.5), ExitCause: "fault"},
		{Name: "gw-1", Role: "gateway", Started: restart},
		{Name: "gw-2", Role: "gateway", Started: f.at(-3)},
	}
	f.info.Faults = []runfolder.FaultEvent{{Phase: "steady", Action: "kill", Target: "gw-1", At: f.at(4.5)}}
	// gw-1 rejects 0, 5, 10 before the kill; after the restart 2, 4.
	vals := map[float64]float64{0: 0, 2: 5, 4: 10, 6: 2, 8: 4}
	var kept []runfolder.MetricsSample
	for _, m := range f.metrics {
		if m.Process == "gw-1" {
			sec := m.T.Sub(f.t0).Seconds() - 0.5
			v, ok := vals[sec]
			if !ok {
				continue
			}
			m = runfolder.MetricsSample{T: m.T, Process: "gw-1", Metrics: map[string]float64{
				`floodgate_reactor_rejected_total{gateway="gw-1",reason="busy"}`: v,
				`floodgate_gateway_kicks_total{gateway="gw-1",reason="SLOW"}`:    0,
			}}
		}
		kept = append(kept, m)
	}
	f.metrics = kept
	s := build(t, f)
	for _, g := range s.Gates {
		if !g.Pass {
			t.Fatalf("%+v (value %v)", g, deref(g.Value))
		}
	}
	if s.Gateway.RejectedBusy == nil || *s.Gateway.RejectedBusy != 14 {
		t.Fatalf("rejected_busy %v", deref(s.Gateway.RejectedBusy))
	}
}

func TestIncrease(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name     string
		vals     []float64 // readings at 1 s, 3 s, 5 s, …
		restarts []int     // seconds at which the process restarted
		from, to int       // window; 0: open
		want     float64
	}{
		{name: "monotonic", vals: []float64{3, 5, 9}, want: 6},
		{name: "drop is a reset", vals: []float64{0, 5, 10, 2, 4}, want: 14},
		{name: "restart without a drop", vals: []float64{0, 3, 5, 6}, restarts: []int{4}, want: 9},
		{name: "single reading", vals: []float64{7}, want: 0},
		{name: "window uses the reading before it", vals: []float64{1, 4, 6, 10}, from: 4, to: 6, want: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pts []point
			for i, v := range tc.vals {
				pts = append(pts, point{t: at(2*i + 1), v: v})
			}
			var starts []time.Time
			for _, r := range tc.restarts {
				starts = append(starts, at(r))
			}
			var from, to time.Time
			if tc.from > 0 {
				from, to = at(tc.from), at(tc.to)
			}
			got, ok := increase(pts, starts, from, to)
			if !ok || got != tc.want {
				t.Fatalf("increase %v (ok %v), want %v", got, ok, tc.want)
			}
		})
	}
}

// junit.xml parses, with one testcase per gate in the gates suite and a failure
// that states value and limit.
func TestJUnit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 5, gates: []string{"push max < 1ms"}})
	f.gates = []string{"push p99 < 100ms", "lost == 0", "kicks_slow == 0"}
	f.steadySystem(1000)
	s := build(t, f)
	b, err := os.ReadFile(filepath.Join(f.dir, FileJUnit))
	if err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Suites) != 2 || len(doc.Suites[0].Cases) != len(s.Gates) || len(s.Gates) != 4 {
		t.Fatalf("suites %+v, %d gates", doc.Suites, len(s.Gates))
	}
	failures := 0
	for i, c := range doc.Suites[0].Cases {
		if c.Name != s.Gates[i].Name {
			t.Fatalf("case %d is %q, gate %q", i, c.Name, s.Gates[i].Name)
		}
		if c.Failure != nil {
			failures++
			if s.Gates[i].Value != nil && !strings.Contains(c.Failure.Message, "limit") {
				t.Fatalf("failure message %q", c.Failure.Message)
			}
		}
	}
	if failures != 1 || doc.Suites[0].Fail != 1 || doc.Suites[1].Fail != 0 {
		t.Fatalf("%d failures: %+v", failures, doc.Suites)
	}
}

// index.html references only PNGs that exist and decode; every plot is there.
func TestHTMLAndPlots(t *testing.T) {
	f := demoFixture(t)
	if *keep != "" {
		if err := os.MkdirAll(*keep, 0o755); err != nil {
			t.Fatal(err)
		}
		f.dir = *keep
	}
	s, err := Build(f.write())
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(f.dir, FileHTML))
	if err != nil {
		t.Fatal(err)
	}
	srcs := regexp.MustCompile(`<img src="([^"]+)"`).FindAllSubmatch(page, -1)
	want := []string{"latency_push.png", "latency_push_slow.png", "latency_reconnect.png", "timeline_push.png", "timeline_push_slow.png", "connections.png", "send_rate.png", "reconnect.png", "resources.png"}
	got := map[string]bool{}
	for _, m := range srcs {
		name := string(m[1])
		got[name] = true
		b, err := os.ReadFile(filepath.Join(f.dir, name))
		if err != nil {
			t.Fatalf("index.html references %s: %v", name, err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() < 800 || img.Bounds().Dy() < 300 {
			t.Fatalf("%s: %v, %v", name, err, img)
		}
	}
	for _, w := range want {
		if !got[w] {
			t.Fatalf("index.html lacks %s; has %v", w, got)
		}
	}
	for _, name := range s.Files {
		if _, err := os.Stat(filepath.Join(f.dir, name)); err != nil {
			t.Fatalf("summary lists %s: %v", name, err)
		}
	}
	// The verdict comes first, then the gate table.
	v, g := bytes.Index(page, []byte(`class="verdict`)), bytes.Index(page, []byte(`id="gates"`))
	if v < 0 || g < v || bytes.Index(page, []byte(`id="run"`)) < g {
		t.Fatal("index.html does not open with the verdict and the gates")
	}
}

// The merged logs read back with the same samples, at absolute times.
func TestMergedHlogRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 6})
	f.steadySystem(1000)
	s := build(t, f)
	lg, err := readHlogFile(filepath.Join(f.dir, "push.hlog"))
	if err != nil {
		t.Fatal(err)
	}
	var h hist
	ivs := lg.intervals()
	for _, iv := range ivs {
		h.add(iv.h)
	}
	if h.latency() != s.PushLatencyUS || !lg.precise {
		t.Fatalf("read back %+v, summary %+v", h.latency(), s.PushLatencyUS)
	}
	if first := ivs[0].start; first.Before(f.t0) || first.After(f.t0.Add(time.Second)) {
		t.Fatalf("first merged interval at %v, traffic started %v", first, f.t0)
	}
}

// A whole-second base time is refined to the millisecond from the agent's end.
func TestBaseTimeRefined(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "steady", secs: 3})
	f.write()
	lg, err := readHlogFile(filepath.Join(f.dir, runfolder.DirHlog, "agent-1.hlog"))
	if err != nil {
		t.Fatal(err)
	}
	if lg.precise || lg.baseMs%1000 != 0 {
		t.Fatalf("the writer should have lost the milliseconds: %+v", lg.baseMs)
	}
	var res loadgen.Result
	if err := readJSON(filepath.Join(f.dir, runfolder.DirHlog, "agent-1.json"), &res); err != nil {
		t.Fatal(err)
	}
	want := f.at(float64(-f.pre)).Add(237 * time.Millisecond).UnixMilli()
	if !lg.refineBase(res.Ended) || lg.baseMs != want {
		t.Fatalf("refined base %d, want %d", lg.baseMs, want)
	}
}

// A baseline overlays the latency distribution: a run folder's merged logs as a
// curve, a bare summary.json's percentiles as points.
func TestBaselineOverlay(t *testing.T) {
	t.Parallel()
	baseF := newFixture(t, fxPhase{name: "steady", secs: 5})
	baseF.steadySystem(1000)
	build(t, baseF)
	f := newFixture(t, fxPhase{name: "steady", secs: 5})
	f.steadySystem(1000)
	dir := f.write()
	for _, base := range []string{baseF.dir, filepath.Join(baseF.dir, FileSummary)} {
		b, err := loadBaseline(base)
		if err != nil {
			t.Fatal(err)
		}
		if b.sum == nil || b.sum.PushLatencyUS.Count == 0 {
			t.Fatalf("%s: no baseline summary", base)
		}
		if _, fromLogs := b.hists[loadgen.TagPush]; fromLogs != (base == baseF.dir) {
			t.Fatalf("%s: merged logs read %v", base, fromLogs)
		}
		r, err := loadRun(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "overlay.png")
		if err := savePNG(out, analyse(r).distributionPlot(loadgen.TagPush, b)); err != nil {
			t.Fatal(err)
		}
		if *keep != "" {
			os.Rename(out, filepath.Join(*keep, fmt.Sprintf("overlay_%t.png", base == baseF.dir)))
		}
	}
	s, err := BuildWith(dir, Options{Baseline: baseF.dir, NoPlots: true})
	if err != nil || s.Baseline != baseF.dir {
		t.Fatalf("%v, baseline %q", err, s.Baseline)
	}
	if _, err := BuildWith(dir, Options{Baseline: filepath.Join(t.TempDir(), "nothing")}); err == nil {
		t.Fatal("a missing baseline must be an error, not a silent omission")
	}
}

// A base time written to the millisecond (as "#[BaseTime: 1700000000.337 …]",
// which hdrhistogram-go's own reader also accepts) needs no refinement.
func TestFractionalBaseTime(t *testing.T) {
	t.Parallel()
	h := loadgen.NewHistogram()
	h.RecordValue(1500)
	enc, err := h.EncodeV2()
	if err != nil {
		t.Fatal(err)
	}
	log := "#[StartTime: 1700000000.337 (seconds since epoch), 2023-11-14T22:13:20Z]\n" +
		"#[BaseTime: 1700000000.337 (seconds since epoch)]\n" +
		"Tag=push,1.000,1.000,0.0015," + string(enc) + "\n"
	lg, err := parseHlog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	ivs := lg.intervals()
	if !lg.precise || lg.baseMs != 1_700_000_000_337 || len(ivs) != 1 || ivs[0].start.UnixMilli() != 1_700_000_001_337 || ivs[0].h.TotalCount() != 1 {
		t.Fatalf("%+v %+v", lg, ivs)
	}
}

// The agents' WebSocket counts add up into summary.json and the connection table;
// a run without WebSocket clients shows neither.
func TestWebSocketClientsAreSummedAndShown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ws   func(a int) (int, uint64, uint64)
		want string // "" : no row
	}{
		{"mixed", func(a int) (int, uint64, uint64) { return 150, 160 + uint64(a), uint64(a) },
			"| WebSocket clients (upgraded connections, refused handshakes) | 300 of 1,000 (321, 1) |"},
		{"tcp only", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fxPhase{name: "steady", secs: 3})
			f.webSocket = tc.ws
			f.steadySystem(1000)
			s := build(t, f)
			c := s.Connections
			md, err := os.ReadFile(filepath.Join(f.dir, FileReport))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if c.WebSocketUsers != 0 || strings.Contains(string(md), "WebSocket clients") {
					t.Fatalf("a TCP-only run shows WebSocket figures: %+v", c)
				}
				return
			}
			if c.WebSocketUsers != 300 || c.WebSocketConns != 321 || c.WebSocketRefused != 1 {
				t.Fatalf("summary connections %+v, want 300 users, 321 upgraded, 1 refused", c)
			}
			if !strings.Contains(string(md), tc.want) {
				t.Fatalf("report.md lacks %q", tc.want)
			}
		})
	}
}
