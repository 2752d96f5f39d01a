package scenario

import (
	"strings"
	"testing"
	"time"
)

const netFaultsSrc = `name: nf
mode: auto
topology: {gateways: 3, agents: 2}
clients: {count: 1k}
phases:
  - name: steady
    duration: 60s
    faults:
      - {at: 5s, partition: [gw-2, core], for: 30s}
      - {at: 5s, partition: [gw-1, core], one_way: true, for: 10s}
      - {at: 10s, loss: gw-1, rate: 2%, for: 40s}
      - {at: 10s, bandwidth: gw-3, rate: 1MB/s, for: 20s}
      - {at: 50s, blackhole: gw-3}
      - {at: 1s, partition: [agents, gateways], for: 1s}
      - {at: 1s, loss: cl-1, rate: 0.01%}
`

// Every network fault kind reads with its target, rate and length.
func TestNetworkFaultsParse(t *testing.T) {
	s, err := Parse("nf.yaml", []byte(netFaultsSrc))
	if err != nil {
		t.Fatal(err)
	}
	if !s.NetworkFaults() {
		t.Fatal("NetworkFaults() = false")
	}
	want := []struct {
		action, target string
		loss           float64
		bw             int64
		dur            time.Duration
	}{
		{"partition", "gw-2<->core", 0, 0, 30 * time.Second},
		{"partition", "gw-1->core", 0, 0, 10 * time.Second},
		{"loss", "gw-1", 0.02, 0, 40 * time.Second},
		{"bandwidth", "gw-3", 0, 1_000_000, 20 * time.Second},
		{"blackhole", "gw-3", 0, 0, 0},
		{"partition", "agents<->gateways", 0, 0, time.Second},
		{"loss", "cl-1", 0.0001, 0, 0},
	}
	fs := s.Phases[0].Faults
	if len(fs) != len(want) {
		t.Fatalf("%d faults, want %d", len(fs), len(want))
	}
	for i, w := range want {
		f := fs[i]
		if f.Action() != w.action || f.Target() != w.target || f.LossRate != w.loss || f.BytesPerSec != w.bw || f.For.D() != w.dur || !f.Network() {
			t.Errorf("fault %d: %s %s loss %v bw %d for %v network %v; want %+v", i, f.Action(), f.Target(), f.LossRate, f.BytesPerSec, f.For, f.Network(), w)
		}
	}
	plain, err := Parse("ok.yaml", []byte(valid))
	if err != nil || plain.NetworkFaults() {
		t.Fatalf("a scenario of process faults: network faults %v, %v", plain != nil && plain.NetworkFaults(), err)
	}
}

// Each mistake in a network fault names the file, the line and what was expected.
func TestNetworkFaultMistakesPointAtTheirLine(t *testing.T) {
	tests := []struct {
		name, from, to, where, reason string
	}{
		{"loopback mode", "mode: auto", "mode: loopback", "nf.yaml:9:9",
			"phases[0].faults[0].partition: a network fault needs netns mode (root): the scenario's mode is loopback"},
		{"unknown host", "[gw-2, core]", "[gw-9, core]", "nf.yaml:9:9",
			`phases[0].faults[0].partition: "gw-9": expected core, gw-1 to gw-3 or cl-0 to cl-1, or a group: gateways or agents`},
		{"one side", "[gw-2, core]", "[gw-2]", "nf.yaml:9:9", "partition: expected two sides, like [gw-2, core]; got 1"},
		{"no side", "[gw-2, core]", "[]", "nf.yaml:9:9", "partition: expected two sides, like [gw-2, core]; got 0"},
		{"overlapping sides", "[gw-2, core]", "[gw-2, gateways]", "nf.yaml:9:9", "the sides gw-2 and gateways share hosts"},
		{"the same side twice", "[gw-2, core]", "[core, core]", "nf.yaml:9:9", "the sides core and core share hosts"},
		{"a side that is not a name", "[gw-2, core]", "[gw-2, [core]]", "nf.yaml:9:", "partition[1]: expected a side: core, gw-N, cl-N, gateways or agents, got a list"},
		{"an agent beyond the topology", "loss: cl-1", "loss: cl-2", "nf.yaml:15:9", `faults[6].loss: "cl-2": expected one host`},
		{"loss of a group", "loss: gw-1", "loss: gateways", "nf.yaml:11:9", `faults[2].loss: "gateways": expected one host`},
		{"loss without a rate", "loss: gw-1, rate: 2%", "loss: gw-1", "nf.yaml:11:9", "faults[2].rate: a loss needs a rate, like 2%"},
		{"loss over 100%", "rate: 2%", "rate: 150%", "nf.yaml:11:9", `faults[2].rate: "150%" is not a fraction`},
		{"loss below its resolution", "rate: 2%", "rate: 0.001%", "nf.yaml:11:9", "0.001%: expected 0.01% to 100% (loss is drawn in steps of 0.01%)"},
		{"bandwidth without a rate", "bandwidth: gw-3, rate: 1MB/s", "bandwidth: gw-3", "nf.yaml:12:9", "a bandwidth needs a rate, like 1MB/s"},
		{"bandwidth not per second", "rate: 1MB/s", "rate: 1MB", "nf.yaml:12:9", `faults[3].rate: "1MB" is not a bandwidth: want bytes per second`},
		{"bandwidth too low", "rate: 1MB/s", "rate: 10B/s", "nf.yaml:12:9", "10B/s: expected 1KB/s to 10GB/s"},
		{"rate on a blackhole", "blackhole: gw-3}", "blackhole: gw-3, rate: 2%}", "nf.yaml:13:9", "faults[4].rate: belongs to a loss or a bandwidth"},
		{"one_way on a loss", "loss: gw-1, rate: 2%", "loss: gw-1, rate: 2%, one_way: true", "nf.yaml:11:9", "faults[2].one_way: belongs to a partition"},
		{"rate on a kill", "{at: 50s, blackhole: gw-3}", "{at: 50s, kill: gw-3, rate: 2%}", "nf.yaml:13:9", "rate and one_way belong to network faults"},
		{"for on a kill", "{at: 50s, blackhole: gw-3}", "{at: 50s, kill: gw-3, for: 2s}", "nf.yaml:13:9", "only a pause or a network fault (partition, loss, bandwidth, blackhole) takes for:"},
		{"two network actions", "{at: 50s, blackhole: gw-3}", "{at: 50s, blackhole: gw-3, loss: gw-1}", "nf.yaml:13:9", "exactly one action expected"},
		{"one_way is a boolean", "one_way: true", "one_way: yes please", "nf.yaml:10:", "one_way: expected true or false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(netFaultsSrc, tc.from, tc.to, 1)
			if src == netFaultsSrc {
				t.Fatalf("the edit %q → %q changed nothing", tc.from, tc.to)
			}
			rejectedAt(t, "nf.yaml", src, tc.where, tc.reason)
		})
	}
}
