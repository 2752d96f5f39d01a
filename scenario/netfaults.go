package scenario

import (
	"fmt"
	"slices"
	"strings"

	"github.com/floodgate/floodgate/internal/units"
)

// Network fault bounds. Loss is drawn per packet as (random mod 10000) < rate ×
// 10000, so rates are whole multiples of 0.01%; bandwidth is a tbf whose queue
// cannot pass a full-size packet below 1 KB/s.
const (
	MinLoss      = 0.0001
	MinBandwidth = 1_000          // bytes per second
	MaxBandwidth = 10_000_000_000 // bytes per second
)

// Network-fault host groups: a partition side may name every gateway or every
// load agent at once.
const (
	GroupGateways = "gateways"
	GroupAgents   = "agents"
)

// netActions are the network faults' actions: netns mode only.
var netActions = map[string]bool{"partition": true, "loss": true, "bandwidth": true, "blackhole": true}

// Network reports whether the fault acts on the network (partition, loss,
// bandwidth, blackhole) rather than on a process: it needs netns mode.
func (f *Fault) Network() bool { return netActions[f.Action()] }

// NetworkFaults reports whether any phase has a network fault.
func (s *Scenario) NetworkFaults() bool {
	for _, p := range s.Phases {
		for i := range p.Faults {
			if p.Faults[i].Network() {
				return true
			}
		}
	}
	return false
}

// partitionTarget is a partition's Target: "a<->b" both ways, "a->b" one way.
func (f *Fault) partitionTarget() string {
	if len(f.Partition) != 2 {
		return strings.Join(f.Partition, ",")
	}
	if f.OneWay {
		return f.Partition[0] + "->" + f.Partition[1]
	}
	return f.Partition[0] + "<->" + f.Partition[1]
}

// parseBandwidth reads "1MB/s", "512KiB/s": a byte size per second.
func parseBandwidth(s string) (int64, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "/s")
	size, err := units.ParseSize(num)
	if !ok || err != nil {
		return 0, fmt.Errorf("%q is not a bandwidth: want bytes per second, like 1MB/s or 512KiB/s", s)
	}
	return int64(size), nil
}

// hostKind says what a network-fault host name denotes within a topology of
// gateways gateways and agents agents: "host", "group", or "" if nothing.
func hostKind(name string, gateways, agents int, redis []string) string {
	switch {
	case name == "core" || isGatewayWithin(name, gateways) || isAgentWithin(name, agents) || slices.Contains(redis, name):
		return "host"
	case name == GroupGateways || name == GroupAgents:
		return "group"
	}
	return ""
}

func isAgentWithin(name string, n int) bool {
	var i int
	_, err := fmt.Sscanf(name, "cl-%d", &i)
	return err == nil && fmt.Sprintf("cl-%d", i) == name && i >= 0 && i < n
}

// sidesOverlap reports whether two partition sides share a host.
func sidesOverlap(a, b string) bool {
	in := func(host, group string) bool {
		return group == GroupGateways && strings.HasPrefix(host, "gw-") || group == GroupAgents && strings.HasPrefix(host, "cl-")
	}
	return a == b || in(a, b) || in(b, a)
}

// checkNetwork checks a network fault f at path fp; gateways and agents bound
// the host names; mode is the scenario's.
func (f *Fault) checkNetwork(fp string, gateways, agents int, redis []string, mode string, bad badFunc) {
	if mode == "loopback" {
		bad(f.At, fp+"."+f.Action(), "a network fault needs netns mode (root): the scenario's mode is loopback; use mode: netns or auto")
	}
	hosts := fmt.Sprintf("core, gw-1 to gw-%d or cl-0 to cl-%d", gateways, agents-1)
	if len(redis) > 0 {
		hosts = fmt.Sprintf("core, gw-1 to gw-%d, cl-0 to cl-%d or redis-1 to redis-%d", gateways, agents-1, len(redis))
	}
	switch f.Action() {
	case "partition":
		if len(f.Partition) != 2 {
			bad(f.At, fp+".partition", "expected two sides, like [gw-2, core]; got %d", len(f.Partition))
			break
		}
		for _, side := range f.Partition {
			if hostKind(side, gateways, agents, redis) == "" {
				bad(f.At, fp+".partition", "%q: expected %s, or a group: %s or %s", side, hosts, GroupGateways, GroupAgents)
			}
		}
		if sidesOverlap(f.Partition[0], f.Partition[1]) {
			bad(f.At, fp+".partition", "the sides %s and %s share hosts: a partition is between disjoint sides", f.Partition[0], f.Partition[1])
		}
	default:
		if hostKind(f.Target(), gateways, agents, redis) != "host" {
			bad(f.At, fp+"."+f.Action(), "%q: expected one host: %s", f.Target(), hosts)
		}
	}
	switch f.Action() {
	case "loss":
		var r units.Fraction
		switch err := r.UnmarshalText([]byte(f.Rate)); {
		case f.Rate == "":
			bad(f.At, fp+".rate", "a loss needs a rate, like 2%%")
		case err != nil:
			bad(f.At, fp+".rate", "%v", err)
		case float64(r) < MinLoss:
			bad(f.At, fp+".rate", "%s: expected 0.01%% to 100%% (loss is drawn in steps of 0.01%%)", f.Rate)
		default:
			f.LossRate = float64(r)
		}
	case "bandwidth":
		bw, err := parseBandwidth(f.Rate)
		switch {
		case f.Rate == "":
			bad(f.At, fp+".rate", "a bandwidth needs a rate, like 1MB/s")
		case err != nil:
			bad(f.At, fp+".rate", "%v", err)
		case bw < MinBandwidth || bw > MaxBandwidth:
			bad(f.At, fp+".rate", "%s: expected 1KB/s to 10GB/s", f.Rate)
		default:
			f.BytesPerSec = bw
		}
	default:
		if f.Rate != "" {
			bad(f.At, fp+".rate", "belongs to a loss or a bandwidth")
		}
	}
	if f.OneWay && f.Action() != "partition" {
		bad(f.At, fp+".one_way", "belongs to a partition")
	}
}
