package loadgen

import (
	"reflect"
	"testing"
)

const testBase = 0xabc << kBits

func TestLedgerEndsEveryMessageExactlyOnce(t *testing.T) {
	l := newLedger(0, testBase)
	var ended []uint64
	onEnd := func(e entry, lost bool) { ended = append(ended, uint64(e.intended)) }
	for i := int64(1); i <= 10; i++ {
		l.add(i*100, 0, 1, onEnd) // intended times 100..1000, user 0 to user 1
	}
	l.ack(1)
	l.ack(2)
	l.ack(3)
	if _, r := l.receive(2, 0, 1); r != RecvFirst {
		t.Fatalf("first delivery of 2 is %v, want RecvFirst", r)
	}
	l.receive(5, 0, 1) // delivered without an ack seen: still delivered
	// Deadline 500: at 1050, messages intended <= 550 have expired.
	l.expire(1050, 500, onEnd)
	c := l.c
	if c.Delivered != 2 || c.Lost != 2 || c.Failed != 1 || l.inFlight() != 5 {
		t.Fatalf("counts %+v in flight %d; want delivered 2 (k 2, 5), lost 2 (k 1, 3), failed 1 (k 4), 5 in flight", c, l.inFlight())
	}
	if _, r := l.receive(3, 0, 1); r != RecvLate || l.c.Late != 1 || l.c.Delivered != 2 {
		t.Fatalf("a delivery after the deadline must be late, not delivered: %v %+v", r, l.c)
	}
	l.expire(1<<40, 500, onEnd)
	if got := l.c.Delivered + l.c.Lost + l.c.Failed; got != l.c.Sent {
		t.Fatalf("delivered+lost+failed = %d, sent %d", got, l.c.Sent)
	}
	if len(ended) != 8 {
		t.Fatalf("%d messages ended undelivered, want 8", len(ended))
	}
}

func TestLedgerOverflowEndsTheOldestInsteadOfGrowing(t *testing.T) {
	l := newLedger(0, testBase)
	n := len(l.ring)
	for i := 0; i < n+10; i++ {
		l.add(int64(i), 0, 1, nil)
	}
	if l.c.Overflow != 10 || l.c.Failed != 10 || l.inFlight() != uint64(n) {
		t.Fatalf("counts %+v, in flight %d", l.c, l.inFlight())
	}
}

// Every receipt is judged by the message's identity (sender, client message id)
// and its recipient: the count that must stay 0 for a correct system is the one
// each case lands in.
func TestLedgerCountsReceiptsByIdentity(t *testing.T) {
	const deadline = 1000
	tests := []struct {
		name string
		// before: receipts made first (k, from, to), then expire at 5000 if ended.
		before []([3]int64)
		ended  bool
		k      uint64
		from   int32
		to     int32
		want   Receipt
		count  func(Counts) uint64
	}{
		{name: "first receipt", k: 3, from: 3, to: 4, want: RecvFirst, count: func(c Counts) uint64 { return c.Delivered }},
		{name: "stored twice: a second first receipt while in flight", before: [][3]int64{{3, 3, 4}}, k: 3, from: 3, to: 4,
			want: RecvDuplicate, count: func(c Counts) uint64 { return c.Duplicates }},
		{name: "stored twice: a second first receipt after the message ended delivered", before: [][3]int64{{3, 3, 4}}, ended: true,
			k: 3, from: 3, to: 4, want: RecvDuplicate, count: func(c Counts) uint64 { return c.Duplicates }},
		{name: "a number never handed out", k: 99, from: 3, to: 4, want: RecvPhantom, count: func(c Counts) uint64 { return c.Phantom }},
		{name: "number zero", k: 0, from: 0, to: 1, want: RecvPhantom, count: func(c Counts) uint64 { return c.Phantom }},
		{name: "a known number from another sender", k: 3, from: 2, to: 4, want: RecvPhantom, count: func(c Counts) uint64 { return c.Phantom }},
		{name: "a known message at another user", k: 3, from: 3, to: 5, want: RecvMisdelivered, count: func(c Counts) uint64 { return c.Misdelivered }},
		{name: "first receipt after the deadline", ended: true, k: 3, from: 3, to: 4, want: RecvLate, count: func(c Counts) uint64 { return c.Late }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLedger(0, testBase)
			for k := range int64(5) { // k 1..5: from user k to user k+1, intended k*10
				l.add((k+1)*10, int32(k+1), int32(k+2), nil)
			}
			for _, r := range tc.before {
				l.receive(uint64(r[0]), int32(r[1]), int32(r[2]))
			}
			if tc.ended {
				l.expire(5000, deadline, nil)
				if l.inFlight() != 0 {
					t.Fatalf("%d still in flight", l.inFlight())
				}
			}
			before := tc.count(l.c)
			if _, r := l.receive(tc.k, tc.from, tc.to); r != tc.want {
				t.Fatalf("receipt %v, want %v", r, tc.want)
			}
			if got := tc.count(l.c) - before; got != 1 {
				t.Fatalf("the count moved by %d, want 1: %+v", got, l.c)
			}
		})
	}
}

