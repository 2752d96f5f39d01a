package reports

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Redis series the runner records in metrics.jsonl, from each server's INFO.
const (
	metricRedisCommands = "redis_commands_processed_total"
	metricRedisPrimary  = "redis_primary"
	metricRedisKeys     = "redis_keys"
	metricRedisMemory   = "redis_used_memory_bytes"
)

// RedisSummary is the run's Redis deployment at work: each server's operations
// over the traffic and per phase, and, for a cluster, how evenly the shards'
// primaries shared them.
type RedisSummary struct {
	Mode  string      `json:"mode"` // single, sentinel or cluster
	Nodes []RedisNode `json:"nodes"`
	// ShardSpread is (most − fewest) ÷ mean of the operations the cluster's shard
	// primaries served over the traffic, as a fraction; nil unless the run had a
	// cluster whose primaries all stayed primaries throughout.
	ShardSpread *float64 `json:"shard_spread,omitempty"`
}

// RedisNode is one server's figures.
type RedisNode struct {
	Name string `json:"name"`
	// Primary: the server was a primary at its last reading (a promoted replica
	// is one; a killed primary is whatever it last said).
	Primary bool `json:"primary"`
	// PrimaryThroughout: every reading over the traffic said primary.
	PrimaryThroughout bool    `json:"primary_throughout"`
	Ops               float64 `json:"ops"` // commands processed over the traffic
	OpsPerS           float64 `json:"ops_per_s"`
	// Phases are the commands per phase, in the run's order.
	Phases      []RedisPhaseOps `json:"phases"`
	Keys        float64         `json:"keys"` // at its last reading
	PeakMemory  float64         `json:"peak_memory_bytes"`
	LastReading time.Time       `json:"last_reading"`
	// GoneAtS is when its readings stopped, in seconds since the traffic start,
	// when that was over 3 s before the traffic ended (a killed server); nil
	// otherwise.
	GoneAtS *float64 `json:"gone_at_s,omitempty"`
}

// RedisPhaseOps is one server's commands in one phase.
type RedisPhaseOps struct {
	Phase   string  `json:"phase"`
	Ops     float64 `json:"ops"`
	OpsPerS float64 `json:"ops_per_s"`
}

// redisFigures summarises the Redis servers' readings; nil for a run without them.
func (a *analysis) redisFigures() *RedisSummary {
	cmds := perProcess(a.r.metrics, selector{name: metricRedisCommands})
	if len(cmds) == 0 {
		return nil
	}
	s := &RedisSummary{Mode: "single"}
	if sc := a.r.scenario; sc != nil {
		s.Mode = sc.Topology.Redis.Mode
	}
	roles := perProcess(a.r.metrics, selector{name: metricRedisPrimary})
	keys := perProcess(a.r.metrics, selector{name: metricRedisKeys})
	mem := perProcess(a.r.metrics, selector{name: metricRedisMemory})
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	slices.SortFunc(names, compareGateways)
	start, end := a.r.info.TrafficStart, a.r.info.TrafficEnd
	for _, n := range names {
		node := RedisNode{Name: n, PrimaryThroughout: true}
		node.Ops, _ = increase(cmds[n], a.restarts[n], start, end)
		if d := end.Sub(start).Seconds(); d > 0 {
			node.OpsPerS = node.Ops / d
		}
		for _, ph := range a.r.info.Phases {
			// The phase's own window: the analysis's last scope is open-ended (it
			// takes the agents' wait for the last deadlines), a rate needs an end.
			v, _ := increase(cmds[n], a.restarts[n], ph.Start, ph.End)
			po := RedisPhaseOps{Phase: ph.Name, Ops: v}
			if d := ph.End.Sub(ph.Start).Seconds(); d > 0 {
				po.OpsPerS = v / d
			}
			node.Phases = append(node.Phases, po)
		}
		seen := false
		for _, p := range roles[n] {
			node.Primary = p.v == 1
			if within(p.t, start, end) {
				seen = true
				node.PrimaryThroughout = node.PrimaryThroughout && p.v == 1
			}
		}
		node.PrimaryThroughout = node.PrimaryThroughout && seen
		if pts := keys[n]; len(pts) > 0 {
			node.Keys = pts[len(pts)-1].v
		}
		for _, p := range mem[n] {
			node.PeakMemory = max(node.PeakMemory, p.v)
		}
		if pts := cmds[n]; len(pts) > 0 {
			node.LastReading = pts[len(pts)-1].t
			if !end.IsZero() && end.Sub(node.LastReading) > 3*time.Second {
				at := node.LastReading.Sub(start).Seconds()
				node.GoneAtS = &at
			}
		}
		s.Nodes = append(s.Nodes, node)
	}
	if s.Mode == "cluster" {
		var ops []float64
		all := true
		for _, n := range s.Nodes {
			if n.Primary || n.PrimaryThroughout {
				all = all && n.PrimaryThroughout
				ops = append(ops, n.Ops)
			}
		}
		if v, ok := relativeSpread(ops); ok && all {
			s.ShardSpread = &v
		}
	}
	return s
}

