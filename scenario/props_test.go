package scenario

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/units"
)

// parsed parses src as file and fails the test if it is refused.
func parsed(t *testing.T, file, src string) *Scenario {
	t.Helper()
	s, err := Parse(file, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Duration adds up the phases; InitialClients is the first phase's clients when
// it steps them, else every client.
func TestDurationAndInitialClients(t *testing.T) {
	count := units.Count(300)
	tests := []struct {
		name    string
		s       *Scenario
		dur     time.Duration
		initial int64
	}{
		{"valid", parsed(t, "ok.yaml", valid), 40 * time.Second, 5000},
		{"minimal", parsed(t, "m.yaml", minimal), 10 * time.Second, 10},
		{"stepped clients", parsed(t, "steps.yaml", strings.Replace(stepped, "rate: 1k/s}", "rate: 1k/s, clients: 300}", 1)), 40 * time.Second, 300},
		{"no phases", &Scenario{Clients: Clients{Count: 7}}, 0, 7},
		{"a later phase's clients", &Scenario{Clients: Clients{Count: 7}, Phases: []Phase{
			{Duration: units.Duration(time.Second)}, {Duration: units.Duration(time.Minute), Clients: &count}}}, 61 * time.Second, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := tc.s.Duration(); d != tc.dur {
				t.Errorf("Duration() = %v, want %v", d, tc.dur)
			}
			if n := tc.s.InitialClients(); n != tc.initial {
				t.Errorf("InitialClients() = %d, want %d", n, tc.initial)
			}
		})
	}
}

// Processes names the core's services, then every gateway, then Redis's.
func TestProcessesNameEveryFaultTarget(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"one gateway, no Redis", minimal, []string{"state", "msg", "router", "ipconf", "control", "gw-1"}},
		{"two gateways, msg on Redis", valid, []string{"state", "msg", "router", "ipconf", "control", "gw-1", "gw-2", "redis"}},
		{"Sentinel", withRedis("{state: redis, msg: redis}", "{mode: sentinel, replicas: 1}"), []string{"state", "msg", "router", "ipconf", "control",
			"gw-1", "gw-2", "redis-1", "redis-2", "redis-primary", "sentinel-1", "sentinel-2", "sentinel-3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := "ok.yaml"
			if tc.src == minimal {
				file = "m.yaml"
			}
			if got := parsed(t, file, tc.src).Processes(); !slices.Equal(got, tc.want) {
				t.Errorf("Processes() = %v, want %v", got, tc.want)
			}
		})
	}
}

// Unset keys take their documented defaults (scenarios/README.md); set ones keep
// their values.
func TestDefaultsFillOnlyWhatIsUnset(t *testing.T) {
	d := parsed(t, "m.yaml", minimal+"autoscale: {max: 3}\n")
	if d.Mode != "auto" || d.Topology.Backend.State != "memory" || d.Topology.Backend.Msg != "memory" ||
		d.Topology.Redis.Mode != RedisSingle || *d.Topology.Redis.Replicas != 0 || d.Topology.Redis.Shards != 0 ||
		d.Traffic.Pattern != "pairs" || d.Traffic.Payload != 64 || d.Traffic.Trace != nil ||
		d.Clients.Deadline.D() != 10*time.Second || d.Validity.MaxLag.D() != 50*time.Millisecond ||
		d.Validity.MaxHiccup.D() != 200*time.Millisecond || d.Validity.MinSamples != 1000 || d.Autoscale.Every.D() != 5*time.Second {
		t.Errorf("defaults: mode %s, backend %+v, redis %+v, traffic %+v, deadline %v, validity %+v, autoscale %+v",
			d.Mode, d.Topology.Backend, d.Topology.Redis, d.Traffic, d.Clients.Deadline, d.Validity, d.Autoscale)
	}
	if d.Autoscale.Max != 3 {
		t.Errorf("autoscale max %d, want 3", d.Autoscale.Max)
	}
	set := parsed(t, "m.yaml", strings.Replace(minimal, "clients: {count: 10}\n", `mode: loopback
clients: {count: 10, deadline: 3s}
traffic: {pattern: zipf, payload: 1KiB, trace: 5%}
validity: {max_lag: 1ms, max_hiccup: 2ms, min_samples: 5}
autoscale: {max: 2, every: 1s}
`, 1))
	if set.Mode != "loopback" || set.Traffic.Pattern != "zipf" || set.Traffic.Payload != 1024 || *set.Traffic.Trace != 0.05 ||
		set.Clients.Deadline.D() != 3*time.Second || set.Validity.MaxLag.D() != time.Millisecond ||
		set.Validity.MaxHiccup.D() != 2*time.Millisecond || set.Validity.MinSamples != 5 || set.Autoscale.Every.D() != time.Second {
		t.Errorf("set values overwritten: mode %s, traffic %+v, deadline %v, validity %+v, autoscale %+v",
			set.Mode, set.Traffic, set.Clients.Deadline, set.Validity, set.Autoscale)
	}
	for _, tc := range []struct {
		redis            string
		shards, replicas int
	}{
		{"{mode: cluster}", 3, 1},
		{"{mode: cluster, shards: 5, replicas: 0}", 5, 0},
		{"{mode: sentinel}", 0, 2},
	} {
		r := parsed(t, "ok.yaml", withRedis("{state: redis, msg: redis}", tc.redis)).Topology.Redis
		if r.Shards != tc.shards || *r.Replicas != tc.replicas {
			t.Errorf("%s: %d shards, %d replicas; want %d, %d", tc.redis, r.Shards, *r.Replicas, tc.shards, tc.replicas)
		}
	}
}

