package msgtest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
)

// Clock is a settable clock for msg.WithClock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to a fixed instant in the future of any real store
// epoch (so that epochs computed from it do not depend on when the test runs).
func NewClock() *Clock { return &Clock{now: time.Now()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// appendRefusedFull appends a message that the quota must refuse, failing the test
// unless the error is ErrRecipientFull (which is also ErrNotStored).
func appendRefusedFull(t *testing.T, s msg.Store, from, to, cmid uint64, p string) {
	t.Helper()
	m := msg.Message{From: from, To: to, ClientMsgID: cmid, Payload: []byte(p)}
	err := s.Append(context.Background(), &m)
	if !errors.Is(err, msg.ErrRecipientFull) || !errors.Is(err, msg.ErrNotStored) {
		t.Fatalf("append %d→%d %q: %v, want ErrRecipientFull (wrapping ErrNotStored)", from, to, p, err)
	}
}

// refused returns the store's count of quota refusals (-1: not counted).
func refused(s msg.Store) int64 {
	if lc, ok := s.(msg.LimitCounter); ok {
		return int64(lc.Refused())
	}
	return -1
}

// The count quota refuses a message beyond it and never evicts: a flood of
// messages to a victim leaves its unacknowledged ones in place, and only
// acknowledgements make room again.
func quotaRefusesBeyondCountWithoutEvicting(t *testing.T, newStore NewStore) {
	s := newStore(t, 4)
	const victim = 3
	appendN(t, s, victim, 4)
	for i := range 10 { // the flood
		appendRefusedFull(t, s, 9, victim, uint64(100+i), "flood")
	}
	got, w := rangeAll(t, s, victim, 0)
	if w.Oldest != 1 || w.Head != 4 || !equalSeqs(seqs(got), run(1, 4)) || string(got[0].Payload) != "1" {
		t.Fatalf("after the flood: window %+v seqs %v; want the victim's 1..4 untouched", w, seqs(got))
	}
	if n := refused(s); n >= 0 && n != 10 {
		t.Fatalf("%d refusals counted, want 10", n)
	}
	ack(t, s, victim, 2)
	appendN(t, s, victim, 2) // the ack made room for two: seqs 5 and 6
	appendRefusedFull(t, s, 9, victim, 200, "full again")
	if got, w := rangeAll(t, s, victim, 0); w.Oldest != 3 || w.Head != 6 || !equalSeqs(seqs(got), run(3, 4)) {
		t.Fatalf("window %+v seqs %v; want 3..6", w, seqs(got))
	}
	appendN(t, s, victim+1, 4) // another recipient has its own quota
}

// The byte quota counts the payloads of unacknowledged messages; a message larger
// than the whole quota is refused even by an empty inbox.
func quotaCountsPayloadBytes(t *testing.T, newStore NewStore) {
	s := newStore(t, 100, msg.WithQuotaBytes(10))
	const uid = 5
	for i, st := range []struct {
		op      string // "append" a payload (want stored or refused) or "ack" through seq
		payload string
		seq     uint64
		stored  bool
	}{
		{"append", "12345", 0, true},
		{"append", "123456", 0, false}, // 5 + 6 > 10
		{"append", "12345", 0, true},   // exactly 10
		{"append", "", 0, true},        // an empty payload costs no bytes
		{"append", "1", 0, false},
		{"ack", "", 1, false},
		{"append", "123456", 0, false}, // 5 + 6 > 10 still
		{"append", "12345", 0, true},
		{"ack", "", 4, false},
		{"append", "12345678901", 0, false}, // larger than the whole quota
		{"append", "1234567890", 0, true},
	} {
		switch {
		case st.op == "ack":
			ack(t, s, uid, st.seq)
		case st.stored:
			appendAs(t, s, 1, uid, 0, st.payload)
		default:
			appendRefusedFull(t, s, 1, uid, 0, st.payload)
		}
		if t.Failed() {
			t.Fatalf("step %d", i)
		}
	}
	if got, w := rangeAll(t, s, uid, 0); w.Oldest != 5 || w.Head != 5 || len(got) != 1 || len(got[0].Payload) != 10 {
		t.Fatalf("window %+v seqs %v; want only seq 5 of 10 bytes", w, seqs(got))
	}
}

// A retry of a message already stored is answered as stored (the first append's
// seq, id and epoch) even when the inbox is full: the quota refuses new messages,
// never a confirmation.
func retryIsAnsweredWhenFull(t *testing.T, newStore NewStore) {
	s := newStore(t, 2)
	first := appendAs(t, s, 1, 2, 77, "first")
	appendAs(t, s, 1, 2, 78, "second")
	appendRefusedFull(t, s, 1, 2, 79, "third")
	before := refused(s)
	retry := appendAs(t, s, 1, 2, 77, "first")
	if retry.Seq != first.Seq || retry.ID != first.ID || retry.Epoch != first.Epoch {
		t.Fatalf("retry got seq %d id %d epoch %d, want %d, %d, %d", retry.Seq, retry.ID, retry.Epoch, first.Seq, first.ID, first.Epoch)
	}
	if after := refused(s); after != before {
		t.Fatalf("the retry was counted as a refusal (%d → %d)", before, after)
	}
	if got, w := rangeAll(t, s, 2, 0); w.Head != 2 || !equalSeqs(seqs(got), run(1, 2)) {
		t.Fatalf("window %+v seqs %v; want 1..2", w, seqs(got))
	}
}

// Refusals and retained messages are counted across users.
func limitsAndStoredAreCounted(t *testing.T, newStore NewStore) {
	s := newStore(t, 2)
	sc, stores := s.(msg.StoredCounter)
	for i, st := range []struct {
		do      func()
		refused int64
		stored  int64
	}{
		{func() { appendN(t, s, 1, 2); appendRefusedFull(t, s, 1, 1, 0, "x") }, 1, 2},
		{func() { appendN(t, s, 2, 2); appendRefusedFull(t, s, 1, 2, 0, "x") }, 2, 4},
		{func() { ack(t, s, 1, 5) }, 2, 2},
		{func() { ack(t, s, 2, 1) }, 2, 1},
		{func() { ack(t, s, 3, 9) }, 2, 1},
		{func() { appendN(t, s, 3, 1) }, 2, 2},
	} {
		st.do()
		if n := refused(s); n >= 0 && n != st.refused {
			t.Fatalf("step %d: %d refusals, want %d", i, n, st.refused)
		}
		if stores && sc.Stored() != st.stored {
			t.Fatalf("step %d: %d stored, want %d", i, sc.Stored(), st.stored)
		}
	}
}

// Messages older than the retention period are dropped, acknowledged or not, and
// the unacknowledged ones are counted as expired (acknowledged ones are not).
func expiredMessagesAreDroppedAndCounted(t *testing.T, newStore NewStore) {
	clk := NewClock()
	s := newStore(t, 100, msg.WithClock(clk.Now), msg.WithRetention(time.Hour))
	lc, counts := s.(msg.LimitCounter)
	const uid = 7
	appendN(t, s, uid, 3)
	ack(t, s, uid, 1)
	clk.Advance(30 * time.Minute)
	appendN(t, s, uid, 1) // seq 4
	clk.Advance(31 * time.Minute)
	got, w := rangeAll(t, s, uid, 0)
	if w.Oldest != 4 || w.Head != 4 || !equalSeqs(seqs(got), []uint64{4}) {
		t.Fatalf("window %+v seqs %v; want 2 and 3 expired, 4 retained", w, seqs(got))
	}
	if counts && lc.Expired() != 2 {
		t.Fatalf("%d expired, want 2", lc.Expired())
	}
	if sc, ok := s.(msg.StoredCounter); ok && sc.Stored() != 1 {
		t.Fatalf("%d stored, want 1", sc.Stored())
	}
	appendN(t, s, uid, 1) // the inbox goes on: seq 5, same epoch
	if got, w2 := rangeAll(t, s, uid, 0); w2.Epoch != w.Epoch || !equalSeqs(seqs(got), []uint64{4, 5}) {
		t.Fatalf("window %+v seqs %v; want 4..5 of epoch %d", w2, seqs(got), w.Epoch)
	}
}

// sweepAll has a store that sweeps take steps until it reports no more (bounded).
func sweepAll(t *testing.T, s msg.Store) {
	t.Helper()
	sw, ok := s.(msg.Sweeper)
	if !ok {
		return
	}
	for range 10_000 {
		more, err := sw.Sweep(context.Background())
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
		if !more {
			return
		}
	}
	t.Fatal("the sweep never finished")
}

// An inbox left with nothing retained is deleted, and one created again for the
// same user never issues a seq again within an epoch: a client that acknowledged
// seq N of epoch E must never see a new message as (E, seq <= N). An inbox emptied
// by acknowledgements within the same epoch step is kept, so a reader who keeps
// up sees its seqs continue.
func deletedInboxNeverReissuesASeq(t *testing.T, newStore NewStore) {
	clk := NewClock()
	s := newStore(t, 100, msg.WithClock(clk.Now), msg.WithRetention(time.Hour))
	if _, ok := s.(msg.Sweeper); !ok {
		t.Skipf("%T does not sweep (a client of a remote store: its server sweeps on its own schedule)", s)
	}
	ic, counts := s.(msg.InboxCounter)
	const acked, unacked = 31, 32
	appendN(t, s, acked, 3)
	appendN(t, s, unacked, 2)
	_, w1 := rangeAll(t, s, acked, 0)
	ack(t, s, acked, 3)
	sweepAll(t, s)
	appendN(t, s, acked, 1) // kept: the seqs go on
	if _, w := rangeAll(t, s, acked, 0); w.Epoch != w1.Epoch || w.Head != 4 {
		t.Fatalf("window %+v after a sweep within the step; want epoch %d head 4", w, w1.Epoch)
	}
	ack(t, s, acked, 4)
	_, u1 := rangeAll(t, s, unacked, 0)

	clk.Advance(2 * time.Hour) // past the retention period and an epoch step
	sweepAll(t, s)
	if counts && (ic.DeletedInboxes() != 2 || ic.Inboxes() != 0) {
		t.Fatalf("%d inboxes deleted, %d left; want 2 and 0", ic.DeletedInboxes(), ic.Inboxes())
	}
	if lc, ok := s.(msg.LimitCounter); ok && lc.Expired() != 2 {
		t.Fatalf("%d expired, want the 2 unacknowledged", lc.Expired())
	}
	for _, c := range []struct {
		uid  uint64
		last msg.Window // what the client last knew
	}{{acked, msg.Window{Epoch: w1.Epoch, Head: 4}}, {unacked, u1}} {
		w, err := s.Window(context.Background(), c.uid)
		if err != nil {
			t.Fatal(err)
		}
		m := appendAs(t, s, 1, c.uid, 0, "after")
		if m.Epoch <= c.last.Epoch || w.Epoch != m.Epoch || m.Seq != 1 {
			t.Fatalf("uid %d: window %+v then a message (epoch %d, seq %d) after the inbox (epoch %d, head %d) was deleted; want a larger epoch from seq 1",
				c.uid, w, m.Epoch, m.Seq, c.last.Epoch, c.last.Head)
		}
		// An ack of the old incarnation must not touch the new one.
		if err := s.Ack(context.Background(), c.uid, 1, c.last.Epoch); err != nil {
			t.Fatal(err)
		}
		if got, _ := rangeAll(t, s, c.uid, 0); !equalSeqs(seqs(got), []uint64{1}) {
			t.Fatalf("uid %d: an ack of the deleted incarnation dropped %v", c.uid, seqs(got))
		}
	}
	if counts && ic.Inboxes() != 2 {
		t.Fatalf("%d inboxes, want 2", ic.Inboxes())
	}
}
