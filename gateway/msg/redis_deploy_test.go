package msg_test

import (
	"context"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/internal/redisconn"
	"github.com/floodgate/floodgate/internal/redisnode"
	"github.com/floodgate/floodgate/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// newRedis returns a Redis store, failing the test if NewRedis refuses it.
func newRedis(t testing.TB, rdb redis.UniversalClient, prefix string, perUser int, opts ...msg.StoreOption) *msg.Redis {
	t.Helper()
	s, err := msg.NewRedis(rdb, prefix, perUser, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openRedis returns a client of the deployment cfg names, closed with t.
func openRedis(t testing.TB, cfg redisconn.Config) redis.UniversalClient {
	t.Helper()
	rdb, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// sentinelClient returns a client that follows d's sentinels.
func sentinelClient(t testing.TB, d *redistest.Sentinel) redis.UniversalClient {
	t.Helper()
	return openRedis(t, redisconn.Config{Mode: redisconn.Sentinel, Addrs: d.SentinelAddrs, Master: d.Master})
}

// clusterClient returns a client of the cluster c, once every replica has loaded
// its primary's data (StartCluster returns when the replicas are known, which can
// be before their first sync ends; a WAIT before that counts none of them).
func clusterClient(t testing.TB, c *redistest.Cluster) redis.UniversalClient {
	t.Helper()
	for _, sh := range c.Shards {
		for _, r := range sh.Replicas {
			if err := redisnode.WaitReplicating(context.Background(), r, "", 30*time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	return openRedis(t, redisconn.Config{Mode: redisconn.Cluster, Addrs: c.Addrs})
}

// redisDeployment is a Redis deployment the store's tests run against.
type redisDeployment struct {
	name  string
	start func(t *testing.T) redis.UniversalClient
}

// redisDeployments are the three a msg store runs on: one primary, a primary and
// its replica behind Sentinel, and a Cluster of 3 shards with a replica each.
func redisDeployments() []redisDeployment {
	return []redisDeployment{
		{redisconn.Single, func(t *testing.T) redis.UniversalClient {
			return openRedis(t, redisconn.Config{Mode: redisconn.Single, Addrs: []string{redistest.Start(t).Addr}})
		}},
		{redisconn.Sentinel, func(t *testing.T) redis.UniversalClient { return sentinelClient(t, redistest.StartSentinel(t)) }},
		{redisconn.Cluster, func(t *testing.T) redis.UniversalClient { return clusterClient(t, redistest.StartCluster(t, 3, 1)) }},
	}
}
