package msg_test

import (
	"testing"

	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/msg/msgtest"
)

var (
	_ msg.EvictionCounter = (*msg.Memory)(nil)
	_ msg.StoredCounter   = (*msg.Memory)(nil)
	_ msg.DedupeCounter   = (*msg.Memory)(nil)
)

func TestMemoryStore(t *testing.T) {
	msgtest.Run(t, func(t *testing.T, perUser int) msg.Store { return msg.NewMemory(perUser) })
}

func TestMemoryCountsEvictions(t *testing.T) {
	m := msg.NewMemory(2)
	for range 5 {
		m.Append(t.Context(), &msg.Message{To: 1})
	}
	if m.Evictions() != 3 || m.Stored() != 2 {
		t.Fatalf("evictions %d stored %d, want 3 and 2", m.Evictions(), m.Stored())
	}
}
