package scenario

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const valid = `name: ok
description: a small valid scenario
seed: 7
topology:
  gateways: 2
  agents: 2
  backend: {state: memory, msg: redis}
components:
  gateway: {max_conns: 10k, write_high_water: 64KiB, write_hard_cap: 1MiB, lease_ttl: 2s}
clients:
  count: 5k
  connect_rate: 2k/s
traffic:
  rate: 2k/s
  payload: 100B
behaviours:
  slow: {fraction: 5%, rate: 1KiB}
  churn: 50/s
phases:
  - name: warm
    duration: 10s
    rate: 500/s
  - name: crash
    duration: 30s
    faults:
      - {at: 10s, kill: gw-2}
      - {at: 20s, restart: gw-2}
      - {at: 25s, pause: msg, for: 2s}
    gates: ["reconnect p99 < 3s"]
gates:
  - push p99 < 100ms
  - lost == 0
  - worst 10s push p99 < 250ms
  - gateway_rss_per_conn < 4KiB
`

func TestValidScenarioParses(t *testing.T) {
	s, err := Parse("ok.yaml", []byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if s.Clients.Count != 5000 || s.Clients.ConnectRate != 2000 || s.Topology.Backend.Msg != "redis" ||
		s.Duration() != 40*time.Second || len(s.Phases[1].Faults) != 3 || s.Phases[1].Faults[0].Action() != "kill" ||
		*s.Phases[0].Rate != 500 || s.Behaviours.Slow.Fraction != 0.05 || s.Components.Gateway.MaxConns != 10000 {
		t.Fatalf("parsed wrong: %+v", s)
	}
	g := s.Gates[2]
	if g.Worst != 10*time.Second || g.Metric != "push" || g.Stat != "p99" || g.Op != "<" || g.Value != 250000 {
		t.Fatalf("worst gate %+v", g)
	}
	if !s.Gates[0].Holds(99_999) || s.Gates[0].Holds(100_000) || s.Gates[3].Value != 4096 {
		t.Fatal("gate evaluation")
	}
	if s.Clients.WebSocketShare != 0 {
		t.Fatalf("websocket_share unset parses as %v, want 0", s.Clients.WebSocketShare)
	}
	if ws, err := Parse("ok.yaml", []byte(strings.Replace(valid, "  count: 5k\n", "  count: 5k\n  websocket_share: 30%\n", 1))); err != nil || ws.Clients.WebSocketShare != 0.3 {
		t.Fatalf("websocket_share 30%%: %v, err %v", ws.Clients.WebSocketShare, err)
	}
	if s.Clients.Deadline.D() != 10*time.Second || s.Validity.MinSamples != 1000 || s.Mode != "auto" {
		t.Fatalf("defaults: %+v %+v", s.Clients, s.Validity)
	}
}

// Every class of mistake names the file, the line and what was expected.
func TestScenarioMistakesPointAtTheirLine(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(string) string
		where  string // "file:line:" prefix expected in some error
		reason string // substring expected in that error
	}{
		{"unknown top-level key", func(s string) string { return s + "colour: blue\n" },
			"ok.yaml:35:1", "colour: unknown key; expected one of: autoscale, behaviours"},
		{"unknown nested key", func(s string) string {
			return strings.Replace(s, "  count: 5k\n", "  count: 5k\n  cuont: 3\n", 1)
		}, "ok.yaml:12:3", "clients.cuont: unknown key"},
		{"wrong type", func(s string) string { return strings.Replace(s, "gateways: 2", "gateways: two", 1) },
			"ok.yaml:5:13", `topology.gateways: expected a whole number, got "two"`},
		{"mapping where a value goes", func(s string) string { return strings.Replace(s, "seed: 7", "seed: {a: 1}", 1) },
			"ok.yaml:3:7", "seed: expected a whole number, got a mapping"},
		{"bad duration", func(s string) string { return strings.Replace(s, "duration: 10s", "duration: 10", 1) },
			"ok.yaml:21:15", `phases[0].duration: "10" is not a duration`},
		{"bad rate", func(s string) string {
			return strings.Replace(s, "  rate: 2k/s\n  payload", "  rate: 2k\n  payload", 1)
		},
			"ok.yaml:14:9", `traffic.rate: "2k" is not a rate`},
		{"bad size", func(s string) string { return strings.Replace(s, "payload: 100B", "payload: 100 bytes", 1) },
			"ok.yaml:15:12", "traffic.payload: size"},
		{"bad fraction", func(s string) string { return strings.Replace(s, "fraction: 5%", "fraction: 150%", 1) },
			"ok.yaml:17:20", "is not a fraction"},
		{"bad websocket share", func(s string) string {
			return strings.Replace(s, "  connect_rate: 2k/s\n", "  connect_rate: 2k/s\n  websocket_share: 130%\n", 1)
		}, "ok.yaml:13:20", "clients.websocket_share: \"130%\" is not a fraction"},
		{"missing required key", func(s string) string { return strings.Replace(s, "  agents: 2\n", "", 1) },
			"ok.yaml:5:3", "topology.agents: required key missing"},
		{"gateways out of range", func(s string) string { return strings.Replace(s, "gateways: 2", "gateways: 0", 1) },
			"ok.yaml:5:3", "topology.gateways: 0: expected 1 to 100"},
		{"too many clients per agent", func(s string) string { return strings.Replace(s, "count: 5k", "count: 100k", 1) },
			"ok.yaml:11:3", "at most 18000 fit in one process"},
		{"fault outside its phase", func(s string) string { return strings.Replace(s, "at: 25s, pause", "at: 45s, pause", 1) },
			"ok.yaml:28:9", "phases[1].faults[2].at: 45s is not within the phase's 30s"},
		{"unknown fault target", func(s string) string { return strings.Replace(s, "kill: gw-2", "kill: gw-9", 1) },
			"ok.yaml:26:9", `phases[1].faults[0].kill: "gw-9": expected one of state, msg, router`},
		{"two actions in one fault", func(s string) string {
			return strings.Replace(s, "{at: 10s, kill: gw-2}", "{at: 10s, kill: gw-2, restart: gw-1}", 1)
		}, "ok.yaml:26:9", "exactly one action expected"},
		{"pause without a length", func(s string) string { return strings.Replace(s, ", for: 2s", "", 1) },
			"ok.yaml:28:9", "a pause needs a positive for: duration"},
		{"watermark above the cap", func(s string) string {
			return strings.Replace(s, "write_high_water: 64KiB", "write_high_water: 2MiB", 1)
		},
			"ok.yaml:9:12", "write_high_water: 2MiB is above write_hard_cap 1MiB"},
		{"unknown gate metric", func(s string) string { return strings.Replace(s, "- lost == 0", "- losses == 0", 1) },
			"ok.yaml:32:5", `unknown metric "losses"`},
		{"gate without a statistic", func(s string) string { return strings.Replace(s, "push p99 < 100ms", "push < 100ms", 1) },
			"ok.yaml:31:5", "push needs a statistic"},
		{"gate with a bad value", func(s string) string { return strings.Replace(s, "push p99 < 100ms", "push p99 < fast", 1) },
			"ok.yaml:31:5", `a latency needs a duration like 100ms, got "fast"`},
		{"duplicate phase name", func(s string) string { return strings.Replace(s, "name: crash", "name: warm", 1) },
			"ok.yaml:23:5", `phases[1].name: "warm" used by an earlier phase`},
		{"slow and idle over 100%", func(s string) string { return strings.Replace(s, "  churn: 50/s\n", "  churn: 50/s\n  idle: 99%\n", 1) },
			"ok.yaml:17:3", "add up to more than 100%"},
		{"YAML syntax", func(s string) string { return strings.Replace(s, "  agents: 2\n", "  agents: [2\n", 1) },
			"ok.yaml:", "not valid YAML"},
		{"key given twice", func(s string) string { return strings.Replace(s, "seed: 7\n", "seed: 7\nseed: 8\n", 1) },
			"ok.yaml:4:1", "seed: given twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rejectedAt(t, "ok.yaml", tc.edit(valid), tc.where, tc.reason)
		})
	}
}

