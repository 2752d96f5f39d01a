package sim

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/loadgen"
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
