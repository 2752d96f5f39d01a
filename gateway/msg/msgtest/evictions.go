package msgtest

import (
	"testing"

	"github.com/floodgate/floodgate/gateway/msg"
)

// The window bounds unacknowledged messages: acknowledged ones make room, and only
// unacknowledged ones are evicted (and counted).
func evictionAndAckInterplay(t *testing.T, newStore NewStore) {
	s := newStore(t, 4)
	const uid = 71
	ec, counts := s.(msg.EvictionCounter)
	sc, stores := s.(msg.StoredCounter)
	for i, st := range []struct {
		op           string // "append" n messages or "ack" through n
		n            uint64
		oldest, head uint64
		evictions    uint64 // total so far
		comment      string
	}{
		{"append", 3, 1, 3, 0, "1..3"},
		{"ack", 2, 3, 3, 0, "3"},
		{"append", 4, 4, 7, 1, "3..7 is five: 3 is evicted"},
		{"ack", 5, 6, 7, 1, "6..7"},
		{"append", 2, 6, 9, 1, "the ack made room: nothing evicted"},
		{"append", 1, 7, 10, 2, "6 evicted"},
		{"ack", 10, 11, 10, 2, "empty"},
		{"append", 4, 11, 14, 2, "a full window again, nothing evicted"},
		{"append", 1, 12, 15, 3, "11 evicted"},
		{"ack", 3, 12, 15, 3, "behind oldest: no effect"},
	} {
		switch st.op {
		case "append":
			appendN(t, s, uid, int(st.n))
		case "ack":
			ack(t, s, uid, st.n)
		}
		got, w := rangeAll(t, s, uid, 0)
		want := run(st.oldest, int(st.head-st.oldest+1))
		if w.Oldest != st.oldest || w.Head != st.head || !equalSeqs(seqs(got), want) {
			t.Fatalf("step %d (%s %d: %s): window %+v seqs %v, want oldest %d head %d",
				i, st.op, st.n, st.comment, w, seqs(got), st.oldest, st.head)
		}
		if counts && ec.Evictions() != st.evictions {
			t.Fatalf("step %d (%s): %d evictions, want %d", i, st.comment, ec.Evictions(), st.evictions)
		}
		if stores && sc.Stored() != int64(len(want)) {
			t.Fatalf("step %d (%s): %d stored, want %d", i, st.comment, sc.Stored(), len(want))
		}
	}
}

// Evictions and retained messages are counted across users.
func evictionsAndStoredAreCounted(t *testing.T, newStore NewStore) {
	s := newStore(t, 2)
	ec, counts := s.(msg.EvictionCounter)
	sc, stores := s.(msg.StoredCounter)
	if !counts && !stores {
		t.Skipf("%T implements neither msg.EvictionCounter nor msg.StoredCounter", s)
	}
	for _, st := range []struct {
		do        func()
		evictions uint64
		stored    int64
	}{
		{func() { appendN(t, s, 1, 5) }, 3, 2},
		{func() { appendN(t, s, 2, 3) }, 4, 4},
		{func() { ack(t, s, 1, 5) }, 4, 2},
		{func() { ack(t, s, 2, 2) }, 4, 1},
		{func() { ack(t, s, 3, 9) }, 4, 1},
		{func() { appendN(t, s, 3, 1) }, 4, 2},
	} {
		st.do()
		if counts && ec.Evictions() != st.evictions {
			t.Fatalf("%d evictions, want %d", ec.Evictions(), st.evictions)
		}
		if stores && sc.Stored() != st.stored {
			t.Fatalf("%d stored, want %d", sc.Stored(), st.stored)
		}
	}
}
