package scenario

import (
	"strings"
	"testing"
	"time"
)

const hostileSrc = `name: ho
topology: {gateways: 2, agents: 2}
clients: {count: 1000}
behaviours:
  hostile:
    conns: 1000
    slowloris: {share: 30%}
    prelogin: {share: 30%, bound: 15s}
    garbage: {conns: 50}
    send_flood: {share: 10%}
phases:
  - {name: steady, duration: 10s}
gates:
  - hostile_over_bound == 0
  - hostile_open_at_end == 0
  - hostile_close_slowloris p99 < 12s
  - hostile_close max < 20s
`

// behaviours.hostile resolves shares and counts, fills each class's default
// bound, and its gate metrics read with their kinds.
func TestHostileSectionResolves(t *testing.T) {
	s, err := Parse("ho.yaml", []byte(hostileSrc))
	if err != nil {
		t.Fatal(err)
	}
	got := s.Behaviours.Hostile.Specs()
	want := []HostileSpec{
		{"slowloris", 300, 12 * time.Second},
		{"prelogin", 300, 15 * time.Second},
		{"garbage", 50, time.Second},
		{"send_flood", 100, 5 * time.Second},
	}
	if len(got) != len(want) {
		t.Fatalf("specs %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("spec %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if n := s.Behaviours.Hostile.Total(); n != 750 {
		t.Errorf("total %d, want 750", n)
	}
	kinds := []string{KindCount, KindCount, KindLatency, KindLatency}
	for i, g := range s.Gates {
		if g.Kind() != kinds[i] {
			t.Errorf("%s: kind %s, want %s", g.Text, g.Kind(), kinds[i])
		}
	}
	if (*Hostile)(nil).Specs() != nil {
		t.Error("no hostile section should resolve to no classes")
	}
}

// Every hostile mistake names its line and what was expected.
func TestHostileMistakesPointAtTheirLine(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, where, reason string
	}{
		{"unknown class", "garbage: {conns: 50}", "teapot: {conns: 50}", "ho.yaml:9:5", "behaviours.hostile.teapot: unknown key"},
		{"share and conns", "garbage: {conns: 50}", "garbage: {conns: 50, share: 5%}", "ho.yaml:9:14", "give share or conns, not both"},
		{"neither", "garbage: {conns: 50}", "garbage: {bound: 1s}", "ho.yaml:9:14", "needs a share"},
		{"share without conns", "    conns: 1000\n", "", "ho.yaml:6:16", "a share needs behaviours.hostile.conns"},
		{"shares over 100%", "send_flood: {share: 10%}", "send_flood: {share: 50%}", "ho.yaml:6:5", "add up to 110%"},
		{"bad bound", "bound: 15s", "bound: soon", "ho.yaml:8:35", `behaviours.hostile.prelogin.bound: "soon" is not a duration`},
		{"too many per agent", "conns: 1000\n", "conns: 100k\n", "ho.yaml:6:5", "per agent: at most 18000"},
		{"worst window", "hostile_close max < 20s", "worst 10s hostile_close max < 20s", "ho.yaml:17:5", "without windows"},
		{"a phase gate", "duration: 10s}", "duration: 10s, gates: [hostile_opened > 0]}", "ho.yaml:12:5", "over the whole run: put it under gates:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rejectedAt(t, "ho.yaml", strings.Replace(hostileSrc, tc.from, tc.to, 1), tc.where, tc.reason)
		})
	}
}

// The hostile scenarios hold what their gates need:
// hostile at least 5,000 connections beside 100,000 clients, hostile-small a
// class of each kind, both gated on every hostile connection closing in bound.
func TestHostileScenariosHoldTheirConnections(t *testing.T) {
	read := map[string]*Scenario{}
	for name, min := range map[string]int64{"hostile": 5000, "hostile-small": 1000} {
		s, err := Load("../scenarios/" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		read[name] = s
		if n := s.Behaviours.Hostile.Total(); n < min || len(s.Behaviours.Hostile.Specs()) != len(hostileClassKeys()) {
			t.Errorf("%s: %d hostile connections in %d classes, want >= %d in all %d", name, n,
				len(s.Behaviours.Hostile.Specs()), min, len(hostileClassKeys()))
		}
		gates := map[string]bool{}
		for _, g := range s.Gates {
			gates[g.Text] = true
		}
		for _, g := range []string{"hostile_over_bound == 0", "hostile_open_at_end == 0", "push p99 < 100ms", "lost == 0", "process_deaths == 0"} {
			if !gates[g] {
				t.Errorf("%s: no gate %q", name, g)
			}
		}
	}
	if read["hostile"].Clients.Count < 100_000 {
		t.Errorf("hostile: %d clients, want 100k", read["hostile"].Clients.Count)
	}
}
