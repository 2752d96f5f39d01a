package node_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
)

// movingDirectory is a Local backend whose every login after the first meets a
// directory that moves on while it runs: as in a cluster where the login registered
// (replacing the user's older session here, for which the directory sends no kick)
// and then something newer happened.
type movingDirectory struct {
	*node.Local
	gw     node.Gateway
	then   string // "replaced": a newer login elsewhere replaced it; "failed after": it failed once registered; "failed before": it failed before registering
	logins atomic.Int32
}

func (b *movingDirectory) Attach(g node.Gateway) { b.gw = g; b.Local.Attach(g) }

func (b *movingDirectory) Login(ctx context.Context, s node.Session) (msg.Window, error) {
	if b.logins.Add(1) == 1 {
		return b.Local.Login(ctx, s)
	}
	switch b.then {
	case "replaced": // the state service's kick for s arrives while it is pending
		b.gw.Replace(s.UID, s.ID)
		return b.Local.Login(ctx, s)
	case "failed after":
		return msg.Window{}, errors.Join(node.ErrRegistered, errors.New("msg unavailable"))
	default:
		return msg.Window{}, errors.New("state unavailable")
	}
}

// TestOlderSessionHereGoesWhenTheDirectoryMovedPastIt: a second login of a user on
// the same gateway replaces the first in the directory. When that login does not
// become current itself (replaced while pending, or failed after registering), the
// first must not stay live: the directory no longer names it, so it would be a
// second session of the user (or one never routed to). A login that failed before
// registering leaves the first alone.
func TestOlderSessionHereGoesWhenTheDirectoryMovedPastIt(t *testing.T) {
	for _, tc := range []struct {
		then        string
		newKick     proto.Code
		oldKicked   bool
		oldKickCode proto.Code
		sessions    int
	}{
		{then: "replaced", newKick: proto.CodeSessionReplaced, oldKicked: true, oldKickCode: proto.CodeSessionReplaced, sessions: 0},
		{then: "failed after", newKick: proto.CodeBackendUnavailable, oldKicked: true, oldKickCode: proto.CodeBackendUnavailable, sessions: 0},
		{then: "failed before", newKick: proto.CodeBackendUnavailable, oldKicked: false, sessions: 1},
	} {
		t.Run(tc.then, func(t *testing.T) {
			b := &movingDirectory{Local: node.NewLocal(msg.NewMemory(1000)), then: tc.then}
			g := startGateway(t, func(c *node.Config) { c.Backend = b })
			old, _ := g.login(t, 5)
			second := g.dial(t)
			_, err := second.Login(5, g.signer.Mint(5, time.Now().Add(time.Hour)))
			if k, ok := errors.AsType[*client.KickError](err); !ok || k.Code != tc.newKick {
				t.Fatalf("second login: %v, want a KICK with %v", err, tc.newKick)
			}
			if tc.oldKicked {
				expectKick(t, old, reasonOf(tc.oldKickCode), tc.oldKickCode)
			} else {
				if err := old.Ping(1); err != nil {
					t.Fatal(err)
				}
				if f := next(t, old); f.Type != proto.TypePong {
					t.Fatalf("older session got %v, want PONG: it should still be live", f.Type)
				}
			}
			if got := g.Sessions(); got != tc.sessions {
				t.Fatalf("Sessions = %d, want %d", got, tc.sessions)
			}
		})
	}
}

func reasonOf(c proto.Code) proto.Reason {
	if c == proto.CodeSessionReplaced {
		return proto.ReasonReplaced
	}
	return proto.ReasonBusy
}

// An isolated gateway moves every client away with KICK DRAIN / ISOLATED and turns
// logins away the same way until it rejoins.
func TestIsolatedGatewayMovesClientsAndRefusesLoginsUntilRejoin(t *testing.T) {
	g := startGateway(t, nil)
	var clients []*client.Conn
	for uid := range uint64(5) {
		c, _ := g.login(t, 100+uid)
		clients = append(clients, c)
	}
	if !g.Isolate(300 * time.Millisecond) {
		t.Fatal("Isolate did not start")
	}
	if g.Isolate(300 * time.Millisecond) {
		t.Fatal("a second Isolate started again")
	}
	for _, c := range clients {
		k := expectKick(t, c, proto.ReasonDrain, proto.CodeIsolated)
		if k.RetryAfterMS >= 100 {
			t.Errorf("retry hint %dms: want it within a batch interval (100ms)", k.RetryAfterMS)
		}
	}
	late := g.dial(t)
	if _, err := late.Login(9, g.signer.Mint(9, time.Now().Add(time.Hour))); err == nil {
		t.Fatal("an isolated gateway took a login")
	} else if k, ok := errors.AsType[*client.KickError](err); !ok || k.Code != proto.CodeIsolated {
		t.Fatalf("login while isolated: %v, want KICK DRAIN / ISOLATED", err)
	}
	g.Rejoin()
	g.login(t, 9)
}
