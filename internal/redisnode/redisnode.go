// Package redisnode runs Redis for the harness and the tests: the command lines of a
// server (standalone, replica or cluster node) and of a sentinel, and the steps that
// join cluster nodes into a cluster. Where the processes run (a test's loopback, a
// test host's namespace) is the caller's business; this package only knows Redis.
package redisnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server describes one redis-server.
type Server struct {
	Bind string // address to listen on
	Port int
	Dir  string // working directory: AOF, cluster config, log
	// AOF keeps an append-only file synced every second (appendfsync everysec): a
	// killed server loses at most the last second; without it, everything.
	AOF bool
	// ReplicaOf makes the server a replica of this primary ("host:port").
	ReplicaOf string
	// Cluster makes the server a cluster node; NodeTimeout is how long a node may be
	// unreachable before the others count it as failing (default 1s: a failover
	// then completes in about 2 s, within a gateway's default 3 s lease).
	Cluster     bool
	NodeTimeout time.Duration
	// BusPort is the cluster bus port (default Port+10000).
	BusPort int
}

// Addr is the server's address.
func (s Server) Addr() string { return net.JoinHostPort(s.Bind, strconv.Itoa(s.Port)) }

// Args are redis-server's arguments for s. Snapshots are off (the AOF, if any, is
// the durability), keys are never evicted (a store's inbox must not vanish under
// memory pressure), and the log goes to Dir/redis.log.
func (s Server) Args() []string {
	a := []string{"--bind", s.Bind, "--port", strconv.Itoa(s.Port), "--dir", s.Dir,
		"--save", "", "--protected-mode", "no", "--maxmemory-policy", "noeviction",
		"--logfile", filepath.Join(s.Dir, "redis.log"), "--daemonize", "no"}
	if s.AOF {
		a = append(a, "--appendonly", "yes", "--appendfsync", "everysec", "--appenddirname", "aof")
	} else {
		a = append(a, "--appendonly", "no")
	}
	if s.ReplicaOf != "" {
		host, port, _ := net.SplitHostPort(s.ReplicaOf)
		a = append(a, "--replicaof", host, port)
	}
	if s.Cluster {
		nt := s.NodeTimeout
		if nt <= 0 {
			nt = time.Second
		}
		a = append(a, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.Dir, "nodes.conf"),
			"--cluster-node-timeout", strconv.FormatInt(nt.Milliseconds(), 10),
			// A replica whose primary failed takes over however long it was cut off.
			"--cluster-replica-validity-factor", "0")
		if s.BusPort > 0 {
			a = append(a, "--cluster-port", strconv.Itoa(s.BusPort))
		}
	}
	return a
}

// Sentinel describes one sentinel watching one primary.
type Sentinel struct {
	Bind    string
	Port    int
	Dir     string // the config file lives here: Sentinel rewrites it as it learns
	Master  string // the name the primary is monitored under
	Primary string // the primary's address at start ("host:port")
	Quorum  int    // sentinels that must agree the primary is down (default 2)
	// DownAfter is how long the primary may not answer before a sentinel counts it
	// down (default 1s); a failover then takes about one more second.
	DownAfter time.Duration
}

// Addr is the sentinel's address.
func (s Sentinel) Addr() string { return net.JoinHostPort(s.Bind, strconv.Itoa(s.Port)) }

// WriteConfig writes the sentinel's config file into Dir and returns
// redis-server's arguments to run it (redis-server CONFIG --sentinel: the same
// binary as redis-sentinel, which Debian packages separately).
func (s Sentinel) WriteConfig() ([]string, error) {
	q, down := s.Quorum, s.DownAfter
	if q <= 0 {
		q = 2
	}
	if down <= 0 {
		down = time.Second
	}
	host, port, err := net.SplitHostPort(s.Primary)
	if err != nil {
		return nil, fmt.Errorf("sentinel: primary %q: %w", s.Primary, err)
	}
	conf := fmt.Sprintf(`bind %s
port %d
dir %s
logfile %s
daemonize no
protected-mode no
sentinel announce-ip %s
sentinel monitor %s %s %s %d
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s 10000
sentinel parallel-syncs %s 1
`, s.Bind, s.Port, s.Dir, filepath.Join(s.Dir, "sentinel.log"), s.Bind,
		s.Master, host, port, q, s.Master, down.Milliseconds(), s.Master, s.Master)
	path := filepath.Join(s.Dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("sentinel: %w", err)
	}
	return []string{path, "--sentinel"}, nil
}

// Shard is one cluster shard: its primary and its replicas' addresses.
type Shard struct {
	Primary  string
	Replicas []string
}

