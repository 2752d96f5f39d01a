package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/floodgate/floodgate/internal/redisnode"
	"github.com/floodgate/floodgate/scenario"
	"github.com/redis/go-redis/v9"
)

const (
	portSentinel = 26379
	// sentinelMaster is the name the sentinels monitor the primary under.
	sentinelMaster = "floodgate"
)

// redisLayout is the run's Redis deployment (topology.redis): the servers' and the
// sentinels' processes, and the cluster's shards.
type redisLayout struct {
	mode      string
	servers   []spec
	sentinels []spec
	shards    []redisnode.Shard // cluster mode
}

// redisLayout builds the deployment's process specs, writing each process's
// folder (and a sentinel's config file) under the run's Redis scratch folder.
//
// Single: one server on the core host. Sentinel: redis-1 (the primary) and its
// replicas (redis-2, redis-3) on hosts of their own, and sentinel-1…3 on
// redis-1…3 (a majority survives the loss of the primary's host). Cluster: redis-1…redis-S are the
// shards' primaries, the replicas follow (redis-S+1…), one per host. Every server
// keeps an append-only file synced every second.
func (r *runner) redisLayout() (redisLayout, error) {
	t := r.sc.Topology
	l := redisLayout{mode: t.Redis.Mode}
	if !t.UsesRedis() {
		return l, nil
	}
	server := func(name string, h string, port int, s redisnode.Server) (spec, error) {
		host := r.net.Host(h)
		s.Bind, s.Port, s.AOF, s.Dir = host.Addr.String(), port, true, filepath.Join(r.redisDir(), name)
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			return spec{}, fmt.Errorf("redis: %w", err)
		}
		return spec{name: name, role: "redis", host: host, bin: "redis-server", addr: s.Addr(), args: s.Args()}, nil
	}
	add := func(name, h string, s redisnode.Server) error {
		sp, err := server(name, h, portRedis, s)
		l.servers = append(l.servers, sp)
		return err
	}
	switch l.mode {
	case scenario.RedisSingle:
		return l, add("redis", "core", redisnode.Server{})
	case scenario.RedisSentinel:
		if err := add("redis-1", "redis-1", redisnode.Server{}); err != nil {
			return l, err
		}
		for i := 2; i <= 1+*t.Redis.Replicas; i++ {
			name := fmt.Sprintf("redis-%d", i)
			if err := add(name, name, redisnode.Server{ReplicaOf: l.servers[0].addr}); err != nil {
				return l, err
			}
		}
		for i := 1; i <= 3; i++ {
			name, host := fmt.Sprintf("sentinel-%d", i), r.net.Host(fmt.Sprintf("redis-%d", i))
			s := redisnode.Sentinel{Bind: host.Addr.String(), Port: portSentinel, Dir: filepath.Join(r.redisDir(), name),
				Master: sentinelMaster, Primary: l.servers[0].addr}
			if err := os.MkdirAll(s.Dir, 0o755); err != nil {
				return l, fmt.Errorf("sentinel: %w", err)
			}
			args, err := s.WriteConfig()
			if err != nil {
				return l, err
			}
			l.sentinels = append(l.sentinels, spec{name: name, role: "sentinel", host: host, bin: "redis-server", addr: s.Addr(), args: args})
		}
	case scenario.RedisCluster:
		shards, reps := t.Redis.Shards, *t.Redis.Replicas
		l.shards = make([]redisnode.Shard, shards)
		for i := 1; i <= shards*(1+reps); i++ {
			name := fmt.Sprintf("redis-%d", i)
			if err := add(name, name, redisnode.Server{Cluster: true}); err != nil {
				return l, err
			}
			if i <= shards {
				l.shards[i-1].Primary = l.servers[i-1].addr
			} else {
				sh := (i - shards - 1) / reps
				l.shards[sh].Replicas = append(l.shards[sh].Replicas, l.servers[i-1].addr)
			}
		}
	}
	return l, nil
}

