package msg_test

import (
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/msg/msgtest"
)

var (
	_ msg.StoredCounter = (*msg.Memory)(nil)
	_ msg.DedupeCounter = (*msg.Memory)(nil)
	_ msg.LimitCounter  = (*msg.Memory)(nil)
	_ msg.InboxCounter  = (*msg.Memory)(nil)
	_ msg.Sweeper       = (*msg.Memory)(nil)
)

func TestMemoryStore(t *testing.T) {
	msgtest.Run(t, func(t *testing.T, perUser int, opts ...msg.StoreOption) msg.Store {
		return msg.NewMemory(perUser, opts...)
	})
}

// The memory store's sweep is incremental: each step visits one of its 256 shards
// (users are spread by uid modulo 256), so no step locks the whole store; a full
// pass takes 256 steps, the last reporting no more.
func TestMemorySweepVisitsOneShardAStep(t *testing.T) {
	clk := msgtest.NewClock()
	m := msg.NewMemory(8, msg.WithClock(clk.Now), msg.WithRetention(time.Minute))
	for _, uid := range []uint64{1, 2, 258} { // shards 1, 2 and 2
		if err := m.Append(t.Context(), &msg.Message{To: uid}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Minute)
	for step, want := range []uint64{0, 1, 3} { // shards 0, 1, 2
		if more, err := m.Sweep(t.Context()); err != nil || !more || m.DeletedInboxes() != want {
			t.Fatalf("step %d: more %v, %v, %d deleted; want more and %d deleted", step, more, err, m.DeletedInboxes(), want)
		}
	}
	for step := 3; step < 256; step++ {
		more, err := m.Sweep(t.Context())
		if err != nil || more != (step < 255) {
			t.Fatalf("step %d: more %v, %v", step, more, err)
		}
	}
	if m.Inboxes() != 0 || m.Expired() != 3 || m.Stored() != 0 {
		t.Fatalf("%d inboxes, %d expired, %d stored; want 0, 3, 0", m.Inboxes(), m.Expired(), m.Stored())
	}
}
