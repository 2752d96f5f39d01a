package msg

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate/floodgate/internal/redisconn"
	"github.com/floodgate/floodgate/internal/shardtag"
	"github.com/redis/go-redis/v9"
)

// Redis is a Store kept in Redis, so inboxes outlive the msg process and several
// msg processes can share them. It works the same on one primary, on a primary
// watched by Sentinel and on Redis Cluster: one key layout, one code path.
//
// # Key layout
//
// Users are spread over shardtag.Buckets (256) buckets by shardtag.Bucket(uid), and
// every key of bucket b carries b's hash tag T = Table.Tag(b) (like "{k3f}"), whose
// Cluster slot lies in b's 1/256 of the slot space: a bucket's keys live on one
// shard, and the buckets spread evenly over the shards. Every key starts with the
// store's prefix, which must not hold '{' or '}' (it would change the hash tag):
//
//	<prefix>T:epoch        string: bucket b's epoch, set at first use (see below)
//	<prefix>T:ids          string: INCR counter, the bucket's last message counter
//	<prefix>T:stored       string: messages retained in the bucket's inboxes
//	<prefix>T:inboxes      sorted set: every user of b with an inbox, scored by the
//	                       time of its latest append (ms), for Sweep and Inboxes
//	<prefix>T:pending      set: users of b that may have messages the router has not
//	                       settled (PendingStore): added by every Append, removed by
//	                       Unmark once the delivery tracker holds nothing for them,
//	                       and by Sweep with the inbox
//	<prefix>T:user:<uid>   hash: uid's inbox state: seq (the last seq assigned),
//	                       epoch (the inbox's incarnation), and the byte and time
//	                       bookkeeping of the quota and of expiry (redis_scripts.go)
//	<prefix>T:inbox:<uid>  list: uid's retained messages, oldest first, each in the
//	                       stored encoding (appendStored: AppendMessage without the
//	                       epoch, with the time it was stored and the payload bytes
//	                       appended before it)
//	<prefix>T:dd:<to>:<from>:<client msg id>
//	                       string "seq:id:epoch": a message appended with a client
//	                       message id, remembered for the dedupe window (PX) so that a
//	                       retried Append returns it instead of storing it again
//
// where a user's keys and a message's dedupe key carry the tag of the recipient's
// bucket. Every script touches the keys of one bucket only, all passed in KEYS, so
// Cluster runs each on the shard that holds the bucket and never answers CROSSSLOT;
// what spans buckets (Windows of many users, Unmark, Ping) is one script or command
// per bucket, pipelined, and what walks the store (Sweep, PendingUsers) walks the
// buckets in turn.
//
// What the store-wide notions are, per bucket:
//   - Message ids: id = counter·256 + b, where counter is the bucket's INCR. Ids are
//     unique store-wide (two buckets never share a residue mod 256; a bucket's
//     counter never repeats) and strictly increasing per bucket, hence per
//     recipient; across buckets they are ordered only roughly (counters advance at
//     their buckets' rates). Nothing relies on more: the delivery tracker and the
//     router's settles name a message by (uid, seq, id), dedupe returns the stored
//     id, and clients only echo msg_id. Lua's doubles hold ids exactly while a
//     bucket's counter stays below 2^45 (a million messages a second store-wide for
//     over a century).
//   - Epochs: each bucket has its own, a time-seeded value (see candidateEpoch) that
//     the scripts set when the key is missing; it survives msg restarts for as long
//     as Redis keeps the bucket's data, and changes, to a larger value, when the
//     bucket's data is lost (so on a Cluster a shard that lost its data gives its
//     own users new epochs and leaves the others alone). An inbox's epoch is
//     userEpoch at its creation: its bucket's epoch plus the epoch steps (the
//     retention period, at most an hour) elapsed since that epoch was set. An inbox
//     is deleted (by Sweep or its TTL) at least the retention period after its
//     latest append, so at least one step after its creation: one created again
//     has a larger epoch, its client resets (PROTOCOL.md §8.3), and no seq is issued
//     twice within one epoch.
//   - Stored and Inboxes are sums over the buckets of the per-bucket counts the
//     scripts report; PendingUsers and Sweep visit every bucket.
//
// A user's two keys carry a TTL, set again by every Append: the retention period
// plus two epoch steps. Sweep deletes them (and the user's entries in its bucket's
// inboxes and pending sets) once the latest append is older than the retention
// period, so everything in the inbox has expired; the TTL is the backstop should no
// sweep run. The per-bucket keys are bounded: the sets hold only users with an
// inbox. Redis must not evict keys (maxmemory-policy noeviction), or an inbox could
// vanish before its TTL.
//
// An inbox is a list rather than a sorted set or a stream because retained seqs are
// contiguous (seq-LLEN+1 .. seq, see redis_scripts.go), so a seq's position is
// arithmetic and a score index buys nothing: Append is RPUSH, the cumulative Ack and
// expiry are one LTRIM from the left, and Range is one LRANGE of computed indices,
// O(distance from the nearer end + count). A list of small items is stored as packed
// listpacks, a fraction of a sorted set's per-entry overhead (skiplist node and hash
// entry) and of a stream's (entry ids and field names). Each operation is one Lua
// script: one round trip, atomic.
//
// Data written by versions before this layout (keys without a hash tag) is not
// read or migrated: after an upgrade every bucket starts a new epoch, so each user
// sees a larger epoch at its next login or push and its client resets (PROTOCOL.md
// §8.3), and what the old keys held unacknowledged is not delivered. Delete the old
// keys (those under the prefix without a '{') once no older process runs.
//
// # Durability
//
// An Append is acknowledged once the primary holding the bucket has run its script,
// that is holds the message in memory. What can be lost depends on the mode:
//
//   - Without WithReplicas ("-backend redis"): durability is Redis's. With the
//     primary's append-only file synced every second (appendfsync everysec, as the
//     harness runs it) a crash of the primary's host loses up to about a second of
//     acknowledged messages (a kill of the redis-server process alone loses nothing:
//     Redis writes the file before it replies, only the fsync lags); appendfsync
//     always loses none. On a Sentinel or Cluster
//     failover the promoted replica lacks what had not been replicated yet (usually
//     milliseconds of writes, more when the replica lagged): those acknowledged
//     messages are lost, and their seqs are issued again within the same epoch, so a
//     client that saw the lost ones takes the new ones for duplicates up to the seq
//     it had seen.
//   - WithReplicas(n, timeout) ("-backend redis-replicated"): the append script and
//     WAIT n timeout run back to back on one connection to the bucket's primary, and
//     the Append succeeds only when at least n replicas confirm they hold it (WAIT
//     covers every write the primary made before, so a deduplicated retry is
//     covered too: its script rewrites the dedupe key to make sure of it). A
//     failover to a replica that confirmed loses no acknowledged message (Sentinel
//     and Cluster prefer the replica with the largest replication offset; with more
//     replicas than n, a failover to one that had not confirmed could still lose
//     some). When fewer confirm in time the Append fails with ErrNotReplicated, an
//     unknown outcome: the primary may hold the message, which its sender learns by
//     retrying with the same ClientMsgID (deduplicated, and WAITed for again). Such
//     an unconfirmed message can still be read (a SYNC) before a failover loses it;
//     its seq is then issued again in the same epoch, as above. Each Append costs a
//     replication round trip more. A failover leaves the new primary with one
//     replica fewer: with n = 1 and a single replica, Appends fail until a replica
//     attaches again (the old primary restarted, which Sentinel turns into a
//     replica), so run two replicas to keep acknowledging through a failover.
//
// A Redis restored from an older snapshot keeps the snapshot's epochs and reissues
// seqs: the epoch detects total loss of a bucket, not rollback.
type Redis struct {
	rdb    redis.UniversalClient
	tags   *shardtag.Table
	quota  Quota
	window string // dedupe window in ms, as the append script takes it
	// retention, ttl and step are the retention period, the key TTL (ms) and the
	// epoch step (µs), as the scripts take them.
	retention       time.Duration
	retMS, ttl, stp string
	now             func() time.Time
	prefix          string
	// replicas and replicaWait are WithReplicas's: how many replicas must confirm
	// an append (0: none, no WAIT) and for how long WAIT waits.
	replicas    int
	short       shortByPrimary // primaries whose replicas fell short lately
	replicaWait time.Duration
	buckets     [shardtag.Buckets]bucketKeys
	scripts     struct{ append, ack, window, windows, rng, unmark, sweep *luaScript }
	// deduped counts this process's appends that found their message stored;
	// refused, expired and deleted what this process's scripts refused, expired
	// and deleted.
	deduped, refused, expired, deleted atomic.Uint64
	// stored is the retained count per bucket as of the latest script that
	// reported it; inboxes the inbox count per bucket as of the latest sweep of it.
	stored, inboxes bucketCounts
	sweepNext       atomic.Uint32 // the bucket the next Sweep visits
}

