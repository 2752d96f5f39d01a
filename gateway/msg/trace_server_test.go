package msg_test

import (
	"context"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
)

// A traced message reaches the router with its gateway_in as sent and stored
// stamped between the Append's start and its return; what the store gives back
// (the resend of an unsettled message, a replay) is untraced.
func TestServerStampsStoredAndStoresNoTrace(t *testing.T) {
	ctx := context.Background()
	rs := startRouterStub(t, "127.0.0.1:0")
	s, _ := startRoutingServer(t, rs.srv.Addr(), msg.DeliveryConfig{ResendMin: 50 * time.Millisecond, ResendMax: 100 * time.Millisecond}, true)
	c := dial(t, s.Addr())
	lo := time.Now().UnixNano()
	m := msg.Message{ClientMsgID: 1, From: 9, To: 1, Payload: []byte("traced"), Trace: &msg.Trace{GatewayIn: 7}}
	if err := c.Append(ctx, &m); err != nil {
		t.Fatal(err)
	}
	hi := time.Now().UnixNano()
	got := rs.waitRouted(t, 2) // the notification, then the resend: nothing settles it
	if tr := got[0].Trace; tr == nil || tr.GatewayIn != 7 || tr.Stored < lo || tr.Stored > hi || tr.Routed != 0 || tr.GatewayOut != 0 {
		t.Fatalf("routed with trace %+v, want gateway_in 7 and stored within [%d, %d]", tr, lo, hi)
	}
	if got[1].ID != m.ID || got[1].Trace != nil {
		t.Fatalf("resent %+v with trace %+v, want message %d untraced", got[1], got[1].Trace, m.ID)
	}
	msgs, _, err := c.Range(ctx, 1, 0, 0)
	if err != nil || len(msgs) != 1 || msgs[0].Trace != nil {
		t.Fatalf("replay %+v, %v: want the message, untraced", msgs, err)
	}
}
