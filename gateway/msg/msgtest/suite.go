// Package msgtest is the behaviour every msg.Store backend must show, as one test
// suite that each backend's tests run against a fresh store.
package msgtest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/floodgate/floodgate/gateway/msg"
)

// Run runs the suite. newStore returns an empty store retaining perUser messages per
// user; it is called once per subtest.
func Run(t *testing.T, newStore func(t *testing.T, perUser int) msg.Store) {
	ctx := context.Background()
	t.Run("SeqsStartAtOneWithoutHoles", func(t *testing.T) {
		s := newStore(t, 100)
		ids := map[uint64]bool{}
		for i := 1; i <= 10; i++ {
			for _, to := range []uint64{7, 8} {
				m := &msg.Message{From: 1, To: to, ClientTS: int64(i), Payload: []byte(fmt.Sprint(i))}
				if err := s.Append(ctx, m); err != nil {
					t.Fatal(err)
				}
				if m.Seq != uint64(i) {
					t.Fatalf("message %d to %d got seq %d", i, to, m.Seq)
				}
				if ids[m.ID] {
					t.Fatalf("id %d reused", m.ID)
				}
				ids[m.ID] = true
			}
		}
	})
	t.Run("RangeReplaysInOrderFromAfter", func(t *testing.T) {
		s := newStore(t, 100)
		appendN(t, s, 5, 20)
		got, w, err := s.Range(ctx, 5, 12, 0)
		if err != nil {
			t.Fatal(err)
		}
		if w.Head != 20 || w.Oldest != 1 || w.Epoch == 0 {
			t.Fatalf("window %+v, want head 20, oldest 1, an epoch", w)
		}
		if len(got) != 8 || got[0].Seq != 13 || got[7].Seq != 20 {
			t.Fatalf("range after 12: %d messages, first %v", len(got), got)
		}
		for i, m := range got {
			if m.Seq != uint64(13+i) || string(m.Payload) != fmt.Sprint(13+i) || m.To != 5 {
				t.Fatalf("message %d: %+v", i, m)
			}
		}
		if got, _, _ := s.Range(ctx, 5, 12, 3); len(got) != 3 || got[2].Seq != 15 {
			t.Fatalf("limit 3: %v", got)
		}
		if got, _, _ := s.Range(ctx, 5, 20, 0); len(got) != 0 {
			t.Fatalf("after head: %v", got)
		}
	})
	t.Run("AckDropsThroughSeq", func(t *testing.T) {
		s := newStore(t, 100)
		appendN(t, s, 9, 10)
		if err := s.Ack(ctx, 9, 6); err != nil {
			t.Fatal(err)
		}
		got, w, _ := s.Range(ctx, 9, 0, 0)
		if w.Oldest != 7 || len(got) != 4 || got[0].Seq != 7 {
			t.Fatalf("after ack 6: window %+v, %d messages", w, len(got))
		}
		s.Ack(ctx, 9, 3) // behind: no effect
		s.Ack(ctx, 9, 99) // beyond head: everything
		got, w, _ = s.Range(ctx, 9, 0, 0)
		if len(got) != 0 || w.Oldest != 11 || w.Head != 10 {
			t.Fatalf("after ack all: window %+v, %d messages", w, len(got))
		}
		m := &msg.Message{To: 9}
		s.Append(ctx, m)
		if m.Seq != 11 {
			t.Fatalf("seq after full ack = %d, want 11", m.Seq)
		}
	})
	t.Run("WindowEvictsOldestBeyondLimit", func(t *testing.T) {
		s := newStore(t, 4)
		appendN(t, s, 3, 10)
		got, w, _ := s.Range(ctx, 3, 0, 0)
		if w.Oldest != 7 || w.Head != 10 || len(got) != 4 || got[0].Seq != 7 {
			t.Fatalf("window %+v, %d messages; want oldest 7 head 10 and 4 messages", w, len(got))
		}
	})
	t.Run("UnknownUserHasEmptyWindow", func(t *testing.T) {
		s := newStore(t, 4)
		w, err := s.Window(ctx, 12345)
		if err != nil || w.Head != 0 || w.Oldest != 1 {
			t.Fatalf("window %+v, %v", w, err)
		}
	})
	t.Run("RejectsUIDZero", func(t *testing.T) {
		s := newStore(t, 4)
		if err := s.Append(ctx, &msg.Message{From: 1}); err == nil {
			t.Fatal("append to uid 0 accepted")
		}
	})
	t.Run("StoredPayloadIsACopy", func(t *testing.T) {
		s := newStore(t, 4)
		p := []byte("original")
		s.Append(ctx, &msg.Message{To: 4, Payload: p})
		copy(p, "mutated!")
		got, _, _ := s.Range(ctx, 4, 0, 0)
		if string(got[0].Payload) != "original" {
			t.Fatalf("payload %q", got[0].Payload)
		}
	})
	t.Run("ConcurrentAppendsKeepSeqsDense", func(t *testing.T) {
		s := newStore(t, 10000)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 200 {
					if err := s.Append(ctx, &msg.Message{From: uint64(g), To: 77, Payload: []byte{byte(i)}}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		got, w, _ := s.Range(ctx, 77, 0, 0)
		if w.Head != 1600 || len(got) != 1600 {
			t.Fatalf("head %d, %d messages, want 1600", w.Head, len(got))
		}
		for i, m := range got {
			if m.Seq != uint64(i+1) {
				t.Fatalf("seq %d at %d", m.Seq, i)
			}
		}
	})
}

func appendN(t *testing.T, s msg.Store, to uint64, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if err := s.Append(context.Background(), &msg.Message{From: 1, To: to, Payload: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
}
