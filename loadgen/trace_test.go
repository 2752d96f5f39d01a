package loadgen

import (
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
)

// The sample is fixed by the seed and segment, near the fraction, and every
// attempt of a message is traced alike; 0 traces nothing (and speaks version 2),
// 1 traces everything.
func TestTraceSamplerIsDeterministicNearItsFraction(t *testing.T) {
	const n = 100000
	count := func(s traceSampler) (c int) {
		for k := uint64(1); k <= n; k++ {
			if s.traced(k) {
				c++
			}
		}
		return c
	}
	tests := []struct {
		name     string
		fraction float64
		lo, hi   int
		version  uint8
	}{
		{"off", 0, 0, 0, proto.Version},
		{"1%", 0.01, n / 100 * 9 / 10, n / 100 * 11 / 10, proto.VersionTrace},
		{"half", 0.5, n / 2 * 95 / 100, n / 2 * 105 / 100, proto.VersionTrace},
		{"all", 1, n, n, proto.VersionTrace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTraceSampler(tc.fraction, 42, 0)
			if c := count(s); c < tc.lo || c > tc.hi {
				t.Errorf("traced %d of %d, want %d..%d", c, n, tc.lo, tc.hi)
			}
			if v := s.version(); v != tc.version {
				t.Errorf("version %d, want %d", v, tc.version)
			}
		})
	}
	a, b, other := newTraceSampler(0.01, 7, 3), newTraceSampler(0.01, 7, 3), newTraceSampler(0.01, 8, 3)
	same, differ := true, false
	for k := uint64(1); k <= n; k++ {
		same = same && a.traced(k) == b.traced(k)
		differ = differ || a.traced(k) != other.traced(k)
	}
	if !same || !differ {
		t.Errorf("same seed gives the same sample: %v; another seed another: %v", same, differ)
	}
	var zero traceSampler
	if zero.traced(1) || zero.version() != proto.Version {
		t.Error("the zero sampler traces")
	}
}

// traceAgent returns an agent fit for recordTrace: meters without a log, an epoch
// on the wall clock and its CLOCK_MONOTONIC reading.
func traceAgent(t *testing.T) *Agent {
	t.Helper()
	epoch := time.Unix(1_767_225_600, 0)
	m, err := newMeters(nil, epoch, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &Agent{meters: m, epoch: epoch, mono0: 5_000_000_000}
}

// hop returns the single value recorded under tag (µs), failing unless exactly one was.
func hop(t *testing.T, a *Agent, tag string) int64 {
	t.Helper()
	h := a.meters.total[tag]
	if h.TotalCount() != 1 {
		t.Fatalf("%s: %d values, want 1", tag, h.TotalCount())
	}
	return h.Max()
}

// A complete trace is split into five hops that add up to the push latency; a
// negative hop is recorded as 0 and counted; an incomplete trace records nothing.
func TestRecordTraceSplitsPushLatencyIntoHops(t *testing.T) {
	ms := int64(time.Millisecond)
	a := traceAgent(t)
	wall0 := a.epoch.UnixNano()
	intended := a.mono0 + 10*ms // agent clock 10 ms, in CLOCK_MONOTONIC
	tr := proto.Trace{GatewayIn: wall0 + 12*ms, Stored: wall0 + 15*ms, Routed: wall0 + 19*ms, GatewayOut: wall0 + 24*ms}
	now := 30 * ms // agent clock
	a.recordTrace(&tr, intended, now)
	want := map[string]int64{TagTraceUplink: 2000, TagTraceStore: 3000, TagTraceRoute: 4000, TagTraceGateway: 5000, TagTraceDownlink: 6000}
	var sum int64
	for _, tag := range TraceTags {
		got := hop(t, a, tag)
		if w := want[tag]; got < w-w/500 || got > w+w/500 { // 3 significant digits
			t.Errorf("%s = %d µs, want %d", tag, got, w)
		}
		sum += want[tag]
	}
	if push := (a.toMono(now) - intended) / 1000; sum != push {
		t.Errorf("hops add up to %d µs, push latency is %d", sum, push)
	}
	if a.traceNegative != 0 {
		t.Errorf("traceNegative = %d", a.traceNegative)
	}

	// The router's clock stepped back 1 ms: its hop is 0 and counted.
	a = traceAgent(t)
	tr = proto.Trace{GatewayIn: wall0 + 12*ms, Stored: wall0 + 15*ms, Routed: wall0 + 14*ms, GatewayOut: wall0 + 24*ms}
	a.recordTrace(&tr, intended, now)
	if got := hop(t, a, TagTraceRoute); got > 1 || a.traceNegative != 1 {
		t.Errorf("negative hop recorded as %d µs, counted %d; want the floor and 1", got, a.traceNegative)
	}

	// A replay was not routed: nothing is recorded.
	a = traceAgent(t)
	tr.Routed = 0
	a.recordTrace(&tr, intended, now)
	for _, tag := range TraceTags {
		if c := a.meters.total[tag].TotalCount(); c != 0 {
			t.Errorf("%s: %d values from an incomplete trace", tag, c)
		}
	}
}

// An agent that traces every message sends SEND_TRACED, logs in with version 3,
// and records the five hops of every message delivered, once each, beside its
// push latency.
func TestAgentRecordsTheHopsOfTracedMessages(t *testing.T) {
	g := newFakeGateway(t, nil)
	plan := fakePlan([]string{g.addr()}, 20, 100, 2)
	all := 1.0
	plan.Traffic.Trace = &all
	res := runAgent(t, newAgent(t, plan))
	assertEveryMessageDelivered(t, res.Messages)
	g.mu.Lock()
	traced := g.traced
	g.mu.Unlock()
	if traced < int(res.Messages.Sent) {
		t.Errorf("the gateway saw %d SEND_TRACED for %d messages", traced, res.Messages.Sent)
	}
	for _, tag := range TraceTags {
		if got := res.Latency[tag].Count; got != int64(res.Messages.Delivered) {
			t.Errorf("%s: %d values for %d messages delivered", tag, got, res.Messages.Delivered)
		}
	}
}
