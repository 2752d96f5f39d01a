package scenario

import (
	"fmt"
	"strings"
)

// Redis deployment modes (topology.redis.mode).
const (
	RedisSingle   = "single"   // one redis-server on the core host
	RedisSentinel = "sentinel" // a primary and its replicas, each on its own host, and three sentinels
	RedisCluster  = "cluster"  // shards × (1 + replicas) nodes, one per host
)

// RedisTopology is how the run deploys Redis when a backend uses it.
type RedisTopology struct {
	At   Pos
	Mode string `yaml:"mode" want:"single, sentinel or cluster"`
	// Shards is a cluster's primaries (default 3). Replicas is how many replicas
	// each primary has: a cluster's default 1; Sentinel's default 2, so that a
	// replica is left to confirm writes (msg's redis-replicated) after one is
	// promoted.
	Shards   int  `yaml:"shards"`
	Replicas *int `yaml:"replicas"`
}

// UsesRedis reports whether a backend keeps its data in Redis.
func (t Topology) UsesRedis() bool {
	return t.Backend.State == "redis" || strings.HasPrefix(t.Backend.Msg, "redis")
}

// RedisServers is how many redis-servers the run starts: 0 without a Redis backend.
func (t Topology) RedisServers() int {
	if !t.UsesRedis() {
		return 0
	}
	switch t.Redis.Mode {
	case RedisSentinel:
		return 1 + *t.Redis.Replicas
	case RedisCluster:
		return t.Redis.Shards * (1 + *t.Redis.Replicas)
	}
	return 1
}

// RedisHosts are the test hosts Redis runs on besides the core: redis-1 … redis-N,
// one per server (sentinel: at least 3, one per sentinel).
func (t Topology) RedisHosts() []string {
	n := t.RedisServers()
	switch {
	case n == 0 || t.Redis.Mode == RedisSingle:
		return nil
	case t.Redis.Mode == RedisSentinel:
		n = max(n, 3)
	}
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("redis-%d", i+1)
	}
	return hosts
}

// redisProcesses are the Redis processes a fault may name: "redis" (single), or
// redis-N, sentinel-N and redis-primary — whichever server is the primary when the
// fault strikes (sentinel mode).
func (t Topology) redisProcesses() []string {
	n := t.RedisServers()
	if n == 0 {
		return nil
	}
	if t.Redis.Mode == RedisSingle {
		return []string{"redis"}
	}
	var ps []string
	for i := 1; i <= n; i++ {
		ps = append(ps, fmt.Sprintf("redis-%d", i))
	}
	if t.Redis.Mode == RedisSentinel {
		ps = append(ps, "redis-primary", "sentinel-1", "sentinel-2", "sentinel-3")
	}
	return ps
}

func (t *Topology) redisDefaults() {
	if t.Redis.Mode == "" {
		t.Redis.Mode = RedisSingle
	}
	if t.Redis.Mode == RedisCluster && t.Redis.Shards == 0 {
		t.Redis.Shards = 3
	}
	if t.Redis.Replicas == nil {
		n := map[string]int{RedisCluster: 1, RedisSentinel: 2}[t.Redis.Mode]
		t.Redis.Replicas = &n
	}
}

func (t Topology) checkRedis(bad badFunc) {
	r := t.Redis
	switch r.Mode {
	case RedisSingle:
		if r.Shards != 0 || *r.Replicas != 0 {
			bad(r.At, "topology.redis", "shards and replicas size a sentinel or cluster deployment: drop them or set mode")
		}
	case RedisSentinel:
		if r.Shards != 0 {
			bad(r.At, "topology.redis.shards", "shards size a cluster: drop it or use mode: cluster")
		}
		if *r.Replicas < 1 || *r.Replicas > 2 {
			bad(r.At, "topology.redis.replicas", "%d: expected 1 or 2 (Sentinel promotes a replica)", *r.Replicas)
		}
	case RedisCluster:
		if r.Shards < 1 || r.Shards > 16 {
			bad(r.At, "topology.redis.shards", "%d: expected 1 to 16", r.Shards)
		}
		if *r.Replicas < 0 || *r.Replicas > 2 {
			bad(r.At, "topology.redis.replicas", "%d: expected 0 to 2", *r.Replicas)
		}
	default:
		bad(r.At, "topology.redis.mode", "%q: expected single, sentinel or cluster", r.Mode)
		return
	}
	if !t.UsesRedis() && r.At.Line != 0 {
		bad(r.At, "topology.redis", "no backend uses Redis: set topology.backend.state or .msg to redis")
	}
	if t.Backend.Msg == "redis-replicated" {
		if r.Mode == RedisSingle || (r.Mode == RedisCluster && *r.Replicas == 0) {
			bad(t.Backend.At, "topology.backend.msg", "redis-replicated waits for a replica: use topology.redis mode sentinel, or cluster with replicas ≥ 1")
		}
	}
}
