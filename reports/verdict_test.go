package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/netns"
	"github.com/floodgate/floodgate/runfolder"
)

// A value exactly at a gate's limit holds for <=, >=, == and fails <, >, !=:
// on exact counts, on latencies HdrHistogram stores exactly (every push sample
// 1 ms), and on a worst-window gate.
func TestGateExactlyAtItsLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		gate string
		pass bool
		want float64
	}{
		{"sent < 2000", false, 2000}, {"sent <= 2000", true, 2000}, {"sent > 2000", false, 2000},
		{"sent >= 2000", true, 2000}, {"sent == 2000", true, 2000}, {"sent != 2000", false, 2000},
		{"lost == 0", true, 0}, {"lost < 0", false, 0}, {"lost <= 0", true, 0},
		{"push p99 < 1ms", false, 1000}, {"push p99 <= 1ms", true, 1000}, {"push p50 <= 1000us", true, 1000},
		{"push max > 1ms", false, 1000}, {"push max >= 1ms", true, 1000},
		{"worst 2s push p99 < 1ms", false, 1000}, {"worst 2s push p99 <= 1ms", true, 1000},
		{"worst 2s push p99 > 1ms", false, 1000}, {"worst 2s push p99 >= 1ms", true, 1000},
	}
	f := newFixture(t, fxPhase{name: "steady", secs: 6})
	for _, c := range cases {
		f.gates = append(f.gates, c.gate)
	}
	f.values = func(a, k int, tag string) []int64 {
		switch {
		case k < 0:
			return nil
		case tag == loadgen.TagPush:
			return slices.Repeat([]int64{1000}, 40)
		case tag == loadgen.TagLag:
			return []int64{50}
		}
		return nil
	}
	f.steadySystem(1000)
	s := build(t, f)
	for _, c := range cases {
		g := gate(t, s, c.gate, "")
		if g.Pass != c.pass || g.Value == nil || *g.Value != c.want {
			t.Errorf("%s: pass %v value %v, want pass %v at %g", c.gate, g.Pass, deref(g.Value), c.pass, c.want)
		}
	}
	if s.Verdict != VerdictFail || s.ExitCode != exitcode.GateFailed {
		t.Fatalf("verdict %s exit %d, want fail 2", s.Verdict, s.ExitCode)
	}
}

// A phase gate on a phase that ran but has no samples of its metric fails as
// not measured, a worst-window one too; the other phase's gates hold; the run
// is a failure, not invalid.
func TestPhaseGateOnAPhaseWithoutSamplesFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "busy", secs: 5, gates: []string{"push p99 < 100ms"}},
		fxPhase{name: "quiet", secs: 5, gates: []string{"push p99 < 100ms", "worst 2s push p99 < 100ms", "push_slow p99 < 1s"}})
	inner := f.values
	f.values = func(a, k int, tag string) []int64 {
		if tag == loadgen.TagPush && k >= 5 {
			return nil // nothing sent in the quiet phase
		}
		return inner(a, k, tag)
	}
	f.steadySystem(1000)
	s := build(t, f)
	if g := gate(t, s, "push p99 < 100ms", "busy"); !g.Pass || g.Value == nil {
		t.Fatalf("the busy phase's gate: %+v", g)
	}
	for _, name := range []string{"push p99 < 100ms", "worst 2s push p99 < 100ms", "push_slow p99 < 1s"} {
		g := gate(t, s, name, "quiet")
		if g.Pass || g.Value != nil || !strings.Contains(g.Note, "a gate on a metric that was not measured fails") {
			t.Errorf("%s in the quiet phase: %+v", name, g)
		}
	}
	if g := gate(t, s, "push p99 < 100ms", "quiet"); !strings.Contains(g.Note, "no push samples") {
		t.Errorf("the note %q does not say there were no push samples", g.Note)
	}
	if s.Verdict != VerdictFail || s.ExitCode != exitcode.GateFailed || len(s.InvalidReasons) > 0 {
		t.Fatalf("verdict %s exit %d invalid %q, want fail 2", s.Verdict, s.ExitCode, s.InvalidReasons)
	}
}

