package cluster

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/floodgate/floodgate/gateway/state"
)

// A whole gateway's lease advertises its node's bound addresses: the client port,
// and the WebSocket port when the node has one.
func TestGatewayAdvertisesItsNodesAddresses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		wsAddr string // node.Config.WSAddr
	}{
		{"without a WebSocket port", ""},
		{"with a WebSocket port", "127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := state.NewMemory(state.MemoryConfig{})
			stateAddr, msgAddr := startStores(t, st)
			signer, err := proto.NewSigner([]byte("cluster-test-token-secret-01234"))
			if err != nil {
				t.Fatal(err)
			}
			g, err := NewGateway(GatewayConfig{
				Node: node.Config{Reactor: reactor.Config{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second},
					Signer: signer, WSAddr: tc.wsAddr},
				ID: "gw-1", StateAddr: stateAddr, MsgAddr: msgAddr, LinkAddr: "127.0.0.1:0", Secret: testSecret,
				Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { g.Run(ctx); close(done) }()
			t.Cleanup(func() { cancel(); <-done })
			select {
			case <-g.Ready():
			case <-time.After(10 * time.Second):
				t.Fatal("no lease within 10s")
			}

			wantWS := g.Node().WSAddr()
			if (wantWS != "") != (tc.wsAddr != "") {
				t.Fatalf("node WebSocket address %q for listen address %q", wantWS, tc.wsAddr)
			}
			gws, err := st.Gateways(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(gws) != 1 {
				t.Fatalf("gateway table %+v, want gw-1 alone", gws)
			}
			got := gws[0]
			if want := g.Node().Reactor().Addr().String(); got.Addr != want || got.WSAddr != wantWS || got.LinkAddr != g.LinkAddr() {
				t.Fatalf("advertised %+v, want addr %s, ws %q, link %s", got, want, wantWS, g.LinkAddr())
			}
		})
	}
}
