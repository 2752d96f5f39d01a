package scenario

import (
	"errors"
	"strings"
	"testing"
)

// minimal is the smallest scenario the checks accept: a base for the checks
// that the fuller fixtures cannot reach.
const minimal = `name: m
topology: {gateways: 1, agents: 1}
clients: {count: 10}
phases:
  - {name: only, duration: 10s}
`

// Each check of Scenario.check refuses its impossible value with exactly the
// message it has always given, at the line and column of the value's block.
// The cases pin the messages word for word, so that moving a check between
// functions cannot change what a user reads.
func TestEachCheckRefusesItsValueWithItsMessage(t *testing.T) {
	tests := []struct {
		name  string
		file  string   // the file name Parse is given; "" is ok.yaml
		src   string   // the fixture edited; "" is valid
		edits []string // old, new pairs applied once each, in order
		want  string   // one of the errors, whole
	}{
		// The scenario itself.
		{name: "a name with a space", file: "o k.yaml", edits: []string{"name: ok", "name: o k"},
			want: `o k.yaml:1:1: name: "o k": use letters, digits and dashes`},
		{name: "a name that is not the file's", file: "other.yaml",
			want: "other.yaml:1:1: name: \"ok\" differs from the file name \"other\": make them match, so `make scenario S=ok` finds it"},
		{name: "an unknown mode", edits: []string{"seed: 7\n", "seed: 7\nmode: ring\n"},
			want: `ok.yaml:1:1: mode: "ring": expected auto, netns or loopback`},
		// Topology.
		{name: "too many gateways", edits: []string{"gateways: 2", "gateways: 101"},
			want: "ok.yaml:5:3: topology.gateways: 101: expected 1 to 100"},
		{name: "no agent", edits: []string{"agents: 2", "agents: 0"},
			want: "ok.yaml:5:3: topology.agents: 0: expected 1 to 100"},
		{name: "too many agents", edits: []string{"agents: 2", "agents: 101"},
			want: "ok.yaml:5:3: topology.agents: 101: expected 1 to 100"},
		{name: "an unknown state backend", edits: []string{"state: memory", "state: disk"},
			want: `ok.yaml:7:12: topology.backend.state: "disk": expected memory or redis`},
		{name: "an unknown msg backend", edits: []string{"msg: redis}", "msg: disk}"},
			want: `ok.yaml:7:12: topology.backend.msg: "disk": expected memory, redis or redis-replicated`},
		{name: "a cluster with three replicas", edits: []string{"  backend: ", "  redis: {mode: cluster, replicas: 3}\n  backend: "},
			want: "ok.yaml:7:10: topology.redis.replicas: 3: expected 0 to 2"},
		// Clients and components.
		{name: "no client", edits: []string{"count: 5k", "count: 0"},
			want: "ok.yaml:11:3: clients.count: must be at least 1"},
		{name: "too many clients per agent", edits: []string{"count: 5k", "count: 40k"},
			want: "ok.yaml:11:3: clients.count: 40000 clients over 2 agents is 20000 per agent: at most 18000 fit in one process (RLIMIT_NOFILE); use more agents"},
		{name: "too many connections per gateway", edits: []string{"max_conns: 10k", "max_conns: 20k"},
			want: "ok.yaml:9:12: components.gateway.max_conns: 20000: at most 18000 fit in one gateway process (RLIMIT_NOFILE); use more gateways"},
		{name: "a watermark above the cap", edits: []string{"write_high_water: 64KiB", "write_high_water: 2MiB"},
			want: "ok.yaml:9:12: components.gateway.write_high_water: 2MiB is above write_hard_cap 1MiB"},
		// Traffic.
		{name: "an unknown pattern", edits: []string{"  payload: 100B\n", "  payload: 100B\n  pattern: ring\n"},
			want: `ok.yaml:14:3: traffic.pattern: "ring": expected pairs, zipf or groups`},
		{name: "a zipf exponent of 1 or less", edits: []string{"  payload: 100B\n", "  payload: 100B\n  pattern: zipf\n  zipf_s: 0.5\n"},
			want: "ok.yaml:14:3: traffic.zipf_s: 0.5: must be greater than 1"},
		{name: "groups without a size", edits: []string{"  payload: 100B\n", "  payload: 100B\n  pattern: groups\n"},
			want: "ok.yaml:14:3: traffic.group_size: the groups pattern needs a group_size of at least 2"},
		{name: "a payload below the header", edits: []string{"payload: 100B", "payload: 16B"},
			want: "ok.yaml:14:3: traffic.payload: 16B: expected 24B (the measurement header) to 60KiB"},
		{name: "a payload above 60KiB", edits: []string{"payload: 100B", "payload: 61KiB"},
			want: "ok.yaml:14:3: traffic.payload: 61KiB: expected 24B (the measurement header) to 60KiB"},
		// Behaviours.
		{name: "slow and idle over 100%", edits: []string{"  churn: 50/s\n", "  churn: 50/s\n  idle: 99%\n"},
			want: "ok.yaml:17:3: behaviours: slow (0.05) and idle (0.99) fractions add up to more than 100%"},
		{name: "a relogin with one gateway", src: minimal, file: "m.yaml", edits: []string{"clients: {count: 10}\n", "clients: {count: 10}\nbehaviours: {relogin: 1/s}\n"},
			want: "m.yaml:4:13: behaviours.relogin: a relogin goes to another gateway: it needs at least 2 gateways, the topology has 1"},
		{name: "a hostile section without a class", src: minimal, file: "m.yaml", edits: []string{"clients: {count: 10}\n", "clients: {count: 10}\nbehaviours: {hostile: {conns: 10}}\n"},
			want: "m.yaml:4:23: behaviours.hostile: no class given; expected some of: slowloris, prelogin, garbage, oversized, send_flood, sync_loop, made_up_recipients"},
		{name: "too many hostile connections per gateway", src: hostileSrc, file: "ho.yaml",
			edits: []string{"{gateways: 2, agents: 2}", "{gateways: 1, agents: 10}", "conns: 1000\n", "conns: 30k\n"},
			want:  "ho.yaml:6:5: behaviours.hostile: 1000 clients and 21050 hostile connections over 1 gateways is 22050 per gateway: at most 18000 fit in one process (RLIMIT_NOFILE); use more gateways"},
		// Phases.
		{name: "no phase", src: minimal, file: "m.yaml", edits: []string{"  - {name: only, duration: 10s}\n", "", "phases:\n", "phases: []\n"},
			want: "m.yaml:1:1: phases: at least one phase is required"},
		{name: "a phase of no time", edits: []string{"duration: 10s", "duration: 0s"},
			want: "ok.yaml:20:5: phases[0].duration: must be positive"},
		{name: "a phase with more clients than the scenario", edits: []string{"    rate: 500/s\n", "    rate: 500/s\n    clients: 6k\n"},
			want: "ok.yaml:20:5: phases[0].clients: 6000 is more than clients.count (5000)"},
		{name: "a phase with fewer clients than the one before", src: stepped, file: "steps.yaml",
			edits: []string{"rate: 1k/s}", "rate: 1k/s, clients: 800}", "rate: 2k/s}", "rate: 2k/s, clients: 500}"},
			want:  "steps.yaml:7:5: phases[1].clients: 500 is fewer than an earlier phase's 800: clients only step up"},
		{name: "a phase's slow readers and idle over 100%", edits: []string{"  churn: 50/s\n", "  churn: 50/s\n  idle: 50%\n", "    rate: 500/s\n", "    rate: 500/s\n    slow_fraction: 60%\n"},
			want: "ok.yaml:21:5: phases[0].slow_fraction: with idle 0.5 adds up to more than 100%"},
		// Faults.
		{name: "a fault without an action", edits: []string{"{at: 10s, kill: gw-2}", "{at: 10s}"},
			want: "ok.yaml:26:9: phases[1].faults[0]: exactly one action expected (kill, pause, restart, drain, scale_out, reconnect_storm, connect_flood, partition, loss, bandwidth or blackhole); got 0"},
		{name: "a fault past its phase", edits: []string{"at: 25s, pause", "at: 30s, pause"},
			want: "ok.yaml:28:9: phases[1].faults[2].at: 30s is not within the phase's 30s"},
		{name: "a kill of an unknown process", edits: []string{"kill: gw-2", "kill: gw-0"},
			want: `ok.yaml:26:9: phases[1].faults[0].kill: "gw-0": expected one of state, msg, router, ipconf, control, gw-1, gw-2, redis`},
		{name: "a pause of an unknown process", edits: []string{"pause: msg", "pause: mail"},
			want: `ok.yaml:28:9: phases[1].faults[2].pause: "mail": expected one of state, msg, router, ipconf, control, gw-1, gw-2, redis`},
		{name: "a pause without a length", edits: []string{", for: 2s", ""},
			want: "ok.yaml:28:9: phases[1].faults[2].for: a pause needs a positive for: duration"},
		{name: "a drain of a gateway beyond the topology", edits: []string{"{at: 10s, kill: gw-2}", "{at: 10s, drain: gw-3}"},
			want: `ok.yaml:26:9: phases[1].faults[0].drain: "gw-3": expected a gateway, gw-1 to gw-2`},
		{name: "a drain of a process", edits: []string{"{at: 10s, kill: gw-2}", "{at: 10s, drain: msg}"},
			want: `ok.yaml:26:9: phases[1].faults[0].drain: "msg": expected a gateway, gw-1 to gw-2`},
		{name: "a negative scale_out", edits: []string{"{at: 10s, kill: gw-2}", "{at: 10s, scale_out: -1}"},
			want: "ok.yaml:26:9: phases[1].faults[0].scale_out: must be positive"},
		{name: "a connect flood without a rate", edits: []string{"{at: 10s, kill: gw-2}", "{at: 10s, connect_flood: 1k}"},
			want: "ok.yaml:26:9: phases[1].faults[0].flood_rate: a connect flood needs a rate, like 5k/s"},
		{name: "a flood rate on a kill", edits: []string{"{at: 10s, kill: gw-2}", "{at: 10s, kill: gw-2, flood_rate: 1k/s}"},
			want: "ok.yaml:26:9: phases[1].faults[0].flood_rate: belongs to a connect_flood"},
		{name: "a batch on a kill", edits: []string{"{at: 10s, kill: gw-2}", "{at: 10s, kill: gw-2, batch: 10}"},
			want: "ok.yaml:26:9: phases[1].faults[0]: batch and interval belong to a drain"},
		{name: "an interval on a restart", edits: []string{"{at: 20s, restart: gw-2}", "{at: 20s, restart: gw-2, interval: 1s}"},
			want: "ok.yaml:27:9: phases[1].faults[1]: batch and interval belong to a drain"},
		{name: "a for on a restart", edits: []string{"{at: 20s, restart: gw-2}", "{at: 20s, restart: gw-2, for: 1s}"},
			want: "ok.yaml:27:9: phases[1].faults[1].for: only a pause or a network fault (partition, loss, bandwidth, blackhole) takes for:"},
		{name: "a one_way on a pause", edits: []string{"pause: msg, for: 2s", "pause: msg, for: 2s, one_way: true"},
			want: "ok.yaml:28:9: phases[1].faults[2]: rate and one_way belong to network faults (loss, bandwidth; partition)"},
		{name: "a restart of whichever is primary", edits: []string{"backend: {state: memory, msg: redis}", "redis: {mode: sentinel}\n  backend: {state: memory, msg: redis}",
			"restart: gw-2", "restart: redis-primary"},
			want: "ok.yaml:28:9: phases[1].faults[1].restart: redis-primary names whichever server is the primary now: restart the killed one by its name, redis-N"},
		// Knee and autoscale.
		{name: "a knee with a worst window", src: stepped, file: "steps.yaml", edits: []string{"knee: push p99 < 100ms", "knee: worst 5s push p99 < 100ms"},
			want: `steps.yaml:4:7: knee: "worst 5s push p99 < 100ms": a knee is judged over each whole step: drop worst`},
		{name: "a knee on a hostile figure", src: stepped, file: "steps.yaml", edits: []string{"knee: push p99 < 100ms", "knee: hostile_opened > 0"},
			want: `steps.yaml:4:7: knee: "hostile_opened > 0": hostile figures are over the whole run, not per step`},
		{name: "a knee with one step", src: stepped, file: "steps.yaml", edits: []string{"  - {name: step-2k, duration: 20s, rate: 2k/s}\n", ""},
			want: "steps.yaml:4:7: knee: a knee needs at least two phases (the steps), the scenario has 1"},
		{name: "an autoscale below the topology", edits: []string{"seed: 7\n", "seed: 7\nautoscale: {max: 1}\n"},
			want: "ok.yaml:4:12: autoscale.max: 1 is below the 2 gateways the run starts with"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file, src := tc.file, tc.src
			if file == "" {
				file = "ok.yaml"
			}
			if src == "" {
				src = valid
			}
			src = edited(t, src, tc.edits...)
			refusedWith(t, file, src, tc.want)
		})
	}
}

