package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
)

// ackRecorder is a Local backend that reports, for each Ack, whether its context
// carried a deadline, and claims to acknowledge without waiting when async.
type ackRecorder struct {
	*node.Local
	async     bool
	deadlines chan bool
}

func (b *ackRecorder) AcksAsync() bool { return b.async }

func (b *ackRecorder) Ack(ctx context.Context, uid, seq, epoch uint64) error {
	_, has := ctx.Deadline()
	b.deadlines <- has
	return b.Local.Ack(ctx, uid, seq, epoch)
}

// A PUSH_ACK is given a deadline only when the backend may wait on it: one that
// acknowledges asynchronously (node.AsyncAcker) gets none, saving a context and
// its timer per delivered message.
func TestPushAckHasADeadlineOnlyForABackendThatWaits(t *testing.T) {
	for _, tc := range []struct {
		name         string
		async        bool
		wantDeadline bool
	}{
		{"waits", false, true},
		{"async", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &ackRecorder{Local: node.NewLocal(msg.NewMemory(16)), async: tc.async, deadlines: make(chan bool, 1)}
			g := startGateway(t, func(c *node.Config) { c.Backend = b })
			c, ok := g.login(t, 9)
			if err := c.Ack(1, ok.Epoch); err != nil {
				t.Fatal(err)
			}
			select {
			case has := <-b.deadlines:
				if has != tc.wantDeadline {
					t.Fatalf("Ack's context has a deadline: %v, want %v", has, tc.wantDeadline)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the backend never saw the PUSH_ACK")
			}
		})
	}
}
