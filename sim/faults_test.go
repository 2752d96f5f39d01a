package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/poll"
	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/netns"
	"github.com/floodgate/floodgate/runfolder"
)

// timedFaults has a pause that heals, a kill in the first phase and a kill in
// the second, whose offset counts from that phase's start.
const timedFaults = `name: timed
topology: {gateways: 1, agents: 1}
clients: {count: 10}
phases:
  - name: one
    duration: 10s
    faults:
      - {at: 2s, pause: gw-1, for: 3s}
      - {at: 6s, kill: state}
  - name: two
    duration: 10s
    faults:
      - {at: 1s, kill: router}
`

// Each fault fires at its phase's start plus its offset — not a moment before —
// the pause heals when its for: is over, and each is recorded in order with the
// time it struck and the time it healed.
func TestFaultsFireAtTheirOffsetsAndHealWhenTold(t *testing.T) {
	clk := newFakeClock()
	r := newTestRunner(t, timedFaults, clk)
	gw := startSleeper(t, r, "gw-1", "gateway")
	state := startSleeper(t, r, "state", "state")
	router := startSleeper(t, r, "router", "router")
	start := clk.Now()
	done := r.scheduleFaults(context.Background(), start)
	clk.waitPending(t, 3)

	ms := time.Millisecond
	for _, step := range []struct {
		name    string
		at      time.Duration // from the traffic's start
		faults  int           // recorded by then
		pending int           // timers still armed: faults to come, the pause's heal
		paused  bool          // gw-1 is stopped
		gone    *proc         // a process the step kills
	}{
		{"just before the pause", 2000*ms - 1, 0, 3, false, nil},
		{"the pause", 2 * time.Second, 1, 3, true, nil},
		{"just before the pause heals", 5000*ms - 1, 1, 3, true, nil},
		{"the pause heals", 5 * time.Second, 1, 2, false, nil},
		{"the kill in phase one", 6 * time.Second, 2, 1, false, state},
		{"just before phase two's offset", 11000*ms - 1, 2, 1, false, nil},
		{"the kill in phase two, 1s into it", 11 * time.Second, 3, 0, false, router},
	} {
		clk.AdvanceTo(start.Add(step.at))
		if got := clk.pending(); got > step.pending {
			t.Fatalf("%s: %d timers armed, want %d", step.name, got, step.pending)
		}
		waitFaults(t, r, step.faults)
		if got := clk.pending(); got != step.pending {
			t.Fatalf("%s: %d timers armed, want %d", step.name, got, step.pending)
		}
		poll.Until(t, settle, step.name+": gw-1 paused or running as told", func() (bool, string) {
			st := procState(gw.cmd.Process.Pid)
			return (st == "T") == step.paused, "state " + st
		})
		if step.gone != nil {
			poll.True(t, settle, step.name+": "+step.gone.name+" exits", func() bool { return !step.gone.alive() })
		}
	}
	select {
	case <-done:
	case <-time.After(settle):
		t.Fatal("the schedule did not end after its last fault")
	}
	want := []runfolder.FaultEvent{
		{Phase: "one", Action: "pause", Target: "gw-1", At: start.Add(2 * time.Second), End: start.Add(5 * time.Second)},
		{Phase: "one", Action: "kill", Target: "state", At: start.Add(6 * time.Second)},
		{Phase: "two", Action: "kill", Target: "router", At: start.Add(11 * time.Second)},
	}
	assertFaultEvents(t, r.faultEvents(), want)
	for _, p := range []*proc{state, router} {
		if cause := r.info.Processes[p.info].ExitCause; cause != "fault" {
			t.Errorf("%s's exit recorded as %q, want fault", p.name, cause)
		}
	}
	if !gw.alive() {
		t.Error("the paused gateway died")
	}
}