// clientArgs are the flags that point a state or msg process at the deployment
// (single is the processes' default mode).
func (l redisLayout) clientArgs() []string {
	if l.mode == scenario.RedisSingle {
		return []string{"-redis-addr", l.servers[0].addr}
	}
	addrs := l.servers
	if l.mode == scenario.RedisSentinel {
		addrs = l.sentinels
	}
	var a []string
	for _, s := range addrs {
		a = append(a, s.addr)
	}
	return []string{"-redis-mode", l.mode, "-redis-addr", strings.Join(a, ",")}
}

// spec returns the process named name, if the deployment has one.
func (l redisLayout) spec(name string) (spec, bool) {
	for _, s := range append(append([]spec(nil), l.servers...), l.sentinels...) {
		if s.name == name {
			return s, true
		}
	}
	return spec{}, false
}

// startRedis starts the deployment and returns once it serves: every server
// answers, a replica is in sync, the sentinels know each other and the replica, a
// cluster has every slot covered and every replica attached.
func (r *runner) startRedis(ctx context.Context) error {
	l := r.redis
	for _, s := range append(append([]spec(nil), l.servers...), l.sentinels...) {
		p, err := r.start(ctx, s)
		if err != nil {
			return err
		}
		r.setLive(p)
		if err := redisnode.WaitPing(ctx, s.addr, "", 10*time.Second); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	switch l.mode {
	case scenario.RedisSentinel:
		for _, s := range l.servers[1:] {
			if err := redisnode.WaitReplicating(ctx, s.addr, "", 30*time.Second); err != nil {
				return err
			}
		}
		var addrs []string
		for _, s := range l.sentinels {
			addrs = append(addrs, s.addr)
		}
		return redisnode.WaitSentinels(ctx, addrs, sentinelMaster, 60*time.Second)
	case scenario.RedisCluster:
		cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		return redisnode.FormCluster(cctx, l.shards, "")
	}
	return nil
}

// resolveRedis names the process a Redis fault targets: redis-primary is the
// server the sentinels name as primary now.
func (r *runner) resolveRedis(ctx context.Context, name string) (string, error) {
	if name != "redis-primary" {
		return name, nil
	}
	var errs []error
	for _, s := range r.redis.sentinels {
		if p := r.live(s.name); p == nil || !p.alive() {
			continue
		}
		addr, err := redisnode.PrimaryOf(ctx, s.addr, sentinelMaster)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, srv := range r.redis.servers {
			if srv.addr == addr {
				return srv.name, nil
			}
		}
		errs = append(errs, fmt.Errorf("sentinel %s names %s, which is none of the run's servers", s.name, addr))
	}
	return "", fmt.Errorf("redis-primary: %w", errors.Join(errs...))
}

// isPrimary reports whether the server at addr says it is a primary.
func isPrimary(ctx context.Context, addr string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 500 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	return err == nil && strings.Contains(info, "role:master")
}

// awaitFailover follows a killed primary's failover and returns when it
// completed — the sentinels name a live primary that says it is one, or the
// cluster marks the node failed and serves every slot again — with a line saying
// what happened. It returns an error when that takes longer than within.
func (r *runner) awaitFailover(ctx context.Context, killed spec, within time.Duration) (time.Time, string, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		switch r.redis.mode {
		case scenario.RedisSentinel:
			for _, s := range r.redis.sentinels {
				if p := r.live(s.name); p == nil || !p.alive() {
					continue
				}
				addr, err := redisnode.PrimaryOf(ctx, s.addr, sentinelMaster)
				if err == nil && addr != killed.addr && isPrimary(ctx, addr) {
					return time.Now(), fmt.Sprintf("the sentinels promoted %s", r.redisName(addr)), nil
				}
			}
		case scenario.RedisCluster:
			if name, ok := r.clusterReplaced(ctx, killed); ok {
				return time.Now(), fmt.Sprintf("the cluster promoted %s", name), nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, "", fmt.Errorf("no failover of %s within %v", killed.name, within)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// clusterReplaced asks a live node whether the killed node is marked failed, the
// cluster is ok, and which node now serves the killed node's first slot.
func (r *runner) clusterReplaced(ctx context.Context, killed spec) (string, bool) {
	for _, s := range r.redis.servers {
		if p := r.live(s.name); s.addr == killed.addr || p == nil || !p.alive() {
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: s.addr, DialTimeout: 500 * time.Millisecond, MaxRetries: -1})
		info, err1 := c.ClusterInfo(ctx).Result()
		nodes, err2 := c.ClusterNodes(ctx).Result()
		c.Close()
		if err1 != nil || err2 != nil || !strings.Contains(info, "cluster_state:ok") {
			return "", false
		}
		failed := false
		for _, line := range strings.Split(nodes, "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && strings.HasPrefix(f[1], killed.addr) && strings.Contains(f[2], "fail") && !strings.Contains(f[2], "fail?") {
				failed = true
			}
		}
		if !failed {
			return "", false
		}
		for _, line := range strings.Split(nodes, "\n") {
			f := strings.Fields(line)
			if len(f) >= 9 && strings.Contains(f[2], "master") && !strings.Contains(f[2], "fail") && ownsSlotsOf(f[8:], killed, r.redis.shards) {
				addr, _, _ := strings.Cut(f[1], "@")
				return r.redisName(addr), true
			}
		}
	}
	return "", false
}

// ownsSlotsOf reports whether slot ranges (CLUSTER NODES' trailing fields) hold
// the first slot the killed node was given when the cluster formed.
func ownsSlotsOf(ranges []string, killed spec, shards []redisnode.Shard) bool {
	first := -1
	for i, sh := range shards {
		if sh.Primary == killed.addr {
			first = i * 16384 / len(shards)
		}
	}
	for _, rg := range ranges {
		lo, hi, ok := strings.Cut(rg, "-")
		if !ok {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && first >= a && first <= b {
			return true
		}
	}
	return false
}

// redisName is the name of the run's server at addr (addr itself if none).
func (r *runner) redisName(addr string) string {
	for _, s := range r.redis.servers {
		if s.addr == addr {
			return s.name
		}
	}
	return addr
}

// redisScraper reads each Redis server's INFO once a second for metrics.jsonl.
type redisScraper struct {
	mu      sync.Mutex
	clients map[string]*redis.Client
}

func (s *redisScraper) client(addr string) *redis.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients == nil {
		s.clients = map[string]*redis.Client{}
	}
	c := s.clients[addr]
	if c == nil {
		c = redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 500 * time.Millisecond, ReadTimeout: 800 * time.Millisecond,
			MaxRetries: -1, PoolSize: 1})
		s.clients[addr] = c
	}
	return c
}

