package sim_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/testbin"
	"github.com/floodgate/floodgate/netns"
	"github.com/floodgate/floodgate/reports"
	"github.com/floodgate/floodgate/runfolder"
	"github.com/floodgate/floodgate/scenario"
	"github.com/floodgate/floodgate/sim"
)

// small is the test topology: core, two gateways, two agents, 2,000 connections.
const small = `name: small
seed: 3
topology: {gateways: 2, agents: 2}
clients: {count: 2000, connect_rate: 4k/s, heartbeat: 10s, deadline: 5s}
traffic: {rate: 400/s}
phases:
  - {name: steady, duration: 8s}
gates: ["push p99 < 100ms", "lost == 0"]
`

func setup(t *testing.T) (bin, file string) {
	t.Helper()
	if err := netns.CanNetns(); err != nil {
		if os.Getenv("FLOODGATE_REQUIRE_NETNS") == "1" {
			t.Fatalf("network namespaces unavailable and FLOODGATE_REQUIRE_NETNS=1: %v", err)
		}
		t.Skipf("skipping: %v (these tests build network namespaces: run as root with iproute2)", err)
	}
	if testing.Short() {
		t.Skip("a real run")
	}
	bin = testbin.Floodgate(t)
	file = filepath.Join(t.TempDir(), "small.yaml")
	os.WriteFile(file, []byte(small), 0o644)
	return bin, file
}

