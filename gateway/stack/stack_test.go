package stack

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/state"
)

// testKeys are the stack tests' keys: three different ones, as in production.
var testKeys = Keys{
	Token:   []byte("stack-test-token-key-0123456789abcdef"),
	Cluster: []byte("stack-test-cluster-key-0123456789abcdef"),
	Admin:   []byte("stack-test-admin-token-0123456789abcdef"),
}

func up(t *testing.T, gateways int) *Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The rate limits off: these tests send thousands of messages per user as fast
	// as the stack takes them (the limits are tested in gateway/node).
	s, err := Up(ctx, Config{Keys: testKeys, Gateways: gateways, LeaseTTL: time.Second, Rates: &node.Rates{},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stack stopped with errors: %v", err)
		}
	})
	return s
}

func token(uid uint64) []byte {
	s, _ := proto.NewSigner(testKeys.Token)
	return s.Mint(uid, time.Now().Add(time.Hour))
}

// received collects one session's messages.
type received struct {
	mu    sync.Mutex
	seqs  []uint64
	lat   []time.Duration
	sends map[int64]int // sender's message index (ClientTS) → times received
	cond  *sync.Cond
}

func newReceived() *received {
	r := &received{sends: map[int64]int{}}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *received) on(p proto.Push) {
	sent := time.Unix(0, int64(binary.BigEndian.Uint64(p.Payload)))
	r.mu.Lock()
	r.seqs = append(r.seqs, p.Seq)
	r.lat = append(r.lat, time.Since(sent))
	r.sends[p.ClientTS]++
	r.cond.Broadcast()
	r.mu.Unlock()
}

// wait waits until n distinct sends have arrived.
func (r *received) wait(t *testing.T, n int, d time.Duration) {
	t.Helper()
	timer := time.AfterFunc(d, func() { r.mu.Lock(); r.cond.Broadcast(); r.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(d)
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.sends) < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d", len(r.seqs), n)
		}
		r.cond.Wait()
	}
}

// checkInOrderOnce checks that seqs reached the app once each, in order, and that
// they carry exactly the n sends, each once: a sender whose connection swallowed a
// SEND_ACK resends with the same client message id, which the store deduplicates.
func (r *received) checkInOrderOnce(t *testing.T, n int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sends) != n || len(r.seqs) != n {
		t.Fatalf("received %d messages carrying %d distinct sends, want %d of each", len(r.seqs), len(r.sends), n)
	}
	for i, s := range r.seqs {
		if s != uint64(i+1) {
			t.Fatalf("message %d has seq %d: not once and in order", i, s)
		}
	}
}

func session(ctx context.Context, t *testing.T, uid uint64, gateways []string, ipconf string, on func(proto.Push)) *client.Session {
	t.Helper()
	return startSession(ctx, t, client.SessionConfig{UID: uid, Gateways: gateways, Ipconf: ipconf, OnMessage: on})
}

// startSession runs a session with cfg (its token and logger filled in) and waits
// until it has logged in.
func startSession(ctx context.Context, t *testing.T, cfg client.SessionConfig) *client.Session {
	t.Helper()
	uid := cfg.UID
	cfg.Token, cfg.Logger = func() []byte { return token(uid) }, slog.New(slog.DiscardHandler)
	s := client.NewSession(cfg)
	go s.Run(ctx)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.WaitConnected(wctx); err != nil {
		t.Fatalf("uid %d: %v", uid, err)
	}
	return s
}

func stamp() []byte { return binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano())) }

// sendAll sends n messages from s to uid `to`, one after the other. Session.Send
// resends by itself (same client message id) across reconnects until the message is
// acknowledged, so a failure here is the test's failure.
func sendAll(ctx context.Context, t *testing.T, s *client.Session, to uint64, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := s.Send(ctx, to, int64(i), stamp()); err != nil {
			t.Errorf("send %d to %d: %v", i, to, err)
			return
		}
	}
}

// exchangeOnceInOrder has a (uid 1) and b (uid 2) send each other n messages at
// once and checks that each side's app got all n, once each and in order.
func exchangeOnceInOrder(ctx context.Context, t *testing.T, a, b *client.Session, ra, rb *received, n int) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() { sendAll(ctx, t, a, 2, n) })
	wg.Go(func() { sendAll(ctx, t, b, 1, n) })
	wg.Wait()
	ra.wait(t, n, 30*time.Second)
	rb.wait(t, n, 30*time.Second)
	ra.checkInOrderOnce(t, n)
	rb.checkInOrderOnce(t, n)
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}

