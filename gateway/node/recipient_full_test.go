package node_test

import (
	"errors"
	"testing"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A SEND the recipient's storage quota refuses is answered ERROR RECIPIENT_FULL
// (not stored, the connection stays), and the recipient's pending messages are
// kept: a flood cannot push them out.
func TestSendToAFullRecipientIsRefused(t *testing.T) {
	g := startGateway(t, func(c *node.Config) { c.Backend = node.NewLocal(msg.NewMemory(2)) })
	c, _ := g.login(t, 1)
	for id := uint64(1); id <= 3; id++ {
		c.Send(id, 2, 0, []byte("hi"))
		f := next(t, c)
		var se *client.ServerError
		switch err := client.AsError(f); {
		case id <= 2 && f.Type != proto.TypeSendAck:
			t.Fatalf("send %d to a recipient with room: %v (%v)", id, f.Type, err)
		case id == 3 && (!errors.As(err, &se) || se.Code != proto.CodeRecipientFull || se.Ref != 3):
			t.Fatalf("send %d beyond the quota: %v (%v), want ERROR RECIPIENT_FULL ref 3", id, f.Type, err)
		}
	}
	c.Ping(1)
	if f := next(t, c); f.Type != proto.TypePong {
		t.Fatalf("after RECIPIENT_FULL: %v", f.Type)
	}
	r, _ := g.login(t, 2)
	r.Sync(0, 0, 0)
	for want := uint64(1); want <= 2; want++ {
		f := next(t, r)
		var p proto.Push
		if f.Type != proto.TypePush || p.Decode(f.Body) != nil || p.Seq != want || string(p.Payload) != "hi" {
			t.Fatalf("replay %d: %v", want, f.Type)
		}
	}
	if got := testutil.ToFloat64(metric(t, g.reg, "floodgate_gateway_sends_total", "recipient_full")); got != 1 {
		t.Fatalf("sends{result=recipient_full} = %v, want 1", got)
	}
}
