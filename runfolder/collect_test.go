package runfolder_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/reports"
	"github.com/floodgate/floodgate/runfolder"
)

const testSecret = "collect-test-secret-0123456789ab"

// startGateway starts one gateway with its own in-memory store (node.Local): a
// whole small stack in this process. It stops with the test.
func startGateway(t *testing.T) string {
	t.Helper()
	signer, err := proto.NewSigner([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{
		ID: "gw", Reactor: reactor.Config{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		Signer: signer, Backend: node.NewLocal(msg.NewMemory(10000)), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return n.Reactor().Addr().String()
}

func f64(v float64) *float64 { return &v }

// testPlan is a small plan against one gateway: two phases, pairs traffic. Its
// rates give send slots a whole number of nanoseconds apart, run whole and in
// each of 4 segments (200/s: 5 ms, 50/s each: 20 ms; 400/s: 2.5 ms, 100/s each:
// 10 ms), so the slots each phase holds are counted exactly in floating point
// and the segments together offer exactly what one agent offers.
func testPlan(gateway string) loadgen.Plan {
	return loadgen.Plan{
		Seed: 11, Gateways: []string{gateway}, Secret: testSecret, Users: 240, UIDBase: 5000, ConnectRate: 4000,
		Traffic: loadgen.Traffic{Rate: 400, Pattern: "pairs", PayloadBytes: 64},
		// Long enough that no message misses it on a busy machine (the agents end
		// as soon as every message is delivered).
		Deadline: loadgen.Duration(15 * time.Second),
		Phases: []loadgen.Phase{
			{Name: "warm", Duration: loadgen.Duration(time.Second), Rate: f64(200)},
			{Name: "steady", Duration: loadgen.Duration(2 * time.Second)},
		},
	}
}

// runSegments runs a plan as n agents, segment i of n each, released at one
// shared start time, each writing its outputs (as `floodgate loadgen -out`
// does: result, interval log, plan copy, progress log) into dir/seg-<i>.
func runSegments(plan loadgen.Plan, n int, dir string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now().Add(1500 * time.Millisecond) // every segment connected by then
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		dirs[i] = filepath.Join(dir, fmt.Sprintf("seg-%d", i))
		wg.Go(func() { errs[i] = runAgent(ctx, plan, loadgen.Segment{Index: i, Count: n}, dirs[i], start) })
	}
	wg.Wait()
	return dirs, errors.Join(errs...)
}

// runAgent runs one segment and writes its four output files into dir.
func runAgent(ctx context.Context, plan loadgen.Plan, seg loadgen.Segment, dir string, start time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := fmt.Sprintf("agent-%d", seg.Index)
	pub := plan
	pub.Secret = ""
	b, _ := json.Marshal(pub)
	if err := os.WriteFile(filepath.Join(dir, name+loadgen.SuffixPlan), b, 0o644); err != nil {
		return err
	}
	prog, err := os.Create(filepath.Join(dir, name+loadgen.SuffixProgress))
	if err != nil {
		return err
	}
	defer prog.Close()
	at := make(chan time.Time, 1)
	at <- start
	a, err := loadgen.New(loadgen.Options{Plan: plan, Segment: seg, Name: name, OutDir: dir, Start: at,
		Logger: slog.New(slog.DiscardHandler), Progress: func(s loadgen.Snapshot) {
			line, _ := json.Marshal(runfolder.ProgressSample{T: time.Now(), Snapshot: s})
			prog.Write(append(line, '\n'))
		}})
	if err != nil {
		return err
	}
	res, err := a.Run(ctx)
	if err != nil {
		return fmt.Errorf("segment %v: %w", seg, err)
	}
	if res.Interrupted {
		return fmt.Errorf("segment %v was interrupted", seg)
	}
	return nil
}

// collectAndReport assembles a run folder from segment outputs and reports on it.
func collectAndReport(t *testing.T, inputs []string, out string) *reports.Summary {
	t.Helper()
	if _, err := runfolder.Collect(runfolder.CollectOptions{Inputs: inputs, Out: out}); err != nil {
		t.Fatal(err)
	}
	sum, err := reports.BuildWith(out, reports.Options{NoPlots: true})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// pushOfLogs merges every push interval of the given interval logs into one
// histogram: what one histogram fed all the segments' values holds.
func pushOfLogs(t *testing.T, paths []string) *hdr.Histogram {
	t.Helper()
	all := loadgen.NewHistogram()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		r := hdr.NewHistogramLogReader(f)
		for range 100_000 {
			h, err := r.NextIntervalHistogram()
			if err != nil {
				f.Close()
				t.Fatalf("%s: %v", p, err)
			}
			if h == nil {
				break
			}
			if h.Tag() == loadgen.TagPush {
				if dropped := all.Merge(h); dropped != 0 {
					t.Fatalf("%s: %d values out of range", p, dropped)
				}
			}
		}
		f.Close()
	}
	return all
}

// A plan run as four segments against one stack, collected and reported, counts
// exactly what the same plan run by one agent against an identical fresh stack
// counts; and the merged push percentiles are those of one histogram fed every
// segment's recorded values, to the histograms' precision.
func TestCollectedSegmentsEqualOneAgentRun(t *testing.T) {
	const n = 4
	dir := t.TempDir()
	var (
		wg                  sync.WaitGroup
		segDirs, singleDirs []string
		segErr, singleErr   error
		plan, single        = testPlan(startGateway(t)), testPlan(startGateway(t))
	)
	wg.Go(func() { segDirs, segErr = runSegments(plan, n, filepath.Join(dir, "segments")) })
	wg.Go(func() { singleDirs, singleErr = runSegments(single, 1, filepath.Join(dir, "single")) })
	wg.Wait()
	if err := errors.Join(segErr, singleErr); err != nil {
		t.Fatal(err)
	}
	merged := collectAndReport(t, segDirs, filepath.Join(dir, "run-segments"))
	whole := collectAndReport(t, singleDirs, filepath.Join(dir, "run-single"))

	if merged.Messages.Sent != 1000 || merged.Connections.Established != uint64(plan.Users) {
		t.Fatalf("the segments established %d of %d users and sent %d messages", merged.Connections.Established, plan.Users, merged.Messages.Sent)
	}
	// What the plan decides is equal; what the timing decides (late, retried,
	// redelivered, out of order) may differ between the runs, so the merge is held
	// to the segments' own results instead.
	m, w := merged.Messages, whole.Messages
	for _, c := range []struct {
		name          string
		merged, whole uint64
	}{
		{"sent", m.Sent, w.Sent}, {"acked", m.Acked, w.Acked}, {"delivered", m.Delivered, w.Delivered},
		{"lost", m.Lost, w.Lost}, {"failed", m.Failed, w.Failed}, {"skipped", m.Skipped, w.Skipped},
		{"duplicates", m.Duplicates, w.Duplicates}, {"phantom", m.Phantom, w.Phantom}, {"misdelivered", m.Misdelivered, w.Misdelivered},
	} {
		if c.merged != c.whole {
			t.Errorf("%s: %d segments %d, one agent %d", c.name, n, c.merged, c.whole)
		}
	}
	var sum loadgen.Counts
	for i, d := range segDirs {
		var res loadgen.Result
		b, err := os.ReadFile(filepath.Join(d, fmt.Sprintf("agent-%d%s", i, loadgen.SuffixResult)))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		sum.Add(res.Messages)
	}
	var want reports.Messages // the same counts under the same JSON names
	b, _ := json.Marshal(sum)
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if merged.Messages != want {
		t.Errorf("merged messages %+v, the segments' results add up to %+v", merged.Messages, want)
	}
	if merged.Connections.Established != whole.Connections.Established || merged.Connections.Reconnects != whole.Connections.Reconnects {
		t.Errorf("connections: %d segments %+v, one agent %+v", n, merged.Connections, whole.Connections)
	}
	if merged.PushLatencyUS.Count != whole.PushLatencyUS.Count || merged.LatencyUS[loadgen.TagConnect].Count != whole.LatencyUS[loadgen.TagConnect].Count {
		t.Errorf("samples: push %d / %d, connect %d / %d", merged.PushLatencyUS.Count, whole.PushLatencyUS.Count,
			merged.LatencyUS[loadgen.TagConnect].Count, whole.LatencyUS[loadgen.TagConnect].Count)
	}
	// Per-phase counts come from the progress logs, sampled each second, so they
	// split a run by when each agent happened to report; but every segment's
	// progress must be there: the phases add up to the whole.
	var phaseSent, phaseDelivered uint64
	for _, ph := range merged.Phases {
		if ph.Messages == nil {
			t.Fatalf("phase %s has no counts: the progress logs were not collected", ph.Name)
		}
		phaseSent += ph.Messages.Sent
		phaseDelivered += ph.Messages.Delivered
	}
	if phaseSent != merged.Messages.Sent || phaseDelivered != merged.Messages.Delivered {
		t.Errorf("the phases add up to %d sent, %d delivered; the run %d, %d", phaseSent, phaseDelivered, merged.Messages.Sent, merged.Messages.Delivered)
	}

	var logs []string
	for i, d := range segDirs {
		logs = append(logs, filepath.Join(d, fmt.Sprintf("agent-%d%s", i, loadgen.SuffixHlog)))
	}
	all := pushOfLogs(t, logs)
	got := merged.PushLatencyUS
	if got.Count != all.TotalCount() {
		t.Fatalf("merged push count %d, the segments' logs hold %d", got.Count, all.TotalCount())
	}
	for _, q := range []struct {
		name      string
		got, want int64
	}{
		{"p50", got.P50, all.ValueAtPercentile(50)},
		{"p90", got.P90, all.ValueAtPercentile(90)},
		{"p99", got.P99, all.ValueAtPercentile(99)},
		{"max", got.Max, all.Max()},
	} {
		if !all.ValuesAreEquivalent(q.got, q.want) {
			t.Errorf("push %s: merged %d µs, one histogram of every value %d µs (not within the histogram's precision)", q.name, q.got, q.want)
		}
	}
	t.Logf("%d segments: %+v, push %+v; one agent: %+v, push %+v", n, merged.Messages, merged.PushLatencyUS, whole.Messages, whole.PushLatencyUS)
}

// writeOutput writes a segment output with the given result fields and plan.
func writeOutput(t *testing.T, dir, name, segment string, plan loadgen.Plan) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	res, _ := json.Marshal(loadgen.Result{Agent: name, Segment: segment, Started: time.Unix(1000, 0), Ended: time.Unix(1010, 0)})
	plan.Secret = ""
	pj, _ := json.Marshal(plan)
	for suffix, b := range map[string][]byte{loadgen.SuffixResult: res, loadgen.SuffixPlan: pj, loadgen.SuffixHlog: nil} {
		if err := os.WriteFile(filepath.Join(dir, name+suffix), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Inputs that do not make one run are refused, naming what is wrong.
func TestCollectRefusesIncompleteOrMixedInputs(t *testing.T) {
	plan := testPlan("127.0.0.1:1")
	other := plan
	other.Traffic.Rate = 601
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string) (inputs []string, opts runfolder.CollectOptions)
		wantErr []string // substrings of the error
	}{
		{"a segment missing", func(t *testing.T, dir string) ([]string, runfolder.CollectOptions) {
			writeOutput(t, dir, "agent-0", "0/3", plan)
			writeOutput(t, dir, "agent-2", "2/3", plan)
			return []string{dir}, runfolder.CollectOptions{}
		}, []string{"1/3", "missing"}},
		{"two outputs for one segment", func(t *testing.T, dir string) ([]string, runfolder.CollectOptions) {
			writeOutput(t, filepath.Join(dir, "a"), "agent-0", "0/2", plan)
			writeOutput(t, filepath.Join(dir, "a"), "agent-1", "1/2", plan)
			writeOutput(t, filepath.Join(dir, "b"), "agent-1", "1/2", plan)
			return []string{filepath.Join(dir, "a"), filepath.Join(dir, "b", "agent-1.hlog")}, runfolder.CollectOptions{}
		}, []string{"two outputs for segment 1/2", filepath.Join(dir0(), "b", "agent-1.json")}},
		{"a segment ran another plan", func(t *testing.T, dir string) ([]string, runfolder.CollectOptions) {
			writeOutput(t, dir, "agent-0", "0/2", plan)
			writeOutput(t, dir, "agent-1", "1/2", other)
			return []string{dir}, runfolder.CollectOptions{}
		}, []string{"agent-1.plan.json differs from", "agent-0.plan.json"}},
		{"the plan given differs from the segments'", func(t *testing.T, dir string) ([]string, runfolder.CollectOptions) {
			writeOutput(t, dir, "agent-0", "0/1", plan)
			b, _ := json.Marshal(other)
			p := filepath.Join(dir, "given.json")
			os.WriteFile(p, b, 0o644)
			return []string{dir}, runfolder.CollectOptions{Plan: p}
		}, []string{"agent-0.plan.json differs from", "given.json"}},
		{"segments of different splits", func(t *testing.T, dir string) ([]string, runfolder.CollectOptions) {
			writeOutput(t, dir, "agent-0", "0/2", plan)
			writeOutput(t, dir, "agent-1", "1/3", plan)
			return []string{dir}, runfolder.CollectOptions{}
		}, []string{"not slices of one run"}},
		{"an interval log missing", func(t *testing.T, dir string) ([]string, runfolder.CollectOptions) {
			writeOutput(t, dir, "agent-0", "0/1", plan)
			os.Remove(filepath.Join(dir, "agent-0.hlog"))
			return []string{dir}, runfolder.CollectOptions{}
		}, []string{"segment 0/1", "agent-0.hlog"}},
		{"a directory without outputs", func(t *testing.T, dir string) ([]string, runfolder.CollectOptions) {
			os.WriteFile(filepath.Join(dir, "summary.json"), []byte(`{"verdict":"pass"}`), 0o644)
			return []string{dir}, runfolder.CollectOptions{}
		}, []string{"holds no loadgen output"}},
		{"an output folder in use", func(t *testing.T, dir string) ([]string, runfolder.CollectOptions) {
			writeOutput(t, filepath.Join(dir, "in"), "agent-0", "0/1", plan)
			os.MkdirAll(filepath.Join(dir, "out"), 0o755)
			os.WriteFile(filepath.Join(dir, "out", "x"), nil, 0o644)
			return []string{filepath.Join(dir, "in")}, runfolder.CollectOptions{Out: filepath.Join(dir, "out")}
		}, []string{"is not empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			inputs, opts := tc.prepare(t, dir)
			opts.Inputs = inputs
			if opts.Out == "" {
				opts.Out = filepath.Join(dir, "run")
			}
			_, err := runfolder.Collect(opts)
			if err == nil {
				t.Fatal("collected")
			}
			for _, want := range tc.wantErr {
				want = strings.ReplaceAll(want, dir0(), dir)
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// dir0 stands for the test case's directory in an expected error.
func dir0() string { return "<dir>" }

// A collected run's folder holds what reports needs, and reports on it.
func TestCollectWritesAReportableRunFolder(t *testing.T) {
	dir := t.TempDir()
	plan := testPlan("127.0.0.1:1")
	writeOutput(t, filepath.Join(dir, "a"), "agent-0", "0/2", plan)
	writeOutput(t, filepath.Join(dir, "b"), "agent-1", "1/2", plan)
	out := filepath.Join(dir, "run")
	info, err := runfolder.Collect(runfolder.CollectOptions{Inputs: []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}, Out: out, Name: "k8s-steady"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Agents != 2 || info.Clients != int64(plan.Users) || info.Mode != runfolder.ModeDistributed || len(info.Phases) != 2 ||
		!info.Phases[0].Start.Equal(time.Unix(1000, 0)) || info.Phases[1].End.Sub(info.Phases[0].Start) != 3*time.Second {
		t.Fatalf("run.json: %+v", info)
	}
	for _, f := range []string{runfolder.FileRun, runfolder.FilePlan, runfolder.FileScenario, "hlog/agent-0.hlog", "hlog/agent-1.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(out, runfolder.FilePlan))
	if strings.Contains(string(b), testSecret) {
		t.Error("plan.json holds the secret")
	}
	sum, err := reports.BuildWith(out, reports.Options{NoPlots: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Scenario != "k8s-steady" || len(sum.Gates) != len(runfolder.DefaultCollectGates()) {
		t.Fatalf("summary: scenario %q, gates %+v", sum.Scenario, sum.Gates)
	}
	for _, c := range sum.Caveats {
		if strings.Contains(c, "share this machine's") {
			t.Errorf("a collected run's agents ran elsewhere, yet the report says: %s", c)
		}
	}
}