// relativeSpread is (max − min) ÷ mean of at least two positive values.
func relativeSpread(v []float64) (float64, bool) {
	if len(v) < 2 {
		return 0, false
	}
	lo, hi, sum := math.Inf(1), math.Inf(-1), 0.0
	for _, x := range v {
		lo, hi, sum = min(lo, x), max(hi, x), sum+x
	}
	mean := sum / float64(len(v))
	if mean <= 0 {
		return 0, false
	}
	return (hi - lo) / mean, true
}

// redisSection is the report's Redis table; nil for a run without Redis readings.
func redisSection(s *Summary) *section {
	r := s.Redis
	if r == nil || len(r.Nodes) == 0 {
		return nil
	}
	head := []string{"server", "role", "ops/s over the traffic"}
	for _, ph := range r.Nodes[0].Phases {
		head = append(head, ph.Phase)
	}
	head = append(head, "keys", "peak memory")
	t := table{Caption: "Commands per second, over the traffic and per phase", Head: head}
	for _, n := range r.Nodes {
		role := "replica"
		switch {
		case n.PrimaryThroughout:
			role = "primary"
		case n.Primary:
			role = "primary (promoted)"
		}
		if n.GoneAtS != nil {
			role += fmt.Sprintf(", no readings after +%.0f s", *n.GoneAtS)
		}
		row := []string{n.Name, role, fmtCount(n.OpsPerS)}
		for _, ph := range n.Phases {
			row = append(row, fmtCount(ph.OpsPerS))
		}
		row = append(row, fmtCount(n.Keys), fmtBytes(n.PeakMemory))
		t.Rows = append(t.Rows, row)
	}
	sec := &section{ID: "redis", Title: "Redis (" + r.Mode + ")", Tables: []table{t},
		Paras: []string{"Each Redis server's commands processed (INFO total_commands_processed, read once a second), per second over the traffic and per phase. Role: what the server said at its last reading; \"promoted\" marks a replica that became primary during the run. A replica's count includes the writes it replicates."}}
	if v := r.ShardSpread; v != nil {
		sec.Bullets = append(sec.Bullets, fmt.Sprintf("Shard spread: the busiest primary served %s more commands than the idlest, as a share of the mean (%s).",
			fmtPctShare(*v), shardOpsList(r)))
	}
	return sec
}

// fmtPctShare prints a fraction as a percentage with one decimal.
func fmtPctShare(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

func shardOpsList(r *RedisSummary) string {
	var parts []string
	for _, n := range r.Nodes {
		if n.PrimaryThroughout {
			parts = append(parts, fmt.Sprintf("%s %s", n.Name, fmtCount(n.Ops)))
		}
	}
	return strings.Join(parts, ", ")
}