// bucketKeys are one bucket's own keys.
type bucketKeys struct{ tag, epoch, ids, stored, pending, inboxes string }

// bucketCounts is a count kept per bucket, with its sum.
type bucketCounts struct {
	per   [shardtag.Buckets]atomic.Int64
	total atomic.Int64
}

// set makes bucket b's count n.
func (c *bucketCounts) set(b int, n int64) { c.total.Add(n - c.per[b].Swap(n)) }

// add adds d to bucket b's count.
func (c *bucketCounts) add(b int, d int64) {
	c.per[b].Add(d)
	c.total.Add(d)
}

// luaScript is a script and its source (for EVAL after NOSCRIPT in a pipeline).
type luaScript struct {
	*redis.Script
	src string
}

func newScript(src string) *luaScript { return &luaScript{Script: redis.NewScript(src), src: src} }

var (
	_ Store          = (*Redis)(nil)
	_ StoredCounter  = (*Redis)(nil)
	_ DedupeCounter  = (*Redis)(nil)
	_ LimitCounter   = (*Redis)(nil)
	_ InboxCounter   = (*Redis)(nil)
	_ Sweeper        = (*Redis)(nil)
	_ WindowsBatcher = (*Redis)(nil)
	_ PendingStore   = (*Redis)(nil)
)

