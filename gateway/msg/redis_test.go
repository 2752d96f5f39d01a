package msg_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/msg/msgtest"
	"github.com/floodgate/floodgate/internal/redisconn"
	"github.com/floodgate/floodgate/internal/redistest"
	"github.com/floodgate/floodgate/internal/shardtag"
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

// The store suite on each deployment (one primary, Sentinel, Cluster), and on
// Sentinel and Cluster with every append confirmed by a replica.
func TestRedisStore(t *testing.T) {
	for _, d := range redisDeployments() {
		t.Run(d.name, func(t *testing.T) {
			rdb := d.start(t)
			modes := []struct {
				name string
				opts []msg.StoreOption
			}{{"primary", nil}}
			if d.name != redisconn.Single {
				modes = append(modes, struct {
					name string
					opts []msg.StoreOption
				}{"replicated", []msg.StoreOption{msg.WithReplicas(1, time.Second)}})
			}
			for _, mode := range modes {
				t.Run(mode.name, func(t *testing.T) {
					msgtest.Run(t, func(t *testing.T, perUser int, opts ...msg.StoreOption) msg.Store {
						// a subtest's name is its own keyspace
						return newRedis(t, rdb, t.Name()+":", perUser, append(opts, mode.opts...)...)
					})
				})
			}
		})
	}
}

// A prefix holding a brace would decide the keys' hash tag: refused.
func TestRedisRefusesPrefixWithBraces(t *testing.T) {
	for _, prefix := range []string{"{fg}:", "fg:{", "fg}:"} {
		if _, err := msg.NewRedis(redis.NewClient(&redis.Options{}), prefix, 10); err == nil {
			t.Errorf("NewRedis with prefix %q succeeded", prefix)
		}
	}
}

// keyOf is the name of a store key under prefix: a user's ("user:9"), a dedupe key
// ("dd:9:2:1") or a bucket's ("stored"), with the hash tag of uid's bucket.
func keyOf(prefix string, uid uint64, rest string) string {
	return prefix + shardtag.New().UserTag(uid) + ":" + rest
}

// The keys are the documented layout: a user hash and a list of encoded messages
// per user, and its bucket's counters, set of users with pending messages and index
// of inboxes, all under the hash tag of the user's bucket; ids are the bucket's
// counter times 256 plus the bucket.
func TestRedisKeyLayout(t *testing.T) {
	ctx := context.Background()
	_, rdb := startRedis(t)
	s := newRedis(t, rdb, "fg:msg:", 10)
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
	key := func(rest string) string { return keyOf("fg:msg:", 9, rest) }
	if !strings.HasPrefix(key(""), "fg:msg:{") {
		t.Fatalf("key %q does not carry a hash tag after the prefix", key(""))
	}
	bucket := uint64(shardtag.Bucket(9))
	if last.ID != 3*shardtag.Buckets+bucket {
		t.Errorf("third message's id %d, want 3·%d + bucket %d", last.ID, shardtag.Buckets, bucket)
	}
	for key, want := range map[string]string{key("stored"): "2", key("ids"): "3"} {
		if got, err := rdb.Get(ctx, key).Result(); err != nil || got != want {
			t.Errorf("GET %s = %q, %v; want %q", key, got, err, want)
		}
	}
	user, err := rdb.HGetAll(ctx, key("user:9")).Result()
	if err != nil || user["seq"] != "3" || user["epoch"] != fmt.Sprint(last.Epoch) || user["tb"] != "3" || user["fb"] != "1" {
		t.Errorf("HGETALL %s = %v, %v; want seq 3, epoch %d, tb 3, fb 1", key("user:9"), user, err, last.Epoch)
	}
	if score, err := rdb.ZScore(ctx, key("inboxes"), "9").Result(); err != nil || score == 0 {
		t.Errorf("ZSCORE %s 9 = %v, %v", key("inboxes"), score, err)
	}
	if e, err := rdb.Get(ctx, key("epoch")).Uint64(); err != nil || e == 0 {
		t.Errorf("epoch %d, %v", e, err)
	}
	if members, err := rdb.SMembers(ctx, key("pending")).Result(); err != nil || !slices.Equal(members, []string{"9"}) {
		t.Errorf("SMEMBERS %s = %q, %v; want [9]", key("pending"), members, err)
	}
	items, err := rdb.LRange(ctx, key("inbox:9"), 0, -1).Result()
	if err != nil || len(items) != 2 {
		t.Fatalf("LRANGE inbox: %d items, %v", len(items), err)
	}
	// The stored encoding: seq | id | stored at (ms) | payload bytes before | from |
	// to | client_ts, then the payload (the epoch is the inbox's, in its hash).
	want := binary.BigEndian.AppendUint64(nil, 3)
	want = binary.BigEndian.AppendUint64(want, last.ID)
	want = append(want, items[1][16:24]...) // the time, checked below
	want = binary.BigEndian.AppendUint64(want, 2)
	want = binary.BigEndian.AppendUint64(want, 2)
	want = binary.BigEndian.AppendUint64(want, 9)
	want = binary.BigEndian.AppendUint64(want, uint64(last.ClientTS))
	want = append(want, 'c')
	if items[1] != string(want) {
		t.Fatalf("newest item is % x, want % x", items[1], want)
	}
	if at := time.UnixMilli(int64(binary.BigEndian.Uint64([]byte(items[1][16:])))); time.Since(at).Abs() > time.Minute {
		t.Fatalf("stored at %v, want about now", at)
	}
	all, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range all { // every key of the user's scripts in one slot
		if shardtag.Slot(k) != shardtag.Slot(key("")) {
			t.Errorf("key %q is in slot %d, the user's keys in %d", k, shardtag.Slot(k), shardtag.Slot(key("")))
		}
	}
}

