package loadgen

import "testing"

func TestLedgerEndsEveryMessageExactlyOnce(t *testing.T) {
	l := newLedger(0)
	var ended []uint64
	onEnd := func(e entry, lost bool) { ended = append(ended, uint64(e.intended)) }
	for i := int64(1); i <= 10; i++ {
		l.add(i*100, 0, onEnd) // intended times 100..1000
	}
	l.ack(1)
	l.ack(2)
	l.ack(3)
	if _, first := l.deliver(2); !first {
		t.Fatal("first delivery of 2 not reported first")
	}
	if _, first := l.deliver(2); first {
		t.Fatal("second delivery of 2 reported first")
	}
	l.deliver(5) // delivered without an ack seen: still delivered
	// Deadline 500: at 1050, messages intended <= 550 have expired.
	l.expire(1050, 500, onEnd)
	c := l.c
	if c.Delivered != 2 || c.Lost != 2 || c.Failed != 1 || l.inFlight() != 5 {
		t.Fatalf("counts %+v in flight %d; want delivered 2 (k 2, 5), lost 2 (k 1, 3), failed 1 (k 4), 5 in flight", c, l.inFlight())
	}
	if _, first := l.deliver(3); first || l.c.Late != 1 {
		t.Fatalf("a delivery after the deadline must be late, not delivered: %+v", l.c)
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
	l := newLedger(0)
	n := len(l.ring)
	for i := 0; i < n+10; i++ {
		l.add(int64(i), 0, nil)
	}
	if l.c.Overflow != 10 || l.c.Failed != 10 || l.inFlight() != uint64(n) {
		t.Fatalf("counts %+v, in flight %d", l.c, l.inFlight())
	}
}