// A phase the scenario has but the run never reached (run.json lists no window
// for it) fails its gates, each saying so, and fails the run.
func TestPhaseGateOnAPhaseThatNeverRanFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fxPhase{name: "first", secs: 5}, fxPhase{name: "second", secs: 5, gates: []string{"push p99 < 100ms", "lost == 0"}})
	f.steadySystem(1000)
	dir := f.write()
	path := filepath.Join(dir, runfolder.FileRun)
	var info runfolder.RunInfo
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	info.Phases = info.Phases[:1]
	writeJSONFile(t, path, info)
	s, err := BuildWith(dir, Options{NoPlots: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, limit := range map[string]float64{"push p99 < 100ms": 100_000, "lost == 0": 0} {
		g := gate(t, s, name, "second")
		if g.Pass || g.Value != nil || g.Limit != limit || !strings.Contains(g.Note, "the phase did not run") {
			t.Errorf("%s: %+v", name, g)
		}
	}
	if s.Verdict != VerdictFail || s.ExitCode != exitcode.GateFailed {
		t.Fatalf("verdict %s exit %d, want fail 2", s.Verdict, s.ExitCode)
	}
}

// Every metric that the run's files cannot give fails its gate with a note
// saying what was missing, whether it is a whole-run or a phase gate.
func TestGatesOnMissingMetricsSayWhatWasMissing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		gate, phase, why string
	}{
		{"redis_shard_spread < 20%", "", "no Redis readings in metrics.jsonl"},
		{"rejected_busy == 0", "", "no gateway reported floodgate_reactor_rejected_total"},
		{"kicks_slow == 0", "", "no gateway reported floodgate_gateway_kicks_total"},
		{"process_deaths == 0", "", "run.json lists no processes"},
		{"gateway_peak_rss < 1GiB", "", "no gateway resource samples"},
		{"gateway_rss_per_conn < 4KiB", "", "no gateway with both resource samples and connections"},
		{"hostile_close p99 < 1s", "", "no hostile connections in the agents' results"},
		{"hostile_opened > 0", "", "no hostile connections in the agents' results"},
		{"reconnect p99 < 3s", "", "no reconnect samples"},
		{"worst 2s reconnect p99 < 3s", "", "no reconnect samples in any 2s window"},
		{"peak_established > 0", "steady", "no connection counts recorded"},
		{"kicks_slow == 0", "steady", "no gateway reported floodgate_gateway_kicks_total"},
	}
	var whole, phase []string
	for _, c := range cases {
		if c.phase == "" {
			whole = append(whole, c.gate)
		} else {
			phase = append(phase, c.gate)
		}
	}
	f := newFixture(t, fxPhase{name: "steady", secs: 5, gates: phase})
	f.gates = append(whole, "push p99 < 100ms")
	f.info.Processes = []runfolder.ProcessInfo{} // none listed; no metrics, process samples or progress either
	s := build(t, f)
	for _, c := range cases {
		g := gate(t, s, c.gate, c.phase)
		if g.Pass || g.Value != nil || g.Note != c.why+": a gate on a metric that was not measured fails" {
			t.Errorf("%s (phase %q): pass %v value %v note %q, want it to fail because %s", c.gate, c.phase, g.Pass, deref(g.Value), g.Note, c.why)
		}
	}
	if g := gate(t, s, "push p99 < 100ms", ""); !g.Pass {
		t.Fatalf("the measured gate: %+v", g)
	}
	if s.Verdict != VerdictFail || s.ExitCode != exitcode.GateFailed {
		t.Fatalf("verdict %s exit %d, want fail 2", s.Verdict, s.ExitCode)
	}
}

// What else makes a run invalid, or not: a failed fatal preflight check, an
// interrupted run; a failed advisory check does not. An invalid run is invalid
// even with every gate held, each reason listed once; a harness error beats it.
func TestInvalidRunReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		adjust  func(f *fixture)
		verdict string
		code    int
		reasons []string
	}{
		{"a fatal preflight check failed", func(f *fixture) {
			f.info.Preflight = []netns.Check{{Name: "nofile", Value: "1024", OK: false, Fatal: true}, {Name: "somaxconn", Value: "4096", OK: true, Fatal: true}}
		}, VerdictInvalid, exitcode.Invalid, []string{"preflight check nofile failed (1024)"}},
		{"an advisory check failed", func(f *fixture) {
			f.info.Preflight = []netns.Check{{Name: "governor", Value: "powersave", OK: false}}
		}, VerdictPass, exitcode.OK, nil},
		{"interrupted", func(f *fixture) { f.info.Interrupted = true }, VerdictInvalid, exitcode.Invalid,
			[]string{"the run was interrupted before its phases ended"}},
		{"the runner's reasons, each once", func(f *fixture) {
			f.info.Invalid = []string{"conntrack table full", "the run was interrupted before its phases ended"}
			f.info.Interrupted = true
		}, VerdictInvalid, exitcode.Invalid, []string{"conntrack table full", "the run was interrupted before its phases ended"}},
		{"a harness error beats invalid", func(f *fixture) {
			f.info.HarnessError = "agent-1 never reported READY"
			f.info.Interrupted = true
		}, VerdictError, exitcode.Failure, []string{"the run was interrupted before its phases ended"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fxPhase{name: "steady", secs: 5})
			f.gates = []string{"push p99 < 100ms", "lost == 0"}
			tc.adjust(f)
			f.steadySystem(1000)
			s := build(t, f)
			if s.Verdict != tc.verdict || s.ExitCode != tc.code || !slices.Equal(s.InvalidReasons, tc.reasons) {
				t.Fatalf("verdict %s exit %d reasons %q; want %s %d %q", s.Verdict, s.ExitCode, s.InvalidReasons, tc.verdict, tc.code, tc.reasons)
			}
			for _, g := range s.Gates {
				if !g.Pass {
					t.Fatalf("gate %+v failed: the verdict must come from validity alone", g)
				}
			}
		})
	}
}

