package msg

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store kept in Redis, so inboxes outlive the msg process and several
// msg processes can share them. Every key starts with the store's prefix:
//
//	<prefix>epoch        string: the store's epoch, set at first use (see below)
//	<prefix>ids          string: INCR counter, the last message id assigned
//	<prefix>stored       string: messages retained in all inboxes (see Stored)
//	<prefix>user:<uid>   hash: uid's inbox state: seq (the last seq assigned),
//	                     epoch (the inbox's incarnation), and the byte and time
//	                     bookkeeping of the quota and of expiry (redis_scripts.go)
//	<prefix>inbox:<uid>  list: uid's retained messages, oldest first, each in the
//	                     stored encoding (appendStored: AppendMessage without the
//	                     epoch, with the time it was stored and the payload bytes
//	                     appended before it)
//	<prefix>inboxes      sorted set: every user with an inbox, scored by the time of
//	                     its latest append (ms), for Sweep and Inboxes
//	<prefix>pending      set: users that may have messages the router has not
//	                     settled (PendingStore): added by every Append, removed by
//	                     Unmark once the delivery tracker holds nothing for them,
//	                     and by Sweep with the inbox
//	<prefix>dd:<to>:<from>:<client msg id>
//	                     string "seq:id:epoch": a message appended with a client
//	                     message id, remembered for the dedupe window (PX) so that a
//	                     retried Append returns it instead of storing it again
//
// A user's two keys carry a TTL, set again by every Append: the retention period
// plus two epoch steps. Sweep deletes them (and the user's entries in the inboxes
// and pending sets) once the latest append is older than the retention period, so
// everything in the inbox has expired; the TTL is the backstop should no sweep run.
// The store-wide keys are bounded: the sets hold only users with an inbox.
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
// The epoch is a time-seeded value (see candidateEpoch) that the scripts set when
// the key is missing; it therefore survives msg restarts for as long as Redis keeps
// its data, and changes, to a larger value, when Redis loses it. An inbox's own
// epoch is userEpoch at its creation: the store's epoch plus the epoch steps
// (the retention period, at most an hour) elapsed since the store's epoch was set.
// An inbox is deleted (by Sweep or its TTL) at least the retention period after its
// latest append, so at least one step after its creation: one created again has a
// larger epoch, its client resets (PROTOCOL.md §8.3), and no seq is issued twice
// within one epoch. Redis must not evict keys (maxmemory-policy
// noeviction), or an inbox could vanish before its TTL; and durability is
// Redis's: an Append is acknowledged once Redis holds the message in memory, and
// survives a Redis crash only as far as its AOF/RDB settings say (appendfsync always
// for no loss). A Redis restored from an older snapshot keeps the snapshot's epoch
// and reissues seqs: the epoch detects total loss, not rollback.
//
// The scripts touch store-wide keys next to a user's, so the store needs a single
// Redis primary (replicas and Sentinel are fine), not Redis Cluster.
type Redis struct {
	rdb    redis.UniversalClient
	quota  Quota
	window string // dedupe window in ms, as the append script takes it
	// retention, ttl and step are the retention period, the key TTL (ms) and the
	// epoch step (µs), as the scripts take them.
	retention       time.Duration
	retMS, ttl, stp string
	now             func() time.Time
	prefix          string
	keys            struct{ epoch, ids, stored, pending, inboxes string }
	scripts         struct{ append, ack, window, windows, rng, unmark, sweep *redis.Script }
	// deduped counts this process's appends that found their message stored;
	// refused, expired and deleted what this process's scripts refused, expired
	// and deleted.
	deduped, refused, expired, deleted atomic.Uint64
	// stored is the store-wide retained count as of the latest script that
	// reported it; inboxes the inbox count as of the latest sweep.
	stored, inboxes atomic.Int64
}

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

