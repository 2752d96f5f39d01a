package sim

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/poll"
	"github.com/floodgate/floodgate/loadgen"
)

// connectRound is one round of the connecting: the agent reports active users,
// and the clock moves on by advance (the agent dies first when kill is set). The
// runner looks every 200 ms: a round shorter than that is not looked at.
type connectRound struct {
	active  int
	advance time.Duration
	kill    bool
}

// The traffic starts once every client is connected — or, with an event saying
// so, when the connecting has gained no client for 20 s or has taken longer than
// its budget (60 s plus twice the time the connect rate needs); an agent that
// dies while connecting is a harness error.
func TestTrafficWaitsForTheClientsWithinABudget(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name       string
		rate       string // clients.connect_rate
		first      int    // active at the first look
		rounds     []connectRound
		cancel     bool
		wantActive int64
		wantErr    string
		wantEvent  string
	}{
		{name: "everyone connects at once", first: 10, wantActive: 10},
		{name: "everyone connects over rounds", rounds: []connectRound{{4, 200 * ms, false}, {10, 200 * ms, false}}, wantActive: 10},
		{name: "the connecting stalls", first: 5,
			rounds:     []connectRound{{5, 20 * time.Second, false}, {5, 200 * ms, false}},
			wantActive: 5, wantEvent: "traffic started with 5 of 10 clients established (connecting stalled or took over 1m0s)"},
		{name: "the connecting takes longer than its budget", rate: "1/s",
			rounds: []connectRound{{1, 15 * time.Second, false}, {2, 15 * time.Second, false}, {3, 15 * time.Second, false},
				{4, 15 * time.Second, false}, {5, 15 * time.Second, false}, {6, 5 * time.Second, false}, {7, 200 * ms, false}},
			wantActive: 7, wantEvent: "traffic started with 7 of 10 clients established (connecting stalled or took over 1m20s)"},
		{name: "an agent dies while connecting", first: 3, rounds: []connectRound{{3, 200 * ms, true}},
			wantErr: "agent agent-0 exited while connecting; see logs/agent-0.log"},
		{name: "the run stops", first: 3, cancel: true, wantErr: context.Canceled.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clients := "{count: 10}"
			if tc.rate != "" {
				clients = "{count: 10, connect_rate: " + tc.rate + "}"
			}
			clk := newFakeClock()
			r := newTestRunner(t, strings.Replace(withTopology("connect", "{gateways: 1, agents: 1}", ""), "{count: 100}", clients, 1), clk)
			agent := startSleeper(t, r, "agent-0", "agent")
			setActive := func(n int) {
				r.mu.Lock()
				r.snaps["agent-0"] = loadgen.Snapshot{Active: n}
				r.mu.Unlock()
			}
			setActive(tc.first)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			type outcome struct {
				active int64
				err    error
			}
			done := make(chan outcome, 1)
			go func() { a, err := r.waitEstablished(ctx, []*proc{agent}); done <- outcome{a, err} }()
			for i, round := range tc.rounds {
				poll.Until(t, settle, "the runner waits for the next round", func() (bool, string) {
					select {
					case o := <-done:
						t.Fatalf("returned %d, %v before round %d", o.active, o.err, i)
					default:
					}
					return clk.pending() == 1, ""
				})
				setActive(round.active)
				if round.kill {
					agent.signal(syscall.SIGKILL)
					<-agent.exited
				}
				clk.AdvanceTo(clk.Now().Add(round.advance))
			}
			var o outcome
			select {
			case o = <-done:
			case <-time.After(settle):
				t.Fatal("the runner is still waiting after the last round")
			}
			if tc.wantErr == "" && o.err != nil || tc.wantErr != "" && (o.err == nil || o.err.Error() != tc.wantErr) {
				t.Fatalf("error %v, want %q", o.err, tc.wantErr)
			}
			if tc.wantErr == "" && o.active != tc.wantActive {
				t.Errorf("%d established, want %d", o.active, tc.wantActive)
			}
			r.mu.Lock()
			events := r.info.Events
			r.mu.Unlock()
			var harness []string
			for _, e := range events {
				if e.Kind == "harness" {
					harness = append(harness, e.Detail)
				}
			}
			if tc.wantEvent == "" && len(harness) > 0 || tc.wantEvent != "" && (len(harness) != 1 || harness[0] != tc.wantEvent) {
				t.Errorf("harness events %q, want %q", harness, tc.wantEvent)
			}
		})
	}
}
