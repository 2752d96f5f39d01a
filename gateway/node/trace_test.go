package node_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
)

// loginTrace logs uid in with proto.VersionTrace.
func (g *gateway) loginTrace(t *testing.T, uid uint64) *client.Conn {
	t.Helper()
	c := g.dial(t)
	if _, err := c.LoginVersion(proto.VersionTrace, uid, g.signer.Mint(uid, time.Now().Add(time.Hour))); err != nil {
		t.Fatalf("login %d with version 3: %v", uid, err)
	}
	return c
}

// checkStampsInOrder fails unless every stamp of tr lies in [lo, hi] and they
// follow the message's way: gateway_in ≤ stored ≤ routed ≤ gateway_out.
func checkStampsInOrder(t *testing.T, tr proto.Trace, lo, hi int64) {
	t.Helper()
	if !tr.Complete() || tr.GatewayIn < lo || tr.GatewayIn > tr.Stored || tr.Stored > tr.Routed ||
		tr.Routed > tr.GatewayOut || tr.GatewayOut > hi {
		t.Fatalf("stamps %+v out of order or outside [%d, %d]", tr, lo, hi)
	}
}

// A SEND_TRACED from a version 3 client reaches a version 3 recipient as
// PUSH_TRACED with its stamps in order, and a version 2 recipient as a plain
// PUSH; a SEND is never traced; a PUSH_TRACED that would exceed the maximum
// frame goes out as a plain PUSH. (The single-gateway backend; gateway/stack
// tests the path through msg and the router.)
func TestTracedSendReachesEachRecipientInItsVersion(t *testing.T) {
	const maxFrame = 2048
	g := startGateway(t, func(c *node.Config) { c.MaxFrame = maxFrame })
	sender := g.loginTrace(t, 1)
	v3 := g.loginTrace(t, 2)
	v2, _ := g.login(t, 3)
	cases := []struct {
		name    string
		to      *client.Conn
		uid     uint64
		traced  bool
		payload []byte
		want    proto.Type
	}{
		{"traced to version 3", v3, 2, true, []byte("a"), proto.TypePushTraced},
		{"traced to version 2", v2, 3, true, []byte("b"), proto.TypePush},
		{"untraced to version 3", v3, 2, false, []byte("c"), proto.TypePush},
		{"traced, too large to carry the trace", v3, 2, true, bytes.Repeat([]byte{'d'}, proto.MaxPayload(maxFrame)), proto.TypePush},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := uint64(i + 1)
			lo := time.Now().UnixNano()
			send := sender.Send
			if tc.traced {
				send = sender.SendTraced
			}
			if err := send(id, tc.uid, int64(id), tc.payload); err != nil {
				t.Fatal(err)
			}
			var ack proto.SendAck
			if f := next(t, sender); f.Type != proto.TypeSendAck || ack.Decode(f.Body) != nil || ack.ClientMsgID != id {
				t.Fatalf("sender got %v, want the SEND_ACK of %d", f.Type, id)
			}
			f := next(t, tc.to)
			hi := time.Now().UnixNano()
			if f.Type != tc.want {
				t.Fatalf("recipient got %v, want %v", f.Type, tc.want)
			}
			var p proto.Push
			if f.Type == proto.TypePushTraced {
				var pt proto.PushTraced
				if err := pt.Decode(f.Body); err != nil {
					t.Fatal(err)
				}
				checkStampsInOrder(t, pt.Trace, lo, hi)
				p = pt.Push
			} else if err := p.Decode(f.Body); err != nil {
				t.Fatal(err)
			}
			if p.MsgID != ack.MsgID || p.From != 1 || !bytes.Equal(p.Payload, tc.payload) {
				t.Fatalf("pushed %+v, want message %d from 1 with the payload sent", p, ack.MsgID)
			}
		})
	}
}
