package loadgen

import (
	"math"
	"testing"
	"time"
)

// The harness's central claim (coordinated omission): a server that stalls shows
// up as push latency, because latency is measured from each message's intended
// send time — the schedule's, whatever happened to the sends before it — and not
// from when the SEND finally went out or was finally accepted.
//
// A fake gateway stalls for stallFor once it has received a fixed number of
// SENDs, while the agent keeps its open-model schedule. No message the agent
// meant to send at t ≥ the stall's start t_s can be stored before the stall ends
// at E ≥ t_s + stallFor, so its latency is at least E − t ≥ stallFor − (t − t_s):
// the messages of the window [t_s, t_s + w) all measure at least stallFor − w.
// There are at least ⌊rate·w⌋ of them whenever the window ends within the phase,
// whatever the machine's load: a slow agent sends late (later still), a slow
// gateway stores late (later still). So a percentile p is at least stallFor − w
// as soon as ⌊rate·w⌋ exceeds the (100 − p)% of the samples that may lie below:
// lower bounds only, which load cannot break. The refusing stall also checks the
// "intended" part: each message there is finally sent by a retry after the stall,
// so latency measured from the actual (last) send would be a few milliseconds.
// Without a stall the same bound must fail: the rise is the stall's.
func TestAStalledGatewayRaisesPushLatencyByTheStall(t *testing.T) {
	const (
		users    = 20
		rate     = 150.0 // messages a second
		phase    = 4 * time.Second
		stallAt  = 75 // the SEND that starts the stall: half a second into the traffic
		stallFor = 2 * time.Second
	)
	// The bounds: p90 at least stallFor/2 (window stallFor/2), p99 at least
	// 0.8·stallFor (window 0.2·stallFor).
	bounds := []struct {
		percentile float64
		window     time.Duration
	}{{90, stallFor / 2}, {99, stallFor / 5}}
	sent := rate * phase.Seconds()
	for _, b := range bounds {
		if inWindow := math.Floor(rate * b.window.Seconds()); inWindow <= (100-b.percentile)/100*sent+1 {
			t.Fatalf("the schedule puts %v messages in a %v window, too few to move p%v of %v", inWindow, b.window, b.percentile, sent)
		}
		if time.Duration(float64(stallAt)/rate*float64(time.Second))+b.window > phase/2 {
			t.Fatalf("the %v window after the stall's start must end well within the %v phase", b.window, phase)
		}
	}
	tests := []struct {
		name  string
		stall stallSpec
	}{
		{"silent stall", stallSpec{after: stallAt, lasts: stallFor}},
		{"refusing stall", stallSpec{after: stallAt, lasts: stallFor, refuse: true}},
		{"no stall", stallSpec{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newFakeGateway(t, func(g *fakeGateway) { g.stall = tc.stall })
			plan := fakePlan([]string{g.addr()}, users, rate, int(phase/time.Second))
			plan.Deadline = Duration(10 * time.Second) // every stalled message is delivered, none recorded at the deadline
			res := runAgent(t, newAgent(t, plan))
			push, lag := res.Latency[TagPush], res.Latency[TagLag]
			t.Logf("messages %+v; push %+v; lag %+v", res.Messages, push, lag)
			assertEveryMessageDelivered(t, res.Messages)
			if push.Count != int64(res.Messages.Delivered) {
				t.Fatalf("%d push samples for %d deliveries", push.Count, res.Messages.Delivered)
			}
			if lag.P50 >= stallFor.Microseconds()/2 {
				t.Fatalf("the agent's median lag %d µs: it did not keep its schedule, the test measures nothing", lag.P50)
			}
			value := map[float64]int64{90: push.P90, 99: push.P99}
			for _, b := range bounds {
				floor := (stallFor - b.window).Microseconds()
				got := value[b.percentile]
				if stalled := tc.stall.after > 0; stalled && got < floor {
					t.Errorf("p%v push latency %d µs, want at least %d µs: the stall of %v is not in the measurement", b.percentile, got, floor, stallFor)
				}
			}
			if tc.stall.after == 0 && push.P90 >= (stallFor-bounds[0].window).Microseconds() {
				t.Errorf("without a stall p90 push latency is %d µs: the rise is not the stall's", push.P90)
			}
			if tc.stall.refuse && res.Messages.Retried < uint64(rate*bounds[0].window.Seconds()) {
				t.Errorf("retried %d: the refusing stall refused too little to test anything", res.Messages.Retried)
			}
		})
	}
}