func (s *redisScraper) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		c.Close()
	}
	s.clients = nil
}

// Redis series in metrics.jsonl (a server's INFO, read by the runner).
const (
	metricRedisCommands = "redis_commands_processed_total" // total_commands_processed
	metricRedisPrimary  = "redis_primary"                  // 1 while the server is a primary
	metricRedisKeys     = "redis_keys"                     // keys in db0
	metricRedisMemory   = "redis_used_memory_bytes"
	metricRedisClients  = "redis_connected_clients"
)

// scrape reads one server's INFO into metrics.
func (s *redisScraper) scrape(ctx context.Context, addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
	defer cancel()
	info, err := s.client(addr).Info(ctx, "stats", "replication", "memory", "clients", "keyspace").Result()
	if err != nil {
		return nil, err
	}
	return parseRedisInfo(info), nil
}

// parseRedisInfo reads a server's INFO answer into the runner's Redis series;
// lines it does not know are skipped.
func parseRedisInfo(info string) map[string]float64 {
	m := map[string]float64{metricRedisKeys: 0}
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		num := func() float64 { f, _ := strconv.ParseFloat(v, 64); return f }
		switch k {
		case "total_commands_processed":
			m[metricRedisCommands] = num()
		case "role":
			m[metricRedisPrimary] = map[bool]float64{true: 1, false: 0}[v == "master"]
		case "used_memory":
			m[metricRedisMemory] = num()
		case "connected_clients":
			m[metricRedisClients] = num()
		case "db0":
			for _, kv := range strings.Split(v, ",") {
				if n, ok := strings.CutPrefix(kv, "keys="); ok {
					m[metricRedisKeys], _ = strconv.ParseFloat(n, 64)
				}
			}
		}
	}
	return m
}
