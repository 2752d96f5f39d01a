package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
)

// Two sessions on a real gateway; midway the recipient's gateway drains it (KICK
// DRAIN), it reconnects, SYNCs, and still sees every message once, in order.
func TestSessionSurvivesAKickWithoutLoss(t *testing.T) {
	signer, _ := proto.NewSigner([]byte("session-test-secret-123"))
	n, err := node.New(node.Config{
		ID: "gw", Reactor: reactor.Config{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		Signer: signer, Backend: node.NewLocal(msg.NewMemory(100000)), Logger: slog.New(slog.DiscardHandler),
		Rates: &node.Rates{}, // 2,000 SENDs at full speed: the rate limits would pace them at 50/s
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go n.Run(ctx)
	addr := n.Reactor().Addr().String()

	var mu sync.Mutex
	var got []uint64
	all := make(chan struct{})
	const total = 2000
	session := func(uid uint64, onMsg func(proto.Push)) *client.Session {
		s := client.NewSession(client.SessionConfig{
			UID: uid, Token: func() []byte { return signer.Mint(uid, time.Now().Add(time.Hour)) },
			Gateways: []string{addr}, OnMessage: onMsg, Logger: slog.New(slog.DiscardHandler),
		})
		go s.Run(ctx)
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		defer wcancel()
		if err := s.WaitConnected(wctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	sender := session(1, nil)
	recv := session(2, func(p proto.Push) {
		mu.Lock()
		got = append(got, p.Seq)
		if len(got) == total {
			close(all)
		}
		mu.Unlock()
	})

	for i := 1; i <= total; i++ {
		if i == total/2 {
			// Kick everyone off the only gateway, then let them back in.
			n.Drain(gwlink.DrainRequest{Batch: 10, Interval: 10 * time.Millisecond, RetryAfter: 20 * time.Millisecond})
			for n.Sessions() > 0 && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			n.Undrain()
		}
		// The sender is drained too: Send itself waits for the reconnect and
		// writes the SEND again (same id) if its answer was lost.
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := sender.Send(sctx, 2, int64(i), []byte(fmt.Sprint(i)))
		scancel()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	select {
	case <-all:
	case <-time.After(20 * time.Second):
		mu.Lock()
		t.Fatalf("received %d of %d", len(got), total)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d", i, seq)
		}
	}
	if st := recv.Stats(); st.Logins < 2 {
		t.Fatalf("the recipient was never kicked and reconnected: %+v", st)
	}
}
