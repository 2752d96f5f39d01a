package sim

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
	"syscall"
	"testing"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/runfolder"
)

// fakeRun is the scenario the fake floodgate runs: core, two gateways, three
// agents splitting 100 clients.
const fakeRun = `name: fakerun
topology: {gateways: 2, agents: 3}
clients: {count: 100, connect_rate: 1k/s, deadline: 1s}
traffic: {rate: 10/s}
phases:
  - {name: steady, duration: 1s}
`

// runFake runs fakeRun in loopback mode with the fake floodgate behaving as
// behaviour; onProgress (if set) sees each progress report with the run's
// cancel. It returns the run's info, the progress reports, the run folder and
// the run's error.
func runFake(t *testing.T, behaviour string, onProgress func(Progress, context.CancelFunc)) (*runfolder.RunInfo, []Progress, string, error) {
	t.Helper()
	bin := useFakeFloodgate(t, behaviour)
	dir := filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var reports []Progress
	info, err := Run(ctx, Options{Scenario: mustParse(t, fakeRun), Dir: dir, Binary: bin, Mode: "loopback",
		Logger: slog.New(slog.DiscardHandler), Progress: func(p Progress) {
			mu.Lock()
			reports = append(reports, p)
			mu.Unlock()
			if onProgress != nil {
				onProgress(p, cancel)
			}
		}})
	mu.Lock()
	defer mu.Unlock()
	return info, reports, dir, err
}

