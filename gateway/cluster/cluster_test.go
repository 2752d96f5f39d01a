package cluster

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeGateway holds a fixed set of sessions and records what is delivered to them.
type fakeGateway struct {
	sessions []node.Session
	mu       sync.Mutex
	got      map[uint64][]uint64 // uid → seqs delivered
	changed  chan struct{}       // a delivery happened (buffered 1)
}

func newFakeGateway(sessions ...node.Session) *fakeGateway {
	return &fakeGateway{sessions: sessions, got: map[uint64][]uint64{}, changed: make(chan struct{}, 1)}
}

func (g *fakeGateway) Deliver(m *msg.Message) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.sessions {
		if s.UID == m.To {
			g.got[m.To] = append(g.got[m.To], m.Seq)
			select {
			case g.changed <- struct{}{}:
			default:
			}
			return true
		}
	}
	return false
}

func (g *fakeGateway) Stats() reactor.Stats { return reactor.Stats{} }
func (g *fakeGateway) Sessions() int        { return len(g.sessions) }
func (g *fakeGateway) EachSession(fn func(node.Session)) {
	for _, s := range g.sessions {
		fn(s)
	}
}
func (g *fakeGateway) Drain(gwlink.DrainRequest) gwlink.DrainStatus { return gwlink.DrainStatus{} }
func (g *fakeGateway) Undrain() gwlink.DrainStatus                  { return gwlink.DrainStatus{} }

// waitDelivered waits until uid has been delivered want (in that order).
func (g *fakeGateway) waitDelivered(t *testing.T, uid uint64, want []uint64) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		g.mu.Lock()
		got := slices.Clone(g.got[uid])
		g.mu.Unlock()
		if slices.Equal(got, want) {
			return
		}
		if len(got) > len(want) {
			t.Fatalf("uid %d got %v, want %v", uid, got, want)
		}
		select {
		case <-g.changed:
		case <-timeout:
			t.Fatalf("uid %d got %v, want %v", uid, got, want)
		}
	}
}

func (g *fakeGateway) delivered(uid uint64) []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.got[uid])
}

// A gateway that loses its lease (the state service restarted, or it could not renew
// in time) registers its sessions again under a new epoch and pushes them what they
// have not acknowledged: messages stored while its sessions were invalid were left
// for a SYNC that these still-connected clients would never send.
func TestLeaseLossReregistersAndPushesWhatWasStranded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := state.NewMemory(state.MemoryConfig{})
	store := msg.NewMemory(64)
	gw := newFakeGateway(node.Session{UID: 1, ID: 11}, node.Session{UID: 2, ID: 12})
	c, err := New(Config{ID: "gw-1", LinkAddr: "127.0.0.1:0", Secret: []byte("cluster-test-secret-0123"),
		State: st, Msgs: store, LeaseTTL: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c.Attach(gw)
	done := make(chan struct{})
	go func() { c.Run(ctx, "127.0.0.1:7000"); close(done) }()
	defer func() { cancel(); <-done }()
	<-c.Ready()
	first := c.epoch.Load()
	for _, s := range gw.sessions {
		if _, err := c.Login(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	// User 1 has one message it acknowledged and two it has not; user 2 has none.
	var m msg.Message
	for range 3 {
		m = msg.Message{From: 9, To: 1, Payload: []byte("x")}
		if err := store.Append(ctx, &m); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Ack(ctx, 1, 1, m.Epoch); err != nil {
		t.Fatal(err)
	}
	if len(gw.delivered(1)) != 0 {
		t.Fatal("delivered before any lease loss")
	}

	// The lease ends under the gateway's feet: its sessions are invalid at once.
	if err := st.Release(ctx, "gw-1", first); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Lookup(ctx, 1); ok {
		t.Fatal("session still valid after its gateway's lease ended")
	}

	gw.waitDelivered(t, 1, []uint64{2, 3})
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(c.m.reregistered) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v sessions registered again, want 2", testutil.ToFloat64(c.m.reregistered))
		}
	}
	for _, uid := range []uint64{1, 2} {
		s, ok, err := st.Lookup(ctx, uid)
		if err != nil || !ok || s.Gateway != "gw-1" || s.Epoch == first || s.Epoch != c.epoch.Load() {
			t.Fatalf("uid %d after re-registration: %+v ok=%v err=%v (old epoch %d, now %d)", uid, s, ok, err, first, c.epoch.Load())
		}
	}
	if got := gw.delivered(2); len(got) != 0 {
		t.Errorf("uid 2 has nothing stored but got %v", got)
	}
}
