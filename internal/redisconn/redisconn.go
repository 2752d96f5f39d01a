// Package redisconn is how every Floodgate role reaches Redis: one primary, a
// primary watched by Sentinel (active-standby with automatic failover), or a Redis
// Cluster (sharded). The same flags, each defaulting from an environment variable,
// configure it in every role, and Open returns go-redis's UniversalClient, which the
// stores use without knowing the mode.
package redisconn

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Modes.
const (
	Single   = "single"   // one primary (replicas, if any, are not used)
	Sentinel = "sentinel" // the primary Sentinel names; failover follows Sentinel
	Cluster  = "cluster"  // Redis Cluster: keys spread over shards by hash slot
)

// Environment variables the flags default from (the password is read only from the
// environment, never a flag, so it does not show in process listings).
const (
	EnvMode     = "FLOODGATE_REDIS_MODE"
	EnvAddr     = "FLOODGATE_REDIS_ADDR"
	EnvMaster   = "FLOODGATE_REDIS_MASTER"
	EnvPassword = "FLOODGATE_REDIS_PASSWORD"
)

// Config says where Redis is.
type Config struct {
	// Mode is Single, Sentinel or Cluster.
	Mode string
	// Addrs are the primary (Single), the sentinels (Sentinel) or seed nodes
	// (Cluster; the client discovers the rest).
	Addrs []string
	// Master is the name Sentinel monitors the primary under (Sentinel only).
	Master string
	// Password authenticates to Redis (and to the sentinels).
	Password string
}

// Register adds -redis-mode, -redis-addr and -redis-master to fs, defaulting from
// the environment (then single, 127.0.0.1:6379, "floodgate"), and returns the
// Config they fill once fs is parsed. The password comes from FLOODGATE_REDIS_PASSWORD.
func Register(fs *flag.FlagSet) *Config {
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	c := &Config{Password: os.Getenv(EnvPassword)}
	fs.StringVar(&c.Mode, "redis-mode", env(EnvMode, Single),
		"how Redis is deployed: single (one primary), sentinel (failover by Sentinel) or cluster (sharded) [$"+EnvMode+"]")
	c.Addrs = splitAddrs(env(EnvAddr, "127.0.0.1:6379"))
	fs.Func("redis-addr", "Redis addresses, comma-separated: the primary (single), the sentinels (sentinel) or seed nodes (cluster) (default "+
		strings.Join(c.Addrs, ",")+") [$"+EnvAddr+"]", func(s string) error {
		c.Addrs = splitAddrs(s)
		return nil
	})
	fs.StringVar(&c.Master, "redis-master", env(EnvMaster, "floodgate"), "the name Sentinel monitors the primary under, with -redis-mode sentinel [$"+EnvMaster+"]")
	return c
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Validate reports a configuration Open cannot use.
func (c Config) Validate() error {
	switch c.Mode {
	case Single:
		if len(c.Addrs) != 1 {
			return fmt.Errorf("-redis-addr %q: single mode wants one address", strings.Join(c.Addrs, ","))
		}
	case Sentinel:
		if len(c.Addrs) == 0 || c.Master == "" {
			return errors.New("sentinel mode wants the sentinels' addresses (-redis-addr) and the master name (-redis-master)")
		}
	case Cluster:
		if len(c.Addrs) == 0 {
			return errors.New("cluster mode wants at least one seed address (-redis-addr)")
		}
	default:
		return fmt.Errorf("-redis-mode %q: want single, sentinel or cluster", c.Mode)
	}
	return nil
}

// String names the deployment for logs: "single 10.0.0.5:6379",
// "sentinel floodgate@a:26379,b:26379", "cluster a:6379,b:6379".
func (c Config) String() string {
	addrs := strings.Join(c.Addrs, ",")
	if c.Mode == Sentinel {
		return c.Mode + " " + c.Master + "@" + addrs
	}
	return c.Mode + " " + addrs
}

// Client returns a client for c without contacting Redis.
//
// Timeouts are short on purpose: a primary that died is noticed within the read
// timeout, and the Sentinel client then asks the sentinels for the new one, so a
// failover costs the stores seconds, not minutes. The pool (per node, on a
// Cluster) holds up to 64 connections whatever GOMAXPROCS is (go-redis's default
// is 10 per P, and the harness runs roles with one P): a store's calls are short,
// but a round trip of a few hundred µs under load times thousands of calls a
// second needs more than ten.
func (c Config) Client() (redis.UniversalClient, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	const dial, rw, pool = 2 * time.Second, 2 * time.Second, 64
	switch c.Mode {
	case Sentinel:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: c.Master, SentinelAddrs: c.Addrs, Password: c.Password, SentinelPassword: c.Password,
			DialTimeout: dial, ReadTimeout: rw, WriteTimeout: rw, PoolSize: pool,
		}), nil
	case Cluster:
		cc := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: c.Addrs, Password: c.Password, DialTimeout: dial, ReadTimeout: rw, WriteTimeout: rw, PoolSize: pool,
			ClusterStateReloadInterval: clusterReload,
		})
		cc.AddHook(reloadOnFailure{cc})
		return cc, nil
	}
	return redis.NewClient(&redis.Options{Addr: c.Addrs[0], Password: c.Password,
		DialTimeout: dial, ReadTimeout: rw, WriteTimeout: rw, PoolSize: pool}), nil
}

// clusterReload is how often a Cluster client reads the slot map whatever
// happens: go-redis otherwise reloads it only when a node answers MOVED, ASK or
// READONLY, which a dead primary never does, and would keep sending that primary's
// slots to it until its periodic reload (a minute by default) long after a
// replica took over.
const clusterReload = time.Second

// reloadOnFailure makes a Cluster client reload its slot map as soon as a
// command fails without an answer from Redis (a refused dial, a timeout, a
// dropped connection): the node it went to may have been replaced. go-redis
// coalesces reloads (one at a time, 200 ms apart).
type reloadOnFailure struct{ cc *redis.ClusterClient }

// noAnswer reports whether err is a failure to get an answer, as opposed to
// Redis's own error reply or a missing key.
func noAnswer(err error) bool {
	var re redis.Error
	return err != nil && !errors.Is(err, redis.Nil) && !errors.As(err, &re)
}

func (h reloadOnFailure) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h reloadOnFailure) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if noAnswer(err) {
			h.cc.ReloadState(ctx)
		}
		return err
	}
}

func (h reloadOnFailure) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if noAnswer(err) {
			h.cc.ReloadState(ctx)
		}
		return err
	}
}

// Open returns a client for c once Redis answers a PING (every primary, on a
// Cluster), or an error naming the deployment when it does not within ctx.
func Open(ctx context.Context, c Config) (redis.UniversalClient, error) {
	rdb, err := c.Client()
	if err != nil {
		return nil, err
	}
	if err := Ping(ctx, rdb); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis %s: %w", c, err)
	}
	return rdb, nil
}

// Ping checks that Redis answers: on a Cluster, every primary (a store's keys are
// spread over all of them, so one shard down is the store down).
func Ping(ctx context.Context, rdb redis.UniversalClient) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			if err := c.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("shard %s: %w", c.Options().Addr, err)
			}
			return nil
		})
	}
	return rdb.Ping(ctx).Err()
}

// Primary returns the client of the primary that holds key: the client itself
// outside a Cluster. Commands that must run on the connection or the shard a write
// went to (WAIT) go through it.
func Primary(ctx context.Context, rdb redis.UniversalClient, key string) (redis.UniversalClient, error) {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		c, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("redis: primary for %q: %w", key, err)
		}
		return c, nil
	}
	return rdb, nil
}