// Users on two different gateways exchange 10,000 messages each way: every seq
// reaches the app once, in order.
func TestUsersOnTwoGatewaysExchange10000Messages(t *testing.T) {
	st := up(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 10000
	ra, rb := newReceived(), newReceived()
	a := session(ctx, t, 1, []string{st.Gateways[0].Addr}, "", ra.on)
	b := session(ctx, t, 2, []string{st.Gateways[1].Addr}, "", rb.on)
	exchangeOnceInOrder(ctx, t, a, b, ra, rb, n)
	all := append(slices.Clone(ra.lat), rb.lat...)
	t.Logf("end-to-end latency over %d messages (SEND → stored → routed → PUSH, two gateways): p50 %v, p99 %v, max %v",
		len(all), percentile(all, 50), percentile(all, 99), percentile(all, 100))
}

// A user on a gateway's WebSocket port, found through ipconf's ws addresses, and a
// user on raw TCP exchange 1,000 messages each way: every seq once, in order.
func TestWebSocketAndTCPUsersExchangeThroughTheStack(t *testing.T) {
	st := up(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 1000
	ra, rb := newReceived(), newReceived()
	var onGateway string
	a := startSession(ctx, t, client.SessionConfig{UID: 1, Ipconf: st.Ipconf, WebSocket: true, OnMessage: ra.on,
		OnConnect: func(addr string) { onGateway = addr }})
	b := session(ctx, t, 2, []string{st.Gateways[1].Addr}, "", rb.on)
	if !slices.ContainsFunc(st.Gateways, func(g Gateway) bool { return g.WS == onGateway }) {
		t.Fatalf("the WebSocket session logged in at %q, not at a gateway's WebSocket port %+v", onGateway, st.Gateways)
	}
	exchangeOnceInOrder(ctx, t, a, b, ra, rb, n)
}

// An offline recipient gets everything on LOGIN + SYNC.
func TestOfflineRecipientCatchesUp(t *testing.T) {
	st := up(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := session(ctx, t, 10, []string{st.Gateways[0].Addr}, "", nil)
	sendAll(ctx, t, a, 20, 700)
	rb := newReceived()
	session(ctx, t, 20, []string{st.Gateways[1].Addr}, "", rb.on)
	rb.wait(t, 700, 20*time.Second)
	rb.checkInOrderOnce(t, 700)
}

// Draining a gateway through control moves every one of its clients to the other
// gateway (ipconf stops advertising it) without losing a message.
func TestDrainMovesClientsWithoutLoss(t *testing.T) {
	st := up(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const users = 20
	const each = 60
	got := make([]*received, users+1)
	where := make([]string, users+1)
	var whereMu sync.Mutex
	sessions := make([]*client.Session, users+1)
	for uid := uint64(1); uid <= users; uid++ {
		got[uid] = newReceived()
		s := client.NewSession(client.SessionConfig{UID: uid, Token: func() []byte { return token(uid) },
			Ipconf: st.Ipconf, OnMessage: got[uid].on, Logger: slog.New(slog.DiscardHandler),
			OnConnect: func(addr string) { whereMu.Lock(); where[uid] = addr; whereMu.Unlock() }})
		go s.Run(ctx)
		sessions[uid] = s
	}
	for _, s := range sessions[1:] {
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.WaitConnected(wctx); err != nil {
			t.Fatal(err)
		}
		wcancel()
	}
	var wg sync.WaitGroup
	for uid := uint64(1); uid <= users; uid++ {
		wg.Go(func() { sendAll(ctx, t, sessions[uid], uid%users+1, each) })
	}
	// Drain gw-1 while the traffic runs.
	body, _ := json.Marshal(map[string]any{"gateway": "gw-1", "batch": 5, "interval": "50ms", "retry_after": "100ms"})
	req, _ := http.NewRequest(http.MethodPost, st.Control+"/v1/drain", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+string(st.Keys.Admin))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var dr map[string]any
	json.NewDecoder(resp.Body).Decode(&dr)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("drain: %s %v", resp.Status, dr)
	}
	wg.Wait()
	for uid := uint64(1); uid <= users; uid++ {
		got[uid].wait(t, each, 30*time.Second)
		got[uid].checkInOrderOnce(t, each)
	}
	// Everyone ends up on gw-2.
	deadline := time.Now().Add(10 * time.Second)
	for {
		whereMu.Lock()
		onDrained := 0
		for _, a := range where[1:] {
			if a == st.Gateways[0].Addr {
				onDrained++
			}
		}
		whereMu.Unlock()
		if onDrained == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d clients still on the drained gateway", onDrained)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stopping a gateway releases its lease: every one of its sessions is invalid at
// once in the state service.
func TestGatewayGoneInvalidatesItsSessionsAtOnce(t *testing.T) {
	st := up(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for uid := uint64(1); uid <= 5; uid++ {
		session(ctx, t, uid, []string{st.Gateways[0].Addr}, "", nil)
	}
	sc, err := state.Dial(state.ClientConfig{Addr: st.State, Secret: testKeys.Cluster, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	sc.WaitConnected(wctx)
	for uid := uint64(1); uid <= 5; uid++ {
		if s, ok, err := sc.Lookup(ctx, uid); err != nil || !ok || s.Gateway != "gw-1" {
			t.Fatalf("uid %d before: %+v %v %v", uid, s, ok, err)
		}
	}
	cancel() // the clients go away quietly; their unregistrations may or may not arrive
	st.StopGateway("gw-1")
	for uid := uint64(1); uid <= 5; uid++ {
		if _, ok, err := sc.Lookup(context.Background(), uid); err != nil || ok {
			t.Fatalf("uid %d still valid after its gateway released its lease (%v)", uid, err)
		}
	}
}
