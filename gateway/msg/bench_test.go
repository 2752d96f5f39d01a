package msg_test

import (
	"context"
	"testing"

	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// BenchmarkAppend measures the append path: 1,000 recipients in turn, 100-byte
// payloads with client message ids, each recipient acknowledging every 64th
// message (so its inbox stays small, as a reader's does). On Redis: one primary; a
// primary with a replica behind Sentinel, acknowledged by the primary alone
// (-backend redis) or once the replica confirms (-backend redis-replicated, WAIT 1);
// and a 3-shard Cluster.
func BenchmarkAppend(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchAppend(b, msg.NewMemory(1024)) })
	b.Run("redis", func(b *testing.B) {
		rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(b).Addr})
		defer rdb.Close()
		benchAppend(b, newRedis(b, rdb, "bench:", 1024))
	})
	b.Run("redis-sentinel", func(b *testing.B) {
		benchAppend(b, newRedis(b, sentinelClient(b, redistest.StartSentinel(b)), "bench:", 1024))
	})
	b.Run("redis-replicated-sentinel", func(b *testing.B) {
		rdb := sentinelClient(b, redistest.StartSentinel(b))
		benchAppend(b, newRedis(b, rdb, "bench:", 1024, msg.WithReplicas(1, msg.DefaultReplicaTimeout)))
	})
	b.Run("redis-cluster", func(b *testing.B) {
		benchAppend(b, newRedis(b, clusterClient(b, redistest.StartCluster(b, 3, 0)), "bench:", 1024))
	})
}

func benchAppend(b *testing.B, s msg.Store) {
	ctx := context.Background()
	payload := make([]byte, 100)
	var i uint64
	for b.Loop() {
		i++
		m := msg.Message{From: 1, To: i%1000 + 1, ClientMsgID: i, Payload: payload}
		if err := s.Append(ctx, &m); err != nil {
			b.Fatal(err)
		}
		if m.Seq%64 == 0 {
			if err := s.Ack(ctx, m.To, m.Seq, m.Epoch); err != nil {
				b.Fatal(err)
			}
		}
	}
}
