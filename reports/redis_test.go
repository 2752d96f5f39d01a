package reports

import (
	"math"
	"strings"
	"testing"

	"github.com/floodgate/floodgate/runfolder"
)

// redisReadings adds one INFO reading a second per server: ops[name] commands a
// second, and the server's role over time (primary(s) says whether it is one at
// second s); with killFirst, redis-1 has no readings from second 10 on.
func (f *fixture) redisReadings(ops map[string]float64, killFirst bool, primary func(name string, s int) bool) {
	total := map[string]float64{}
	for s := -f.pre; s <= f.total()+f.post; s++ {
		for name, rate := range ops {
			if killFirst && name == "redis-1" && s >= 10 {
				continue // killed: no more readings
			}
			total[name] += rate
			role := 0.0
			if primary(name, s) {
				role = 1
			}
			f.metrics = append(f.metrics, runfolder.MetricsSample{T: f.at(float64(s) + 0.5), Process: name, Metrics: map[string]float64{
				metricRedisCommands: total[name], metricRedisPrimary: role, metricRedisKeys: 100, metricRedisMemory: 1 << 20,
			}})
		}
	}
}

func TestRedisFiguresMeasureEachServerAndTheShardSpread(t *testing.T) {
	for _, c := range []struct {
		name     string
		ops      map[string]float64
		failover bool    // redis-1 dies half-way and redis-4 takes over
		spread   float64 // want; NaN: no spread measured
		gate     bool
	}{
		{"even shards", map[string]float64{"redis-1": 1000, "redis-2": 1100, "redis-3": 950, "redis-4": 900}, false, 150.0 / (3050.0 / 3), true},
		{"skewed shards", map[string]float64{"redis-1": 1000, "redis-2": 2000, "redis-3": 1000, "redis-4": 900}, false, 1000.0 / (4000.0 / 3), false},
		{"a primary failed over", map[string]float64{"redis-1": 1000, "redis-2": 1000, "redis-3": 1000, "redis-4": 900}, true, math.NaN(), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fxPhase{name: "steady", secs: 10}, fxPhase{name: "last", secs: 10})
			f.topology = "{gateways: 2, agents: 2, backend: {state: redis, msg: redis}, redis: {mode: cluster, shards: 3}}"
			f.gates = []string{"redis_shard_spread < 20%"}
			f.steadySystem(1000)
			f.redisReadings(c.ops, c.failover, func(name string, s int) bool {
				switch {
				case name == "redis-4":
					return c.failover && s >= 10
				case name == "redis-1" && c.failover:
					return s < 10
				}
				return true
			})
			dir := f.write()
			s, err := Build(dir)
			if err != nil {
				t.Fatal(err)
			}
			r := s.Redis
			if r == nil || r.Mode != "cluster" || len(r.Nodes) != 4 {
				t.Fatalf("redis summary %+v", r)
			}
			n2 := r.Nodes[1] // redis-2 lives through every case
			if n2.Name != "redis-2" || math.Abs(n2.OpsPerS-c.ops["redis-2"]) > 100 || len(n2.Phases) != 2 ||
				math.Abs(n2.Phases[1].OpsPerS-c.ops["redis-2"]) > 100 || n2.GoneAtS != nil {
				t.Fatalf("redis-2: %+v", n2)
			}
			if math.IsNaN(c.spread) {
				if r.ShardSpread != nil {
					t.Fatalf("spread %v measured across a failover", *r.ShardSpread)
				}
				if !r.Nodes[3].Primary || r.Nodes[3].PrimaryThroughout {
					t.Fatalf("redis-4 should show as promoted: %+v", r.Nodes[3])
				}
				if r.Nodes[0].GoneAtS == nil || *r.Nodes[0].GoneAtS > 10.5 {
					t.Fatalf("redis-1, killed at +10 s, is not reported gone then: %v", r.Nodes[0].GoneAtS)
				}
			} else if r.ShardSpread == nil || math.Abs(*r.ShardSpread-c.spread) > 0.03 {
				t.Fatalf("spread %v, want %.3f", r.ShardSpread, c.spread)
			}
			g := s.Gates[0]
			if g.Metric != "redis_shard_spread" || g.Pass != c.gate {
				t.Fatalf("gate %+v, want pass=%v", g, c.gate)
			}
			if math.IsNaN(c.spread) && (g.Value != nil || !strings.Contains(g.Note, "stayed primaries")) {
				t.Fatalf("gate on an unmeasured spread: %+v", g)
			}
			md, _, _ := readReportFiles(t, dir)
			if !strings.Contains(md, "Redis (cluster)") || !strings.Contains(md, "redis-4") {
				t.Fatalf("report lacks the Redis section:\n%s", md)
			}
		})
	}
}

func TestRelativeSpread(t *testing.T) {
	for _, c := range []struct {
		v    []float64
		want float64
		ok   bool
	}{
		{[]float64{100, 100, 100}, 0, true},
		{[]float64{90, 100, 110}, 0.2, true},
		{[]float64{100}, 0, false},
		{[]float64{0, 0}, 0, false},
	} {
		got, ok := relativeSpread(c.v)
		if ok != c.ok || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("relativeSpread(%v) = %v, %v; want %v, %v", c.v, got, ok, c.want, c.ok)
		}
	}
}