// ErrNotReplicated is returned (wrapped) by a Redis store WithReplicas when fewer
// replicas than asked confirmed an append within the timeout, or the confirmation
// could not be read. The outcome is unknown, not "not stored": the primary may hold
// the message (and a recipient may read it), so the caller retries with the same
// ClientMsgID, which deduplication makes safe, rather than report a failure.
var ErrNotReplicated = errors.New("msg: append not confirmed by the replicas")

// WithReplicas makes a Redis store acknowledge an Append only once n replicas of
// the bucket's primary confirm they hold it (WAIT n timeout on the connection that
// ran the append), failing it with ErrNotReplicated otherwise. n <= 0 (the default)
// waits for none. The timeout should stay below the client's read timeout (WAIT
// blocks that long at most); timeout <= 0 takes DefaultReplicaTimeout. The memory
// store ignores it.
func WithReplicas(n int, timeout time.Duration) StoreOption {
	return func(o *storeOptions) {
		o.replicas = max(n, 0)
		o.replicaWait = timeout
		if o.replicaWait <= 0 {
			o.replicaWait = DefaultReplicaTimeout
		}
	}
}

// DefaultReplicaTimeout is WithReplicas's default timeout.
const DefaultReplicaTimeout = 500 * time.Millisecond

// NewRedis returns a store keeping its keys under prefix (e.g. "fg:msg:") in rdb,
// whose quota is perUser unacknowledged messages per recipient (and WithQuotaBytes
// bytes; see Quota), that drops messages older than the retention period
// (WithRetention; DefaultRetention), deduplicates appends within a window
// (WithDedupeWindow; DefaultDedupeWindow) and waits for replicas if asked
// (WithReplicas). A prefix holding '{' or '}' is refused: it would decide the keys'
// hash tag. The caller closes rdb.
func NewRedis(rdb redis.UniversalClient, prefix string, perUser int, opts ...StoreOption) (*Redis, error) {
	if err := CheckRedisPrefix(prefix); err != nil {
		return nil, err
	}
	o := newStoreOptions(perUser, opts)
	step := epochStep(o.retention)
	r := &Redis{rdb: rdb, tags: shardtag.New(), quota: o.quota, prefix: prefix, now: o.now, retention: o.retention,
		window:   strconv.FormatInt(max(o.dedupeWindow.Milliseconds(), 1), 10),
		retMS:    strconv.FormatInt(max(o.retention.Milliseconds(), 1), 10),
		ttl:      strconv.FormatInt((o.retention + 2*step).Milliseconds(), 10),
		stp:      strconv.FormatInt(step.Microseconds(), 10),
		replicas: o.replicas, replicaWait: o.replicaWait}
	for b := range r.buckets {
		t := prefix + r.tags.Tag(b) + ":"
		r.buckets[b] = bucketKeys{tag: t, epoch: t + "epoch", ids: t + "ids", stored: t + "stored",
			pending: t + "pending", inboxes: t + "inboxes"}
	}
	r.scripts.append = newScript(appendScript)
	r.scripts.ack = newScript(ackScript)
	r.scripts.window = newScript(windowScript)
	r.scripts.windows = newScript(windowsScript)
	r.scripts.rng = newScript(rangeScript)
	r.scripts.unmark = newScript(unmarkScript)
	r.scripts.sweep = newScript(sweepScript)
	return r, nil
}

// CheckRedisPrefix refuses a key prefix NewRedis cannot use: one holding '{' or
// '}', which would decide the keys' hash tag (and so their Cluster slot) instead of
// their bucket.
func CheckRedisPrefix(prefix string) error {
	if strings.ContainsAny(prefix, "{}") {
		return fmt.Errorf("msg redis: prefix %q holds '{' or '}', which would decide the keys' Cluster slot", prefix)
	}
	return nil
}

// userKeys returns uid's bucket and its user and inbox keys.
func (r *Redis) userKeys(uid uint64) (b int, user, inbox string) {
	b = shardtag.Bucket(uid)
	id := strconv.FormatUint(uid, 10)
	t := r.buckets[b].tag
	return b, t + "user:" + id, t + "inbox:" + id
}

// clockArgs are the scripts' first arguments about time: candidate epoch, now in
// ms, now in µs, retention in ms, epoch step in µs.
func (r *Redis) clockArgs(extra ...any) []any {
	now := r.now()
	return append([]any{candidateEpoch(), now.UnixMilli(), now.UnixMicro(), r.retMS, r.stp}, extra...)
}