// assertNothingLeft checks that a run left no namespace, link or process.
func assertNothingLeft(t *testing.T, info *runfolder.RunInfo) {
	t.Helper()
	if info.HostsRun == "" {
		t.Fatal("run.json does not name its hosts' run id")
	}
	if nss, lks := netns.Leftovers(context.Background(), info.HostsRun); len(nss)+len(lks) > 0 {
		t.Errorf("left behind: namespaces %v, links %v", nss, lks)
	}
	for _, p := range info.Processes {
		if err := syscall.Kill(p.PID, 0); err == nil {
			t.Errorf("process %s (pid %d) still runs", p.Name, p.PID)
			syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
}

// The real stack and agents in namespaces: every message accounted for
// (delivered + lost + failed = sent), percentiles present, nothing left behind.
func TestSmallRunAccountsForEveryMessage(t *testing.T) {
	bin, file := setup(t)
	s, err := scenario.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	info, err := sim.Run(ctx, sim.Options{Scenario: s, Dir: dir, Binary: bin, Mode: "netns", Logger: slog.New(slog.DiscardHandler),
		Profile: &sim.Profile{Phase: "steady", Seconds: 2 * time.Second}})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	assertNothingLeft(t, info)
	assertProfiled(t, dir, info, "state", "msg", "router", "ipconf", "control", "gw-1", "gw-2", "agent-0")
	if info.Mode != netns.ModeNetns || info.Peak.Established != 2000 {
		t.Fatalf("mode %s, peak %d", info.Mode, info.Peak.Established)
	}
	sum, err := reports.BuildWith(dir, reports.Options{NoPlots: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	m := sum.Messages
	t.Logf("verdict %s; sent %d delivered %d lost %d failed %d; push p50 %dµs p99 %dµs", sum.Verdict, m.Sent, m.Delivered, m.Lost, m.Failed,
		sum.PushLatencyUS.P50, sum.PushLatencyUS.P99)
	if m.Sent < 2500 || m.Delivered+m.Lost+m.Failed != m.Sent {
		t.Fatalf("sent %d, delivered %d + lost %d + failed %d", m.Sent, m.Delivered, m.Lost, m.Failed)
	}
	p := sum.PushLatencyUS
	if p.Count != int64(m.Delivered+m.Lost) || p.P50 <= 0 || p.P99 < p.P50 || p.Max < p.P99 {
		t.Fatalf("push percentiles %+v for %d deliveries", p, m.Delivered)
	}
	for _, f := range []string{reports.FileSummary, runfolder.FileRun, runfolder.FileMetrics, runfolder.FileProcesses, "hlog/agent-0.hlog", "logs/gw-1.log"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("run folder lacks %s", f)
		}
	}
}

// A harness interrupted mid-run (SIGINT, as Ctrl-C) with network faults in force
// still heals them (each event gets its End), stops every process, removes every
// namespace and link, leaves no rule in the root namespace, and writes run.json
// saying it was interrupted.
func TestInterruptedRunLeavesNothing(t *testing.T) {
	bin, _ := setup(t)
	if err := netns.CanFault(); err != nil {
		if os.Getenv("FLOODGATE_REQUIRE_NETNS") == "1" {
			t.Fatalf("network faults unavailable and FLOODGATE_REQUIRE_NETNS=1: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	file := filepath.Join(t.TempDir(), "small.yaml")
	os.WriteFile(file, []byte(withNetFaults), 0o644)
	dir := t.TempDir()
	cmd := exec.Command(bin, "scenario", "run", file, "-out", dir, "-mode", "netns")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		applied, lossHealed := 0, false
		for sc.Scan() {
			// The sim logs each applied fault as msg=fault; all four apply at the
			// start, and the loss heals 1s later (its for:).
			line := sc.Text()
			if strings.Contains(line, "msg=fault ") {
				applied++
			}
			if strings.Contains(line, `msg="fault healed" action=loss`) {
				lossHealed = true
			}
			if applied == 4 && lossHealed {
				once.Do(func() { close(started) })
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("the run never applied its four network faults and healed the timed one")
	}
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("the interrupted run did not exit within a minute")
	}
	b, err := os.ReadFile(filepath.Join(dir, runfolder.FileRun))
	if err != nil {
		t.Fatalf("no run.json after the interrupt: %v", err)
	}
	var info runfolder.RunInfo
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	if !info.Interrupted {
		t.Error("run.json does not say the run was interrupted")
	}
	if len(info.Faults) != 4 {
		t.Fatalf("run.json records %d faults, want 4: %+v", len(info.Faults), info.Faults)
	}
	for _, f := range info.Faults {
		if f.Error != "" || f.End.IsZero() || f.End.Before(f.At) {
			t.Errorf("fault %s %s: error %q, at %v, end (the heal) %v", f.Action, f.Target, f.Error, f.At, f.End)
		}
		if d := f.End.Sub(f.At); f.Action == "loss" && (d < time.Second || d > 1500*time.Millisecond) {
			t.Errorf("the loss with for: 1s was healed after %v", d)
		}
	}
	assertNothingLeft(t, &info)
	tables, err := netns.FaultTables(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if strings.Contains(tb, "fg_"+info.HostsRun+"_") {
			t.Errorf("the root namespace holds %s", tb)
		}
	}
}

// withNetFaults is small with network faults in force from the traffic's start
// until the end of the run (one healed after 1s, the others never by the scenario).
var withNetFaults = strings.Replace(small, "  - {name: steady, duration: 8s}\n", `  - name: steady
    duration: 8s
    faults:
      - {at: 0s, blackhole: gw-2}
      - {at: 0s, partition: [gw-1, core], one_way: true}
      - {at: 0s, loss: cl-0, rate: 1%, for: 1s}
      - {at: 0s, bandwidth: cl-1, rate: 10MB/s}
`, 1)

// A scenario with network faults is refused before anything is built when it
// cannot have them (loopback mode here), with the reason in the run's invalid list.
func TestNetworkFaultsNeedNetnsBeforeAnythingIsBuilt(t *testing.T) {
	s, err := scenario.Parse("small.yaml", []byte(withNetFaults))
	if err != nil {
		t.Fatal(err)
	}
	info, err := sim.Run(context.Background(), sim.Options{Scenario: s, Dir: t.TempDir(), Binary: "/nonexistent", Mode: "loopback",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if info.HostsRun != "" || len(info.Processes) > 0 {
		t.Fatalf("hosts %q and %d processes built for a run that cannot apply its faults", info.HostsRun, len(info.Processes))
	}
	if why := strings.Join(info.Invalid, "\n"); !strings.Contains(why, "preflight: network faults = ") || !strings.Contains(why, "nftables") {
		t.Fatalf("invalid reasons %q do not name the network faults' needs", info.Invalid)
	}
}

// assertProfiled checks that run.json records a CPU profile of each named process,
// and only of those, each a non-empty file in the run folder.
func assertProfiled(t *testing.T, dir string, info *runfolder.RunInfo, names ...string) {
	t.Helper()
	got := map[string]bool{}
	for _, p := range info.Profiles {
		if p.Error != "" {
			t.Errorf("profile of %s: %s", p.Process, p.Error)
			continue
		}
		st, err := os.Stat(filepath.Join(dir, p.File))
		if err != nil || st.Size() == 0 || p.Phase != "steady" || p.Seconds != 2 {
			t.Errorf("profile %+v: file %v", p, err)
		}
		got[p.Process] = true
	}
	for _, n := range names {
		if !got[n] {
			t.Errorf("no profile of %s in %+v", n, info.Profiles)
		}
	}
	if len(got) != len(names) {
		t.Errorf("profiled %v, want exactly %v", got, names)
	}
}
