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
// failover costs the stores seconds, not minutes.
func (c Config) Client() (redis.UniversalClient, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	const dial, rw = 2 * time.Second, 2 * time.Second
	switch c.Mode {
	case Sentinel:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: c.Master, SentinelAddrs: c.Addrs, Password: c.Password, SentinelPassword: c.Password,
			DialTimeout: dial, ReadTimeout: rw, WriteTimeout: rw,
		}), nil
	case Cluster:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: c.Addrs, Password: c.Password, DialTimeout: dial, ReadTimeout: rw, WriteTimeout: rw,
		}), nil
	}
	return redis.NewClient(&redis.Options{Addr: c.Addrs[0], Password: c.Password,
		DialTimeout: dial, ReadTimeout: rw, WriteTimeout: rw}), nil
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