// candidateEpoch is the epoch a script sets if the bucket has none: the current
// time in µs, so an epoch lost with Redis's data is never set again and a later
// incarnation's epoch is larger than an earlier one's.
func candidateEpoch() string { return strconv.FormatUint(uint64(time.Now().UnixMicro()), 10) }

// storedFixed is the stored encoding's fixed part: seq | id | stored at (ms) |
// payload bytes appended before it | from | to | client_ts.
const storedFixed = 56

// storedHead is the part of the stored encoding the append script writes: seq,
// id, time and bytes before.
const storedHead = 32

// appendStored appends m's stored encoding with its time and bytes-before fields 0
// (the append script writes the first storedHead bytes): AppendMessage without the
// epoch, which the store keeps per inbox rather than in every message.
func appendStored(b []byte, m *Message) []byte {
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint64(b, m.ID)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.BigEndian.AppendUint64(b, m.From)
	b = binary.BigEndian.AppendUint64(b, m.To)
	b = binary.BigEndian.AppendUint64(b, uint64(m.ClientTS))
	return append(b, m.Payload...)
}

// decodeStored decodes appendStored's encoding (Epoch left 0); the payload aliases b.
func decodeStored(b []byte) (Message, error) {
	if len(b) < storedFixed {
		return Message{}, ErrShortMessage
	}
	return Message{
		Seq:      binary.BigEndian.Uint64(b[0:]),
		ID:       binary.BigEndian.Uint64(b[8:]),
		From:     binary.BigEndian.Uint64(b[32:]),
		To:       binary.BigEndian.Uint64(b[40:]),
		ClientTS: int64(binary.BigEndian.Uint64(b[48:])),
		Payload:  b[storedFixed:len(b):len(b)],
	}, nil
}

// Ping checks that Redis answers and loads the stored and inbox counts of every
// bucket (see Stored and Inboxes), in one pipeline.
func (r *Redis) Ping(ctx context.Context) error {
	pipe := r.rdb.Pipeline()
	stored := make([]*redis.StringCmd, len(r.buckets))
	inboxes := make([]*redis.IntCmd, len(r.buckets))
	for b, k := range r.buckets {
		stored[b] = pipe.Get(ctx, k.stored)
		inboxes[b] = pipe.ZCard(ctx, k.inboxes)
	}
	_, _ = pipe.Exec(ctx) // each command holds its own error
	for b := range r.buckets {
		n, err := stored[b].Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("msg redis: %w", err)
		}
		k, err := inboxes[b].Result()
		if err != nil {
			return fmt.Errorf("msg redis: %w", err)
		}
		r.stored.set(b, n)
		r.inboxes.set(b, k)
	}
	return nil
}

// Append implements Store. An error wrapping ErrNotStored means Redis was not
// reached (the context was done before the call, or no connection could be had or
// made), declined to run the script (see refused) or refused the message
// (ErrRecipientFull). Any other error leaves the
// outcome unknown, ErrNotReplicated included. The script runs at most once per
// call whatever rdb's retry settings (a retry is the caller's, with the same
// ClientMsgID, which deduplication makes safe).
func (r *Redis) Append(ctx context.Context, m *Message) error {
	if m.To == 0 {
		return ErrNoRecipient
	}
	b, user, inbox := r.userKeys(m.To)
	bk := &r.buckets[b]
	enc := appendStored(make([]byte, 0, storedFixed+len(m.Payload)), m)[storedHead:] // the script prepends the rest
	keys := []string{bk.ids, bk.stored, user, inbox, bk.epoch, bk.pending, bk.inboxes}
	if m.ClientMsgID != 0 {
		keys = append(keys, r.dedupeKey(bk, m))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: msg redis append: %w", ErrNotStored, err)
	}
	now := r.now()
	args := []any{enc, candidateEpoch(), r.window, strconv.FormatUint(m.To, 10), now.UnixMilli(), now.UnixMicro(),
		r.retMS, r.ttl, r.stp, r.quota.Messages, r.quota.Bytes, len(m.Payload), b, shardtag.Buckets}
	var cmd *redis.Cmd
	var wait *redis.IntCmd
	var short *shortReplicas
	if r.replicas > 0 {
		p, err := redisconn.Primary(ctx, r.rdb, user)
		if err != nil {
			return fmt.Errorf("%w: msg redis append: %w", ErrNotStored, err)
		}
		if short = r.short.of(p); short.refuse(now) {
			return fmt.Errorf("%w: msg redis append: the primary's replicas fell short of %d within the last %v", ErrNotStored, r.replicas, r.replicaWait)
		}
		cmd, wait = r.runOnceAndWait(ctx, p, r.scripts.append, keys, args)
	} else {
		cmd = r.runOnce(ctx, r.rdb, r.scripts.append, keys, args)
	}
	res, err := cmd.Slice()
	if err != nil {
		if refused(err) {
			if cc, ok := r.rdb.(*redis.ClusterClient); ok {
				cc.ReloadState(ctx) // the shard we asked is not the slot's primary (any more)
			}
		}
		if notSent(err) || refused(err) {
			return fmt.Errorf("%w: msg redis append: %w", ErrNotStored, err)
		}
		return fmt.Errorf("msg redis append: %w", err)
	}
	if len(res) != 8 {
		return fmt.Errorf("msg redis append: script returned %d values", len(res))
	}
	var n [8]int64
	for i, v := range res {
		if i == 4 {
			continue
		}
		var ok bool
		if n[i], ok = v.(int64); !ok {
			return fmt.Errorf("msg redis append: script returned %v", res)
		}
	}
	es, ok := res[4].(string)
	if !ok {
		return fmt.Errorf("msg redis append: script returned %v", res)
	}
	r.expired.Add(uint64(n[6]))
	r.stored.set(b, n[3])
	if n[2] != 0 {
		r.refused.Add(1)
		return ErrRecipientFull
	}
	if n[7] != 0 {
		r.inboxes.add(b, 1)
	}
	if wait != nil {
		got, err := wait.Result()
		if err != nil {
			return fmt.Errorf("%w: msg redis append: WAIT: %w", ErrNotReplicated, err)
		}
		if got < int64(r.replicas) {
			short.fell(r.now().Add(r.replicaWait))
			return fmt.Errorf("%w: msg redis append: %d of %d replicas confirmed within %v", ErrNotReplicated, got, r.replicas, r.replicaWait)
		}
	}
	epoch, err := strconv.ParseUint(es, 10, 64)
	if err != nil {
		return fmt.Errorf("msg redis append: epoch %q: %w", es, err)
	}
	m.Seq, m.ID, m.Epoch = uint64(n[0]), uint64(n[1]), epoch
	r.deduped.Add(uint64(n[5]))
	return nil
}

