package sim

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/redisnode"
	"github.com/floodgate/floodgate/netns"
	"github.com/floodgate/floodgate/runfolder"
)

// withTopology is a one-phase scenario named name with the given topology and
// extra top-level lines.
func withTopology(name, topology, extra string) string {
	return fmt.Sprintf("name: %s\ntopology: %s\nclients: {count: 100}\n%sphases:\n  - {name: steady, duration: 10s}\n", name, topology, extra)
}

// The run builds a host for every process it may ever start: the gateways that
// scale-out faults add and the autoscaler may start, one per agent, the flood
// agent's, and Redis's.
func TestHostsCoverEveryProcessTheRunMayStart(t *testing.T) {
	t.Parallel()
	gws := func(n int) []string {
		var hs []string
		for i := 1; i <= n; i++ {
			hs = append(hs, fmt.Sprintf("gw-%d", i))
		}
		return hs
	}
	for _, tc := range []struct {
		name, src string
		want      []string // after core
	}{
		{"the topology", withTopology("plain", "{gateways: 2, agents: 2}", ""),
			append(gws(2), "cl-0", "cl-1", "cl-flood")},
		{"scale-out faults", `name: scale
topology: {gateways: 1, agents: 1}
clients: {count: 100}
phases:
  - name: one
    duration: 10s
    faults: [{at: 1s, scale_out: 1}]
  - name: two
    duration: 10s
    faults: [{at: 1s, scale_out: 2}]
`, append(gws(4), "cl-0", "cl-flood")},
		{"the autoscaler's maximum", withTopology("auto", "{gateways: 2, agents: 1}", "autoscale: {max: 5}\n"),
			append(gws(5), "cl-0", "cl-flood")},
		{"single Redis runs on the core", withTopology("single", "{gateways: 1, agents: 1, backend: {state: redis}}", ""),
			append(gws(1), "cl-0", "cl-flood")},
		{"sentinel Redis", withTopology("sentinel", "{gateways: 1, agents: 1, backend: {msg: redis}, redis: {mode: sentinel}}", ""),
			append(gws(1), "cl-0", "cl-flood", "redis-1", "redis-2", "redis-3")},
		{"cluster Redis", withTopology("cluster", "{gateways: 1, agents: 1, backend: {state: redis}, redis: {mode: cluster, shards: 2, replicas: 1}}", ""),
			append(gws(1), "cl-0", "cl-flood", "redis-1", "redis-2", "redis-3", "redis-4")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := hostsFor(mustParse(t, tc.src))
			if want := append([]string{"core"}, tc.want...); !slices.Equal(got, want) {
				t.Fatalf("hosts %v, want %v", got, want)
			}
		})
	}
}

// The run's mode is the option's, else the scenario's unless it says auto,
// else namespaces where the machine allows them.
func TestModeIsTheOptionsThenTheScenariosThenTheMachines(t *testing.T) {
	t.Parallel()
	can := func() error { return nil }
	cannot := func() error { return errors.New("not root") }
	for _, tc := range []struct {
		opt      netns.Mode
		scenario string
		canNetns func() error
		want     netns.Mode
	}{
		{netns.ModeLoopback, "netns", can, netns.ModeLoopback},
		{netns.ModeNetns, "loopback", cannot, netns.ModeNetns},
		{"", "loopback", can, netns.ModeLoopback},
		{"", "netns", cannot, netns.ModeNetns},
		{"", "auto", can, netns.ModeNetns},
		{"", "auto", cannot, netns.ModeLoopback},
	} {
		if got := resolveMode(tc.opt, tc.scenario, tc.canNetns); got != tc.want {
			t.Errorf("option %q, scenario %q, netns possible %v: mode %q, want %q", tc.opt, tc.scenario, tc.canNetns() == nil, got, tc.want)
		}
	}
}

