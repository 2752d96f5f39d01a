package redistest

import (
	"context"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/redisnode"
	"github.com/floodgate/floodgate/internal/shardtag"
	"github.com/redis/go-redis/v9"
)

func TestStartAnswersPing(t *testing.T) {
	s := Start(t)
	waitPing(t, s.Addr)
	s.Restart(t)
	waitPing(t, s.Addr)
}

// A write to the primary reaches the replica; after the primary is killed the
// sentinels promote the replica, and a Sentinel client finds the write there.
func TestSentinelPromotesTheReplicaWhenThePrimaryDies(t *testing.T) {
	d := StartSentinel(t)
	ctx := context.Background()
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: d.Master, SentinelAddrs: d.SentinelAddrs})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Wait(ctx, 1, 5000).Result(); err != nil || n < 1 {
		t.Fatalf("WAIT 1: %d replicas, %v", n, err)
	}
	d.Primary.Kill()
	d.WaitFailover(t, 30*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := rdb.Get(ctx, "k").Result()
		if err == nil {
			if v != "v" {
				t.Fatalf("after failover k = %q, want v", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer from the promoted replica: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The cluster forms with every slot served, and keys under the buckets' tags land
// on every shard: 85 or 86 buckets each.
func TestClusterSpreadsBucketTagsOverItsShards(t *testing.T) {
	c := StartCluster(t, 3, 1)
	ctx := context.Background()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs[:1]})
	defer rdb.Close()
	tags := shardtag.New()
	for b := range shardtag.Buckets {
		if err := rdb.Set(ctx, tags.Tag(b)+"k", b, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, sh := range c.Shards {
		n, err := redis.NewClient(&redis.Options{Addr: sh.Primary}).DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n < 85 || n > 86 {
			t.Errorf("shard %s holds %d of %d bucket keys", sh.Primary, n, shardtag.Buckets)
		}
	}
	if err := redisnode.WaitReplicating(ctx, c.Shards[0].Replicas[0], "", 10*time.Second); err != nil {
		t.Fatal(err)
	}
}