// A fault's action is the one key it sets; its target is what that acts on.
func TestFaultActionAndTarget(t *testing.T) {
	tests := []struct {
		f              Fault
		action, target string
		network        bool
	}{
		{Fault{Kill: "gw-1"}, "kill", "gw-1", false},
		{Fault{Pause: "msg"}, "pause", "msg", false},
		{Fault{Restart: "state"}, "restart", "state", false},
		{Fault{Drain: "gw-2"}, "drain", "gw-2", false},
		{Fault{ScaleOut: 2}, "scale_out", "", false},
		{Fault{ScaleOut: -1}, "scale_out", "", false},
		{Fault{ReconnectStorm: true}, "reconnect_storm", "", false},
		{Fault{ConnectFlood: 5}, "connect_flood", "", false},
		{Fault{Partition: []string{"gw-1", "core"}}, "partition", "gw-1<->core", true},
		{Fault{Partition: []string{"gw-1", "core"}, OneWay: true}, "partition", "gw-1->core", true},
		{Fault{Partition: []string{"gw-1"}}, "partition", "gw-1", true},
		{Fault{Partition: []string{"a", "b", "c"}}, "partition", "a,b,c", true},
		{Fault{Loss: "gw-3"}, "loss", "gw-3", true},
		{Fault{Bandwidth: "cl-0"}, "bandwidth", "cl-0", true},
		{Fault{Blackhole: "core"}, "blackhole", "core", true},
		{Fault{}, "", "", false},
	}
	for _, tc := range tests {
		if a, tg, n := tc.f.Action(), tc.f.Target(), tc.f.Network(); a != tc.action || tg != tc.target || n != tc.network {
			t.Errorf("%+v: action %q target %q network %v; want %q %q %v", tc.f, a, tg, n, tc.action, tc.target, tc.network)
		}
	}
}

// NetworkFaults finds a network fault in any phase, at any place in it.
func TestNetworkFaultsLooksInEveryPhase(t *testing.T) {
	tests := []struct {
		name   string
		phases []Phase
		want   bool
	}{
		{"no phases", nil, false},
		{"process faults", []Phase{{Faults: []Fault{{Kill: "gw-1"}, {Pause: "msg"}}}}, false},
		{"a blackhole in the last phase, after a kill", []Phase{{}, {Faults: []Fault{{Kill: "gw-1"}, {Blackhole: "gw-1"}}}}, true},
		{"a partition first", []Phase{{Faults: []Fault{{Partition: []string{"gw-1", "core"}}}}, {}}, true},
	}
	for _, tc := range tests {
		if got := (&Scenario{Phases: tc.phases}).NetworkFaults(); got != tc.want {
			t.Errorf("%s: NetworkFaults() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The name and host predicates accept exactly the canonical names in range.
func TestNamePredicates(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		gw   bool
		cl   bool
	}{
		{"gw-1", 1, true, false}, {"gw-2", 1, false, false}, {"gw-0", 3, false, false}, {"gw-01", 3, false, false},
		{"gw-1x", 3, false, false}, {"gw-", 3, false, false}, {"cl-0", 1, false, true}, {"cl-1", 1, false, false},
		{"cl-00", 2, false, false}, {"core", 3, false, false},
	} {
		if gw, cl := isGatewayWithin(tc.name, tc.n), isAgentWithin(tc.name, tc.n); gw != tc.gw || cl != tc.cl {
			t.Errorf("%q within %d: gateway %v agent %v; want %v %v", tc.name, tc.n, gw, cl, tc.gw, tc.cl)
		}
	}
	for name, want := range map[string]bool{"smoke": true, "steady-100k": true, "a_b": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "a b": false, "a.b": false, "é": false} {
		if validName(name) != want {
			t.Errorf("validName(%q) = %v, want %v", name, !want, want)
		}
	}
	redis := []string{"redis-1"}
	for _, tc := range []struct{ name, kind string }{
		{"core", "host"}, {"gw-2", "host"}, {"gw-3", ""}, {"cl-1", "host"}, {"cl-2", ""}, {"redis-1", "host"}, {"redis-2", ""},
		{"gateways", "group"}, {"agents", "group"}, {"everyone", ""},
	} {
		if k := hostKind(tc.name, 2, 2, redis); k != tc.kind {
			t.Errorf("hostKind(%q) = %q, want %q", tc.name, k, tc.kind)
		}
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"gw-1", "core", false}, {"gw-1", "gateways", true}, {"agents", "cl-3", true}, {"gateways", "agents", false},
		{"core", "core", true}, {"cl-1", "gateways", false},
	} {
		if sidesOverlap(tc.a, tc.b) != tc.want {
			t.Errorf("sidesOverlap(%q, %q) = %v, want %v", tc.a, tc.b, !tc.want, tc.want)
		}
	}
}

// A bandwidth is a size per second; anything else is refused with the text given.
func TestParseBandwidth(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1MB/s", 1_000_000, true}, {"512KiB/s", 512 << 10, true}, {" 10GB/s ", 10_000_000_000, true},
		{"1MB", 0, false}, {"fast/s", 0, false}, {"", 0, false}, {"-1KB/s", 0, false},
	} {
		got, err := parseBandwidth(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("parseBandwidth(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "is not a bandwidth") {
			t.Errorf("parseBandwidth(%q): %v", tc.in, err)
		}
	}
}
