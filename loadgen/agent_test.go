package loadgen

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
)

const testSecret = "loadgen-test-secret-0123"

func startGateway(t *testing.T, mutate func(*node.Config)) string {
	t.Helper()
	return startGatewayWith(t, mutate, nil)
}

// startGatewayWith is startGateway with a look at the node before it runs.
func startGatewayWith(t *testing.T, mutate func(*node.Config), inspect func(*node.Node)) string {
	t.Helper()
	signer, _ := proto.NewSigner([]byte(testSecret))
	cfg := node.Config{
		ID: "gw", Reactor: reactor.Config{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		Signer: signer, Backend: node.NewLocal(msg.NewMemory(10000)), Logger: slog.New(slog.DiscardHandler),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if inspect != nil {
		inspect(n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return n.Reactor().Addr().String()
}

func f64(v float64) *float64 { return &v }

func TestAgentAccountsForEveryMessage(t *testing.T) {
	addr := startGateway(t, nil)
	dir := t.TempDir()
	plan := Plan{
		Seed: 7, Gateways: []string{addr}, Secret: testSecret, Users: 300, ConnectRate: 3000,
		Traffic:   Traffic{Rate: 2000, Pattern: "pairs", PayloadBytes: 100},
		Behaviour: Behaviour{IdleFraction: 0.1},
		Deadline:  Duration(3 * time.Second),
		Phases:    []Phase{{Name: "warm", Duration: Duration(time.Second), Rate: f64(500)}, {Name: "steady", Duration: Duration(2 * time.Second), Rate: f64(2000)}},
	}
	var snaps int
	a, err := New(Options{Plan: plan, OutDir: dir, Name: "a0", Logger: slog.New(slog.DiscardHandler), Progress: func(Snapshot) { snaps++ }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := a.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Messages
	t.Logf("messages %+v; push %+v; connect %+v", m, res.Latency[TagPush], res.Latency[TagConnect])
	if res.Interrupted || res.Established != 300 {
		t.Fatalf("interrupted %v, established %d of 300", res.Interrupted, res.Established)
	}
	// 500/s for 1s + 2000/s for 2s = 4500 slots, give or take the edges.
	if m.Sent < 4000 || m.Sent > 5000 {
		t.Fatalf("sent %d, want about 4500", m.Sent)
	}
	if m.Delivered+m.Lost+m.Failed != m.Sent {
		t.Fatalf("delivered %d + lost %d + failed %d != sent %d", m.Delivered, m.Lost, m.Failed, m.Sent)
	}
	if m.Lost != 0 || m.Failed != 0 || m.Acked != m.Sent {
		t.Fatalf("a fault-free run lost or failed messages: %+v", m)
	}
	p := res.Latency[TagPush]
	if p.Count != int64(m.Delivered) || p.P50 <= 0 || p.P99 < p.P50 || p.Max < p.P99 {
		t.Fatalf("push percentiles %+v for %d deliveries", p, m.Delivered)
	}
	if res.Latency[TagConnect].Count != 300 || res.Latency[TagLag].Count == 0 {
		t.Fatalf("connect %+v, lag %+v", res.Latency[TagConnect], res.Latency[TagLag])
	}
	if snaps == 0 {
		t.Error("no progress snapshot")
	}
	if last, ok := res.Recovery.LastDeliveryBefore(res.Ended); !ok || last.Before(res.Started) || last.After(res.Ended) {
		t.Errorf("the last first delivery %v (%v) is not within the traffic [%v, %v]", last, ok, res.Started, res.Ended)
	}
	// The interval log reads back, with tagged intervals that add up to the totals.
	f, err := os.Open(filepath.Join(dir, "a0.hlog"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := hdrhistogram.NewHistogramLogReader(f)
	var pushCount int64
	intervals := 0
	for {
		h, err := r.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		intervals++
		if h.Tag() == TagPush {
			pushCount += h.TotalCount()
		}
	}
	if pushCount != p.Count || intervals < 3*len(Tags) {
		t.Fatalf("hlog: %d push samples in %d intervals, want %d", pushCount, intervals, p.Count)
	}
	if _, err := os.Stat(filepath.Join(dir, "a0.json")); err != nil {
		t.Fatal(err)
	}
}

func TestPlanValidation(t *testing.T) {
	good := func() Plan {
		return Plan{Gateways: []string{"127.0.0.1:1"}, Secret: testSecret, Users: 1, Phases: []Phase{{Name: "p", Duration: Duration(time.Second)}}}
	}
	if p := good(); p.Validate() != nil {
		t.Fatalf("good plan: %v", p.Validate())
	}
	for name, mut := range map[string]func(*Plan){
		"no target":     func(p *Plan) { p.Gateways = nil },
		"short secret":  func(p *Plan) { p.Secret = "x" },
		"no users":      func(p *Plan) { p.Users = 0 },
		"bad pattern":   func(p *Plan) { p.Traffic.Pattern = "storm" },
		"tiny payload":  func(p *Plan) { p.Traffic.PayloadBytes = 8 },
		"fractions":     func(p *Plan) { p.Behaviour.SlowFraction, p.Behaviour.IdleFraction = 0.6, 0.6 },
		"no phases":     func(p *Plan) { p.Phases = nil },
		"zero duration": func(p *Plan) { p.Phases[0].Duration = 0 },
		"group size":    func(p *Plan) { p.Traffic.Pattern = "groups" },
		"ws share > 1":  func(p *Plan) { p.WebSocketShare, p.WSGateways = 1.5, []string{"127.0.0.1:2"} },
		"ws share < 0":  func(p *Plan) { p.WebSocketShare = -0.1 },
		"ws share NaN":  func(p *Plan) { p.WebSocketShare = math.NaN() },
		"ws list short": func(p *Plan) { p.WSGateways = []string{"127.0.0.1:2", ""} },
		"ws share, no ws address": func(p *Plan) {
			p.WebSocketShare, p.WSGateways = 0.3, []string{""}
		},
	} {
		p := good()
		mut(&p)
		if p.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// When a step adds users, messages go to them only once they have logged in: a
// message to a user still waiting for its first connect would measure connect time
// as push latency.
func TestRecipientsOfAStepGrowWithFirstLogins(t *testing.T) {
	a := &Agent{recipients: []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}
	for i := range 10 {
		a.users = append(a.users, &user{idx: int32(i), state: uOffline})
	}
	logIn := func(idx ...int) {
		for _, i := range idx {
			a.users[i].state = uActive
		}
		a.advanceLoginFrontier()
	}
	a.recvTarget = 4
	a.limitRecipients(4) // the first step: 4 users, all logged in before traffic
	logIn(0, 1, 2, 3)
	for _, tc := range []struct {
		name   string
		target int
		login  []int
		want   int
	}{
		{"a step raises the target; nobody new is in yet", 10, nil, 4},
		{"three of the step's users logged in", 10, []int{4, 5, 6}, 7},
		{"a refused user holds the frontier while later ones log in", 10, []int{8, 9}, 7},
		{"the refused user gets in at last", 10, []int{7}, 10},
		{"first logins never push past the target", 8, nil, 8},
	} {
		a.recvTarget = tc.target
		logIn(tc.login...)
		a.followLogins()
		if a.recvLimit != tc.want {
			t.Errorf("%s: %d recipients, want %d", tc.name, a.recvLimit, tc.want)
		}
	}
	a.users[2].state, a.users[2].lostAt = uOffline, 1 // logged in once, now reconnecting
	a.loginFrontier = 0
	a.advanceLoginFrontier()
	if a.loginFrontier != 10 {
		t.Errorf("a user who logged in once and is reconnecting stops the frontier at %d", a.loginFrontier)
	}
}
