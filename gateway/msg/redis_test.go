package msg_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/msg/msgtest"
	"github.com/floodgate/floodgate/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// startRedis runs a redis-server for t and returns a client of it.
func startRedis(t *testing.T) (*redistest.Server, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return srv, rdb
}

func TestRedisStore(t *testing.T) {
	_, rdb := startRedis(t)
	msgtest.Run(t, func(t *testing.T, perUser int) msg.Store {
		return msg.NewRedis(rdb, t.Name()+":", perUser) // a subtest's name is its own keyspace
	})
}

// The keys are the documented layout: a head counter and a list of encoded messages
// per user, the store-wide counters, and the set of users with pending messages.
func TestRedisKeyLayout(t *testing.T) {
	ctx := context.Background()
	_, rdb := startRedis(t)
	s := msg.NewRedis(rdb, "fg:msg:", 10)
	var last msg.Message
	for _, p := range []string{"a", "b", "c"} {
		last = msg.Message{From: 2, To: 9, ClientTS: -7, Payload: []byte(p)}
		if err := s.Append(ctx, &last); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Ack(ctx, 9, 1, last.Epoch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Window(ctx, 9); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"fg:msg:head:9": "3", "fg:msg:stored": "2", "fg:msg:ids": "3"} {
		if got, err := rdb.Get(ctx, key).Result(); err != nil || got != want {
			t.Errorf("GET %s = %q, %v; want %q", key, got, err, want)
		}
	}
	if e, err := rdb.Get(ctx, "fg:msg:epoch").Uint64(); err != nil || e == 0 {
		t.Errorf("epoch %d, %v", e, err)
	}
	if members, err := rdb.SMembers(ctx, "fg:msg:pending").Result(); err != nil || !slices.Equal(members, []string{"9"}) {
		t.Errorf("SMEMBERS fg:msg:pending = %q, %v; want [9]", members, err)
	}
	items, err := rdb.LRange(ctx, "fg:msg:inbox:9", 0, -1).Result()
	if err != nil || len(items) != 2 {
		t.Fatalf("LRANGE inbox: %d items, %v", len(items), err)
	}
	// The stored encoding: seq | id | from | to | client_ts, then the payload (the
	// epoch is store-wide, in its own key).
	want := binary.BigEndian.AppendUint64(nil, 3)
	want = binary.BigEndian.AppendUint64(want, last.ID)
	want = binary.BigEndian.AppendUint64(want, 2)
	want = binary.BigEndian.AppendUint64(want, 9)
	want = binary.BigEndian.AppendUint64(want, uint64(last.ClientTS))
	want = append(want, 'c')
	if items[1] != string(want) {
		t.Fatalf("newest item is % x, want % x", items[1], want)
	}
}

// A new Redis value on the same keys, as after a msg process restart, continues the
// same store: same epoch, seqs and ids carry on, the stored count is loaded by Ping.
func TestRedisStoreOutlivesTheProcess(t *testing.T) {
	ctx := context.Background()
	_, rdb := startRedis(t)
	before := msg.NewRedis(rdb, "p:", 10)
	first := &msg.Message{To: 5}
	if err := before.Append(ctx, first); err != nil {
		t.Fatal(err)
	}
	w0, err := before.Window(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	after := msg.NewRedis(rdb, "p:", 10)
	if err := after.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if after.Stored() != 1 {
		t.Fatalf("stored after Ping = %d, want 1", after.Stored())
	}
	second := &msg.Message{To: 5}
	if err := after.Append(ctx, second); err != nil {
		t.Fatal(err)
	}
	w1, err := after.Window(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if w1.Epoch != w0.Epoch || second.Seq != 2 || second.ID <= first.ID || w1.Head != 2 || w1.Oldest != 1 {
		t.Fatalf("after restart: window %+v (before %+v), seq %d id %d (first id %d)", w1, w0, second.Seq, second.ID, first.ID)
	}
}

// When Redis loses its data the epoch changes, so clients start over instead of
// taking reissued seqs for ones they have seen.
func TestRedisEpochChangesWhenRedisLosesItsData(t *testing.T) {
	ctx := context.Background()
	srv, rdb := startRedis(t)
	s := msg.NewRedis(rdb, "p:", 10)
	if err := s.Append(ctx, &msg.Message{To: 5}); err != nil {
		t.Fatal(err)
	}
	w0, err := s.Window(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	srv.Restart(t) // no persistence: everything is gone, loaded scripts included
	var w1 msg.Window
	for range 3 { // the client's pooled connections died with the server
		if w1, err = s.Window(ctx, 5); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if w1.Epoch == w0.Epoch || w1.Head != 0 || w1.Oldest != 1 {
		t.Fatalf("after losing the data: window %+v, before %+v; want a new epoch and an empty inbox", w1, w0)
	}
}

// A smaller window than the inbox holds (the msg process restarted with a lower
// -inbox) trims it at the next append, counting every message dropped.
func TestRedisShrunkWindowTrimsAtNextAppend(t *testing.T) {
	ctx := context.Background()
	_, rdb := startRedis(t)
	appendTo := func(s msg.Store, n int) {
		for range n {
			if err := s.Append(ctx, &msg.Message{To: 3}); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendTo(msg.NewRedis(rdb, "p:", 10), 10)
	small := msg.NewRedis(rdb, "p:", 3)
	appendTo(small, 1)
	w, err := small.Window(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if w.Oldest != 9 || w.Head != 11 || small.Evictions() != 8 || small.Stored() != 3 {
		t.Fatalf("window %+v, %d evictions, %d stored; want oldest 9 head 11, 8 evictions, 3 stored", w, small.Evictions(), small.Stored())
	}
}

// A Redis dedupe key is <prefix>dd:<to>:<from>:<client msg id> holding "seq:id",
// expiring after the configured window; a message without a client id has none.
func TestRedisDedupeKeyExpiresAfterTheWindow(t *testing.T) {
	ctx := context.Background()
	_, rdb := startRedis(t)
	s := msg.NewRedis(rdb, "dd:", 10, msg.WithDedupeWindow(90*time.Second))
	m := msg.Message{From: 3, To: 4, ClientMsgID: 1 << 60}
	if err := s.Append(ctx, &m); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, &msg.Message{From: 3, To: 4}); err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("dd:dd:4:3:%d", uint64(1<<60))
	if v, err := rdb.Get(ctx, key).Result(); err != nil || v != fmt.Sprintf("%d:%d", m.Seq, m.ID) {
		t.Fatalf("GET %s = %q, %v; want \"%d:%d\"", key, v, err, m.Seq, m.ID)
	}
	if ttl, err := rdb.PTTL(ctx, key).Result(); err != nil || ttl <= 80*time.Second || ttl > 90*time.Second {
		t.Fatalf("PTTL %s = %v, %v; want just under 90s", key, ttl, err)
	}
	if keys, err := rdb.Keys(ctx, "dd:dd:*").Result(); err != nil || len(keys) != 1 {
		t.Fatalf("dedupe keys %v, %v: want one (the message without an id has none)", keys, err)
	}
}

// An Append that never reached Redis fails with ErrNotStored; one that reached it
// and failed there leaves the outcome unknown (not ErrNotStored).
func TestRedisAppendErrorsSayWhetherStored(t *testing.T) {
	srv, _ := startRedis(t)
	freed := func() string { // a loopback port nobody listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name          string
		setup         func(t *testing.T) (*redis.Client, context.Context)
		wantNotStored bool
	}{
		{"dial refused", func(t *testing.T) (*redis.Client, context.Context) {
			return redis.NewClient(&redis.Options{Addr: freed}), context.Background()
		}, true},
		{"context done before the call", func(t *testing.T) (*redis.Client, context.Context) {
			return redis.NewClient(&redis.Options{Addr: srv.Addr}), canceled
		}, true},
		{"client closed", func(t *testing.T) (*redis.Client, context.Context) {
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
			rdb.Close()
			return rdb, context.Background()
		}, true},
		{"pool exhausted", func(t *testing.T) (*redis.Client, context.Context) {
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 1, PoolTimeout: 50 * time.Millisecond})
			held := make(chan struct{})
			go func() { // holds the pool's only connection for a second
				defer close(held)
				rdb.BLPop(context.Background(), time.Second, "nothing-comes")
			}()
			t.Cleanup(func() { <-held })
			deadline := time.Now().Add(5 * time.Second)
			for st := rdb.PoolStats(); st.TotalConns != 1 || st.IdleConns != 0; st = rdb.PoolStats() {
				if time.Now().After(deadline) {
					t.Fatalf("the blocking command never took the connection: %+v", st)
				}
				time.Sleep(time.Millisecond)
			}
			return rdb, context.Background()
		}, true},
		{"script failed in Redis", func(t *testing.T) (*redis.Client, context.Context) {
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
			if err := rdb.Set(context.Background(), "failing:inbox:7", "not a list", 0).Err(); err != nil {
				t.Fatal(err)
			}
			return rdb, context.Background()
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			rdb, ctx := c.setup(t)
			defer rdb.Close()
			err := msg.NewRedis(rdb, "failing:", 10).Append(ctx, &msg.Message{From: 1, To: 7, ClientMsgID: 3})
			if err == nil {
				t.Fatal("Append succeeded")
			}
			if got := errors.Is(err, msg.ErrNotStored); got != c.wantNotStored {
				t.Fatalf("Append: %v; ErrNotStored %v, want %v", err, got, c.wantNotStored)
			}
		})
	}
}

// pendingUsers lists the store's pending set, sorted.
func pendingUsers(t *testing.T, s *msg.Redis) []uint64 {
	t.Helper()
	var uids []uint64
	if err := s.PendingUsers(context.Background(), func(uid uint64) bool { uids = append(uids, uid); return true }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(uids)
	return uids
}

// Every Append, deduplicated or not, marks its recipient pending; Unmark removes a
// user only while its head is the one given, so that a message stored since keeps
// it marked.
func TestRedisPendingSetFollowsAppendsAndUnmarks(t *testing.T) {
	ctx := context.Background()
	_, rdb := startRedis(t)
	s := msg.NewRedis(rdb, "pending:", 10)
	appendTo := func(to, cmid uint64) {
		if err := s.Append(ctx, &msg.Message{From: 1, To: to, ClientMsgID: cmid}); err != nil {
			t.Fatal(err)
		}
	}
	appendTo(1, 0)
	appendTo(2, 7)
	for _, step := range []struct {
		name string
		do   func()
		want []uint64
	}{
		{"after appends", func() {}, []uint64{1, 2}},
		{"unmark 1 at its head, 2 at a stale one", func() {
			if err := s.Unmark(ctx, []msg.UserHead{{UID: 1, Head: 1}, {UID: 2, Head: 0}}); err != nil {
				t.Fatal(err)
			}
		}, []uint64{2}},
		{"a deduplicated append marks again", func() { appendTo(2, 7) }, []uint64{2}},
		{"unmark 2 at its head; a new message to 1", func() {
			s.Unmark(ctx, []msg.UserHead{{UID: 2, Head: 1}})
			appendTo(1, 0)
		}, []uint64{1}},
		{"unmark behind the head", func() { s.Unmark(ctx, []msg.UserHead{{UID: 1, Head: 1}}) }, []uint64{1}},
		{"unmark at the head, and a user never seen", func() { s.Unmark(ctx, []msg.UserHead{{UID: 1, Head: 2}, {UID: 3, Head: 0}}) }, nil},
	} {
		step.do()
		if got := pendingUsers(t, s); !slices.Equal(got, step.want) {
			t.Fatalf("%s: pending %v, want %v", step.name, got, step.want)
		}
	}
}
