package loadgen

import (
	"reflect"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/floodgate/floodgate/gateway/proto"
)

// accountingAgent is an agent fit for its receive path, without a network: three
// logged-in users (uids 101, 102, 103; the third a slow reader) whose windows are
// in incarnation 7, meters without a log (traceAgent's), a deadline of 1 s. Its
// clock is CLOCK_MONOTONIC itself (mono0 0).
func accountingAgent(t *testing.T) *Agent {
	t.Helper()
	a := traceAgent(t)
	a.mono0 = 0
	a.plan = Plan{Deadline: Duration(time.Second), Phases: []Phase{{Name: "p", Duration: Duration(time.Minute)}}}
	a.ledger, a.gwPush = newLedger(0, testBase), newGatewayPush(a.plan.Phases)
	for i := range 3 {
		u := &user{uid: 101 + uint64(i), idx: int32(i), senderPos: -1, gw: -1, slow: i == 2}
		a.users = append(a.users, u)
		a.rxLogin(u, &proto.LoginOK{Session: u.uid, Epoch: 7})
	}
	return a
}

// craftedPush is a PUSH of incarnation 7 at seq carrying the payload header of
// client message id (intended time, sender uid from), stamped as sent by pushFrom.
func craftedPush(seq, id uint64, intended int64, from, pushFrom uint64) *proto.Push {
	payload := make([]byte, MinPayload+8)
	putHeader(payload, id, intended, from)
	return &proto.Push{Seq: seq, Epoch: 7, MsgID: seq, From: pushFrom, Payload: payload}
}

// countsDelta returns the fields of Counts that differ between before and after,
// with their increase.
func countsDelta(before, after Counts) map[string]uint64 {
	d := map[string]uint64{}
	vb, va := reflect.ValueOf(before), reflect.ValueOf(after)
	for i := range vb.NumField() {
		if n := va.Field(i).Uint() - vb.Field(i).Uint(); n != 0 {
			d[vb.Type().Field(i).Name] = n
		}
	}
	return d
}

// A crafted sequence of pushes to one user lands each push in exactly the counts
// it must: the receive rule's seq-level verdicts (redelivered, out of order) and
// the ledger's identity-level ones (delivered, duplicate, phantom, misdelivered,
// late); the deadline ends what was not delivered as lost (acknowledged, a slow
// recipient's counted apart) or failed (not acknowledged). Every delivery is a
// push latency sample measured from the intended time, every loss one at the
// deadline, under its recipient's reader class; nothing else is.
func TestAccountingOfACraftedSequence(t *testing.T) {
	a := accountingAgent(t)
	ms := int64(time.Millisecond)
	// k1..k3 and k5, k6 go from user 0 to user 1, k4 to the slow user 2; all but
	// k6 are acknowledged.
	for i, to := range []int32{1, 1, 1, 2, 1, 1} {
		a.ledger.add(int64(i)*10*ms, 0, to, a.onEnded)
	}
	for k := uint64(1); k <= 5; k++ {
		a.ledger.ack(k)
	}
	id := a.ledger.id
	u := a.users[1]
	expire := func(now int64) { a.ledger.expire(now, int64(a.plan.Deadline), a.onEnded) }
	steps := []struct {
		name string
		at   int64       // agent clock
		push *proto.Push // nil: only the deadline's expiry at at
		want map[string]uint64
	}{
		{"first delivery", 100 * ms, craftedPush(1, id(1), 0, 101, 101), map[string]uint64{"Delivered": 1}},
		{"the same seq again", 101 * ms, craftedPush(1, id(1), 0, 101, 101), map[string]uint64{"Redelivered": 1}},
		{"ahead of a gap", 100 * ms, craftedPush(3, id(3), 20*ms, 101, 101), map[string]uint64{"OutOfOrder": 1, "Delivered": 1}},
		{"the gap filled", 100 * ms, craftedPush(2, id(2), 10*ms, 101, 101), map[string]uint64{"Delivered": 1}},
		{"the same identity under a new seq", 110 * ms, craftedPush(4, id(1), 0, 101, 101), map[string]uint64{"Duplicates": 1}},
		{"an id without this agent's base", 110 * ms, craftedPush(5, 1<<kBits|1, 0, 101, 101), map[string]uint64{"Phantom": 1}},
		{"another user's message", 110 * ms, craftedPush(6, id(4), 30*ms, 101, 101), map[string]uint64{"Misdelivered": 1}},
		{"a sender other than the stamped one", 110 * ms, craftedPush(7, id(2), 10*ms, 101, 103), map[string]uint64{"Phantom": 1}},
		{"the deadline passes", 2000 * ms, nil, map[string]uint64{"Lost": 2, "LostSlow": 1, "Failed": 1}},
		{"delivered after its deadline", 2100 * ms, craftedPush(8, id(5), 40*ms, 101, 101), map[string]uint64{"Late": 1}},
		{"a payload shorter than the header", 2100 * ms, &proto.Push{Seq: 9, Epoch: 7, From: 101, Payload: []byte{1, 2}}, map[string]uint64{}},
	}
	for _, s := range steps {
		before := a.counts
		before.Add(a.ledger.c)
		if s.push == nil {
			expire(s.at)
		} else {
			a.onPush(u, s.push, s.at)
		}
		after := a.counts
		after.Add(a.ledger.c)
		if got := countsDelta(before, after); !reflect.DeepEqual(got, s.want) {
			t.Errorf("%s: counts moved %v, want %v", s.name, got, s.want)
		}
	}
	c := a.ledger.c
	if c.Sent != 6 || c.Delivered+c.Lost+c.Failed != c.Sent {
		t.Fatalf("sent %d: delivered %d + lost %d + failed %d", c.Sent, c.Delivered, c.Lost, c.Failed)
	}
	if a.protoErrors != 1 {
		t.Errorf("%d protocol errors, want 1 (the short payload)", a.protoErrors)
	}
	// Push samples: k1 100 ms, k2 90 ms, k3 80 ms late, k5 lost at the 1 s
	// deadline; the slow reader's loss (k4) apart.
	assertSamples(t, a.meters.total[TagPush], []int64{80_000, 90_000, 100_000, 1_000_000})
	assertSamples(t, a.meters.total[TagPushSlow], []int64{1_000_000})
}

// assertSamples fails unless h holds exactly the values want (µs, ascending),
// each to the histogram's precision.
func assertSamples(t *testing.T, h *hdrhistogram.Histogram, want []int64) {
	t.Helper()
	var got []int64
	for _, b := range h.Distribution() {
		for range b.Count {
			got = append(got, b.From)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d samples %v, want %v", len(got), got, want)
	}
	for i := range want {
		if !h.ValuesAreEquivalent(got[i], want[i]) {
			t.Fatalf("samples %v, want %v", got, want)
		}
	}
}