// shortReplicas remembers, per primary, until when appends are refused without
// being tried because a WAIT on that primary fell short: a primary left without
// replicas (the one a failover promoted, before a replica attaches) would
// otherwise make every append hold a pooled connection for the whole WAIT
// timeout, and at a thousand appends a second the pool would be gone in
// milliseconds, starving the reads, acks and settles that need no replica. Once
// the period ends, the next append tries (and WAITs) again: one probe per period.
type shortReplicas struct {
	mu    sync.Mutex
	until time.Time
}

func (s *shortReplicas) refuse(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Before(s.until)
}

func (s *shortReplicas) fell(until time.Time) {
	s.mu.Lock()
	s.until = until
	s.mu.Unlock()
}

// shortByPrimary holds a shortReplicas per primary (by its client's address).
type shortByPrimary struct {
	mu sync.Mutex
	m  map[string]*shortReplicas
}

func (b *shortByPrimary) of(c redis.UniversalClient) *shortReplicas {
	addr := ""
	if rc, ok := c.(*redis.Client); ok {
		addr = rc.Options().Addr
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*shortReplicas{}
	}
	s := b.m[addr]
	if s == nil {
		s = &shortReplicas{}
		b.m[addr] = s
	}
	return s
}

// noRetryCmd is a command go-redis runs at most once: its client retries a command
// whose connection failed, which for a script that was written (and perhaps run)
// could run it twice, and would make the error of the last attempt (say, a refused
// dial) hide that an earlier one reached Redis.
type noRetryCmd struct{ *redis.Cmd }

// NoRetry implements redis.Cmder.
func (noRetryCmd) NoRetry() bool { return true }

// runOnce runs s on c like redis.Script.Run: EVALSHA, then EVAL if Redis does not
// have it cached (NOSCRIPT: it ran nothing). go-redis makes each at most one
// attempt, so that the error is that attempt's (see notSent).
func (r *Redis) runOnce(ctx context.Context, c redis.UniversalClient, s *luaScript, keys []string, args []any) *redis.Cmd {
	cmd := evalOnce(ctx, c, "evalsha", s.Hash(), keys, args)
	if isNoScript(cmd.Err()) {
		return evalOnce(ctx, c, "eval", s.src, keys, args)
	}
	return cmd
}

// runOnceAndWait is runOnce followed, on the same connection (one pipeline on c,
// the bucket's primary), by WAIT for the store's replicas: WAIT counts the
// replicas holding every write the connection made, the script's included.
func (r *Redis) runOnceAndWait(ctx context.Context, c redis.UniversalClient, s *luaScript, keys []string, args []any) (*redis.Cmd, *redis.IntCmd) {
	run := func(verb, script string) (*redis.Cmd, *redis.IntCmd) {
		pipe := c.Pipeline()
		cmd := redis.NewCmd(ctx, evalArgs(verb, script, keys, args)...)
		wait := redis.NewIntCmd(ctx, "wait", r.replicas, r.replicaWait.Milliseconds())
		_ = pipe.Process(ctx, noRetryCmd{cmd})
		_ = pipe.Process(ctx, wait)
		_, _ = pipe.Exec(ctx) // each command holds its own error
		return cmd, wait
	}
	cmd, wait := run("evalsha", s.Hash())
	if isNoScript(cmd.Err()) {
		return run("eval", s.src)
	}
	return cmd, wait
}