// A run the machine cannot carry is invalid before anything is built, each
// failed check named; one it can carry is not. (The scenario's own checks
// already refuse more connections per process than the descriptor limit.)
func TestPreflightNamesWhatTheMachineLacks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src string
		mode      netns.Mode
		wantOK    bool
		wantWhy   string
	}{
		{"a small run", withTopology("small", "{gateways: 1, agents: 1}", ""), netns.ModeLoopback, true, ""},
		{"network faults on loopback", `name: lossy
topology: {gateways: 1, agents: 1}
clients: {count: 100}
phases:
  - name: steady
    duration: 10s
    faults: [{at: 1s, loss: gw-1, rate: 1%}]
`, netns.ModeLoopback, false, "preflight: network faults = "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &runner{sc: mustParse(t, tc.src)}
			ok := r.preflight(tc.mode)
			why := strings.Join(r.info.Invalid, "\n")
			if ok != tc.wantOK || !strings.Contains(why, tc.wantWhy) || ok != (why == "") {
				t.Fatalf("preflight ok %v (invalid %q), want %v naming %q", ok, why, tc.wantOK, tc.wantWhy)
			}
			if r.info.Mode != tc.mode || len(r.info.Preflight) == 0 {
				t.Fatalf("mode %q and %d checks recorded", r.info.Mode, len(r.info.Preflight))
			}
		})
	}
}

// The phases lie end to end from the traffic's start.
func TestPhasesLieEndToEnd(t *testing.T) {
	t.Parallel()
	s := mustParse(t, `name: three
topology: {gateways: 1, agents: 1}
clients: {count: 10}
phases:
  - {name: warm, duration: 5s}
  - {name: crash, duration: 1m}
  - {name: calm, duration: 500ms}
`)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	want := []runfolder.PhaseWindow{
		{Name: "warm", Start: start, End: start.Add(5 * time.Second)},
		{Name: "crash", Start: start.Add(5 * time.Second), End: start.Add(65 * time.Second)},
		{Name: "calm", Start: start.Add(65 * time.Second), End: start.Add(65500 * time.Millisecond)},
	}
	if got := phaseWindows(start, s.Phases); !slices.Equal(got, want) {
		t.Fatalf("windows %+v, want %+v", got, want)
	}
}

// Every process listens on its own host's address at the role's ports, the
// addresses it reports are the ones it is told to listen on, and the gateways
// reach the core's state and msg.
func TestEveryProcessListensOnItsHostsPorts(t *testing.T) {
	r := newTestRunner(t, withTopology("ports", "{gateways: 3, agents: 1}", ""), newFakeClock())
	core := r.net.Host("core")
	specs := r.coreSpecs()
	for i := 1; i <= 3; i++ {
		specs = append(specs, r.gatewaySpec(i))
	}
	wantPorts := map[string][2]int{
		"state": {portState, portStateAdmin}, "router": {portRouter, portRouterAdmin}, "msg": {portMsg, portMsgAdmin},
		"ipconf": {portIpconf, portIpconfAdmin}, "control": {portControl, portControlAdmin}, "gateway": {portGateway, portGatewayAdmin},
	}
	seen := map[string]string{}
	for _, s := range specs {
		ports := wantPorts[s.role]
		if want := hostPort(s.host, ports[0]); s.addr != want || flagValue(s.args, "-listen") != want {
			t.Errorf("%s: address %q, -listen %q, want %q", s.name, s.addr, flagValue(s.args, "-listen"), want)
		}
		if want := hostPort(s.host, ports[1]); s.admin != want || flagValue(s.args, "-admin") != want {
			t.Errorf("%s: admin %q, -admin %q, want %q", s.name, s.admin, flagValue(s.args, "-admin"), want)
		}
		for _, a := range []string{s.addr, s.admin} {
			if other, dup := seen[a]; dup {
				t.Errorf("%s and %s both listen on %s", other, s.name, a)
			}
			seen[a] = s.name
		}
		if !s.ready || s.args[0] != s.role {
			t.Errorf("%s: ready %v, subcommand %q", s.name, s.ready, s.args[0])
		}
		if s.role == "gateway" {
			if s.host.Name != s.name || flagValue(s.args, "-id") != s.name {
				t.Errorf("%s runs on %s with -id %q", s.name, s.host.Name, flagValue(s.args, "-id"))
			}
			if flagValue(s.args, "-state") != hostPort(core, portState) || flagValue(s.args, "-msg") != hostPort(core, portMsg) {
				t.Errorf("%s: -state %q, -msg %q, want the core's", s.name, flagValue(s.args, "-state"), flagValue(s.args, "-msg"))
			}
		} else if s.host != core {
			t.Errorf("%s runs on %s, not the core", s.name, s.host.Name)
		}
	}
	if got := r.ipconfURL(); got != "http://"+hostPort(core, portIpconf) {
		t.Errorf("ipconf URL %q", got)
	}
}

