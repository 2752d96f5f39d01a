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
	info, err := sim.Run(ctx, sim.Options{Scenario: s, Dir: dir, Binary: bin, Mode: "netns", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	assertNothingLeft(t, info)
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

// A harness interrupted mid-run (SIGINT, as Ctrl-C) still stops every process and
// removes every namespace and link, and writes run.json saying it was interrupted.
func TestInterruptedRunLeavesNothing(t *testing.T) {
	bin, file := setup(t)
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
		for sc.Scan() {
			if strings.Contains(sc.Text(), "traffic starts") {
				once.Do(func() { close(started) })
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("the run never started its traffic")
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
	assertNothingLeft(t, &info)
}