func TestNameMustMatchTheFile(t *testing.T) {
	_, err := Parse("scenarios/other.yaml", []byte(valid))
	if err == nil || !strings.Contains(err.Error(), `differs from the file name "other"`) {
		t.Fatalf("err = %v", err)
	}
}

const relogin = `name: re
topology: {gateways: 2, agents: 1}
clients: {count: 100}
behaviours:
  relogin: 20/s
phases:
  - {name: quiet, duration: 5s, relogin: 0/s}
  - {name: busy, duration: 5s, relogin: 50/s}
  - {name: default, duration: 5s}
gates:
  - replace p99 < 1s
  - replace_late == 0
  - phantom == 0
  - misdelivered == 0
  - duplicates == 0
  - redelivered >= 0
  - retried >= 0
  - stale == 0
  - replaced_unexpected == 0
`

// behaviours.relogin and phases[].relogin read as rates, and the gate metrics of
// the accounting by identity and of relogins are known.
func TestReloginKeysAndIdentityGates(t *testing.T) {
	s, err := Parse("re.yaml", []byte(relogin))
	if err != nil {
		t.Fatal(err)
	}
	if s.Behaviours.Relogin != 20 || *s.Phases[0].Relogin != 0 || *s.Phases[1].Relogin != 50 || s.Phases[2].Relogin != nil {
		t.Fatalf("relogin rates: %v, phases %v %v %v", s.Behaviours.Relogin, s.Phases[0].Relogin, s.Phases[1].Relogin, s.Phases[2].Relogin)
	}
	if g := s.Gates[0]; g.Metric != "replace" || g.Stat != "p99" || g.Value != 1e6 || g.Kind() != KindLatency {
		t.Fatalf("replace gate %+v", g)
	}
	for _, g := range s.Gates[1:] {
		if g.Kind() != KindCount {
			t.Errorf("%s: kind %s, want a count", g.Text, g.Kind())
		}
	}
	for _, tc := range []struct {
		name, from, to, where, reason string
	}{
		{"relogin is a rate", "relogin: 20/s", "relogin: lots", "re.yaml:5:12", `behaviours.relogin: "lots" is not a rate`},
		{"a relogin needs another gateway", "gateways: 2", "gateways: 1", "re.yaml:5:3", "behaviours.relogin: a relogin goes to another gateway: it needs at least 2 gateways"},
		{"a phase's relogin needs another gateway too", "gateways: 2, agents: 1}\nclients: {count: 100}\nbehaviours:\n  relogin: 20/s",
			"gateways: 1, agents: 1}\nclients: {count: 100}\nbehaviours:\n  relogin: 0/s", "re.yaml:8:5", "phases[1].relogin: a relogin goes to another gateway"},
		{"a phase's relogin is a rate", "relogin: 50/s", "relogin: 50", "re.yaml:8:41", `phases[1].relogin: "50" is not a rate`},
		{"replace needs a statistic", "replace p99 < 1s", "replace < 1s", "re.yaml:11:5", "replace needs a statistic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("re.yaml", []byte(strings.Replace(relogin, tc.from, tc.to, 1)))
			if err == nil {
				t.Fatal("accepted")
			}
			var es Errors
			errors.As(err, &es)
			for _, e := range es {
				if strings.HasPrefix(e.Error(), tc.where) && strings.Contains(e.Error(), tc.reason) {
					return
				}
			}
			t.Fatalf("no error at %q containing %q in:\n%v", tc.where, tc.reason, err)
		})
	}
}

