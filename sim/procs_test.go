package sim

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/poll"
	"github.com/floodgate/floodgate/runfolder"
)

// A process is recorded as it starts, logs its command line and stderr to its
// log, and counts as serving only once its first line is READY.
func TestStartWaitsForAReadyLine(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name, script string
		ready        bool
		ctx          context.Context
		wantErr      string
		wantReady    []string
	}{
		{name: "a READY line", script: "echo oops >&2; echo READY state 1.2.3.4:5; exec sleep 60", ready: true,
			wantReady: []string{"READY", "state", "1.2.3.4:5"}},
		{name: "another first line", script: "echo oops >&2; echo HELLO; exec sleep 60", ready: true,
			wantErr: `svc: unexpected first line "HELLO" (see logs/svc.log)`},
		{name: "an exit before it is ready", script: "echo oops >&2; exit 2", ready: true,
			wantErr: "svc exited before it was ready (see logs/svc.log)"},
		{name: "the run stops while it starts", script: "echo oops >&2; exec sleep 60", ready: true, ctx: cancelled,
			wantErr: context.Canceled.Error()},
		{name: "no READY line expected", script: "echo oops >&2; exec sleep 60"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRunner(t, timedFaults, newFakeClock())
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			p, err := r.start(ctx, spec{name: "svc", role: "state", host: r.net.Host("core"), bin: "sh", args: []string{"-c", tc.script},
				ready: tc.ready, addr: "a:1", admin: "a:2"})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Fatalf("start: %v, want %q", err, tc.wantErr)
			}
			if !slices.Equal(p.ready, tc.wantReady) {
				t.Errorf("ready line %q, want %q", p.ready, tc.wantReady)
			}
			r.mu.Lock()
			pi := r.info.Processes[p.info]
			r.mu.Unlock()
			if pi.Name != "svc" || pi.Role != "state" || pi.Host != "core" || pi.Addr != "a:1" || pi.Admin != "a:2" || pi.PID != p.cmd.Process.Pid {
				t.Errorf("recorded as %+v", pi)
			}
			poll.Until(t, settle, "the log holds the command line and stderr", func() (bool, string) {
				b, _ := os.ReadFile(filepath.Join(r.dir, runfolder.DirLogs, "svc.log"))
				return strings.HasPrefix(string(b), "=== ") && strings.Contains(string(b), " sh -c "+tc.script+"\n") &&
					strings.HasSuffix(string(b), "oops\n"), string(b)
			})
		})
	}
}

// Every exit is recorded with its cause: one the runner caused as such, an
// agent ending well as finished, and anything else as unexpected — with an
// event, unless the run is stopping.
func TestEveryExitIsRecordedWithItsCause(t *testing.T) {
	for _, tc := range []struct {
		name, role, script string
		expect             string // the runner's cause, set before a SIGKILL
		stopping           bool
		cause              string
		code               int
		event              bool
	}{
		{name: "a service exits by itself", role: "gateway", script: "exit 0", cause: "unexpected", event: true},
		{name: "a service fails", role: "msg", script: "exit 5", cause: "unexpected", code: 5, event: true},
		{name: "an agent finishes", role: "agent", script: "exit 0", cause: "finished"},
		{name: "an agent fails", role: "agent", script: "exit 4", cause: "unexpected", code: 4, event: true},
		{name: "a fault kills it", role: "gateway", script: "exec sleep 60", expect: "fault", cause: "fault", code: -1},
		{name: "it dies while the run stops", role: "gateway", script: "exit 1", stopping: true, cause: "unexpected", code: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRunner(t, timedFaults, newFakeClock())
			r.stopping = tc.stopping
			p := startShell(t, r, "p", tc.role, tc.script)
			if tc.expect != "" {
				p.expect(tc.expect)
				p.signal(syscall.SIGKILL)
			}
			select {
			case <-p.exited:
			case <-time.After(settle):
				t.Fatal("the process did not exit")
			}
			r.mu.Lock()
			pi, events := r.info.Processes[p.info], slices.Clone(r.info.Events)
			r.mu.Unlock()
			if pi.ExitCause != tc.cause || pi.ExitCode != tc.code || pi.Exited.IsZero() {
				t.Errorf("exit recorded as %q code %d at %v, want %q code %d", pi.ExitCause, pi.ExitCode, pi.Exited, tc.cause, tc.code)
			}
			if got := len(events) == 1 && events[0].Kind == "unexpected_exit" && strings.Contains(events[0].Detail, "see logs/p.log"); got != tc.event {
				t.Errorf("events %+v, want an unexpected_exit naming the log: %v", events, tc.event)
			}
		})
	}
}

// Stopping a run stops the agents first, then the gateways, then the core —
// each with SIGTERM, and SIGKILL for one that ignores it past the grace — and
// records every exit as stopped.
func TestStopAllStopsAgentsThenGatewaysThenTheCore(t *testing.T) {
	r := newTestRunner(t, timedFaults, newFakeClock())
	state := startSleeper(t, r, "state", "state")
	stubborn := startShell(t, r, "gw-1", "gateway", "trap '' TERM; exec sleep 60")
	agent := startSleeper(t, r, "agent-0", "agent")
	done := startShell(t, r, "gw-2", "gateway", "exit 0")
	<-done.exited
	r.stopAll(100 * time.Millisecond)
	for _, p := range []*proc{state, stubborn, agent} {
		if p.alive() {
			t.Fatalf("%s still runs", p.name)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	at := func(p *proc) time.Time { return r.info.Processes[p.info].Exited }
	if !at(agent).Before(at(stubborn)) || !at(stubborn).Before(at(state)) {
		t.Errorf("exits: agent %v, gateway %v, core %v; want that order", at(agent), at(stubborn), at(state))
	}
	for _, p := range []*proc{state, stubborn, agent} {
		if c := r.info.Processes[p.info].ExitCause; c != "stopped" {
			t.Errorf("%s's exit recorded as %q, want stopped", p.name, c)
		}
	}
	if c := r.info.Processes[stubborn.info].ExitCode; c != -1 {
		t.Errorf("the gateway that ignored SIGTERM exited with %d, want killed (-1)", c)
	}
	if c := r.info.Processes[done.info].ExitCause; c != "unexpected" {
		t.Errorf("the gateway that had exited before is recorded as %q", c)
	}
}
