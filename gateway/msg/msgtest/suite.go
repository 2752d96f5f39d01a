// Package msgtest is the behaviour every msg.Store backend must show, as one test
// suite that each backend's tests run against a fresh store.
package msgtest

import (
	"context"
	"fmt"
	"testing"

	"github.com/floodgate/floodgate/gateway/msg"
)

// NewStore returns an empty store whose quota is perUser unacknowledged messages
// per recipient, with opts (msg.WithClock, msg.WithRetention, msg.WithQuotaBytes).
// Stores from separate calls must not share inboxes, counters or ids.
type NewStore func(t *testing.T, perUser int, opts ...msg.StoreOption) msg.Store

// Run runs the suite. newStore is called once per subtest (some call it more than
// once). A store that implements msg.LimitCounter, msg.InboxCounter or
// msg.StoredCounter also has those counts checked, and one that implements
// msg.Sweeper is swept where the suite expects inboxes to be deleted.
func Run(t *testing.T, newStore NewStore) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, NewStore)
	}{
		{"SeqsStartAtOneWithoutHoles", seqsStartAtOneWithoutHoles},
		{"RangeReplaysInOrderFromAfter", rangeReplaysInOrderFromAfter},
		{"AckDropsThroughSeq", ackDropsThroughSeq},
		{"QuotaRefusesBeyondCountWithoutEvicting", quotaRefusesBeyondCountWithoutEvicting},
		{"QuotaCountsPayloadBytes", quotaCountsPayloadBytes},
		{"RetryIsAnsweredWhenFull", retryIsAnsweredWhenFull},
		{"LimitsAndStoredAreCounted", limitsAndStoredAreCounted},
		{"ExpiredMessagesAreDroppedAndCounted", expiredMessagesAreDroppedAndCounted},
		{"DeletedInboxNeverReissuesASeq", deletedInboxNeverReissuesASeq},
		{"UnknownUserHasEmptyWindow", unknownUserHasEmptyWindow},
		{"WindowsBatchMatchesWindow", windowsBatchMatchesWindow},
		{"RejectsUIDZero", rejectsUIDZero},
		{"StoredPayloadIsACopy", storedPayloadIsACopy},
		{"FieldsAndPayloadsRoundTrip", fieldsAndPayloadsRoundTrip},
		{"RangeLimits", rangeLimits},
		{"RangeBelowOldestStartsAtOldest", rangeBelowOldestStartsAtOldest},
		{"AckEdges", ackEdges},
		{"AckBeyondHeadDoesNotSkipLaterMessages", ackBeyondHeadDoesNotSkipLaterMessages},
		{"FullyAckedInbox", fullyAckedInbox},
		{"EpochIsStable", epochIsStable},
		{"ConcurrentAppendsKeepSeqsDense", concurrentAppendsKeepSeqsDense},
		{"ConcurrentRangesSeeConsistentSnapshots", concurrentRangesSeeConsistentSnapshots},
		{"RetriedAppendStoresNothing", retriedAppendStoresNothing},
		{"DedupeIdentityIsRecipientSenderAndID", dedupeIdentityIsRecipientSenderAndID},
		{"DedupeOutlivesAckAndExpiry", dedupeOutlivesAckAndExpiry},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore) })
	}
}

// appendN appends n messages to `to`, the i-th (from 1) with payload "i".
func appendN(t *testing.T, s msg.Store, to uint64, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if err := s.Append(context.Background(), &msg.Message{From: 1, To: to, Payload: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// ack acknowledges uid's messages through seq, failing the test on an error.
func ack(t *testing.T, s msg.Store, uid, seq uint64) {
	t.Helper()
	w, err := s.Window(context.Background(), uid)
	if err != nil {
		t.Fatalf("window %d: %v", uid, err)
	}
	if err := s.Ack(context.Background(), uid, seq, w.Epoch); err != nil {
		t.Fatalf("ack %d through %d: %v", uid, seq, err)
	}
}

// rangeAll returns uid's messages after `after` (limit 0) and checks that Window
// agrees with the window Range reported.
func rangeAll(t *testing.T, s msg.Store, uid, after uint64) ([]msg.Message, msg.Window) {
	t.Helper()
	ctx := context.Background()
	got, w, err := s.Range(ctx, uid, after, 0)
	if err != nil {
		t.Fatalf("range %d after %d: %v", uid, after, err)
	}
	w2, err := s.Window(ctx, uid)
	if err != nil {
		t.Fatalf("window %d: %v", uid, err)
	}
	if w != w2 {
		t.Fatalf("uid %d: Range's window %+v, Window's %+v", uid, w, w2)
	}
	return got, w
}

// seqs returns the messages' sequence numbers.
func seqs(ms []msg.Message) []uint64 {
	out := make([]uint64, len(ms))
	for i := range ms {
		out[i] = ms[i].Seq
	}
	return out
}

// run returns the seqs first..first+n-1.
func run(first uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = first + uint64(i)
	}
	return out
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A store that reads windows in batches gives, for each uid in order, what Window
// gives.
func windowsBatchMatchesWindow(t *testing.T, newStore NewStore) {
	s := newStore(t, 8)
	b, ok := s.(msg.WindowsBatcher)
	if !ok {
		t.Skip("the store reads one window at a time")
	}
	appendN(t, s, 1, 6)
	ack(t, s, 1, 2)
	appendN(t, s, 2, 1)
	ack(t, s, 2, 1)
	uids := []uint64{2, 3, 1}
	got, err := b.Windows(context.Background(), uids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(uids) {
		t.Fatalf("%d windows for %d uids", len(got), len(uids))
	}
	for i, uid := range uids {
		want, err := s.Window(context.Background(), uid)
		if err != nil {
			t.Fatal(err)
		}
		if got[i] != want {
			t.Errorf("uid %d: batch says %+v, Window says %+v", uid, got[i], want)
		}
	}
}
