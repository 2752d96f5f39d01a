package client

import (
	"testing"

	"github.com/floodgate/floodgate/gateway/proto"
)

// The delivery logic alone: whatever order and duplication pushes arrive in,
// OnMessage sees each seq once, in order.
func TestSessionDeliversEachSeqOnceInOrder(t *testing.T) {
	var got []uint64
	s := NewSession(SessionConfig{OnMessage: func(p proto.Push) { got = append(got, p.Seq) }})
	for _, seq := range []uint64{1, 3, 2, 2, 5, 4, 1, 7, 6, 8, 8} {
		s.mu.Lock()
		s.acceptLocked(proto.Push{Seq: seq})
		s.mu.Unlock()
	}
	if len(got) != 8 {
		t.Fatalf("delivered %v", got)
	}
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("delivered %v", got)
		}
	}
	st := s.Stats()
	if st.Duplicates != 3 || st.OutOfOrder != 3 || s.Contiguous() != 8 {
		t.Fatalf("stats %+v contiguous %d", st, s.Contiguous())
	}
}

// A SYNC_END whose oldest retained seq is past the gap means those messages were
// evicted: the session skips them, counts them, and delivers what it held beyond.
func TestSessionSkipsEvictedSeqsAndCountsThem(t *testing.T) {
	var got []uint64
	s := NewSession(SessionConfig{OnMessage: func(p proto.Push) { got = append(got, p.Seq) }})
	s.mu.Lock()
	s.acceptLocked(proto.Push{Seq: 1})
	s.acceptLocked(proto.Push{Seq: 6})
	s.mu.Unlock()
	end := (&proto.SyncEnd{UpTo: 6, Head: 6, Oldest: 5}).Append(nil)
	f, _ := proto.ParseFrame(end)
	if err := s.handle(f); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || s.Contiguous() != 4 || s.Stats().Evicted != 3 {
		t.Fatalf("got %v contiguous %d evicted %d", got, s.Contiguous(), s.Stats().Evicted)
	}
	s.mu.Lock()
	s.acceptLocked(proto.Push{Seq: 5})
	s.mu.Unlock()
	if len(got) != 3 || got[1] != 5 || got[2] != 6 {
		t.Fatalf("after 5 arrived: %v", got)
	}
}