// A message acknowledged twice (a retried SEND answered again) is acked once.
func TestLedgerAcksEachMessageOnce(t *testing.T) {
	l := newLedger(0, testBase)
	k := l.add(10, 0, 1, nil)
	l.ack(k)
	l.ack(k)
	l.receive(k, 0, 1)
	l.expire(1<<40, 10, nil)
	l.ack(k) // after it ended: still the same message
	if l.c.Acked != 1 {
		t.Fatalf("acked %d, want 1", l.c.Acked)
	}
}

// A client stops wanting a message acknowledged once it is, or once its deadline
// passed (the client gave up on it).
func TestLedgerPendingUntilAckedOrDeadline(t *testing.T) {
	l := newLedger(0, testBase)
	a := l.add(100, 0, 1, nil)
	b := l.add(200, 0, 1, nil)
	l.ack(a)
	if _, ok := l.pending(a, 150, 1000); ok {
		t.Error("an acknowledged message is still pending")
	}
	if _, ok := l.pending(b, 1199, 1000); !ok {
		t.Error("an unacknowledged message within its deadline is not pending")
	}
	if _, ok := l.pending(b, 1200, 1000); ok {
		t.Error("a message past its deadline is still pending")
	}
	if _, ok := l.pending(99, 0, 1000); ok {
		t.Error("an unknown number is pending")
	}
}

func TestClientMessageIDsCarryTheAgentsBase(t *testing.T) {
	base := newIDBase()
	if base == 0 || base&kMask != 0 {
		t.Fatalf("base %#x: want nonzero with the low %d bits clear", base, kBits)
	}
	l := newLedger(0, base)
	for _, k := range []uint64{1, 2, kMask} {
		if got, ok := l.number(l.id(k)); !ok || got != k {
			t.Errorf("number(id(%d)) = %d, %v", k, got, ok)
		}
	}
	other := base ^ 1<<(kBits+3)
	if _, ok := l.number(other | 7); ok {
		t.Error("an id of another base is taken as this agent's")
	}
}

// Add and Sub must cover every field: a field left out silently reads 0 in
// every phase's figures.
func TestCountsAddAndSubCoverEveryField(t *testing.T) {
	var one, two Counts
	v1, v2 := reflect.ValueOf(&one).Elem(), reflect.ValueOf(&two).Elem()
	for i := range v1.NumField() {
		v1.Field(i).SetUint(1)
		v2.Field(i).SetUint(3)
	}
	sum := one
	sum.Add(one)
	diff := two.Sub(one)
	vs, vd := reflect.ValueOf(sum), reflect.ValueOf(diff)
	for i := range vs.NumField() {
		name := vs.Type().Field(i).Name
		if vs.Field(i).Uint() != 2 {
			t.Errorf("Add leaves out %s", name)
		}
		if vd.Field(i).Uint() != 2 {
			t.Errorf("Sub leaves out %s", name)
		}
	}
}
