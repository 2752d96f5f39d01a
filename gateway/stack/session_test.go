package stack

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/proto"
)

// loginRaw logs uid in at addr with the blocking client.
func loginRaw(t *testing.T, addr string, uid uint64) (*client.Conn, proto.LoginOK) {
	t.Helper()
	c, err := client.Dial(addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.NetConn().SetDeadline(time.Now().Add(30 * time.Second))
	ok, err := c.Login(uid, token(uid))
	if err != nil {
		t.Fatalf("login %d at %s: %v", uid, addr, err)
	}
	return c, ok
}

// One live session per user across the fleet: logging in as U on gw-2 while U's
// session on gw-1 is open kicks the gw-1 session with REPLACED, and that kick is
// already written by the time gw-2 answers LOGIN_OK. The old session can no longer
// send as U, and messages to U reach the new session only. (Before, the gw-1 session
// stayed alive for good, sending as U and getting SEND_ACKs.)
func TestLoginOnAnotherGatewayKicksTheOlderSession(t *testing.T) {
	s := up(t, 2)
	gw1, gw2 := s.Gateways[0].Addr, s.Gateways[1].Addr
	old, _ := loginRaw(t, gw1, 42)
	fresh, ok := loginRaw(t, gw2, 42)

	// The kick was written before LOGIN_OK: it is there to read at once.
	old.NetConn().SetReadDeadline(time.Now().Add(time.Second))
	f, err := old.Next()
	if err != nil {
		t.Fatalf("old session, right after the new LOGIN_OK: %v, want KICK REPLACED", err)
	}
	var k *client.KickError
	if !errors.As(client.AsError(f), &k) || k.Reason != proto.ReasonReplaced || k.Code != proto.CodeSessionReplaced {
		t.Fatalf("old session got %v, want KICK REPLACED", client.AsError(f))
	}
	// Anything the old connection still sends is not processed.
	old.Send(1, 7, 0, []byte("as 42, after being replaced"))

	// Messages to 42 reach the new session.
	sender, _ := loginRaw(t, gw1, 7)
	if err := sender.Send(1, 42, 0, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if f, err := sender.Next(); err != nil || f.Type != proto.TypeSendAck {
		t.Fatalf("sender: %v %v", f.Type, err)
	}
	f, err = fresh.Next()
	var p proto.Push
	if err != nil || f.Type != proto.TypePush || p.Decode(f.Body) != nil || string(p.Payload) != "hi" || p.Epoch != ok.Epoch {
		t.Fatalf("new session: %v %v, want the PUSH", f.Type, err)
	}
	// Nothing from the replaced session reached user 7.
	sender.NetConn().SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if f, err := sender.Next(); err == nil {
		t.Fatalf("user 7 received %v from a replaced session", f.Type)
	}
}

// Many concurrent logins of one user across two gateways leave exactly one live
// session, and it is the one the directory routes to. A login replaced while it was
// pending used to leave the user's older session on its own gateway live: the
// directory had moved past that one when the pending login registered (on the same
// gateway, so no kick was sent), and the pending one was then replaced from the
// other gateway — two live sessions for good (seen in 5 of 8 runs before the fix).
func TestConcurrentLoginsAcrossGatewaysLeaveOneSession(t *testing.T) {
	s := up(t, 2)
	const uid, logins = 77, 40
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		live   []*client.Conn
		closed = make(chan struct{}, logins)
	)
	for i := range logins {
		wg.Go(func() {
			c, err := client.Dial(s.Gateways[i%2].Addr, 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { c.Close() })
			c.NetConn().SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Login(uid, token(uid)); err != nil {
				return // replaced before its LOGIN_OK
			}
			mu.Lock()
			live = append(live, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(live) == 0 {
		t.Fatal("no login succeeded")
	}
	// Every session but one is kicked; watch them all.
	pushed := make(chan *client.Conn, len(live))
	for _, c := range live {
		go func() {
			for {
				f, err := c.Next()
				switch {
				case err != nil || f.Type == proto.TypeKick:
					closed <- struct{}{}
					return
				case f.Type == proto.TypePush:
					pushed <- c
				}
			}
		}()
	}
	deadline := time.After(10 * time.Second)
	for range len(live) - 1 {
		select {
		case <-closed:
		case <-deadline:
			t.Fatalf("%d sessions logged in; after 10 s more than one of them is still live", len(live))
		}
	}
	// The survivor is the one messages reach.
	sender, _ := loginRaw(t, s.Gateways[0].Addr, 8)
	if err := sender.Send(1, uid, 0, []byte("to the one")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pushed:
	case <-closed:
		t.Fatal("the last session was closed too")
	case <-time.After(10 * time.Second):
		t.Fatal("the surviving session got no PUSH")
	}
}