// assertFaultEvents compares recorded fault events with want, field by field.
func assertFaultEvents(t *testing.T, got, want []runfolder.FaultEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d fault events %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Phase != w.Phase || g.Action != w.Action || g.Target != w.Target || !g.At.Equal(w.At) || !g.End.Equal(w.End) ||
			g.Error != w.Error || g.Detail != w.Detail {
			t.Errorf("fault %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// A run that stops before its faults are due applies none of them, and the
// schedule ends at once.
func TestFaultsNotDueWhenTheRunStopsAreNotApplied(t *testing.T) {
	clk := newFakeClock()
	r := newTestRunner(t, timedFaults, clk)
	state := startSleeper(t, r, "state", "state")
	ctx, cancel := context.WithCancel(context.Background())
	done := r.scheduleFaults(ctx, clk.Now())
	clk.waitPending(t, 3)
	clk.AdvanceTo(clk.Now().Add(time.Second))
	cancel()
	select {
	case <-done:
	case <-time.After(settle):
		t.Fatal("the schedule did not end with its run")
	}
	if got := r.faultEvents(); len(got) != 0 {
		t.Fatalf("faults applied after the run stopped: %+v", got)
	}
	if !state.alive() {
		t.Fatal("a fault that was not due killed state")
	}
}

// A fault that cannot be applied is recorded all the same, at its time, with
// why it failed — never silently dropped. Only a restart carries an End then:
// the time its attempt ended.
func TestAFaultThatCannotApplyIsRecordedWithItsError(t *testing.T) {
	for _, tc := range []struct {
		name, fault string
		target      string // the event's target
		wantErr     string
		end         bool // End is the fault's time
	}{
		{"a kill of a process not running", "{at: 1s, kill: gw-1}", "gw-1", "gw-1 is not running", false},
		{"a pause of a process not running", "{at: 1s, pause: state, for: 1s}", "state", "state is not running", false},
		{"a restart that cannot start", "{at: 1s, restart: gw-1}", "gw-1", "start gw-1", true},
		{"a scale-out that cannot start", "{at: 1s, scale_out: 1}", "", "start gw-2", false},
		{"a drain control does not answer", "{at: 1s, drain: gw-1}", "gw-1", "connect: connection refused", false},
		{"a flood with no traffic left", "{at: 1s, connect_flood: 100, flood_rate: 10/s}", "", "no time left for a flood", false},
		{"a network fault in loopback mode", "{at: 1s, loss: gw-1, rate: 1%}", "gw-1", netns.ErrNeedsNetns.Error(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			r := newTestRunner(t, fmt.Sprintf(`name: broken
topology: {gateways: 1, agents: 1}
clients: {count: 10}
phases:
  - name: only
    duration: 10s
    faults:
      - %s
`, tc.fault), clk)
			r.mu.Lock()
			r.gateways = 1
			r.mu.Unlock()
			f := r.sc.Phases[0].Faults[0]
			r.apply(context.Background(), "only", f)
			got := r.faultEvents()
			if len(got) != 1 {
				t.Fatalf("%d events recorded: %+v", len(got), got)
			}
			ev := got[0]
			if ev.Phase != "only" || ev.Action != f.Action() || ev.Target != tc.target || !ev.At.Equal(clk.Now()) {
				t.Errorf("event %+v: want phase only, action %s, target %q, at %v", ev, f.Action(), tc.target, clk.Now())
			}
			if want := map[bool]time.Time{true: clk.Now()}[tc.end]; !ev.End.Equal(want) {
				t.Errorf("End %v, want %v", ev.End, want)
			}
			if !strings.Contains(ev.Error, tc.wantErr) {
				t.Errorf("error %q, want it to say %q", ev.Error, tc.wantErr)
			}
		})
	}
}

// fakeNetFault is a network fault whose heal counts its calls and returns err.
func fakeNetFault(ev int, hosts []string, black bool, err error) (*netFault, *atomic.Int32) {
	var heals atomic.Int32
	return &netFault{ev: ev, hosts: hosts, black: black, heal: func() error { heals.Add(1); return err }}, &heals
}

// A network fault in force is healed once: after its for:, or at the end of the
// run when it has none (or the run ends first), or at once when it was applied
// as the run ended. Its event's End is the heal's time; a failed heal says so.
func TestNetworkFaultsHealOnceWhenTold(t *testing.T) {
	healErr := errors.New("nft: table gone")
	for _, tc := range []struct {
		name       string
		lasts      time.Duration // the fault's for: (0: until the end)
		runEnded   bool          // applied after the run's end healed everything
		advance    time.Duration // the clock moves on by this before the run ends
		err        error         // the heal's
		healedAt   time.Duration // End, from the fault's time
		wantDetail string
	}{
		{name: "healed after its for", lasts: 3 * time.Second, advance: 3 * time.Second, healedAt: 3 * time.Second},
		{name: "the run ends before its for", lasts: 10 * time.Second, advance: 4 * time.Second, healedAt: 4 * time.Second},
		{name: "until the end of the run", advance: 7 * time.Second, healedAt: 7 * time.Second},
		{name: "applied as the run ended", runEnded: true, lasts: 3 * time.Second, healedAt: 0},
		{name: "a heal that fails", lasts: time.Second, advance: time.Second, err: healErr, healedAt: time.Second,
			wantDetail: "loss; heal failed: nft: table gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			r := newTestRunner(t, timedFaults, clk)
			at := clk.Now()
			r.info.Faults = []runfolder.FaultEvent{{Action: "loss", Target: "gw-1", At: at, Detail: "loss"}}
			nt, heals := fakeNetFault(0, []string{"gw-1"}, false, tc.err)
			if tc.runEnded {
				r.healAllNet()
			}
			r.mu.Lock()
			healNow := r.trackNet(nt, tc.lasts)
			r.mu.Unlock()
			if (healNow != nil) != tc.runEnded {
				t.Fatalf("trackNet asked for a heal at once: %v, want %v", healNow != nil, tc.runEnded)
			}
			if healNow != nil {
				r.healNet(healNow)
			}
			clk.AdvanceTo(at.Add(tc.advance))
			r.healAllNet()
			clk.AdvanceTo(at.Add(time.Minute)) // a timer still armed must not heal it twice
			if n := heals.Load(); n != 1 {
				t.Fatalf("healed %d times, want once", n)
			}
			ev := r.faultEvents()[0]
			if want := at.Add(tc.healedAt); !ev.End.Equal(want) {
				t.Errorf("End %v after the fault, want %v", ev.End.Sub(at), tc.healedAt)
			}
			if tc.wantDetail != "" && ev.Detail != tc.wantDetail {
				t.Errorf("detail %q, want %q", ev.Detail, tc.wantDetail)
			}
		})
	}
}

// A blackholed host is not scraped while any blackhole on it is in force.
func TestBlackholedHostsAreNotScrapedUntilHealed(t *testing.T) {
	clk := newFakeClock()
	r := newTestRunner(t, timedFaults, clk)
	at := clk.Now()
	r.info.Faults = []runfolder.FaultEvent{{Action: "blackhole", At: at}, {Action: "blackhole", At: at}, {Action: "loss", At: at}}
	first, _ := fakeNetFault(0, []string{"gw-1"}, true, nil)
	second, _ := fakeNetFault(1, []string{"gw-1", "core"}, true, nil)
	loss, _ := fakeNetFault(2, []string{"cl-0"}, false, nil)
	r.mu.Lock()
	r.trackNet(first, time.Second)
	r.trackNet(second, 2*time.Second)
	r.trackNet(loss, 0)
	r.mu.Unlock()
	for _, step := range []struct {
		at      time.Duration
		blocked []string // hosts not scraped
		open    []string
	}{
		{0, []string{"gw-1", "core"}, []string{"cl-0", "gw-2"}},
		{time.Second, []string{"gw-1", "core"}, []string{"cl-0"}},
		{2 * time.Second, nil, []string{"gw-1", "core", "cl-0"}},
	} {
		clk.AdvanceTo(at.Add(step.at))
		for _, h := range step.blocked {
			if r.scrapeable(h) {
				t.Errorf("at %v: %s is scraped while blackholed", step.at, h)
			}
		}
		for _, h := range step.open {
			if !r.scrapeable(h) {
				t.Errorf("at %v: %s is not scraped", step.at, h)
			}
		}
	}
}

// stackFaults has one of each fault that acts on the stack's processes.
const stackFaults = `name: stack
topology: {gateways: 2, agents: 1}
clients: {count: 10}
phases:
  - name: only
    duration: 1m
    faults:
      - {at: 1s, restart: state}
      - {at: 2s, kill: gw-1}
      - {at: 3s, restart: gw-1}
      - {at: 4s, drain: gw-2, batch: 10, interval: 1s}
      - {at: 5s, reconnect_storm: true}
      - {at: 6s, scale_out: 2}
      - {at: 7s, drain: gw-1}
`

// pids maps the live processes of the given names to their pids (0: none).
func (r *runner) pids(names ...string) map[string]int {
	m := map[string]int{}
	for _, n := range names {
		if p := r.live(n); p != nil && p.alive() {
			m[n] = p.cmd.Process.Pid
		}
	}
	return m
}

// The faults that act on processes do what they say on a running stack (the
// fake floodgate): a restart replaces the process, a kill ends it, a drain
// reaches control with the run's admin token, a storm replaces every gateway,
// a scale-out starts the next ones; each is recorded as applied.
func TestStackFaultsActOnTheStack(t *testing.T) {
	bin := useFakeFloodgate(t, fakeOK)
	clk := newFakeClock()
	r := newTestRunner(t, stackFaults, clk)
	r.opts.Binary = bin
	ctx := context.Background()
	if err := r.startStack(ctx); err != nil {
		t.Fatal(err)
	}
	gateways := []string{"gw-1", "gw-2", "gw-3", "gw-4"}
	watched := append([]string{"state", "router", "control"}, gateways...)
	for i, step := range []struct {
		name     string
		before   func()
		replaced []string // live under a new pid afterwards
		kept     []string // live under the same pid
		gone     []string // not running afterwards
		target   string
		detail   string
		wantErr  string
		healed   bool // End is the fault's time
		gateways int  // started so far, afterwards
	}{
		{name: "restart a core service", replaced: []string{"state"}, kept: []string{"router", "gw-1"}, target: "state", healed: true, gateways: 2},
		{name: "kill a gateway", gone: []string{"gw-1"}, kept: []string{"gw-2", "state"}, target: "gw-1", gateways: 2},
		{name: "restart the killed gateway", kept: []string{"gw-2"}, target: "gw-1", healed: true, gateways: 2},
		{name: "drain a gateway", kept: []string{"gw-1", "gw-2"}, target: "gw-2", detail: "map[batch:10 gateway:gw-2 interval:1s]", gateways: 2},
		{name: "a reconnect storm", replaced: []string{"gw-1", "gw-2"}, kept: []string{"state", "control"}, detail: "2 gateways restarted",
			healed: true, gateways: 2},
		{name: "scale out by two", kept: []string{"gw-1", "gw-2"}, target: "gw-3,gw-4", gateways: 4},
		{name: "a drain without the admin token", before: func() { r.keyset.admin = "not the run's" }, target: "gw-1",
			detail: "map[error:no admin token]", wantErr: "401 Unauthorized: no admin token", gateways: 4},
	} {
		if step.before != nil {
			step.before()
		}
		before := r.pids(watched...)
		clk.AdvanceTo(clk.Now().Add(time.Second))
		r.apply(ctx, "only", r.sc.Phases[0].Faults[i])
		after := r.pids(watched...)
		ev := r.faultEvents()[i]
		if ev.Target != step.target && step.target != "" || !strings.Contains(ev.Error, step.wantErr) || (step.wantErr == "") != (ev.Error == "") {
			t.Errorf("%s: event %+v, want target %q, error %q", step.name, ev, step.target, step.wantErr)
		}
		if step.detail != "" && ev.Detail != step.detail {
			t.Errorf("%s: detail %q, want %q", step.name, ev.Detail, step.detail)
		}
		if want := map[bool]time.Time{true: clk.Now()}[step.healed]; !ev.At.Equal(clk.Now()) || !ev.End.Equal(want) {
			t.Errorf("%s: at %v, end %v; want at %v, end %v", step.name, ev.At, ev.End, clk.Now(), want)
		}
		for _, n := range step.replaced {
			if after[n] == 0 || after[n] == before[n] {
				t.Errorf("%s: %s was pid %d, now %d; want a new process", step.name, n, before[n], after[n])
			}
		}
		for _, n := range step.kept {
			if after[n] == 0 || after[n] != before[n] {
				t.Errorf("%s: %s was pid %d, now %d; want it untouched", step.name, n, before[n], after[n])
			}
		}
		for _, n := range step.gone {
			if after[n] != 0 {
				t.Errorf("%s: %s still runs", step.name, n)
			}
		}
		r.mu.Lock()
		started := r.gateways
		r.mu.Unlock()
		if started != step.gateways {
			t.Errorf("%s: %d gateways started, want %d", step.name, started, step.gateways)
		}
	}
	for _, n := range gateways {
		if r.live(n) == nil || !r.live(n).alive() {
			t.Errorf("%s does not run at the end", n)
		}
	}
}

// A connect flood starts one more agent on the flood host, with users beyond
// the plan's connecting at the flood rate and sending nothing until the
// traffic's end; its plan (which holds the token key) goes at teardown.
func TestAConnectFloodStartsAnAgentBeyondThePlan(t *testing.T) {
	bin := useFakeFloodgate(t, fakeAgentHangs)
	r := newTestRunner(t, withTopology("flood", "{gateways: 1, agents: 2}", "traffic: {rate: 50/s}\n"), newFakeClock())
	r.opts.Binary = bin
	r.info.TrafficEnd = time.Now().Add(time.Minute)
	f := mustParse(t, `name: f
topology: {gateways: 1, agents: 1}
clients: {count: 10}
phases:
  - {name: p, duration: 10s, faults: [{at: 1s, connect_flood: 300, flood_rate: 50/s}]}
`).Phases[0].Faults[0]
	if err := r.flood(context.Background(), f, "surge"); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	p := r.procs[len(r.procs)-1] // the flood agent is not a live process of a name: no fault targets it
	r.mu.Unlock()
	if p.name != "agent-flood" || p.host.Name != "cl-flood" || flagValue(p.args, "-bind") != r.net.Host("cl-flood").Addr.String() {
		t.Fatalf("flood agent %s on %s with %q", p.name, p.host.Name, p.args)
	}
	path := flagValue(p.args, "-plan")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var plan loadgen.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		t.Fatal(err)
	}
	if plan.Users != 300 || plan.UIDBase != 100+1_000_000 || plan.ConnectRate != 50 || plan.Traffic.Rate != 0 || plan.Secret != r.keyset.token ||
		plan.Behaviour != (loadgen.Behaviour{}) {
		t.Errorf("flood plan: %d users from uid %d at %v/s, traffic %v/s, behaviour %+v", plan.Users, plan.UIDBase, plan.ConnectRate,
			plan.Traffic.Rate, plan.Behaviour)
	}
	if len(plan.Phases) != 1 || plan.Phases[0].Name != "surge-flood" || *plan.Phases[0].Rate != 0 ||
		plan.Phases[0].Duration.D() <= 50*time.Second || plan.Phases[0].Duration.D() > time.Minute {
		t.Errorf("flood phases %+v: want one, surge-flood, silent, until the traffic's end", plan.Phases)
	}
	r.teardown()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the flood plan outlived the run: %v", err)
	}
	if p.alive() {
		t.Error("the flood agent outlived the run")
	}
}

