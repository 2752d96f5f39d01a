package scenario

import (
	"slices"
	"strings"
	"testing"
)

// withRedis puts a topology.redis block (and a backend) into the valid scenario.
func withRedis(backend, redis string) string {
	s := strings.Replace(valid, "backend: {state: memory, msg: redis}", "backend: "+backend, 1)
	if redis != "" {
		s = strings.Replace(s, "  backend: ", "  redis: "+redis+"\n  backend: ", 1)
	}
	return s
}

func TestRedisTopologiesNameTheirHostsAndProcesses(t *testing.T) {
	for _, c := range []struct {
		name, backend, redis string
		hosts                []string
		procs                []string
	}{
		{"single on the core", "{state: redis, msg: redis}", "", nil, []string{"redis"}},
		{"no redis", "{state: memory, msg: memory}", "", nil, nil},
		{"sentinel", "{state: redis, msg: redis-replicated}", "{mode: sentinel}",
			[]string{"redis-1", "redis-2", "redis-3"},
			[]string{"redis-1", "redis-2", "redis-3", "redis-primary", "sentinel-1", "sentinel-2", "sentinel-3"}},
		{"sentinel with one replica", "{state: redis, msg: redis-replicated}", "{mode: sentinel, replicas: 1}",
			[]string{"redis-1", "redis-2", "redis-3"},
			[]string{"redis-1", "redis-2", "redis-primary", "sentinel-1", "sentinel-2", "sentinel-3"}},
		{"cluster defaults", "{state: redis, msg: redis}", "{mode: cluster}",
			[]string{"redis-1", "redis-2", "redis-3", "redis-4", "redis-5", "redis-6"},
			[]string{"redis-1", "redis-2", "redis-3", "redis-4", "redis-5", "redis-6"}},
		{"cluster without replicas", "{state: redis, msg: redis}", "{mode: cluster, shards: 2, replicas: 0}",
			[]string{"redis-1", "redis-2"}, []string{"redis-1", "redis-2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse("ok.yaml", []byte(withRedis(c.backend, c.redis)))
			if err != nil {
				t.Fatal(err)
			}
			if h := s.Topology.RedisHosts(); !slices.Equal(h, c.hosts) {
				t.Errorf("hosts %v, want %v", h, c.hosts)
			}
			if p := s.Topology.redisProcesses(); !slices.Equal(p, c.procs) {
				t.Errorf("processes %v, want %v", p, c.procs)
			}
		})
	}
}

func TestRedisMistakesPointAtTheirLine(t *testing.T) {
	for _, c := range []struct {
		name, backend, redis, where, reason string
	}{
		{"replicated without a replica", "{state: redis, msg: redis-replicated}", "", "ok.yaml:7:12",
			"redis-replicated waits for a replica"},
		{"replicated on a cluster without replicas", "{state: redis, msg: redis-replicated}", "{mode: cluster, replicas: 0}",
			"ok.yaml:8:12", "redis-replicated waits for a replica"},
		{"unknown mode", "{state: redis, msg: redis}", "{mode: ring}", "ok.yaml:7:10", `topology.redis.mode: "ring": expected single, sentinel or cluster`},
		{"shards outside a cluster", "{state: redis, msg: redis}", "{mode: sentinel, shards: 3}", "ok.yaml:7:10", "shards size a cluster"},
		{"sentinel without a replica", "{state: redis, msg: redis}", "{mode: sentinel, replicas: 0}", "ok.yaml:7:10", "expected 1 or 2"},
		{"replicas of a single server", "{state: redis, msg: redis}", "{mode: single, replicas: 1}", "ok.yaml:7:10", "shards and replicas size a sentinel or cluster"},
		{"too many shards", "{state: redis, msg: redis}", "{mode: cluster, shards: 40}", "ok.yaml:7:10", "topology.redis.shards: 40: expected 1 to 16"},
		{"redis without a redis backend", "{state: memory, msg: memory}", "{mode: sentinel}", "ok.yaml:7:10", "no backend uses Redis"},
		{"unknown msg backend", "{state: redis, msg: redis-sync}", "", "ok.yaml:7:12", `topology.backend.msg: "redis-sync": expected memory, redis or redis-replicated`},
	} {
		t.Run(c.name, func(t *testing.T) {
			rejectedAt(t, "ok.yaml", withRedis(c.backend, c.redis), c.where, c.reason)
		})
	}
}

func TestRedisPrimaryIsAKillTargetNotARestartOne(t *testing.T) {
	s := withRedis("{state: redis, msg: redis}", "{mode: sentinel}")
	if _, err := Parse("ok.yaml", []byte(strings.Replace(s, "kill: gw-2", "kill: redis-primary", 1))); err != nil {
		t.Fatalf("kill: redis-primary refused: %v", err)
	}
	rejectedAt(t, "ok.yaml", strings.Replace(s, "restart: gw-2", "restart: redis-primary", 1), "ok.yaml:28:9",
		"restart the killed one by its name")
	rejectedAt(t, "ok.yaml", strings.Replace(withRedis("{state: redis, msg: redis}", ""), "kill: gw-2", "kill: redis-primary", 1),
		"ok.yaml:26:9", `"redis-primary": expected one of`)
}

func TestShardSpreadGateIsAFraction(t *testing.T) {
	var g Gate
	if err := g.UnmarshalText([]byte("redis_shard_spread < 20%")); err != nil {
		t.Fatal(err)
	}
	if g.Value != 0.2 || !g.Holds(0.19) || g.Holds(0.2) {
		t.Fatalf("gate %+v", g)
	}
	if err := g.UnmarshalText([]byte("redis_shard_spread < 2MiB")); err == nil || !strings.Contains(err.Error(), "a share like 20%") {
		t.Fatalf("a size accepted as a share: %v", err)
	}
}

func TestNetworkFaultsMayNameRedisHosts(t *testing.T) {
	fault := "{at: 10s, partition: [redis-1, core], for: 5s}"
	s := strings.Replace(withRedis("{state: redis, msg: redis}", "{mode: sentinel}"), "{at: 10s, kill: gw-2}", fault, 1)
	if _, err := Parse("ok.yaml", []byte(s)); err != nil {
		t.Fatalf("a partition of a Redis host refused: %v", err)
	}
	rejectedAt(t, "ok.yaml", strings.Replace(valid, "{at: 10s, kill: gw-2}", fault, 1), "ok.yaml:26:9", `"redis-1": expected core`)
}