// assertTornDown checks that a run stopped every process it started (each
// recorded with its exit, none of its process groups left), removed the plan
// holding its token key, and wrote run.json matching info.
func assertTornDown(t *testing.T, info *runfolder.RunInfo, dir string) {
	t.Helper()
	if info.HostsRun == "" || len(info.Processes) == 0 {
		t.Fatalf("the run built nothing: hosts %q, %d processes", info.HostsRun, len(info.Processes))
	}
	for _, p := range info.Processes {
		if p.Exited.IsZero() || p.ExitCause == "" {
			t.Errorf("%s: no exit recorded (%+v)", p.Name, p)
		}
		if err := syscall.Kill(-p.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d): its process group is still there (%v)", p.Name, p.PID, err)
			syscall.Kill(-p.PID, syscall.SIGKILL)
		}
	}
	if _, err := os.Stat(filepath.Join(os.TempDir(), "floodgate-plan-"+info.HostsRun+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the agents' secret plan is left behind: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, runfolder.FileRun))
	if err != nil {
		t.Fatal(err)
	}
	var written runfolder.RunInfo
	if err := json.Unmarshal(b, &written); err != nil {
		t.Fatal(err)
	}
	if written.HarnessError != info.HarnessError || written.Interrupted != info.Interrupted || len(written.Processes) != len(info.Processes) {
		t.Errorf("run.json says error %q, interrupted %v, %d processes; the run returned %q, %v, %d",
			written.HarnessError, written.Interrupted, len(written.Processes), info.HarnessError, info.Interrupted, len(info.Processes))
	}
}

// exitCauses maps each process to how it exited.
func exitCauses(info *runfolder.RunInfo) map[string]string {
	m := map[string]string{}
	for _, p := range info.Processes {
		m[p.Name] = p.ExitCause
	}
	return m
}

// Whatever ends a run — its agents finishing, an agent failing, an agent gone
// before it connected, a gateway that never gets ready, or the caller's
// cancel — every process it started is stopped, and run.json says how it ended.
func TestEveryRunEndStopsWhatTheRunStarted(t *testing.T) {
	for _, tc := range []struct {
		name        string
		behaviour   string
		cancelAt    string // the phase whose progress report cancels the run
		wantErr     string // in the error and run.json's harness_error; "" none
		interrupted bool
		processes   int               // started: 5 core, 2 gateways, 3 agents when all get that far
		causes      map[string]string // some processes' exit causes
	}{
		{name: "the agents finish", behaviour: fakeOK, processes: 10,
			causes: map[string]string{"agent-0": "finished", "agent-2": "finished", "gw-1": "stopped", "state": "stopped", "control": "stopped"}},
		{name: "an agent fails", behaviour: fakeAgentFails, processes: 10, wantErr: "agent agent-1 exited with 3 (unexpected); see logs/agent-1.log",
			causes: map[string]string{"agent-1": "unexpected", "agent-0": "finished", "gw-2": "stopped"}},
		{name: "the agents exit before connecting", behaviour: fakeAgentSilent, wantErr: "exited while connecting", processes: 10},
		{name: "a gateway never gets ready", behaviour: fakeGatewayNotReady, processes: 6,
			wantErr: `gw-1: unexpected first line "STARTING"`, causes: map[string]string{"gw-1": "stopped", "ipconf": "stopped"}},
		{name: "the caller cancels during the traffic", behaviour: fakeAgentHangs, cancelAt: "steady", interrupted: true, processes: 10,
			causes: map[string]string{"agent-0": "stopped", "gw-1": "stopped", "msg": "stopped"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, _, dir, err := runFake(t, tc.behaviour, func(p Progress, cancel context.CancelFunc) {
				if tc.cancelAt != "" && p.Phase == tc.cancelAt {
					cancel()
				}
			})
			switch {
			case tc.interrupted && !errors.Is(err, context.Canceled):
				t.Fatalf("a cancelled run returned %v", err)
			case !tc.interrupted && tc.wantErr == "" && err != nil:
				t.Fatalf("run: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("run returned %v, want an error saying %q", err, tc.wantErr)
			}
			if !strings.Contains(info.HarnessError, tc.wantErr) || (tc.wantErr == "") != (info.HarnessError == "") {
				t.Errorf("harness error %q, want %q", info.HarnessError, tc.wantErr)
			}
			if info.Interrupted != tc.interrupted {
				t.Errorf("interrupted %v, want %v", info.Interrupted, tc.interrupted)
			}
			if len(info.Processes) != tc.processes {
				t.Errorf("%d processes started, want %d", len(info.Processes), tc.processes)
			}
			got := exitCauses(info)
			for name, want := range tc.causes {
				if got[name] != want {
					t.Errorf("%s exited as %q, want %q", name, got[name], want)
				}
			}
			assertTornDown(t, info, dir)
		})
	}
}

// A run that ends well reports its progress summed over the agents, records the
// peak of connected clients, shares one redacted plan, and gives each agent its
// own segment of it.
func TestARunReportsProgressAndSplitsThePlan(t *testing.T) {
	info, reports, dir, err := runFake(t, fakeOK, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) == 0 {
		t.Fatal("no progress reported")
	}
	last := reports[len(reports)-1]
	// Each agent reports its segment's users, a reconnect, and in steady 10 sent.
	if last.Clients != 100 || last.Active != 100 || last.Reconnects != 3 {
		t.Errorf("last progress %+v: want 100 clients, 100 active, 3 reconnects", last)
	}
	if info.Peak.Established != 100 || info.Connecting.Established != 100 {
		t.Errorf("peak %d, established at the start %d; want 100", info.Peak.Established, info.Connecting.Established)
	}
	if len(info.Phases) != 1 || !info.Phases[0].Start.Equal(info.TrafficStart) || info.Phases[0].End.Sub(info.Phases[0].Start) != info.TrafficEnd.Sub(info.TrafficStart) {
		t.Errorf("phases %+v for traffic %v…%v", info.Phases, info.TrafficStart, info.TrafficEnd)
	}
	b, err := os.ReadFile(filepath.Join(dir, runfolder.FilePlan))
	if err != nil {
		t.Fatal(err)
	}
	var plan loadgen.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		t.Fatal(err)
	}
	if plan.Secret != "(redacted)" || plan.Users != 100 || len(plan.Phases) != 1 {
		t.Errorf("plan.json: secret %q, %d users, %d phases", plan.Secret, plan.Users, len(plan.Phases))
	}
	for i := range 3 {
		log, err := os.ReadFile(filepath.Join(dir, runfolder.DirLogs, fmt.Sprintf("agent-%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(" -segment %d/3 -name agent-%d ", i, i); !strings.Contains(string(log), want) {
			t.Errorf("agent-%d was started without %q: %s", i, want, log)
		}
	}
	progress, err := os.ReadFile(filepath.Join(dir, runfolder.FileProgress))
	if err != nil || strings.Count(string(progress), "\n") != 6 {
		t.Errorf("progress.jsonl holds %d lines (%v), want two per agent", strings.Count(string(progress), "\n"), err)
	}
}