// The autoscaler starts the gateways control's scale-out recommendation asks
// for, never past the scenario's maximum, and records that it did; any other
// answer, or none, starts nothing.
func TestAutoscaleFollowsControlsScaleOut(t *testing.T) {
	bin := useFakeFloodgate(t, fakeOK)
	for _, tc := range []struct {
		name    string
		status  int
		answer  string
		started int // gateways running afterwards (one before)
		event   string
	}{
		{"a scale-out", http.StatusOK, `{"action":"scale_out","target":3,"reason":"load 90%"}`, 3,
			"control recommended 3 gateways (load 90%); started gw-2…gw-3"},
		{"a scale-out past the maximum", http.StatusOK, `{"action":"scale_out","target":9,"reason":"load"}`, 4,
			"control recommended 9 gateways (load); started gw-2…gw-4"},
		{"a scale-out to what runs", http.StatusOK, `{"action":"scale_out","target":1,"reason":"load"}`, 1, ""},
		{"no action", http.StatusOK, `{"action":"none"}`, 1, ""},
		{"control fails", http.StatusInternalServerError, `{"action":"scale_out","target":3}`, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRunner(t, withTopology("autoscale", "{gateways: 1, agents: 1}", "autoscale: {max: 4}\n"), newFakeClock())
			r.opts.Binary = bin
			ln, err := net.Listen("tcp", hostPort(r.net.Host("core"), portControl))
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				if req.URL.Path != "/v1/recommendation" {
					http.NotFound(w, req)
					return
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.answer))
			})}
			go srv.Serve(ln)
			defer srv.Close()
			if _, err := r.startGateway(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			r.followRecommendation(context.Background())
			r.mu.Lock()
			started, events := r.gateways, slices.Clone(r.info.Events)
			r.mu.Unlock()
			if started != tc.started {
				t.Errorf("%d gateways started, want %d", started, tc.started)
			}
			for i := 1; i <= started; i++ {
				if p := r.live(fmt.Sprintf("gw-%d", i)); p == nil || !p.alive() {
					t.Errorf("gw-%d does not run", i)
				}
			}
			if tc.event == "" && len(events) > 0 || tc.event != "" && (len(events) != 1 || events[0].Kind != "autoscale" || events[0].Detail != tc.event) {
				t.Errorf("events %+v, want %q", events, tc.event)
			}
		})
	}
}
