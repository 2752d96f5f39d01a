package loadgen

import (
	"github.com/floodgate/floodgate/gateway/proto"
)

// traceSampler picks the messages an agent sends as SEND_TRACED: message k is
// traced when a hash of (seed, segment, k) falls below the plan's fraction, so the
// plan's seed fixes the sample and every attempt of k is traced alike (a resend
// must be the same SEND). The zero value traces nothing.
type traceSampler struct {
	on  bool
	all bool   // fraction 1
	cut uint64 // traced when the hash is below it
	key uint64
}

func newTraceSampler(fraction float64, seed int64, segment int) traceSampler {
	s := traceSampler{on: fraction > 0, all: fraction >= 1, key: mix64(uint64(seed)) ^ mix64(uint64(segment)+1)}
	if s.on && !s.all {
		s.cut = uint64(fraction * 0x1p64)
	}
	return s
}

// traced reports whether message k goes out as SEND_TRACED.
func (s traceSampler) traced(k uint64) bool {
	return s.all || (s.on && mix64(s.key^k) < s.cut)
}

// version is the protocol version the agent's users announce: version 3 only when
// they trace, so an agent that traces nothing still speaks to a version 2 server.
func (s traceSampler) version() uint8 {
	if s.on {
		return proto.VersionTrace
	}
	return proto.Version
}

// mix64 is SplitMix64's finaliser: a bijection that spreads consecutive keys
// uniformly over 64 bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// onPushTraced takes one PUSH_TRACED: a PUSH (onPush), and on the message's first
// delivery to a normal reader its trace split into hops.
func (a *Agent) onPushTraced(u *user, p *proto.PushTraced, now int64) {
	if !a.rxPush(u, &p.Push, now) {
		return
	}
	if a.firstReceipt(u, &p.Push, now) && !u.slow {
		_, intended, _, _ := readHeader(p.Payload) // firstReceipt checked it
		a.recordTrace(&p.Trace, intended, now)
	}
}

// recordTrace records a complete trace's five hops, in µs, under TraceTags:
// uplink from the intended send time (CLOCK_MONOTONIC, as in the payload) to
// gateway_in, the three server hops, and downlink from gateway_out to now (agent
// clock). The stamps are the servers' wall clocks: the agent's two times are
// brought onto the wall clock through the agent's epoch, so the hops add up to the
// push latency exactly when the clocks agree (one kernel clock in the harness). A
// hop that comes out negative (a clock stepped) is recorded as 0 and counted. A
// trace with a point not passed (a stamp of 0) is not recorded.
func (a *Agent) recordTrace(tr *proto.Trace, intended, now int64) {
	if !tr.Complete() {
		return
	}
	wall0 := a.epoch.UnixNano() // the agent clock's zero on the wall clock
	points := [...]int64{wall0 + intended - a.mono0, tr.GatewayIn, tr.Stored, tr.Routed, tr.GatewayOut, wall0 + now}
	for i, tag := range TraceTags {
		d := points[i+1] - points[i]
		if d < 0 {
			a.traceNegative++
			d = 0
		}
		a.meters.record(tag, d/1000)
	}
}