// rejectedAt parses src as file and fails unless it is refused with an error at
// where (file:line:col) whose text contains reason.
func rejectedAt(t *testing.T, file, src, where, reason string) {
	t.Helper()
	_, err := Parse(file, []byte(src))
	if err == nil {
		t.Fatal("accepted")
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %v is not Errors", err)
	}
	for _, e := range es {
		if strings.HasPrefix(e.Error(), where) && strings.Contains(e.Error(), reason) {
			return
		}
	}
	t.Fatalf("no error at %q containing %q in:\n%v", where, reason, err)
}

const stepped = `name: steps
topology: {gateways: 2, agents: 1}
clients: {count: 1000}
knee: push p99 < 100ms
phases:
  - {name: step-1k, duration: 20s, rate: 1k/s}
  - {name: step-2k, duration: 20s, rate: 2k/s}
`

// knee: reads as a gate judged per step, and is refused where it cannot be
// judged per step, at its own line.
func TestKneeIsAGateJudgedPerStep(t *testing.T) {
	s, err := Parse("steps.yaml", []byte(stepped))
	if err != nil {
		t.Fatal(err)
	}
	if k := s.Knee; k == nil || k.Metric != "push" || k.Stat != "p99" || k.Op != "<" || k.Value != 100_000 || k.At.Line != 4 {
		t.Fatalf("knee = %+v", s.Knee)
	}
	for _, tc := range []struct {
		name, from, to, where, reason string
	}{
		{"not a gate", "knee: push p99 < 100ms", "knee: true", "steps.yaml:4:7", `gate "true"`},
		{"a worst window", "knee: push p99 < 100ms", "knee: worst 5s push p99 < 100ms", "steps.yaml:4:7", "judged over each whole step: drop worst"},
		{"a hostile figure", "knee: push p99 < 100ms", "knee: hostile_opened > 0", "steps.yaml:4:7", "hostile figures are over the whole run"},
		{"one step", "  - {name: step-2k, duration: 20s, rate: 2k/s}\n", "", "steps.yaml:4:7", "a knee needs at least two phases"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rejectedAt(t, "steps.yaml", strings.Replace(stepped, tc.from, tc.to, 1), tc.where, tc.reason)
		})
	}
}

// The stepped scenarios ask for the knee under 100 ms; throughput doubles its
// rate every step from 1k/s to 32k/s over 100,000 connections.
func TestSteppedScenariosAskForAKnee(t *testing.T) {
	for _, name := range []string{"throughput", "capacity"} {
		s, err := Load("../scenarios/" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		if s.Knee == nil || s.Knee.Text != "push p99 < 100ms" {
			t.Errorf("%s: knee %+v", name, s.Knee)
		}
	}
	s, err := Load("../scenarios/throughput.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Clients.Count != 100_000 || len(s.Phases) != 6 {
		t.Fatalf("throughput: %d clients, %d steps", s.Clients.Count, len(s.Phases))
	}
	for i, ph := range s.Phases {
		if want := 1000 << i; ph.Rate == nil || float64(*ph.Rate) != float64(want) || ph.Duration.D() != 20*time.Second {
			t.Errorf("throughput step %d: rate %v for %v, want %d/s for 20s", i, ph.Rate, ph.Duration, want)
		}
	}
}