// A new Redis value on the same keys, as after a msg process restart, continues the
// same store: same epoch, seqs and ids carry on, the stored count is loaded by Ping.
func TestRedisStoreOutlivesTheProcess(t *testing.T) {
	ctx := context.Background()
	_, rdb := startRedis(t)
	before := newRedis(t, rdb, "p:", 10)
	first := &msg.Message{To: 5}
	if err := before.Append(ctx, first); err != nil {
		t.Fatal(err)
	}
	w0, err := before.Window(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	after := newRedis(t, rdb, "p:", 10)
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
	s := newRedis(t, rdb, "p:", 10)
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

// A smaller quota than the inbox holds (the msg process restarted with a lower
// -inbox) refuses appends until acknowledgements bring the inbox under it; nothing
// is dropped.
func TestRedisShrunkQuotaRefusesAndDropsNothing(t *testing.T) {
	ctx := context.Background()
	_, rdb := startRedis(t)
	big := newRedis(t, rdb, "p:", 10)
	var last msg.Message
	for range 10 {
		last = msg.Message{To: 3}
		if err := big.Append(ctx, &last); err != nil {
			t.Fatal(err)
		}
	}
	small := newRedis(t, rdb, "p:", 3)
	if err := small.Append(ctx, &msg.Message{To: 3}); !errors.Is(err, msg.ErrRecipientFull) {
		t.Fatalf("append over the shrunk quota: %v, want ErrRecipientFull", err)
	}
	w, err := small.Window(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if w.Oldest != 1 || w.Head != 10 || small.Refused() != 1 || small.Stored() != 10 {
		t.Fatalf("window %+v, %d refused, %d stored; want oldest 1 head 10, 1 refused, 10 stored", w, small.Refused(), small.Stored())
	}
	if err := small.Ack(ctx, 3, 8, last.Epoch); err != nil {
		t.Fatal(err)
	}
	if err := small.Append(ctx, &msg.Message{To: 3}); err != nil {
		t.Fatalf("append with 2 of 3 used: %v", err)
	}
}

// sweepPass has s sweep until it reports no more: one pass over every bucket.
func sweepPass(t *testing.T, s *msg.Redis) {
	t.Helper()
	for range 10 * shardtag.Buckets {
		more, err := s.Sweep(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			return
		}
	}
	t.Fatal("the sweep never finished a pass")
}

// Every key of an inbox carries a TTL (the retention period plus two epoch
// steps), set again by each append; a sweep deletes the inbox's keys and its
// entries in the store-wide sets once everything in it has expired, so made-up
// recipients do not grow the store without bound.
func TestRedisInboxKeysExpireAndAreSwept(t *testing.T) {
	ctx := context.Background()
	_, rdb := startRedis(t)
	clk := msgtest.NewClock()
	s := newRedis(t, rdb, "ttl:", 10, msg.WithRetention(time.Hour), msg.WithClock(clk.Now))
	for uid := uint64(1); uid <= 3; uid++ {
		if err := s.Append(ctx, &msg.Message{To: uid, ClientMsgID: uid, Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{keyOf("ttl:", 2, "user:2"), keyOf("ttl:", 2, "inbox:2")} {
		if ttl, err := rdb.PTTL(ctx, key).Result(); err != nil || ttl <= 2*time.Hour || ttl > 3*time.Hour {
			t.Fatalf("PTTL %s = %v, %v; want just under 3h (an hour and two steps of an hour)", key, ttl, err)
		}
	}
	sweepPass(t, s)
	if s.DeletedInboxes() != 0 {
		t.Fatalf("sweep before anything expired: %d deleted", s.DeletedInboxes())
	}
	clk.Advance(time.Hour + time.Millisecond)
	if err := s.Append(ctx, &msg.Message{To: 3}); err != nil { // uid 3 stays: appended to just now
		t.Fatal(err)
	}
	sweepPass(t, s)
	if s.DeletedInboxes() != 2 || s.Inboxes() != 1 || s.Expired() != 3 || s.Stored() != 1 {
		t.Fatalf("%d deleted, %d inboxes, %d expired, %d stored; want 2, 1, 3, 1", s.DeletedInboxes(), s.Inboxes(), s.Expired(), s.Stored())
	}
	keys, err := rdb.Keys(ctx, "ttl:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	var want []string
	for uid := uint64(1); uid <= 3; uid++ {
		want = append(want, keyOf("ttl:", uid, fmt.Sprintf("dd:%d:0:%d", uid, uid)), keyOf("ttl:", uid, "epoch"),
			keyOf("ttl:", uid, "ids"), keyOf("ttl:", uid, "stored"))
	}
	// Redis deletes a set left empty: only uid 3's bucket keeps its index and pending set.
	want = append(want, keyOf("ttl:", 3, "inbox:3"), keyOf("ttl:", 3, "user:3"), keyOf("ttl:", 3, "inboxes"), keyOf("ttl:", 3, "pending"))
	slices.Sort(want)
	want = slices.Compact(want) // users sharing a bucket share its keys
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %q, want %q", keys, want)
	}
	if got := pendingUsers(t, s); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("pending %v; want only 3", got)
	}
}

// A Redis dedupe key is <prefix>dd:<to>:<from>:<client msg id> holding
// "seq:id:epoch",
// expiring after the configured window; a message without a client id has none.
func TestRedisDedupeKeyExpiresAfterTheWindow(t *testing.T) {
	ctx := context.Background()
	_, rdb := startRedis(t)
	s := newRedis(t, rdb, "dd:", 10, msg.WithDedupeWindow(90*time.Second))
	m := msg.Message{From: 3, To: 4, ClientMsgID: 1 << 60}
	if err := s.Append(ctx, &m); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, &msg.Message{From: 3, To: 4}); err != nil {
		t.Fatal(err)
	}
	key := keyOf("dd:", 4, fmt.Sprintf("dd:4:3:%d", uint64(1<<60)))
	if v, err := rdb.Get(ctx, key).Result(); err != nil || v != fmt.Sprintf("%d:%d:%d", m.Seq, m.ID, m.Epoch) {
		t.Fatalf("GET %s = %q, %v; want \"%d:%d:%d\"", key, v, err, m.Seq, m.ID, m.Epoch)
	}
	if ttl, err := rdb.PTTL(ctx, key).Result(); err != nil || ttl <= 80*time.Second || ttl > 90*time.Second {
		t.Fatalf("PTTL %s = %v, %v; want just under 90s", key, ttl, err)
	}
	if keys, err := rdb.Keys(ctx, "dd:*:dd:*").Result(); err != nil || len(keys) != 1 {
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
		{"read-only replica", func(t *testing.T) (*redis.Client, context.Context) {
			rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(t).Addr})
			host, port, _ := net.SplitHostPort(srv.Addr)
			if err := rdb.SlaveOf(context.Background(), host, port).Err(); err != nil {
				t.Fatal(err)
			}
			return rdb, context.Background()
		}, true},
		{"script failed in Redis", func(t *testing.T) (*redis.Client, context.Context) {
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
			if err := rdb.Set(context.Background(), keyOf("failing:", 7, "inbox:7"), "not a list", 0).Err(); err != nil {
				t.Fatal(err)
			}
			return rdb, context.Background()
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			rdb, ctx := c.setup(t)
			defer rdb.Close()
			err := newRedis(t, rdb, "failing:", 10).Append(ctx, &msg.Message{From: 1, To: 7, ClientMsgID: 3})
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
	s := newRedis(t, rdb, "pending:", 10)
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