// FormCluster joins fresh cluster nodes into a cluster: the primaries share the slot
// space in equal contiguous ranges (shard i gets range i of len(shards)), every node
// meets the first, each replica follows its primary, and FormCluster returns once
// every node reports cluster_state:ok and knows every replica. The nodes must be
// running, empty and not yet in a cluster.
func FormCluster(ctx context.Context, shards []Shard, password string) error {
	if len(shards) == 0 {
		return errors.New("cluster: no shards")
	}
	var all []string
	for _, s := range shards {
		all = append(all, s.Primary)
		all = append(all, s.Replicas...)
	}
	clients := map[string]*redis.Client{}
	for _, a := range all {
		c := redis.NewClient(&redis.Options{Addr: a, Password: password, DialTimeout: 2 * time.Second})
		defer c.Close()
		clients[a] = c
	}
	const slots = 16384
	for i, s := range shards {
		lo, hi := i*slots/len(shards), (i+1)*slots/len(shards)-1
		if err := clients[s.Primary].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			return fmt.Errorf("cluster: %s: ADDSLOTSRANGE %d %d: %w", s.Primary, lo, hi, err)
		}
		// Distinct config epochs up front, as redis-cli does, so that no two
		// primaries start with the same epoch and need a collision round.
		if err := clients[s.Primary].Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("cluster: %s: SET-CONFIG-EPOCH: %w", s.Primary, err)
		}
	}
	host, port, err := net.SplitHostPort(all[0])
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	bus, err := busPort(ctx, clients[all[0]], port)
	if err != nil {
		return fmt.Errorf("cluster: %s: %w", all[0], err)
	}
	for _, a := range all[1:] {
		if err := clients[a].Do(ctx, "CLUSTER", "MEET", host, port, bus).Err(); err != nil {
			return fmt.Errorf("cluster: %s: MEET %s: %w", a, all[0], err)
		}
	}
	if err := poll(ctx, 30*time.Second, func() error {
		for _, a := range all {
			nodes, err := clients[a].ClusterNodes(ctx).Result()
			if err != nil {
				return err
			}
			if n := strings.Count(strings.TrimSpace(nodes), "\n") + 1; n != len(all) {
				return fmt.Errorf("%s knows %d of %d nodes", a, n, len(all))
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("cluster: nodes did not meet: %w", err)
	}
	for _, s := range shards {
		id, err := clients[s.Primary].Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return fmt.Errorf("cluster: %s: MYID: %w", s.Primary, err)
		}
		for _, r := range s.Replicas {
			if err := clients[r].Do(ctx, "CLUSTER", "REPLICATE", id).Err(); err != nil {
				return fmt.Errorf("cluster: %s: REPLICATE %s: %w", r, s.Primary, err)
			}
		}
	}
	return poll(ctx, 30*time.Second, func() error {
		for _, a := range all {
			info, err := clients[a].ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return fmt.Errorf("%s: cluster_state not ok", a)
			}
			nodes, err := clients[a].ClusterNodes(ctx).Result()
			if err != nil {
				return err
			}
			if n := strings.Count(nodes, "slave"); n != len(all)-len(shards) {
				return fmt.Errorf("%s sees %d of %d replicas", a, n, len(all)-len(shards))
			}
		}
		return nil
	})
}

// busPort is a node's cluster bus port: its cluster-port setting, or its port plus
// 10000 when that is 0.
func busPort(ctx context.Context, c *redis.Client, port string) (string, error) {
	v, err := c.ConfigGet(ctx, "cluster-port").Result()
	if err != nil {
		return "", fmt.Errorf("CONFIG GET cluster-port: %w", err)
	}
	if p := v["cluster-port"]; p != "" && p != "0" {
		return p, nil
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("port %q: %w", port, err)
	}
	return strconv.Itoa(n + 10000), nil
}

// WaitReplicating waits until the replica at addr has a live link to its primary
// and has loaded the primary's data (master_link_status:up, no sync in progress).
func WaitReplicating(ctx context.Context, addr, password string, within time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password, DialTimeout: time.Second})
	defer c.Close()
	return poll(ctx, within, func() error {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") || strings.Contains(info, "master_sync_in_progress:1") {
			return fmt.Errorf("replica %s not in sync yet", addr)
		}
		return nil
	})
}

// WaitSentinels waits until every sentinel names a primary for master and knows
// the other sentinels and at least one replica: from then on a failover can be
// agreed and has a replica to promote.
func WaitSentinels(ctx context.Context, sentinels []string, master string, within time.Duration) error {
	return poll(ctx, within, func() error {
		for _, a := range sentinels {
			s := redis.NewSentinelClient(&redis.Options{Addr: a, DialTimeout: time.Second})
			peers, err := s.Sentinels(ctx, master).Result()
			if err == nil && len(peers) < len(sentinels)-1 {
				err = fmt.Errorf("sentinel %s knows %d of %d peers", a, len(peers), len(sentinels)-1)
			}
			if err == nil {
				var reps []map[string]string
				if reps, err = s.Replicas(ctx, master).Result(); err == nil && len(reps) == 0 {
					err = fmt.Errorf("sentinel %s knows no replica", a)
				}
			}
			s.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// PrimaryOf asks a sentinel which address it currently names as master's primary.
func PrimaryOf(ctx context.Context, sentinel, master string) (string, error) {
	s := redis.NewSentinelClient(&redis.Options{Addr: sentinel, DialTimeout: time.Second})
	defer s.Close()
	hp, err := s.GetMasterAddrByName(ctx, master).Result()
	if err != nil {
		return "", fmt.Errorf("sentinel %s: %w", sentinel, err)
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("sentinel %s: master %q: %v", sentinel, master, hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// WaitPing waits until the server at addr answers PING.
func WaitPing(ctx context.Context, addr, password string, within time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	return poll(ctx, within, func() error { return c.Ping(ctx).Err() })
}

// poll calls f every 20ms until it succeeds, within elapses (its last error is
// returned) or ctx ends.
func poll(ctx context.Context, within time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v: %w", within, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
