package msgtest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
)

func concurrentAppendsKeepSeqsDense(t *testing.T, newStore NewStore) {
	ctx := context.Background()
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
	got, w := rangeAll(t, s, 77, 0)
	if w.Head != 1600 || len(got) != 1600 {
		t.Fatalf("head %d, %d messages, want 1600", w.Head, len(got))
	}
	for i, m := range got {
		if m.Seq != uint64(i+1) {
			t.Fatalf("seq %d at %d", m.Seq, i)
		}
	}
}

// While one writer appends and another acknowledges, every Range is a snapshot: its
// messages are exactly the retained run its window describes (from max(after+1,
// Oldest), at most limit, through Head), the window never exceeds its bound, and
// windows never move backwards.
func concurrentRangesSeeConsistentSnapshots(t *testing.T, newStore NewStore) {
	const (
		perUser = 32
		uid     = 88
		total   = 600
	)
	ctx := context.Background()
	s := newStore(t, perUser)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		// A single writer: message i gets seq i, payload "i". It waits for the acker
		// when the quota refuses a message.
		deadline := time.Now().Add(30 * time.Second)
		i := 1
		defer func() {
			if i <= total {
				t.Errorf("the writer stored only %d of %d messages in 30s", i-1, total)
			}
		}()
		for i <= total && time.Now().Before(deadline) {
			err := s.Append(ctx, &msg.Message{From: 1, To: uid, Payload: []byte(fmt.Sprint(i))})
			switch {
			case errors.Is(err, msg.ErrRecipientFull):
				runtime.Gosched()
			case err != nil:
				t.Error(err)
				return
			default:
				i++
			}
		}
	})
	wg.Go(func() { // the acker trails the head
		for {
			select {
			case <-done:
				return
			default:
			}
			w, err := s.Window(ctx, uid)
			if err != nil {
				t.Error(err)
				return
			}
			if w.Head > 10 {
				if err := s.Ack(ctx, uid, w.Head-10, w.Epoch); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	for r := range 3 {
		wg.Go(func() {
			var last msg.Window
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				after := [...]uint64{0, last.Head / 2, last.Head - min(last.Head, 3)}[i%3]
				limit := [...]int{0, 5, 20}[(i+r)%3]
				got, w, err := s.Range(ctx, uid, after, limit)
				if err != nil {
					t.Error(err)
					return
				}
				if err := checkSnapshot(got, w, last, after, limit, perUser); err != nil {
					t.Errorf("range after %d limit %d: %v", after, limit, err)
					return
				}
				last = w
			}
		})
	}
	wg.Wait()
}

func checkSnapshot(got []msg.Message, w, prev msg.Window, after uint64, limit, perUser int) error {
	if w.Oldest > w.Head+1 || w.Head+1-w.Oldest > uint64(perUser) {
		return fmt.Errorf("window %+v breaks its bound of %d", w, perUser)
	}
	if w.Epoch != prev.Epoch && prev.Epoch != 0 || w.Head < prev.Head || w.Oldest < prev.Oldest {
		return fmt.Errorf("window %+v went back from %+v", w, prev)
	}
	start := max(after+1, w.Oldest)
	n := 0
	if w.Head >= start {
		n = int(w.Head - start + 1)
	}
	if limit > 0 {
		n = min(n, limit)
	}
	if want := run(start, n); !equalSeqs(seqs(got), want) {
		return fmt.Errorf("window %+v with seqs %v, want %v", w, seqs(got), want)
	}
	for _, m := range got {
		if string(m.Payload) != fmt.Sprint(m.Seq) {
			return fmt.Errorf("seq %d carries payload %q", m.Seq, m.Payload)
		}
	}
	return nil
}