// The checks pass what they allow at the edge of what they refuse: a scale_out
// adds gateways that later faults may name, a stepped phase may hold its
// predecessor's clients, a drain names a gateway.
func TestChecksAcceptTheEdgesOfWhatTheyRefuse(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		edits []string
	}{
		{"a scaled-out gateway is a target", valid, []string{"{at: 10s, kill: gw-2}", "{at: 10s, scale_out: 2}",
			"{at: 20s, restart: gw-2}", "{at: 20s, drain: gw-4, batch: 10, interval: 1s}"}},
		{"a kill of a scaled-out gateway", valid, []string{"{at: 10s, kill: gw-2}", "{at: 10s, scale_out: 1}",
			"{at: 20s, restart: gw-2}", "{at: 20s, kill: gw-3}"}},
		{"a connect flood with its rate", valid, []string{"{at: 10s, kill: gw-2}", "{at: 10s, connect_flood: 1k, flood_rate: 1k/s}"}},
		{"clients that hold their step", stepped, []string{"rate: 1k/s}", "rate: 1k/s, clients: 800}", "rate: 2k/s}", "rate: 2k/s, clients: 800}"}},
		{"a zipf exponent above 1", valid, []string{"  payload: 100B\n", "  payload: 100B\n  pattern: zipf\n  zipf_s: 1.1\n"}},
		{"groups of two", valid, []string{"  payload: 100B\n", "  payload: 100B\n  pattern: groups\n  group_size: 2\n"}},
		{"the smallest and largest payloads", valid, []string{"payload: 100B", "payload: 24B"}},
		{"an autoscale at the topology", valid, []string{"seed: 7\n", "seed: 7\nautoscale: {max: 2}\n"}},
		{"a reconnect storm", valid, []string{"{at: 10s, kill: gw-2}", "{at: 10s, reconnect_storm: true}"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := "ok.yaml"
			if tc.src == stepped {
				file = "steps.yaml"
			}
			if _, err := Parse(file, []byte(edited(t, tc.src, tc.edits...))); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
	if _, err := Parse("ok.yaml", []byte(strings.Replace(valid, "payload: 100B", "payload: 60KiB", 1))); err != nil {
		t.Fatalf("a payload of 60KiB refused: %v", err)
	}
}

// An error says file:line:col, then the key path, then what was expected; an
// error with no place or key leaves them out.
func TestErrorNamesFileLineAndKey(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "a.yaml", Pos: Pos{3, 5}, Path: "clients.count", Msg: "must be at least 1"}, "a.yaml:3:5: clients.count: must be at least 1"},
		{Error{File: "a.yaml", Pos: Pos{3, 5}, Msg: "odd"}, "a.yaml:3:5: odd"},
		{Error{File: "a.yaml", Msg: "empty file"}, "a.yaml: empty file"},
		{Error{File: "a.yaml", Pos: Pos{Line: 7}, Msg: "not valid YAML: x"}, "a.yaml:7: not valid YAML: x"},
		{Error{File: "a.yaml", Path: "name", Msg: "bad"}, "a.yaml: name: bad"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	es := Errors{&tests[0].err, &tests[2].err}
	if got, want := es.Error(), tests[0].want+"\n"+tests[2].want; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
	if got, ok := asErrors(es); !ok || len(got) != 2 {
		t.Errorf("asErrors(Errors) = %v, %v", got, ok)
	}
	if _, ok := asErrors(errors.New("plain")); ok {
		t.Error("asErrors took a plain error for Errors")
	}
}

// edited applies old, new pairs to src, once each in order, and fails the test
// on a pair that changes nothing (a fixture edit gone stale).
func edited(t *testing.T, src string, pairs ...string) string {
	t.Helper()
	if len(pairs)%2 != 0 {
		t.Fatalf("edits %q: want old, new pairs", pairs)
	}
	for i := 0; i < len(pairs); i += 2 {
		next := strings.Replace(src, pairs[i], pairs[i+1], 1)
		if next == src {
			t.Fatalf("the edit %q → %q changed nothing", pairs[i], pairs[i+1])
		}
		src = next
	}
	return src
}

// refusedWith parses src as file and fails unless it is refused with an error
// whose whole text is want.
func refusedWith(t *testing.T, file, src, want string) {
	t.Helper()
	_, err := Parse(file, []byte(src))
	if err == nil {
		t.Fatalf("accepted; want %q", want)
	}
	es, ok := asErrors(err)
	if !ok {
		t.Fatalf("error %v is not Errors", err)
	}
	for _, e := range es {
		if e.Error() == want {
			return
		}
	}
	t.Fatalf("no error\n  %s\nin:\n%v", want, err)
}

// manyMistakes has a mistake in every part the checks look at.
const manyMistakes = `name: many
mode: ring
topology: {gateways: 1, agents: 1, backend: {state: disk}}
components: {gateway: {max_conns: 20k}}
clients: {count: 0}
traffic: {pattern: ring, payload: 1B}
behaviours: {relogin: 1/s, idle: 60%, slow: {fraction: 50%}}
phases:
  - {name: a, duration: 0s}
  - {name: a, duration: 1s, faults: [{at: 2s, drain: gw-2}, {at: 0s, kill: gw-1, batch: 1}]}
knee: worst 1s push p99 < 1ms
autoscale: {max: 0}
`

// The checks report every problem of a file at once, part by part in the order
// the parts are checked (not sorted by line: clients come before components),
// each part's problems in the order its checks run.
func TestChecksReportEveryProblemInTheirOrder(t *testing.T) {
	_, err := Parse("many.yaml", []byte(manyMistakes))
	want := strings.Join([]string{
		`many.yaml:1:1: mode: "ring": expected auto, netns or loopback`,
		`many.yaml:3:45: topology.backend.state: "disk": expected memory or redis`,
		`many.yaml:5:10: clients.count: must be at least 1`,
		`many.yaml:4:23: components.gateway.max_conns: 20000: at most 18000 fit in one gateway process (RLIMIT_NOFILE); use more gateways`,
		`many.yaml:6:10: traffic.pattern: "ring": expected pairs, zipf or groups`,
		`many.yaml:6:10: traffic.payload: 1B: expected 24B (the measurement header) to 60KiB`,
		`many.yaml:7:13: behaviours: slow (0.5) and idle (0.6) fractions add up to more than 100%`,
		`many.yaml:7:13: behaviours.relogin: a relogin goes to another gateway: it needs at least 2 gateways, the topology has 1`,
		`many.yaml:9:5: phases[0].duration: must be positive`,
		`many.yaml:10:5: phases[1].name: "a" used by an earlier phase`,
		`many.yaml:10:38: phases[1].faults[0].at: 2s is not within the phase's 1s`,
		`many.yaml:10:38: phases[1].faults[0].drain: "gw-2": expected a gateway, gw-1 to gw-1`,
		`many.yaml:10:61: phases[1].faults[1]: batch and interval belong to a drain`,
		`many.yaml:11:7: knee: "worst 1s push p99 < 1ms": a knee is judged over each whole step: drop worst`,
		`many.yaml:12:12: autoscale.max: 0 is below the 1 gateways the run starts with`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("errors:\n%v\nwant:\n%s", err, want)
	}
}