// NewRedis returns a store keeping its keys under prefix (e.g. "fg:msg:") in rdb,
// whose quota is perUser unacknowledged messages per recipient (and WithQuotaBytes
// bytes; see Quota), that drops messages older than the retention period
// (WithRetention; DefaultRetention) and deduplicates appends within a window
// (WithDedupeWindow; DefaultDedupeWindow). The caller closes rdb.
func NewRedis(rdb redis.UniversalClient, prefix string, perUser int, opts ...StoreOption) *Redis {
	o := newStoreOptions(perUser, opts)
	step := epochStep(o.retention)
	r := &Redis{rdb: rdb, quota: o.quota, prefix: prefix, now: o.now, retention: o.retention,
		window: strconv.FormatInt(max(o.dedupeWindow.Milliseconds(), 1), 10),
		retMS:  strconv.FormatInt(max(o.retention.Milliseconds(), 1), 10),
		ttl:    strconv.FormatInt((o.retention + 2*step).Milliseconds(), 10),
		stp:    strconv.FormatInt(step.Microseconds(), 10)}
	r.keys.epoch, r.keys.ids, r.keys.stored = prefix+"epoch", prefix+"ids", prefix+"stored"
	r.keys.pending, r.keys.inboxes = prefix+"pending", prefix+"inboxes"
	r.scripts.append = redis.NewScript(appendScript)
	r.scripts.ack = redis.NewScript(ackScript)
	r.scripts.window = redis.NewScript(windowScript)
	r.scripts.windows = redis.NewScript(windowsScript)
	r.scripts.rng = redis.NewScript(rangeScript)
	r.scripts.unmark = redis.NewScript(unmarkScript)
	r.scripts.sweep = redis.NewScript(sweepScript)
	return r
}

func (r *Redis) userKeys(uid uint64) (user, inbox string) {
	id := strconv.FormatUint(uid, 10)
	return r.prefix + "user:" + id, r.prefix + "inbox:" + id
}

// clockArgs are the scripts' first arguments about time: candidate epoch, now in
// ms, now in µs, retention in ms, epoch step in µs.
func (r *Redis) clockArgs(extra ...any) []any {
	now := r.now()
	return append([]any{candidateEpoch(), now.UnixMilli(), now.UnixMicro(), r.retMS, r.stp}, extra...)
}

// candidateEpoch is the epoch a script sets if the store has none: the current time
// in µs, so an epoch lost with Redis's data is never set again and a later
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

// Ping checks that Redis answers and loads the stored and inbox counts (see
// Stored and Inboxes).
func (r *Redis) Ping(ctx context.Context) error {
	n, err := r.rdb.Get(ctx, r.keys.stored).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("msg redis: %w", err)
	}
	r.stored.Store(n)
	k, err := r.rdb.ZCard(ctx, r.keys.inboxes).Result()
	if err != nil {
		return fmt.Errorf("msg redis: %w", err)
	}
	r.inboxes.Store(k)
	return nil
}