// The scenario's component settings become their processes' flags, and only
// the settings it sets.
func TestComponentSettingsBecomeFlags(t *testing.T) {
	for _, tc := range []struct {
		name, components, clients string
		process                   string // gw-1 or a core service
		want                      map[string]string
		absent                    []string
	}{
		{name: "a gateway by default", process: "gw-1", want: map[string]string{"-log-level": "warn"},
			absent: []string{"-max-conns", "-epollers", "-workers", "-accept-rate", "-heartbeat", "-sndbuf", "-lease-ttl"}},
		{name: "a gateway's settings", process: "gw-1",
			components: "gateway: {max_conns: 5k, epollers: 2, workers: 8, accept_rate: 1k/s, idle_timeout: 30s, heartbeat: 7s, lease_ttl: 3s}",
			want: map[string]string{"-max-conns": "5000", "-epollers": "2", "-workers": "8", "-accept-rate": "1000",
				"-idle-timeout": "30s", "-heartbeat": "7s", "-lease-ttl": "3s"}},
		{name: "a gateway takes the clients' heartbeat", process: "gw-1", clients: ", heartbeat: 9s",
			want: map[string]string{"-heartbeat": "9s"}},
		{name: "msg's inbox", process: "msg", components: "msg: {inbox: 64}",
			want: map[string]string{"-inbox": "64", "-backend": "memory", "-router": "127.0.0.0:7300"}},
		{name: "ipconf's settings", process: "ipconf", components: "ipconf: {top_k: 3, freeze: 2s}",
			clients: ", heartbeat: 9s, reconnect: {base: 100ms, max: 5s}",
			want:    map[string]string{"-top-k": "3", "-freeze": "2s", "-heartbeat": "9s", "-backoff-base": "100ms", "-backoff-max": "5s"}},
		{name: "control's soft limit", process: "control", components: "control: {soft_limit: 80%}",
			want: map[string]string{"-soft-fraction": "0.8"}},
		{name: "control by default", process: "control", absent: []string{"-soft-fraction"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := fmt.Sprintf("name: flags\ntopology: {gateways: 1, agents: 1}\nclients: {count: 100%s}\ncomponents: {%s}\nphases:\n  - {name: steady, duration: 10s}\n",
				tc.clients, tc.components)
			r := newTestRunner(t, src, newFakeClock())
			var args []string
			if tc.process == "gw-1" {
				args = r.gatewaySpec(1).args
			}
			for _, s := range r.coreSpecs() {
				if s.name == tc.process {
					args = s.args
				}
			}
			core := r.net.Host("core").Addr.String()
			for flag, want := range tc.want {
				want = strings.Replace(want, "127.0.0.0", core, 1)
				if got := flagValue(args, flag); got != want {
					t.Errorf("%s %s = %q, want %q (args %q)", tc.process, flag, got, want, args)
				}
			}
			for _, flag := range tc.absent {
				if slices.Contains(args, flag) {
					t.Errorf("%s has %s though the scenario does not set it: %q", tc.process, flag, args)
				}
			}
		})
	}
}