func evalArgs(verb, script string, keys []string, args []any) []any {
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, verb, script, len(keys))
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	return append(cmdArgs, args...)
}

func evalOnce(ctx context.Context, c redis.UniversalClient, verb, script string, keys []string, args []any) *redis.Cmd {
	cmd := redis.NewCmd(ctx, evalArgs(verb, script, keys, args)...)
	_ = c.Process(ctx, noRetryCmd{cmd}) // the error is the command's too
	return cmd
}

// isNoScript reports whether err is Redis's NOSCRIPT: the script is not cached
// there, and nothing ran.
func isNoScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")
}

// notSent reports whether err, from a command go-redis tried once (runOnce), means
// the command never reached Redis: no connection could be had (the pool timed out
// or the client is closed) or made (the dial failed). Any other failure may have
// come after Redis ran it.
func notSent(err error) bool {
	var op *net.OpError
	return errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed) ||
		(errors.As(err, &op) && op.Op == "dial")
}

// refused reports whether err is Redis declining to run a command: the slot lives
// on another shard (MOVED, ASK; the replicated append asks the primary it believes
// holds the slot, and is not redirected), the cluster cannot serve it now
// (CLUSTERDOWN, TRYAGAIN), or the server is a replica (READONLY: a script's first
// write fails there, and the scripts write nothing before it).
func refused(err error) bool {
	for _, p := range []string{"MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN", "READONLY"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// scriptCall is one script call of a pipeline (runPipelined).
type scriptCall struct {
	keys []string
	args []any
}

// runPipelined runs s once per call in one pipeline (on a Cluster, one per shard
// involved), then again with EVAL those Redis had not cached (NOSCRIPT: they ran
// nothing). It returns the commands, in calls' order, and the first error.
func (r *Redis) runPipelined(ctx context.Context, s *luaScript, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	pipe := r.rdb.Pipeline()
	for i, c := range calls {
		cmds[i] = pipe.EvalSha(ctx, s.Hash(), c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command holds its own error
	var again []int
	for i, cmd := range cmds {
		if isNoScript(cmd.Err()) {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		pipe = r.rdb.Pipeline()
		for _, i := range again {
			cmds[i] = pipe.Eval(ctx, s.src, calls[i].keys, calls[i].args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return cmds, err
		}
	}
	return cmds, nil
}

// dedupeKey is m's dedupe key: <prefix>T:dd:<to>:<from>:<client msg id>, with the
// tag of m.To's bucket.
func (r *Redis) dedupeKey(bk *bucketKeys, m *Message) string {
	b := make([]byte, 0, len(bk.tag)+3+3*21)
	b = append(b, bk.tag...)
	b = append(b, "dd:"...)
	b = strconv.AppendUint(b, m.To, 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, m.From, 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, m.ClientMsgID, 10)
	return string(b)
}

// Ack implements Store.
func (r *Redis) Ack(ctx context.Context, uid, seq, epoch uint64) error {
	b, user, inbox := r.userKeys(uid)
	res, err := r.scripts.ack.Run(ctx, r.rdb, []string{r.buckets[b].stored, user, inbox},
		strconv.FormatUint(seq, 10), strconv.FormatUint(epoch, 10), r.now().UnixMilli(), r.retMS).Int64Slice()
	if err != nil {
		return fmt.Errorf("msg redis ack: %w", err)
	}
	if len(res) != 3 {
		return fmt.Errorf("msg redis ack: script returned %d values", len(res))
	}
	r.stored.set(b, res[1])
	r.expired.Add(uint64(res[2]))
	return nil
}

// Window implements Store.
func (r *Redis) Window(ctx context.Context, uid uint64) (Window, error) {
	b, user, inbox := r.userKeys(uid)
	bk := &r.buckets[b]
	res, err := r.scripts.window.Run(ctx, r.rdb, []string{bk.epoch, bk.stored, user, inbox}, r.clockArgs()...).Slice()
	if err != nil {
		return Window{}, fmt.Errorf("msg redis window: %w", err)
	}
	if len(res) != 5 {
		return Window{}, fmt.Errorf("msg redis window: script returned %d values", len(res))
	}
	w, err := parseWindow(res[:3])
	if err != nil {
		return Window{}, fmt.Errorf("msg redis window: %w", err)
	}
	r.countExpired(b, res[3], res[4])
	return w, nil
}

// countExpired takes a script's count of expired messages and bucket b's stored
// count it reports (-1: unchanged).
func (r *Redis) countExpired(b int, expired, stored any) {
	if n, ok := expired.(int64); ok && n > 0 {
		r.expired.Add(uint64(n))
	}
	if n, ok := stored.(int64); ok && n >= 0 {
		r.stored.set(b, n)
	}
}

// Windows implements WindowsBatcher: one script per bucket the uids fall in, all
// in one pipeline.
func (r *Redis) Windows(ctx context.Context, uids []uint64) ([]Window, error) {
	var buckets []int     // in order of first appearance
	at := map[int][]int{} // bucket → indexes into uids
	calls := map[int]*scriptCall{}
	clock := r.clockArgs()
	for i, uid := range uids {
		b, user, inbox := r.userKeys(uid)
		c := calls[b]
		if c == nil {
			c = &scriptCall{keys: []string{r.buckets[b].epoch, r.buckets[b].stored}, args: clock}
			calls[b] = c
			buckets = append(buckets, b)
		}
		c.keys = append(c.keys, user, inbox)
		at[b] = append(at[b], i)
	}
	list := make([]scriptCall, len(buckets))
	for i, b := range buckets {
		list[i] = *calls[b]
	}
	cmds, err := r.runPipelined(ctx, r.scripts.windows, list)
	if err != nil {
		return nil, fmt.Errorf("msg redis windows: %w", err)
	}
	out := make([]Window, len(uids))
	for k, b := range buckets {
		res, err := cmds[k].Slice()
		if err != nil {
			return nil, fmt.Errorf("msg redis windows: %w", err)
		}
		idx := at[b]
		if len(res) != 2+3*len(idx) {
			return nil, fmt.Errorf("msg redis windows: script returned %d values for %d users", len(res), len(idx))
		}
		r.countExpired(b, res[0], res[1])
		for j, i := range idx {
			if out[i], err = parseWindow(res[2+3*j : 5+3*j]); err != nil {
				return nil, fmt.Errorf("msg redis windows: %w", err)
			}
		}
	}
	return out, nil
}

// Range implements Store.
func (r *Redis) Range(ctx context.Context, uid, after uint64, limit int) ([]Message, Window, error) {
	b, user, inbox := r.userKeys(uid)
	bk := &r.buckets[b]
	res, err := r.scripts.rng.Run(ctx, r.rdb, []string{bk.epoch, bk.stored, user, inbox},
		r.clockArgs(strconv.FormatUint(after, 10), max(limit, 0))...).Slice()
	if err != nil {
		return nil, Window{}, fmt.Errorf("msg redis range: %w", err)
	}
	if len(res) != 6 {
		return nil, Window{}, fmt.Errorf("msg redis range: script returned %d values", len(res))
	}
	w, err := parseWindow(res[:3])
	if err != nil {
		return nil, Window{}, fmt.Errorf("msg redis range: %w", err)
	}
	r.countExpired(b, res[4], res[5])
	items, ok := res[3].([]any)
	if !ok {
		return nil, Window{}, fmt.Errorf("msg redis range: messages are a %T", res[3])
	}
	var msgs []Message
	if len(items) > 0 {
		msgs = make([]Message, len(items))
	}
	for i, it := range items {
		s, ok := it.(string)
		if !ok {
			return nil, Window{}, fmt.Errorf("msg redis range: message is a %T", it)
		}
		if msgs[i], err = decodeStored([]byte(s)); err != nil {
			return nil, Window{}, fmt.Errorf("msg redis range: uid %d: %w", uid, err)
		}
		msgs[i].Epoch = w.Epoch
	}
	return msgs, w, nil
}

// sweepBatch is the most inboxes one Sweep examines.
const sweepBatch = 128

// Sweep implements Sweeper: it visits the next bucket and deletes up to sweepBatch
// of its inboxes whose latest append is older than the retention period
// (everything in them has expired), counting their messages as expired. A bucket
// that filled a batch is visited again by the next Sweep; it reports more unless
// it finished the last bucket of a pass.
func (r *Redis) Sweep(ctx context.Context) (more bool, err error) {
	b := int(r.sweepNext.Load() % shardtag.Buckets)
	full, err := r.sweepBucket(ctx, b)
	if err != nil {
		return false, err
	}
	if full {
		return true, nil
	}
	r.sweepNext.Store(uint32((b + 1) % shardtag.Buckets))
	return b+1 < shardtag.Buckets, nil
}

// sweepBucket is one Sweep step in bucket b, reporting whether it found a full
// batch.
func (r *Redis) sweepBucket(ctx context.Context, b int) (full bool, err error) {
	bk := &r.buckets[b]
	now := r.now()
	cutoff := now.Add(-r.retention).UnixMilli()
	members, err := r.rdb.ZRangeByScore(ctx, bk.inboxes, &redis.ZRangeBy{Min: "-inf",
		Max: strconv.FormatInt(cutoff, 10), Count: sweepBatch}).Result()
	if err != nil {
		return false, fmt.Errorf("msg redis sweep: %w", err)
	}
	if len(members) == 0 {
		return false, nil
	}
	keys := make([]string, 3, 3+2*len(members))
	keys[0], keys[1], keys[2] = bk.stored, bk.pending, bk.inboxes
	args := make([]any, 2, 2+len(members))
	args[0], args[1] = now.UnixMilli(), r.retMS
	for _, s := range members {
		uid, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return false, fmt.Errorf("msg redis sweep: member %q: %w", s, err)
		}
		_, user, inbox := r.userKeys(uid)
		keys = append(keys, user, inbox)
		args = append(args, s)
	}
	res, err := r.scripts.sweep.Run(ctx, r.rdb, keys, args...).Int64Slice()
	if err != nil {
		return false, fmt.Errorf("msg redis sweep: %w", err)
	}
	if len(res) != 4 {
		return false, fmt.Errorf("msg redis sweep: script returned %d values", len(res))
	}
	r.deleted.Add(uint64(res[0]))
	r.expired.Add(uint64(res[1]))
	r.stored.set(b, res[2])
	r.inboxes.set(b, res[3])
	return len(members) == sweepBatch, nil
}

// PendingUsers implements PendingStore: it scans every bucket's pending set in
// turn, so a restart finds every marked user wherever its bucket lives.
func (r *Redis) PendingUsers(ctx context.Context, fn func(uid uint64) bool) error {
	for b := range r.buckets {
		var cursor uint64
		for {
			members, next, err := r.rdb.SScan(ctx, r.buckets[b].pending, cursor, "", 1024).Result()
			if err != nil {
				return fmt.Errorf("msg redis pending users: %w", err)
			}
			for _, s := range members {
				uid, err := strconv.ParseUint(s, 10, 64)
				if err != nil {
					return fmt.Errorf("msg redis pending users: member %q: %w", s, err)
				}
				if !fn(uid) {
					return nil
				}
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return nil
}

// Unmark implements PendingStore: one script per bucket the users fall in, all in
// one pipeline.
func (r *Redis) Unmark(ctx context.Context, users []UserHead) error {
	if len(users) == 0 {
		return nil
	}
	var buckets []int
	calls := map[int]*scriptCall{}
	for _, u := range users {
		b, user, _ := r.userKeys(u.UID)
		c := calls[b]
		if c == nil {
			c = &scriptCall{keys: []string{r.buckets[b].pending}}
			calls[b] = c
			buckets = append(buckets, b)
		}
		c.keys = append(c.keys, user)
		c.args = append(c.args, strconv.FormatUint(u.UID, 10), strconv.FormatUint(u.Head, 10))
	}
	list := make([]scriptCall, len(buckets))
	for i, b := range buckets {
		list[i] = *calls[b]
	}
	if _, err := r.runPipelined(ctx, r.scripts.unmark, list); err != nil {
		return fmt.Errorf("msg redis unmark: %w", err)
	}
	return nil
}

// parseWindow parses a script's {epoch, head, oldest}.
func parseWindow(res []any) (Window, error) {
	if len(res) != 3 {
		return Window{}, fmt.Errorf("script returned %d values for a window", len(res))
	}
	es, ok1 := res[0].(string)
	head, ok2 := res[1].(int64)
	oldest, ok3 := res[2].(int64)
	if !ok1 || !ok2 || !ok3 {
		return Window{}, fmt.Errorf("window of types %T, %T, %T", res[0], res[1], res[2])
	}
	epoch, err := strconv.ParseUint(es, 10, 64)
	if err != nil {
		return Window{}, fmt.Errorf("epoch %q: %w", es, err)
	}
	return Window{Epoch: epoch, Head: uint64(head), Oldest: uint64(oldest)}, nil
}

// Deduplicated implements DedupeCounter: this process's appends that found their
// message already stored.
func (r *Redis) Deduplicated() uint64 { return r.deduped.Load() }

// Refused implements LimitCounter: this process's appends refused by the quota.
func (r *Redis) Refused() uint64 { return r.refused.Load() }

// Expired implements LimitCounter: the messages this process's scripts dropped for
// outliving the retention period.
func (r *Redis) Expired() uint64 { return r.expired.Load() }

// Inboxes implements InboxCounter: the store's inboxes, summed over the buckets,
// each as of this process's latest Sweep of it (plus those its appends created
// since), or Ping.
func (r *Redis) Inboxes() int64 { return r.inboxes.total.Load() }

// DeletedInboxes implements InboxCounter: the inboxes this process's sweeps
// deleted.
func (r *Redis) DeletedInboxes() uint64 { return r.deleted.Load() }

// Stored implements StoredCounter: the messages retained store-wide, the sum of the
// buckets' stored keys (each kept exact by every script), each as of this process's
// latest script in that bucket, or Ping. Reading it costs no round trip; with other
// msg processes writing too, it lags by their writes since then. Messages of an
// inbox deleted by its TTL rather than by a sweep stay counted.
func (r *Redis) Stored() int64 { return r.stored.total.Load() }
