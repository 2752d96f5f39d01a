package msg_test

import (
	"testing"

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
