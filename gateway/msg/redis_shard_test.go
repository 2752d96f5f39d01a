package msg_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/internal/redistest"
	"github.com/floodgate/floodgate/internal/shardtag"
	"github.com/redis/go-redis/v9"
)

// usersInEveryBucket returns perBucket uids of every bucket, bucket by bucket.
func usersInEveryBucket(perBucket int) []uint64 {
	var uids []uint64
	count := make([]int, shardtag.Buckets)
	for uid := uint64(1); len(uids) < perBucket*shardtag.Buckets; uid++ {
		if b := shardtag.Bucket(uid); count[b] < perBucket {
			count[b]++
			uids = append(uids, uid)
		}
	}
	return uids
}

// On a 3-shard Cluster the inboxes of many users spread over every shard: each
// primary holds within 20% of the mean number of keys.
func TestRedisClusterSpreadsInboxesOverShards(t *testing.T) {
	ctx := context.Background()
	rdb := clusterClient(t, redistest.StartCluster(t, 3, 1))
	s := newRedis(t, rdb, "spread:", 10)
	const users = 3000
	for uid := uint64(1); uid <= users; uid++ {
		if err := s.Append(ctx, &msg.Message{From: 1, To: uid, ClientMsgID: uid, Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var sizes []int64
	err := rdb.(*redis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		n, err := c.DBSize(ctx).Result()
		if err != nil {
			return err
		}
		mu.Lock() // ForEachMaster calls on several goroutines
		sizes = append(sizes, n)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 3 {
		t.Fatalf("%d primaries, want 3", len(sizes))
	}
	var total int64
	for _, n := range sizes {
		total += n
	}
	mean := float64(total) / 3
	for _, n := range sizes {
		if math.Abs(float64(n)-mean) > 0.2*mean {
			t.Fatalf("keys per primary %v: %d is more than 20%% off the mean %.0f", sizes, n, mean)
		}
	}
	t.Logf("keys per primary: %v (mean %.0f)", sizes, mean)
	if s.Stored() != users || s.Inboxes() != users {
		t.Fatalf("%d stored, %d inboxes; want %d each (summed over the buckets)", s.Stored(), s.Inboxes(), users)
	}
}

// A msg server restarting on a Cluster finds the messages its predecessor left
// unsettled in every bucket, on every shard, and routes each of them.
func TestRedisRestartFindsPendingMessagesInEveryBucket(t *testing.T) {
	ctx := context.Background()
	rdb := clusterClient(t, redistest.StartCluster(t, 3, 1))
	gone := startRouterStub(t, "127.0.0.1:0")
	routerAddr := gone.srv.Addr()
	gone.stop() // the router is down while the first server stores
	d := msg.DeliveryConfig{ReconnectMax: 20 * time.Millisecond, UnmarkInterval: 20 * time.Millisecond, ResendMin: time.Hour}
	store := newRedis(t, rdb, "restart:", 100)
	first, stopFirst := startServer(t, msg.ServerConfig{Store: store, Router: routerAddr, Delivery: d})
	c := dial(t, first.Addr())
	uids := usersInEveryBucket(1)
	ids := map[uint64]bool{}
	for _, uid := range uids {
		m := msg.Message{From: 9, To: uid, Payload: []byte("p")}
		if err := c.Append(ctx, &m); err != nil {
			t.Fatal(err)
		}
		ids[m.ID] = true
	}
	stopFirst()
	if got := pendingUsers(t, store); !slices.Equal(got, uids) {
		t.Fatalf("pending after the first server: %d users, want the %d appended to", len(got), len(uids))
	}
	rs := startRouterStub(t, routerAddr)
	startServer(t, msg.ServerConfig{Store: newRedis(t, rdb, "restart:", 100), Router: routerAddr, Delivery: d})
	for _, m := range rs.waitRouted(t, len(uids)) {
		delete(ids, m.ID)
	}
	if len(ids) != 0 {
		t.Fatalf("%d of %d messages were not routed after the restart", len(ids), len(uids))
	}
}

// inboxLen is the length of uid's inbox list under prefix, read from the server at
// addr itself (a replica, say).
func inboxLen(t *testing.T, addr, prefix string, uid uint64) int64 {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	n, err := c.LLen(context.Background(), keyOf(prefix, uid, fmt.Sprintf("inbox:%d", uid))).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// With WithReplicas, an Append returns only once the replica holds the message; with
// the replica down it fails with ErrNotReplicated (an unknown outcome, not "not
// stored") within the timeout, and its retry once the replica is back is
// deduplicated: the message is stored once.
func TestRedisReplicatedAppendWaitsForTheReplica(t *testing.T) {
	ctx := context.Background()
	d := redistest.StartSentinel(t)
	const timeout = 300 * time.Millisecond
	s := newRedis(t, sentinelClient(t, d), "repl:", 100, msg.WithReplicas(1, timeout))
	for i := range 50 {
		uid := uint64(1 + i%5)
		m := msg.Message{From: 1, To: uid, ClientMsgID: uint64(i + 1)}
		if err := s.Append(ctx, &m); err != nil {
			t.Fatal(err)
		}
		if n := inboxLen(t, d.Replica.Addr, "repl:", uid); uint64(n) != m.Seq {
			t.Fatalf("append %d (uid %d seq %d) returned while the replica held %d of the inbox's messages", i, uid, m.Seq, n)
		}
	}

	d.Replica.Kill()
	m := msg.Message{From: 2, To: 77, ClientMsgID: 5}
	start := time.Now()
	err := s.Append(ctx, &m)
	took := time.Since(start)
	if !errors.Is(err, msg.ErrNotReplicated) || errors.Is(err, msg.ErrNotStored) {
		t.Fatalf("append with the replica down: %v; want ErrNotReplicated, not ErrNotStored", err)
	}
	if took > timeout+time.Second {
		t.Fatalf("append with the replica down failed after %v, want about the timeout %v", took, timeout)
	}

	d.Replica.Restart(t) // back in sync when it returns
	// Within the WAIT timeout of the short one, appends are refused unstored
	// (TestRedisReplicatedRefusesAtOnceAfterAShortWait): retry as a gateway would.
	retry := msg.Message{From: 2, To: 77, ClientMsgID: 5}
	appendUntilStored(t, s, &retry, 10*time.Second)
	w, err := s.Window(ctx, 77)
	if err != nil {
		t.Fatal(err)
	}
	if retry.Seq != 1 || w.Head != 1 || s.Deduplicated() != 1 {
		t.Fatalf("retry: seq %d, head %d, %d deduplicated; want the first append's message, stored once", retry.Seq, w.Head, s.Deduplicated())
	}
	if n := inboxLen(t, d.Replica.Addr, "repl:", 77); n != 1 {
		t.Fatalf("the replica holds %d messages of uid 77 after the retry, want 1", n)
	}
}

// appendUntilStored appends m through s until an attempt succeeds, each attempt
// bounded by a second, all within `within`, and returns when the first one
// succeeded.
func appendUntilStored(t *testing.T, s msg.Store, m *msg.Message, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = s.Append(ctx, m)
		cancel()
		if err == nil {
			return time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no append succeeded within %v; last error: %v", within, err)
	return time.Time{}
}

// A Sentinel failover under redis-replicated: every acknowledged message is in its
// inbox with its seq and id afterwards, read through the same Store, and appends
// work again once the new primary has a replica (the old primary, restarted, rejoins
// as one).
func TestRedisReplicatedSurvivesSentinelFailover(t *testing.T) {
	ctx := context.Background()
	d := redistest.StartSentinel(t)
	rdb := sentinelClient(t, d)
	s := newRedis(t, rdb, "fo:", 1000, msg.WithReplicas(1, 500*time.Millisecond))
	primaryOnly := newRedis(t, rdb, "fo:", 1000) // to see when the new primary takes writes
	var acked []msg.Message
	for i := range 300 {
		m := msg.Message{From: 1, To: uint64(1 + i%30), ClientMsgID: uint64(i + 1), Payload: []byte{byte(i)}}
		if err := s.Append(ctx, &m); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, m)
	}

	killed := time.Now()
	d.Primary.Kill()
	writable := appendUntilStored(t, primaryOnly, &msg.Message{From: 1, To: 1000}, 60*time.Second)
	d.WaitFailover(t, 30*time.Second)
	t.Logf("the new primary took appends %v after the kill", writable.Sub(killed).Round(time.Millisecond))

	byUser := map[uint64][]msg.Message{}
	for _, m := range acked {
		byUser[m.To] = append(byUser[m.To], m)
	}
	for uid, want := range byUser {
		got, _, err := s.Range(ctx, uid, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			i := slices.IndexFunc(got, func(g msg.Message) bool { return g.Seq == w.Seq })
			if i < 0 || got[i].ID != w.ID || got[i].Epoch != w.Epoch || !slices.Equal(got[i].Payload, w.Payload) {
				t.Fatalf("uid %d: acknowledged message seq %d id %d lost or changed by the failover", uid, w.Seq, w.ID)
			}
		}
	}

	restarted := time.Now()
	d.Primary.RestartAsReplicaOf(t, d.Replica.Addr) // it lost its data: back only as the new primary's replica
	next := msg.Message{From: 1, To: 1, ClientMsgID: 10_000}
	again := appendUntilStored(t, s, &next, 60*time.Second)
	t.Logf("replicated appends failed for %v after the kill; %v after the old primary was restarted as a replica",
		again.Sub(killed).Round(time.Millisecond), again.Sub(restarted).Round(time.Millisecond))
	if prev := byUser[1][len(byUser[1])-1]; next.Seq != prev.Seq+1 || next.Epoch != prev.Epoch {
		t.Fatalf("append after the failover: seq %d epoch %d, want seq %d of epoch %d", next.Seq, next.Epoch, prev.Seq+1, prev.Epoch)
	}
}

// After a WAIT fell short, appends to that primary are refused at once (not stored,
// nothing written) for the WAIT timeout, instead of each holding a pooled
// connection for it; after the period the next append tries, and WAITs, again.
func TestRedisReplicatedRefusesAtOnceAfterAShortWait(t *testing.T) {
	ctx := context.Background()
	d := redistest.StartSentinel(t)
	const timeout = 300 * time.Millisecond
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newRedis(t, sentinelClient(t, d), "short:", 100, msg.WithReplicas(1, timeout), msg.WithClock(clock))
	d.Replica.Kill()
	if err := s.Append(ctx, &msg.Message{From: 1, To: 10, ClientMsgID: 1}); !errors.Is(err, msg.ErrNotReplicated) {
		t.Fatalf("first append with the replica down: %v; want ErrNotReplicated", err)
	}
	err := s.Append(ctx, &msg.Message{From: 1, To: 11, ClientMsgID: 2})
	if !errors.Is(err, msg.ErrNotStored) {
		t.Fatalf("append within the period: %v; want ErrNotStored", err)
	}
	if n := inboxLen(t, d.Primary.Addr, "short:", 11); n != 0 {
		t.Fatalf("a refused append wrote %d messages", n)
	}
	mu.Lock()
	now = now.Add(timeout + time.Millisecond)
	mu.Unlock()
	start := time.Now()
	err = s.Append(ctx, &msg.Message{From: 1, To: 12, ClientMsgID: 3})
	if !errors.Is(err, msg.ErrNotReplicated) || time.Since(start) < timeout/2 {
		t.Fatalf("append after the period: %v after %v; want a new WAIT, ErrNotReplicated", err, time.Since(start))
	}
}
