package msgtest

import (
	"context"
	"fmt"
	"testing"

	"github.com/floodgate/floodgate/gateway/msg"
)

// Range's limit: at most limit messages, limit <= 0 meaning all; after at or past the
// head yields none, with the window all the same.
func rangeLimits(t *testing.T, newStore NewStore) {
	s := newStore(t, 100)
	const uid = 21
	appendN(t, s, uid, 10)
	for _, c := range []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 0, run(1, 10)},
		{0, -1, run(1, 10)},
		{0, -1 << 30, run(1, 10)},
		{0, 1, run(1, 1)},
		{0, 10, run(1, 10)},
		{0, 11, run(1, 10)},
		{0, 1 << 30, run(1, 10)},
		{3, 4, run(4, 4)},
		{9, 5, run(10, 1)},
		{10, 0, nil},
		{10, 3, nil},
		{11, 0, nil},
		{1 << 53, 0, nil},
		{1<<64 - 1, 3, nil},
	} {
		t.Run(fmt.Sprintf("after=%d,limit=%d", c.after, c.limit), func(t *testing.T) {
			got, w, err := s.Range(context.Background(), uid, c.after, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			if w.Head != 10 || w.Oldest != 1 {
				t.Errorf("window %+v, want head 10, oldest 1", w)
			}
			if !equalSeqs(seqs(got), c.want) {
				t.Errorf("seqs %v, want %v", seqs(got), c.want)
			}
			for _, m := range got {
				if string(m.Payload) != fmt.Sprint(m.Seq) {
					t.Errorf("seq %d carries payload %q", m.Seq, m.Payload)
				}
			}
		})
	}
}

// A Range from before the oldest retained message starts at the oldest: what was
// expired or acknowledged is skipped, never a hole in the middle.
func rangeBelowOldestStartsAtOldest(t *testing.T, newStore NewStore) {
	s := newStore(t, 8)
	const uid = 22
	appendN(t, s, uid, 8)
	ack(t, s, uid, 4) // leaves 5..8
	for _, c := range []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 0, run(5, 4)},
		{2, 0, run(5, 4)},
		{4, 0, run(5, 4)},
		{0, 2, run(5, 2)},
		{5, 2, run(6, 2)},
		{7, 0, run(8, 1)},
	} {
		got, w, err := s.Range(context.Background(), uid, c.after, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if w.Oldest != 5 || w.Head != 8 || !equalSeqs(seqs(got), c.want) {
			t.Errorf("after %d limit %d: window %+v seqs %v, want oldest 5 head 8 seqs %v",
				c.after, c.limit, w, seqs(got), c.want)
		}
	}
}

// Ack at and around the window's edges; each case uses its own user holding 1..10.
func ackEdges(t *testing.T, newStore NewStore) {
	s := newStore(t, 100)
	for i, c := range []struct {
		name       string
		acks       []uint64
		wantOldest uint64
	}{
		{"zero", []uint64{0}, 1},
		{"first", []uint64{1}, 2},
		{"middle", []uint64{5}, 6},
		{"before head", []uint64{9}, 10},
		{"head", []uint64{10}, 11},
		{"past head", []uint64{11}, 11},
		{"far past head", []uint64{1 << 53}, 11},
		{"max uint64", []uint64{1<<64 - 1}, 11},
		{"repeated", []uint64{5, 5}, 6},
		{"behind oldest", []uint64{5, 4}, 6},
		{"just below oldest", []uint64{5, 5, 6}, 7},
		{"stepwise", []uint64{2, 4, 6, 8, 10}, 11},
	} {
		t.Run(c.name, func(t *testing.T) {
			uid := uint64(1000 + i)
			appendN(t, s, uid, 10)
			for _, a := range c.acks {
				ack(t, s, uid, a)
			}
			got, w := rangeAll(t, s, uid, 0)
			want := run(c.wantOldest, int(11-c.wantOldest))
			if w.Oldest != c.wantOldest || w.Head != 10 || !equalSeqs(seqs(got), want) {
				t.Fatalf("window %+v seqs %v, want oldest %d head 10 seqs %v", w, seqs(got), c.wantOldest, want)
			}
		})
	}
}

// Acknowledging past the head acknowledges what exists, not messages yet to come;
// neither does an Ack for a user with no messages.
func ackBeyondHeadDoesNotSkipLaterMessages(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, 10)
	ack(t, s, 41, 50) // nothing stored yet
	if _, w := rangeAll(t, s, 41, 0); w.Head != 0 || w.Oldest != 1 {
		t.Fatalf("ack on an empty inbox changed its window: %+v", w)
	}
	appendN(t, s, 41, 3)
	ack(t, s, 41, 50)
	m := &msg.Message{To: 41, Payload: []byte("4")}
	if err := s.Append(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, w := rangeAll(t, s, 41, 0)
	if m.Seq != 4 || w.Oldest != 4 || w.Head != 4 || !equalSeqs(seqs(got), []uint64{4}) {
		t.Fatalf("seq %d, window %+v, seqs %v; want seq 4 retained", m.Seq, w, seqs(got))
	}
}

// An inbox whose every message is acknowledged keeps its head: the window is
// {head, head+1}, Range returns nothing, and the next message continues the seqs.
func fullyAckedInbox(t *testing.T, newStore NewStore) {
	s := newStore(t, 10)
	const uid = 51
	appendN(t, s, uid, 5)
	_, w0 := rangeAll(t, s, uid, 0)
	ack(t, s, uid, 5)
	for _, after := range []uint64{0, 4, 5, 6} {
		got, w := rangeAll(t, s, uid, after)
		if len(got) != 0 || w.Head != 5 || w.Oldest != 6 || w.Epoch != w0.Epoch {
			t.Fatalf("after %d: window %+v, %d messages; want head 5, oldest 6, epoch %d, none",
				after, w, len(got), w0.Epoch)
		}
	}
	appendN(t, s, uid, 1)
	got, w := rangeAll(t, s, uid, 5)
	if w.Head != 6 || w.Oldest != 6 || !equalSeqs(seqs(got), []uint64{6}) {
		t.Fatalf("after one more: window %+v, seqs %v; want head 6, oldest 6, seqs [6]", w, seqs(got))
	}
}

// Within one epoch step (see msg.Memory's userEpoch: an hour by default), a user's
// epoch, known or not, does not change as the store is used. Users may have
// different epochs (Redis keeps one per bucket of users).
func epochIsStable(t *testing.T, newStore NewStore) {
	s := newStore(t, 8)
	uids := []uint64{61, 62, 63, 1<<64 - 1}
	epochs := map[uint64]uint64{}
	for _, uid := range uids {
		_, w := rangeAll(t, s, uid, 0)
		if w.Epoch == 0 {
			t.Fatalf("uid %d: epoch 0", uid)
		}
		epochs[uid] = w.Epoch
	}
	appendN(t, s, 61, 5)
	ack(t, s, 61, 4)
	appendN(t, s, 62, 1)
	for _, uid := range uids {
		if _, w := rangeAll(t, s, uid, 0); w.Epoch != epochs[uid] {
			t.Fatalf("uid %d: epoch %d, want %d", uid, w.Epoch, epochs[uid])
		}
	}
}
