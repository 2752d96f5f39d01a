package msgtest

import (
	"context"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
)

// appendAs appends a message from `from` to `to` with client message id cmid and
// payload p, failing the test on an error, and returns it with Seq, ID and Epoch set.
func appendAs(t *testing.T, s msg.Store, from, to, cmid uint64, p string) msg.Message {
	t.Helper()
	m := msg.Message{From: from, To: to, ClientMsgID: cmid, Payload: []byte(p)}
	if err := s.Append(context.Background(), &m); err != nil {
		t.Fatalf("append %d→%d id %d: %v", from, to, cmid, err)
	}
	return m
}

// counts is what a store's optional counters report (-1: not implemented).
type counts struct{ refused, stored, deduplicated int64 }

func countsOf(s msg.Store) counts {
	c := counts{refused(s), -1, -1}
	if sc, ok := s.(msg.StoredCounter); ok {
		c.stored = sc.Stored()
	}
	if dc, ok := s.(msg.DedupeCounter); ok {
		c.deduplicated = int64(dc.Deduplicated())
	}
	return c
}

// A retried Append (same To, From and ClientMsgID) stores nothing: it returns the
// first one's seq, id and epoch, leaves the inbox, its window and the stored and
// refusal counts as they were, and counts a deduplication.
func retriedAppendStoresNothing(t *testing.T, newStore NewStore) {
	s := newStore(t, 2)
	first := appendAs(t, s, 1, 2, 77, "first")
	appendAs(t, s, 1, 2, 78, "second") // fills the quota: a third store would be refused
	before := countsOf(s)
	_, wBefore := rangeAll(t, s, 2, 0)
	retry := appendAs(t, s, 1, 2, 77, "retry with another payload")
	if retry.Seq != first.Seq || retry.ID != first.ID || retry.Epoch != first.Epoch {
		t.Fatalf("retry got seq %d id %d epoch %d, want the first append's %d, %d, %d",
			retry.Seq, retry.ID, retry.Epoch, first.Seq, first.ID, first.Epoch)
	}
	got, w := rangeAll(t, s, 2, 0)
	if w != wBefore || !equalSeqs(seqs(got), []uint64{1, 2}) || string(got[0].Payload) != "first" {
		t.Fatalf("after the retry: window %+v (was %+v), seqs %v, first payload %q", w, wBefore, seqs(got), got[0].Payload)
	}
	after := countsOf(s)
	if after.refused != before.refused || after.stored != before.stored {
		t.Fatalf("the retry changed refusals %d→%d, stored %d→%d", before.refused, after.refused, before.stored, after.stored)
	}
	if before.deduplicated >= 0 && after.deduplicated != before.deduplicated+1 {
		t.Fatalf("deduplicated %d→%d, want one more", before.deduplicated, after.deduplicated)
	}
}

// A message's identity is (To, From, ClientMsgID): a message differing in any of
// them is a new one, and ClientMsgID 0 means "no identity": never deduplicated.
func dedupeIdentityIsRecipientSenderAndID(t *testing.T, newStore NewStore) {
	s := newStore(t, 100)
	base := appendAs(t, s, 1, 2, 5, "base")
	for _, c := range []struct {
		name           string
		from, to, cmid uint64
		wantSeq        uint64
	}{
		{"another sender", 3, 2, 5, 2},
		{"another recipient", 1, 4, 5, 1},
		{"another id", 1, 2, 6, 3},
		{"no id", 1, 2, 0, 4},
		{"no id again", 1, 2, 0, 5},
		{"the base again", 1, 2, 5, base.Seq},
		{"the second sender again", 3, 2, 5, 2},
	} {
		m := appendAs(t, s, c.from, c.to, c.cmid, c.name)
		if m.Seq != c.wantSeq {
			t.Fatalf("%s: seq %d, want %d", c.name, m.Seq, c.wantSeq)
		}
	}
	if _, w := rangeAll(t, s, 2, 0); w.Head != 5 {
		t.Fatalf("uid 2 head %d, want 5 messages stored", w.Head)
	}
}

// A message acknowledged or expired since is still remembered: its retry returns
// the first append's seq and does not store it again (it would reach the recipient
// twice).
func dedupeOutlivesAckAndExpiry(t *testing.T, newStore NewStore) {
	clk := NewClock()
	s := newStore(t, 1, msg.WithClock(clk.Now), msg.WithRetention(time.Minute), msg.WithDedupeWindow(time.Hour))
	acked := appendAs(t, s, 1, 2, 10, "acked")
	ack(t, s, 2, acked.Seq)
	if m := appendAs(t, s, 1, 2, 10, "acked"); m.Seq != acked.Seq || m.ID != acked.ID {
		t.Fatalf("retry of an acked message: seq %d id %d, want %d, %d", m.Seq, m.ID, acked.Seq, acked.ID)
	}
	expired := appendAs(t, s, 1, 2, 11, "expired")
	clk.Advance(2 * time.Minute)
	if m := appendAs(t, s, 1, 2, 11, "expired"); m.Seq != expired.Seq || m.ID != expired.ID || m.Epoch != expired.Epoch {
		t.Fatalf("retry of an expired message: seq %d id %d, want %d, %d", m.Seq, m.ID, expired.Seq, expired.ID)
	}
	if got, w := rangeAll(t, s, 2, 0); w.Head != 2 || len(got) != 0 {
		t.Fatalf("window %+v, seqs %v: want head 2 and nothing retained", w, seqs(got))
	}
}