// An unknown verdict is a harness error; each known one has its exit code, as
// README.md states them.
func TestExitCodeOfEachVerdict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		verdict string
		code    int
	}{
		{VerdictPass, 0}, {VerdictFail, 2}, {VerdictInvalid, 3}, {VerdictError, 1}, {"", 1}, {"PASS", 1}, {"skipped", 1},
	} {
		if got := ExitCode(tc.verdict); got != tc.code {
			t.Errorf("ExitCode(%q) = %d, want %d", tc.verdict, got, tc.code)
		}
	}
}

func TestLossTextSplitsSlowReadersAndCountsAnomalies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		m    Messages
		want string
	}{
		{"nothing lost", Messages{Sent: 2000}, "lost 0 of 2,000 sent"},
		{"lost to normal readers", Messages{Sent: 2000, Lost: 3}, "lost 3 of 2,000 sent"},
		{"some to slow readers", Messages{Sent: 2000, Lost: 200, LostSlow: 199},
			"lost 200 of 2,000 sent (1 to normal readers, 199 to slow readers)"},
		{"anomalies", Messages{Sent: 1_000_000, Lost: 1, Duplicates: 2, Phantom: 0, Misdelivered: 1},
			"lost 1 of 1,000,000 sent; 2 duplicates, 0 phantom, 1 misdelivered"},
		{"phantom only", Messages{Sent: 10, Phantom: 4}, "lost 0 of 10 sent; 0 duplicates, 4 phantom, 0 misdelivered"},
	} {
		if got := lossText(tc.m); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The verdict line names the scenario, the verdict in capitals with its exit
// code, the gates passed out of all, the loss, the invalid reasons and where the
// report is.
func TestVerdictLineSaysEverythingCIPrints(t *testing.T) {
	t.Parallel()
	s := &Summary{Scenario: "smoke", Verdict: VerdictInvalid, ExitCode: exitcode.Invalid,
		Gates:          []GateResult{{Pass: true}, {Pass: false}, {Pass: true}},
		PushLatencyUS:  Latency{Count: 12_345, P99: 1500},
		Messages:       Messages{Sent: 5000, Lost: 2},
		InvalidReasons: []string{"generator lag p99.9 12 ms over its 5 ms bound", "too few push samples"}}
	line := VerdictLine(s, "/runs/r1")
	for _, want := range []string{"smoke: INVALID (exit 3)", "2/3 gates passed", "push p99 1.50 ms over 12,345 samples",
		"lost 2 of 5,000 sent", "invalid: generator lag p99.9 12 ms over its 5 ms bound; too few push samples", "→ /runs/r1/index.html"} {
		if !strings.Contains(line, want) {
			t.Errorf("verdict line %q does not say %q", line, want)
		}
	}
	s.InvalidReasons, s.Verdict, s.ExitCode = nil, VerdictPass, exitcode.OK
	if line := VerdictLine(s, "d"); strings.Contains(line, "invalid") || !strings.HasPrefix(line, "smoke: PASS (exit 0)") {
		t.Errorf("a valid run's line %q", line)
	}
}

// The figures printed under the verdict line: a line per measured latency, none
// for an unmeasured one.
func TestFiguresTextListsOnlyMeasuredLatencies(t *testing.T) {
	t.Parallel()
	s := &Summary{PushLatencyUS: Latency{Count: 1000, P50: 900, P90: 1200, P99: 2500, P999: 9000, Max: 40_000},
		ConnectMS: MillisStats{Count: 10, P50: 3, P90: 4, P99: 5, P999: 5, Max: 6}}
	txt := FiguresText(s)
	for _, want := range []string{"push       p50 900 µs · p90 1.20 ms · p99 2.50 ms · p99.9 9.00 ms · max 40.0 ms  (1,000 samples)",
		"connect    p50 3.00 ms"} {
		if !strings.Contains(txt, want) {
			t.Errorf("figures %q do not say %q", txt, want)
		}
	}
	for _, absent := range []string{"reconnect", "replace", "push slow", "population", "steps"} {
		if strings.Contains(txt, absent) {
			t.Errorf("figures %q mention %q, which was not measured", txt, absent)
		}
	}
}
