package stack

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/state"
)

// The token key and the cluster key are separate powers: a token minted with the
// cluster key (which ipconf, control, state, msg and router hold) is refused at
// LOGIN, and the token key (which token minters hold) opens no internal link.
// With one shared secret, both would be accepted.
func TestClusterKeyMintsNoTokensAndTokenKeyOpensNoLinks(t *testing.T) {
	st := up(t, 1)
	forged, _ := proto.NewSigner(st.Keys.Cluster)
	c, err := client.Dial(st.Gateways[0].Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.NetConn().SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Login(7, forged.Mint(7, time.Now().Add(time.Hour)))
	if k, ok := errors.AsType[*client.KickError](err); !ok || k.Reason != proto.ReasonAuth {
		t.Fatalf("login with a token minted by the cluster key: %v, want KICK AUTH", err)
	}
	loginRaw(t, st.Gateways[0].Addr, 7) // the token key's token is accepted

	sc, err := state.Dial(state.ClientConfig{Addr: st.State, Secret: st.Keys.Token, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := sc.WaitConnected(ctx); err == nil {
		t.Fatal("a state link authenticated with the token key")
	}
}

func TestUpRefusesWeakOrSharedKeys(t *testing.T) {
	long := []byte("0123456789abcdef0123456789abcdef")
	for _, tc := range []struct {
		name string
		keys Keys
	}{
		{"short token key", Keys{Token: []byte("sixteen-byte-key")}},
		{"short cluster key", Keys{Cluster: []byte("cluster")}},
		{"token key is the cluster key", Keys{Token: long, Cluster: long}},
		{"admin token is the cluster key", Keys{Cluster: long, Admin: long}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Up(context.Background(), Config{Keys: tc.keys, Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				s.Close()
				t.Fatal("Up accepted it")
			}
		})
	}
}
