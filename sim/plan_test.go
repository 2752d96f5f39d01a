package sim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/netns"
	"github.com/floodgate/floodgate/scenario"
)

// The scenario's relogin rates reach the agents' plan: the scenario's for every
// phase, a phase's own where it sets one.
func TestPlanCarriesReloginRates(t *testing.T) {
	s, err := scenario.Parse("re.yaml", []byte(`name: re
topology: {gateways: 2, agents: 1}
clients: {count: 100}
behaviours: {relogin: 20/s}
phases:
  - {name: quiet, duration: 5s, relogin: 0/s}
  - {name: default, duration: 5s}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := planFor(s, "http://127.0.0.1:1", "0123456789abcdef")
	if p.Behaviour.ReloginPerSec != 20 || p.Phases[0].ReloginPerSec == nil || *p.Phases[0].ReloginPerSec != 0 || p.Phases[1].ReloginPerSec != nil {
		t.Fatalf("plan relogin %v, phases %v %v", p.Behaviour.ReloginPerSec, p.Phases[0].ReloginPerSec, p.Phases[1].ReloginPerSec)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

// traffic.trace reaches the agents' plan; unset, the plan keeps the load
// generator's default.
func TestPlanCarriesTraceFraction(t *testing.T) {
	parse := func(traffic string) loadgen.Plan {
		t.Helper()
		s, err := scenario.Parse("tr.yaml", []byte(`name: tr
topology: {gateways: 1, agents: 1}
clients: {count: 100}
traffic: {rate: 10/s`+traffic+`}
phases:
  - {name: steady, duration: 5s}
`))
		if err != nil {
			t.Fatal(err)
		}
		p := planFor(s, "http://127.0.0.1:1", "0123456789abcdef")
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := parse(", trace: 5%"); *p.Traffic.Trace != 0.05 {
		t.Errorf("trace 5%%: plan has %v", *p.Traffic.Trace)
	}
	if p := parse(", trace: 0"); *p.Traffic.Trace != 0 {
		t.Errorf("trace 0: plan has %v", *p.Traffic.Trace)
	}
	if p := parse(""); *p.Traffic.Trace != loadgen.DefaultTraceFraction {
		t.Errorf("unset: plan has %v, want the default %v", *p.Traffic.Trace, loadgen.DefaultTraceFraction)
	}
}

// behaviours.hostile reaches the agents' plan, each class with its connections
// and bound, and the plan validates.
func TestPlanCarriesHostileClasses(t *testing.T) {
	s, err := scenario.Parse("ho.yaml", []byte(`name: ho
topology: {gateways: 2, agents: 1}
clients: {count: 100}
behaviours:
  hostile: {conns: 100, prelogin: {share: 50%}, sync_loop: {conns: 7, bound: 3s}}
phases:
  - {name: steady, duration: 5s}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := planFor(s, "http://127.0.0.1:1", "0123456789abcdef")
	want := []loadgen.HostileClass{
		{Class: loadgen.HostilePrelogin, Conns: 50, Bound: loadgen.Duration(12 * time.Second)},
		{Class: loadgen.HostileSyncLoop, Conns: 7, Bound: loadgen.Duration(3 * time.Second)},
	}
	if !slices.Equal(p.Hostile, want) {
		t.Fatalf("plan hostile %+v, want %+v", p.Hostile, want)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

// state and msg never share a key prefix in one Redis: both keep "<prefix>epoch".
func TestRedisPrefixesDifferPerService(t *testing.T) {
	st, msg := redisPrefix("abc123", "state"), redisPrefix("abc123", "msg")
	if st == msg || strings.HasPrefix(st, msg) || strings.HasPrefix(msg, st) {
		t.Fatalf("state prefix %q and msg prefix %q overlap", st, msg)
	}
	if other := redisPrefix("xyz789", "msg"); other == msg {
		t.Fatalf("two runs share the prefix %q", msg)
	}
}

// clients.websocket_share reaches the agents' plan, which validates with the
// gateways' WebSocket addresses left to ipconf's list.
func TestPlanCarriesWebSocketShare(t *testing.T) {
	for _, tc := range []struct {
		clients string
		want    float64
	}{
		{"{count: 100, websocket_share: 30%}", 0.3},
		{"{count: 100}", 0},
	} {
		s, err := scenario.Parse("ws.yaml", []byte(`name: ws
topology: {gateways: 2, agents: 1}
clients: `+tc.clients+`
phases:
  - {name: steady, duration: 5s}
`))
		if err != nil {
			t.Fatal(err)
		}
		p := planFor(s, "http://127.0.0.1:1", "0123456789abcdef")
		if p.WebSocketShare != tc.want {
			t.Fatalf("clients %s: plan websocket_share %v, want %v", tc.clients, p.WebSocketShare, tc.want)
		}
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
	}
}

// Every gateway listens on a WebSocket port of its own host, apart from its
// other ports.
func TestGatewaysListenOnAWebSocketPort(t *testing.T) {
	s, err := scenario.Parse("gw.yaml", []byte(`name: gw
topology: {gateways: 2, agents: 1}
clients: {count: 100}
phases:
  - {name: steady, duration: 5s}
`))
	if err != nil {
		t.Fatal(err)
	}
	n, err := netns.Build(context.Background(), netns.Spec{Run: "wstest", Hosts: []string{"core", "gw-1", "gw-2"}, Mode: netns.ModeLoopback})
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{sc: s, net: n}
	seen := map[string]bool{}
	for i := 1; i <= 2; i++ {
		sp := r.gatewaySpec(i)
		k := slices.Index(sp.args, "-ws-listen")
		if k < 0 || k+1 >= len(sp.args) {
			t.Fatalf("gw-%d: no -ws-listen in %q", i, sp.args)
		}
		ws := sp.args[k+1]
		want := hostPort(n.Host(fmt.Sprintf("gw-%d", i)), portGatewayWS)
		if ws != want || seen[ws] || slices.Contains([]string{sp.addr, sp.admin}, ws) {
			t.Fatalf("gw-%d: -ws-listen %q, want %q, distinct from %q and %q and every other gateway's", i, ws, want, sp.addr, sp.admin)
		}
		seen[ws] = true
	}
}
