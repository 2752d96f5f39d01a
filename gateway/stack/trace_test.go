package stack

import (
	"errors"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/proto"
)

// dialLogin connects uid to addr and logs in announcing version.
func dialLogin(t *testing.T, addr string, uid uint64, version uint8) *client.Conn {
	t.Helper()
	c, err := client.Dial(addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.NetConn().SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.LoginVersion(version, uid, token(uid)); err != nil {
		t.Fatalf("uid %d, version %d: %v", uid, version, err)
	}
	return c
}

// nextFrame reads the next frame that is not a SYNC_END (a gateway may send one
// unprompted), failing on an error.
func nextFrame(t *testing.T, c *client.Conn) proto.Frame {
	t.Helper()
	for range 16 {
		f, err := c.Next()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if f.Type != proto.TypeSyncEnd {
			return f
		}
	}
	t.Fatal("only SYNC_ENDs")
	return proto.Frame{}
}

// Through the whole stack (gateway → msg → router → another gateway): a
// SEND_TRACED reaches a version 3 recipient as PUSH_TRACED stamped in order at
// every hop, and a version 2 recipient as a plain PUSH. A version 2 connection
// that sends SEND_TRACED is kicked UNKNOWN_TYPE, and the others carry on.
func TestTracedSendAcrossGateways(t *testing.T) {
	st := up(t, 2)
	sender := dialLogin(t, st.Gateways[0].Addr, 1, proto.VersionTrace)
	v3 := dialLogin(t, st.Gateways[1].Addr, 2, proto.VersionTrace)
	v2 := dialLogin(t, st.Gateways[1].Addr, 3, proto.Version)

	lo := time.Now().UnixNano()
	if err := sender.SendTraced(1, 2, 0, []byte("to v3")); err != nil {
		t.Fatal(err)
	}
	if err := sender.SendTraced(2, 3, 0, []byte("to v2")); err != nil {
		t.Fatal(err)
	}
	f := nextFrame(t, v3)
	hi := time.Now().UnixNano()
	var pt proto.PushTraced
	if f.Type != proto.TypePushTraced || pt.Decode(f.Body) != nil || string(pt.Payload) != "to v3" {
		t.Fatalf("version 3 recipient got %v, want the PUSH_TRACED of \"to v3\"", f.Type)
	}
	tr := pt.Trace
	if !tr.Complete() || tr.GatewayIn < lo || tr.GatewayIn > tr.Stored || tr.Stored > tr.Routed ||
		tr.Routed > tr.GatewayOut || tr.GatewayOut > hi {
		t.Fatalf("stamps %+v out of order or outside [%d, %d]", tr, lo, hi)
	}
	var p proto.Push
	if f := nextFrame(t, v2); f.Type != proto.TypePush || p.Decode(f.Body) != nil || string(p.Payload) != "to v2" {
		t.Fatalf("version 2 recipient got %v, want the PUSH of \"to v2\"", f.Type)
	}

	// A version 2 client may not send SEND_TRACED: kicked as for any undefined type.
	if err := v2.SendTraced(3, 2, 0, []byte("not allowed")); err != nil {
		t.Fatal(err)
	}
	var k *client.KickError
	if f := nextFrame(t, v2); f.Type != proto.TypeKick {
		t.Fatalf("got %v, want KICK UNKNOWN_TYPE", f.Type)
	} else if err := client.AsError(f); !errors.As(err, &k) || k.Code != proto.CodeUnknownType {
		t.Fatalf("got %v, want KICK UNKNOWN_TYPE", err)
	}
	// The others are unaffected: a plain SEND still goes through, untraced.
	if err := sender.Send(4, 2, 0, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if f := nextFrame(t, v3); f.Type != proto.TypePush || p.Decode(f.Body) != nil || string(p.Payload) != "after" {
		t.Fatalf("version 3 recipient got %v, want the PUSH of \"after\"", f.Type)
	}
}
