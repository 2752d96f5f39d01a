package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/floodgate/floodgate/internal/poll"
	"github.com/floodgate/floodgate/internal/testbin"
)

// startProc starts the role args[0] with the test keys it needs (testbin.Start).
func startProc(t *testing.T, args ...string) *testbin.Proc {
	t.Helper()
	return testbin.Start(t, testKeyEnv(args[0]), args...)
}

// A gateway is SIGKILLed under traffic: its users reconnect through ipconf to the
// other gateway and SYNC; every message the server acknowledged reaches its
// recipient, once and in order; the dead gateway's lease lapses, invalidating its
// sessions at once, and control raises gateway_down.
func TestGatewaySIGKILLUnderTrafficLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes")
	}
	lo := "127.0.0.1:0"
	st := startProc(t, "state", "-listen", lo, "-admin", "")
	router := startProc(t, "router", "-listen", lo, "-admin", "", "-state", st.Ready[2])
	msgs := startProc(t, "msg", "-listen", lo, "-admin", "", "-router", router.Ready[2])
	ipconf := startProc(t, "ipconf", "-listen", lo, "-admin", "", "-state", st.Ready[2], "-poll", "100ms")
	control := startProc(t, "control", "-listen", lo, "-admin", "", "-state", st.Ready[2], "-poll", "100ms")
	var gws []*testbin.Proc
	for _, id := range []string{"gw-1", "gw-2"} {
		gws = append(gws, startProc(t, "gateway", "-id", id, "-listen", lo, "-admin", "", "-link", lo,
			"-state", st.Ready[2], "-msg", msgs.Ready[2], "-lease-ttl", "1s", "-shutdown-timeout", "1s"))
	}
	ipURL, ctlURL := "http://"+ipconf.Ready[2], "http://"+control.Ready[2]
	// Wait until ipconf advertises both gateways, so users spread over them.
	poll.Until(t, 10*time.Second, "ipconf advertises both gateways", func() (bool, string) {
		gl, err := client.Discover(context.Background(), nil, ipURL, 1)
		return err == nil && len(gl.Gateways) == 2, fmt.Sprintf("%+v %v", gl, err)
	})

	signer, _ := proto.NewSigner([]byte(testTokenKey))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const users = 24
	type user struct {
		s     *client.Session
		mu    sync.Mutex
		addrs []string
		got   map[string]bool // "from:index" of every message received
		seqs  []uint64
	}
	us := make([]*user, users+1)
	for uid := 1; uid <= users; uid++ {
		u := &user{got: map[string]bool{}}
		us[uid] = u
		u.s = client.NewSession(client.SessionConfig{
			UID: uint64(uid), Token: func() []byte { return signer.Mint(uint64(uid), time.Now().Add(time.Hour)) },
			Ipconf: ipURL, Logger: slog.New(slog.DiscardHandler),
			OnConnect: func(a string) { u.mu.Lock(); u.addrs = append(u.addrs, a); u.mu.Unlock() },
			OnMessage: func(p proto.Push) {
				u.mu.Lock()
				u.got[fmt.Sprintf("%d:%d", p.From, binary.BigEndian.Uint64(p.Payload))] = true
				u.seqs = append(u.seqs, p.Seq)
				u.mu.Unlock()
			},
		})
		go u.s.Run(ctx)
	}
	onGw1 := map[int]bool{}
	for uid := 1; uid <= users; uid++ {
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		if err := us[uid].s.WaitConnected(wctx); err != nil {
			t.Fatalf("uid %d: %v", uid, err)
		}
		wcancel()
		us[uid].mu.Lock()
		onGw1[uid] = us[uid].addrs[0] == gws[0].Ready[2]
		us[uid].mu.Unlock()
	}
	if len(onGw1) == 0 {
		t.Fatal("no user on gw-1")
	}
	// A stranded session: logged in on gw-1, it will never reconnect.
	stranded, err := client.Dial(gws[0].Ready[2], 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer stranded.Close()
	if _, err := stranded.Login(999, signer.Mint(999, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	sc, _ := state.Dial(state.ClientConfig{Addr: st.Ready[2], Secret: []byte(testClusterKey), Logger: slog.New(slog.DiscardHandler)})
	defer sc.Close()
	sc.WaitConnected(ctx)
	if s, ok, _ := sc.Lookup(ctx, 999); !ok || s.Gateway != "gw-1" {
		t.Fatalf("the stranded session is not registered on gw-1: %+v %v", s, ok)
	}

	// Traffic: each user sends to random others; only acknowledged messages are
	// promised, and no message is resent.
	var acked sync.Map // "from:index" → recipient uid
	var wg sync.WaitGroup
	killAt := make(chan struct{})
	for uid := 1; uid <= users; uid++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(uid), 1))
			for i := 0; i < 150; i++ {
				if uid == 1 && i == 50 {
					close(killAt)
				}
				to := 1 + rng.IntN(users)
				if to == uid {
					continue
				}
				sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := us[uid].s.Send(sctx, uint64(to), 0, binary.BigEndian.AppendUint64(nil, uint64(i)))
				scancel()
				if err == nil {
					acked.Store(fmt.Sprintf("%d:%d", uid, i), to)
				}
				time.Sleep(5 * time.Millisecond) // pacing of a chatting user, not synchronisation
			}
		})
	}
	<-killAt
	killed := time.Now()
	gws[0].Kill()
	wg.Wait()

	// The lease lapses: the stranded session is invalid at once, and control says so.
	for {
		if _, ok, _ := sc.Lookup(ctx, 999); !ok {
			break
		}
		if time.Since(killed) > 5*time.Second {
			t.Fatal("the dead gateway's session is still valid 5s after the kill (lease 1s)")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("dead gateway's sessions invalid %v after SIGKILL (lease 1s)", time.Since(killed).Round(10*time.Millisecond))

	// Every acknowledged message arrives.
	n, missing := 0, 0
	wait := time.Now().Add(20 * time.Second)
	acked.Range(func(k, v any) bool {
		n++
		u := us[v.(int)]
		for {
			u.mu.Lock()
			ok := u.got[k.(string)]
			u.mu.Unlock()
			if ok {
				return true
			}
			if time.Now().After(wait) {
				missing++
				t.Errorf("acknowledged message %s to %d never arrived", k, v)
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged messages lost", missing, n)
	}
	moved := 0
	for uid := 1; uid <= users; uid++ {
		u := us[uid]
		u.mu.Lock()
		for i, s := range u.seqs {
			if s != uint64(i+1) {
				t.Errorf("uid %d: message %d has seq %d (duplicate or gap reached the app)", uid, i, s)
				break
			}
		}
		if onGw1[uid] {
			if last := u.addrs[len(u.addrs)-1]; last != gws[1].Ready[2] {
				t.Errorf("uid %d was on gw-1 and is now at %s, not gw-2", uid, last)
			}
			moved++
		}
		u.mu.Unlock()
	}
	t.Logf("%d acknowledged messages all delivered; %d users moved from the killed gateway", n, moved)

	resp, err := http.Get(ctlURL + "/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	var alerts struct {
		Events []struct{ Kind, Gateway string } `json:"events"`
	}
	json.NewDecoder(resp.Body).Decode(&alerts)
	resp.Body.Close()
	down := false
	for _, e := range alerts.Events {
		down = down || (e.Kind == "gateway_down" && e.Gateway == "gw-1")
	}
	if !down {
		t.Errorf("control raised no gateway_down for gw-1: %+v", alerts.Events)
	}
}