// Append implements Store. An error wrapping ErrNotStored means Redis was not
// reached (the context was done before the call, or no connection could be had or
// made) or refused the message (ErrRecipientFull). Any other error leaves the
// outcome unknown. The script runs at most once per call whatever rdb's retry
// settings (a retry is the caller's, with the same ClientMsgID, which
// deduplication makes safe).
func (r *Redis) Append(ctx context.Context, m *Message) error {
	if m.To == 0 {
		return ErrNoRecipient
	}
	user, inbox := r.userKeys(m.To)
	enc := appendStored(make([]byte, 0, storedFixed+len(m.Payload)), m)[storedHead:] // the script prepends the rest
	keys := []string{r.keys.ids, r.keys.stored, user, inbox, r.keys.epoch, r.keys.pending, r.keys.inboxes}
	if m.ClientMsgID != 0 {
		keys = append(keys, r.dedupeKey(m))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: msg redis append: %w", ErrNotStored, err)
	}
	now := r.now()
	res, err := r.runOnce(ctx, r.scripts.append, appendScript, keys, enc, candidateEpoch(), r.window,
		strconv.FormatUint(m.To, 10), now.UnixMilli(), now.UnixMicro(), r.retMS, r.ttl, r.stp,
		r.quota.Messages, r.quota.Bytes, len(m.Payload)).Slice()
	if err != nil {
		if notSent(err) {
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
	r.stored.Store(n[3])
	if n[2] != 0 {
		r.refused.Add(1)
		return ErrRecipientFull
	}
	epoch, err := strconv.ParseUint(es, 10, 64)
	if err != nil {
		return fmt.Errorf("msg redis append: epoch %q: %w", es, err)
	}
	m.Seq, m.ID, m.Epoch = uint64(n[0]), uint64(n[1]), epoch
	r.deduped.Add(uint64(n[5]))
	if n[7] != 0 {
		r.inboxes.Add(1)
	}
	return nil
}

// noRetryCmd is a command go-redis runs at most once: its client retries a command
// whose connection failed, which for a script that was written (and perhaps run)
// could run it twice, and would make the error of the last attempt (say, a refused
// dial) hide that an earlier one reached Redis.
type noRetryCmd struct{ *redis.Cmd }

// NoRetry implements redis.Cmder.
func (noRetryCmd) NoRetry() bool { return true }

// runOnce runs script (whose source is src) like redis.Script.Run: EVALSHA, then
// EVAL if Redis does not have it cached (NOSCRIPT: it ran nothing). go-redis makes
// each at most one attempt, so that the error is that attempt's (see notSent).
func (r *Redis) runOnce(ctx context.Context, script *redis.Script, src string, keys []string, args ...any) *redis.Cmd {
	cmd := r.evalOnce(ctx, "evalsha", script.Hash(), keys, args)
	if err := cmd.Err(); errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT") {
		return r.evalOnce(ctx, "eval", src, keys, args)
	}
	return cmd
}

func (r *Redis) evalOnce(ctx context.Context, verb, script string, keys []string, args []any) *redis.Cmd {
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, verb, script, len(keys))
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	cmdArgs = append(cmdArgs, args...)
	cmd := redis.NewCmd(ctx, cmdArgs...)
	_ = r.rdb.Process(ctx, noRetryCmd{cmd}) // the error is the command's too
	return cmd
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

// dedupeKey is m's dedupe key: <prefix>dd:<to>:<from>:<client msg id>.
func (r *Redis) dedupeKey(m *Message) string {
	b := make([]byte, 0, len(r.prefix)+3+3*21)
	b = append(b, r.prefix...)
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
	user, inbox := r.userKeys(uid)
	res, err := r.scripts.ack.Run(ctx, r.rdb, []string{r.keys.stored, user, inbox},
		strconv.FormatUint(seq, 10), strconv.FormatUint(epoch, 10), r.now().UnixMilli(), r.retMS).Int64Slice()
	if err != nil {
		return fmt.Errorf("msg redis ack: %w", err)
	}
	if len(res) != 3 {
		return fmt.Errorf("msg redis ack: script returned %d values", len(res))
	}
	r.stored.Store(res[1])
	r.expired.Add(uint64(res[2]))
	return nil
}

// Window implements Store.
func (r *Redis) Window(ctx context.Context, uid uint64) (Window, error) {
	user, inbox := r.userKeys(uid)
	res, err := r.scripts.window.Run(ctx, r.rdb, []string{r.keys.epoch, r.keys.stored, user, inbox}, r.clockArgs()...).Slice()
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
	r.countExpired(res[3], res[4])
	return w, nil
}

// countExpired takes a script's count of expired messages and the stored count it
// reports (-1: unchanged).
func (r *Redis) countExpired(expired, stored any) {
	if n, ok := expired.(int64); ok && n > 0 {
		r.expired.Add(uint64(n))
	}
	if n, ok := stored.(int64); ok && n >= 0 {
		r.stored.Store(n)
	}
}

// Windows implements WindowsBatcher: one script for every uid.
func (r *Redis) Windows(ctx context.Context, uids []uint64) ([]Window, error) {
	keys := make([]string, 2, 2+2*len(uids))
	keys[0], keys[1] = r.keys.epoch, r.keys.stored
	for _, uid := range uids {
		user, inbox := r.userKeys(uid)
		keys = append(keys, user, inbox)
	}
	res, err := r.scripts.windows.Run(ctx, r.rdb, keys, r.clockArgs()...).Slice()
	if err != nil {
		return nil, fmt.Errorf("msg redis windows: %w", err)
	}
	if len(res) != 2+3*len(uids) {
		return nil, fmt.Errorf("msg redis windows: script returned %d values for %d users", len(res), len(uids))
	}
	r.countExpired(res[0], res[1])
	out := make([]Window, len(uids))
	for i := range out {
		if out[i], err = parseWindow(res[2+3*i : 5+3*i]); err != nil {
			return nil, fmt.Errorf("msg redis windows: %w", err)
		}
	}
	return out, nil
}

// Range implements Store.
func (r *Redis) Range(ctx context.Context, uid, after uint64, limit int) ([]Message, Window, error) {
	user, inbox := r.userKeys(uid)
	res, err := r.scripts.rng.Run(ctx, r.rdb, []string{r.keys.epoch, r.keys.stored, user, inbox},
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
	r.countExpired(res[4], res[5])
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

// Sweep implements Sweeper: it deletes up to sweepBatch inboxes whose latest
// append is older than the retention period (everything in them has expired),
// counting their messages as expired, and reports more if it found a full batch.
func (r *Redis) Sweep(ctx context.Context) (more bool, err error) {
	now := r.now()
	cutoff := now.Add(-r.retention).UnixMilli()
	members, err := r.rdb.ZRangeByScore(ctx, r.keys.inboxes, &redis.ZRangeBy{Min: "-inf",
		Max: strconv.FormatInt(cutoff, 10), Count: sweepBatch}).Result()
	if err != nil {
		return false, fmt.Errorf("msg redis sweep: %w", err)
	}
	keys := make([]string, 3, 3+2*len(members))
	keys[0], keys[1], keys[2] = r.keys.stored, r.keys.pending, r.keys.inboxes
	args := make([]any, 2, 2+len(members))
	args[0], args[1] = now.UnixMilli(), r.retMS
	for _, s := range members {
		uid, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return false, fmt.Errorf("msg redis sweep: member %q: %w", s, err)
		}
		user, inbox := r.userKeys(uid)
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
	r.stored.Store(res[2])
	r.inboxes.Store(res[3])
	return len(members) == sweepBatch, nil
}

// PendingUsers implements PendingStore: it scans the pending set.
func (r *Redis) PendingUsers(ctx context.Context, fn func(uid uint64) bool) error {
	var cursor uint64
	for {
		members, next, err := r.rdb.SScan(ctx, r.keys.pending, cursor, "", 1024).Result()
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
			return nil
		}
		cursor = next
	}
}

// Unmark implements PendingStore, in one script call.
func (r *Redis) Unmark(ctx context.Context, users []UserHead) error {
	if len(users) == 0 {
		return nil
	}
	keys := make([]string, 1, 1+len(users))
	keys[0] = r.keys.pending
	args := make([]any, 0, 2*len(users))
	for _, u := range users {
		user, _ := r.userKeys(u.UID)
		keys = append(keys, user)
		args = append(args, strconv.FormatUint(u.UID, 10), strconv.FormatUint(u.Head, 10))
	}
	if err := r.scripts.unmark.Run(ctx, r.rdb, keys, args...).Err(); err != nil {
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

// Inboxes implements InboxCounter: the store's inboxes as of this process's latest
// Sweep (plus those its appends created since), or Ping.
func (r *Redis) Inboxes() int64 { return r.inboxes.Load() }

// DeletedInboxes implements InboxCounter: the inboxes this process's sweeps
// deleted.
func (r *Redis) DeletedInboxes() uint64 { return r.deleted.Load() }

// Stored implements StoredCounter: the messages retained store-wide (the stored
// key, kept exact by every script), as of this process's latest Append, Ack, Range,
// Window or Sweep, or Ping. Reading it costs no round trip; with other msg
// processes writing too, it lags by their writes since then. Messages of an inbox
// deleted by its TTL rather than by a sweep stay counted.
func (r *Redis) Stored() int64 { return r.stored.Load() }