// Redis is laid out as the topology says: single on the core, sentinel's
// primary, replicas and sentinels each on their host, a cluster's shards with
// their replicas; state and msg are pointed at it with their own key prefixes.
func TestRedisIsLaidOutAsTheTopologySays(t *testing.T) {
	for _, tc := range []struct {
		name, redis string
		servers     []string // name@host
		sentinels   []string
		mode        string // -redis-mode; "" for single
		addrs       []string
		shards      [][]string // each shard's primary, then its replicas (names)
	}{
		{name: "single", redis: "{mode: single}", servers: []string{"redis@core"}, addrs: []string{"redis"}},
		{name: "sentinel", redis: "{mode: sentinel}", servers: []string{"redis-1@redis-1", "redis-2@redis-2", "redis-3@redis-3"},
			sentinels: []string{"sentinel-1@redis-1", "sentinel-2@redis-2", "sentinel-3@redis-3"}, mode: "sentinel",
			addrs: []string{"sentinel-1", "sentinel-2", "sentinel-3"}},
		{name: "cluster", redis: "{mode: cluster, shards: 2, replicas: 1}",
			servers: []string{"redis-1@redis-1", "redis-2@redis-2", "redis-3@redis-3", "redis-4@redis-4"}, mode: "cluster",
			addrs: []string{"redis-1", "redis-2", "redis-3", "redis-4"}, shards: [][]string{{"redis-1", "redis-3"}, {"redis-2", "redis-4"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRunner(t, withTopology("redis", "{gateways: 1, agents: 1, backend: {state: redis, msg: redis}, redis: "+tc.redis+"}", ""),
				newFakeClock())
			l, err := r.redisLayout()
			if err != nil {
				t.Fatal(err)
			}
			r.redis = l
			placed := func(ss []spec) []string {
				var out []string
				for _, s := range ss {
					out = append(out, s.name+"@"+s.host.Name)
				}
				return out
			}
			if got := placed(l.servers); !slices.Equal(got, tc.servers) {
				t.Errorf("servers %v, want %v", got, tc.servers)
			}
			if got := placed(l.sentinels); !slices.Equal(got, tc.sentinels) {
				t.Errorf("sentinels %v, want %v", got, tc.sentinels)
			}
			addr := func(name string) string {
				s, ok := l.spec(name)
				if !ok {
					t.Fatalf("no process %s", name)
				}
				return s.addr
			}
			var addrs []string
			for _, n := range tc.addrs {
				addrs = append(addrs, addr(n))
			}
			want := []string{"-redis-addr", strings.Join(addrs, ",")}
			if tc.mode != "" {
				want = append([]string{"-redis-mode", tc.mode}, want...)
			}
			if got := l.clientArgs(); !slices.Equal(got, want) {
				t.Errorf("client flags %q, want %q", got, want)
			}
			for i, sh := range tc.shards {
				wantShard := redisnode.Shard{Primary: addr(sh[0])}
				for _, rep := range sh[1:] {
					wantShard.Replicas = append(wantShard.Replicas, addr(rep))
				}
				if got := l.shards[i]; got.Primary != wantShard.Primary || !slices.Equal(got.Replicas, wantShard.Replicas) {
					t.Errorf("shard %d: %+v, want %+v", i, got, wantShard)
				}
			}
			for _, s := range r.coreSpecs() {
				if s.name != "state" && s.name != "msg" {
					continue
				}
				if flagValue(s.args, "-redis-prefix") != redisPrefix(r.net.Run, s.name) || flagValue(s.args, "-redis-addr") != strings.Join(addrs, ",") {
					t.Errorf("%s is not pointed at the deployment with its prefix: %q", s.name, s.args)
				}
			}
			if _, ok := l.spec("redis-9"); ok {
				t.Error("spec found a process the deployment does not have")
			}
		})
	}
}

// A cluster node owns a killed primary's slots when one of its ranges holds
// the first slot that primary was given.
func TestOwnsSlotsOfFindsTheKilledPrimarysFirstSlot(t *testing.T) {
	t.Parallel()
	shards := []redisnode.Shard{{Primary: "a:1"}, {Primary: "b:1"}, {Primary: "c:1"}} // first slots 0, 5461, 10922
	for _, tc := range []struct {
		ranges []string
		killed string
		want   bool
	}{
		{[]string{"5461-10921"}, "b:1", true},
		{[]string{"0-5460", "5461"}, "b:1", true},
		{[]string{"0-5460"}, "b:1", false},
		{[]string{"10922-16383"}, "c:1", true},
		{[]string{"[5461->-abc]"}, "b:1", false}, // a migrating slot is not owned
		{[]string{"0-16383"}, "z:1", false},      // not one of the shards' primaries
	} {
		if got := ownsSlotsOf(tc.ranges, spec{addr: tc.killed}, shards); got != tc.want {
			t.Errorf("ranges %v, killed %s: %v, want %v", tc.ranges, tc.killed, got, tc.want)
		}
	}
}
