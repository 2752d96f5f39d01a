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
//	<prefix>head:<uid>   string: INCR counter, the last seq assigned to uid
//	<prefix>inbox:<uid>  list: uid's retained messages, oldest first, each in the
//	                     stored encoding (appendStored: AppendMessage without the
//	                     epoch, which is store-wide)
//	<prefix>pending      set: users that may have messages the router has not
//	                     settled (PendingStore): added by every Append, removed by
//	                     Unmark once the delivery tracker holds nothing for them
//	<prefix>dd:<to>:<from>:<client msg id>
//	                     string "seq:id": a message appended with a client message
//	                     id, remembered for the dedupe window (PX) so that a retried
//	                     Append returns it instead of storing it again
//
// An inbox is a list rather than a sorted set or a stream because retained seqs are
// contiguous (head-LLEN+1 .. head, see redis_scripts.go), so a seq's position is
// arithmetic and a score index buys nothing: Append is RPUSH (+ LTRIM for the
// window), the cumulative Ack is one LTRIM from the left, and Range is one LRANGE of
// computed indices, O(distance from the nearer end + count). A list of small items
// is stored as packed listpacks, a fraction of a sorted set's per-entry overhead
// (skiplist node and hash entry) and of a stream's (entry ids and field names).
// Each operation is one Lua script: one round trip, atomic.
//
// The epoch is a time-seeded value (see candidateEpoch) that the scripts set when
// the key is missing; it therefore survives msg restarts for as long as Redis keeps
// its data, and changes, to a larger value, when Redis loses it. Redis must not evict keys (maxmemory-policy
// noeviction), or an inbox could vanish under an unchanged epoch; and durability is
// Redis's: an Append is acknowledged once Redis holds the message in memory, and
// survives a Redis crash only as far as its AOF/RDB settings say (appendfsync always
// for no loss). A Redis restored from an older snapshot keeps the snapshot's epoch
// and reissues seqs: the epoch detects total loss, not rollback.
//
// The scripts touch store-wide keys next to a user's, so the store needs a single
// Redis primary (replicas and Sentinel are fine), not Redis Cluster.
type Redis struct {
	rdb     redis.UniversalClient
	perUser int
	window  string // dedupe window in ms, as the append script takes it
	prefix  string
	keys    struct{ epoch, ids, stored, pending string }
	scripts struct{ append, ack, window, windows, rng, unmark *redis.Script }
	// evictions counts the evictions this process's appends made.
	evictions atomic.Uint64
	// deduped counts this process's appends that found their message stored.
	deduped atomic.Uint64
	// stored is the store-wide retained count as of the latest script that
	// reported it.
	stored atomic.Int64
}

var (
	_ Store           = (*Redis)(nil)
	_ EvictionCounter = (*Redis)(nil)
	_ StoredCounter   = (*Redis)(nil)
	_ DedupeCounter   = (*Redis)(nil)
	_ RetentionLimit  = (*Redis)(nil)
	_ PendingStore    = (*Redis)(nil)
)

// NewRedis returns a store keeping its keys under prefix (e.g. "fg:msg:") in rdb,
// retaining at most perUser messages per user and deduplicating appends within a
// window (WithDedupeWindow; DefaultDedupeWindow). The caller closes rdb.
func NewRedis(rdb redis.UniversalClient, prefix string, perUser int, opts ...StoreOption) *Redis {
	o := newStoreOptions(opts)
	r := &Redis{rdb: rdb, perUser: max(perUser, 1), prefix: prefix,
		window: strconv.FormatInt(max(o.dedupeWindow.Milliseconds(), 1), 10)}
	r.keys.epoch, r.keys.ids, r.keys.stored, r.keys.pending = prefix+"epoch", prefix+"ids", prefix+"stored", prefix+"pending"
	r.scripts.append = redis.NewScript(appendScript)
	r.scripts.ack = redis.NewScript(ackScript)
	r.scripts.window = redis.NewScript(windowScript)
	r.scripts.windows = redis.NewScript(windowsScript)
	r.scripts.rng = redis.NewScript(rangeScript)
	r.scripts.unmark = redis.NewScript(unmarkScript)
	return r
}

func (r *Redis) userKeys(uid uint64) (head, inbox string) {
	id := strconv.FormatUint(uid, 10)
	return r.prefix + "head:" + id, r.prefix + "inbox:" + id
}

// candidateEpoch is the epoch a script sets if the store has none: the current time
// in µs, so an epoch lost with Redis's data is never set again and a later
// incarnation's epoch is larger than an earlier one's.
func candidateEpoch() string { return strconv.FormatUint(uint64(time.Now().UnixMicro()), 10) }

// storedFixed is the stored encoding's fixed part: seq | id | from | to | client_ts.
const storedFixed = 40

// appendStored appends m's stored encoding: AppendMessage without the epoch, which
// the store keeps once (the epoch key) rather than in every message.
func appendStored(b []byte, m *Message) []byte {
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint64(b, m.ID)
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
		From:     binary.BigEndian.Uint64(b[16:]),
		To:       binary.BigEndian.Uint64(b[24:]),
		ClientTS: int64(binary.BigEndian.Uint64(b[32:])),
		Payload:  b[storedFixed:len(b):len(b)],
	}, nil
}

// Ping checks that Redis answers and loads the stored count (see Stored).
func (r *Redis) Ping(ctx context.Context) error {
	n, err := r.rdb.Get(ctx, r.keys.stored).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("msg redis: %w", err)
	}
	r.stored.Store(n)
	return nil
}

// Append implements Store. An error wrapping ErrNotStored means Redis was not
// reached: the context was done before the call, or no connection could be had or
// made. Any other error leaves the outcome unknown. The script runs at most once
// per call whatever rdb's retry settings (a retry is the caller's, with the same
// ClientMsgID, which deduplication makes safe).
func (r *Redis) Append(ctx context.Context, m *Message) error {
	if m.To == 0 {
		return ErrNoRecipient
	}
	head, inbox := r.userKeys(m.To)
	enc := appendStored(make([]byte, 0, storedFixed+len(m.Payload)), m)[16:] // the script prepends seq and id
	keys := []string{r.keys.ids, r.keys.stored, head, inbox, r.keys.epoch, r.keys.pending}
	if m.ClientMsgID != 0 {
		keys = append(keys, r.dedupeKey(m))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: msg redis append: %w", ErrNotStored, err)
	}
	res, err := r.runOnce(ctx, r.scripts.append, appendScript, keys, r.perUser, enc, candidateEpoch(), r.window,
		strconv.FormatUint(m.To, 10)).Slice()
	if err != nil {
		if notSent(err) {
			return fmt.Errorf("%w: msg redis append: %w", ErrNotStored, err)
		}
		return fmt.Errorf("msg redis append: %w", err)
	}
	if len(res) != 6 {
		return fmt.Errorf("msg redis append: script returned %d values", len(res))
	}
	seq, ok1 := res[0].(int64)
	id, ok2 := res[1].(int64)
	evicted, ok3 := res[2].(int64)
	stored, ok4 := res[3].(int64)
	es, ok5 := res[4].(string)
	deduped, ok6 := res[5].(int64)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
		return fmt.Errorf("msg redis append: script returned %v", res)
	}
	epoch, err := strconv.ParseUint(es, 10, 64)
	if err != nil {
		return fmt.Errorf("msg redis append: epoch %q: %w", es, err)
	}
	m.Seq, m.ID, m.Epoch = uint64(seq), uint64(id), epoch
	r.evictions.Add(uint64(evicted))
	r.deduped.Add(uint64(deduped))
	r.stored.Store(stored)
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
	head, inbox := r.userKeys(uid)
	res, err := r.scripts.ack.Run(ctx, r.rdb, []string{r.keys.stored, head, inbox, r.keys.epoch},
		strconv.FormatUint(seq, 10), strconv.FormatUint(epoch, 10)).Int64Slice()
	if err != nil {
		return fmt.Errorf("msg redis ack: %w", err)
	}
	if len(res) != 2 {
		return fmt.Errorf("msg redis ack: script returned %d values", len(res))
	}
	r.stored.Store(res[1])
	return nil
}

// Window implements Store.
func (r *Redis) Window(ctx context.Context, uid uint64) (Window, error) {
	head, inbox := r.userKeys(uid)
	res, err := r.scripts.window.Run(ctx, r.rdb, []string{r.keys.epoch, head, inbox}, candidateEpoch()).Slice()
	if err != nil {
		return Window{}, fmt.Errorf("msg redis window: %w", err)
	}
	w, err := parseWindow(res)
	if err != nil {
		return Window{}, fmt.Errorf("msg redis window: %w", err)
	}
	return w, nil
}

// Windows implements WindowsBatcher: one script for every uid.
func (r *Redis) Windows(ctx context.Context, uids []uint64) ([]Window, error) {
	keys := make([]string, 1, 1+2*len(uids))
	keys[0] = r.keys.epoch
	for _, uid := range uids {
		head, inbox := r.userKeys(uid)
		keys = append(keys, head, inbox)
	}
	res, err := r.scripts.windows.Run(ctx, r.rdb, keys, candidateEpoch()).Slice()
	if err != nil {
		return nil, fmt.Errorf("msg redis windows: %w", err)
	}
	if len(res) != 1+2*len(uids) {
		return nil, fmt.Errorf("msg redis windows: script returned %d values for %d users", len(res), len(uids))
	}
	out := make([]Window, len(uids))
	for i := range out {
		if out[i], err = parseWindow([]any{res[0], res[1+2*i], res[2+2*i]}); err != nil {
			return nil, fmt.Errorf("msg redis windows: %w", err)
		}
	}
	return out, nil
}

// Range implements Store.
func (r *Redis) Range(ctx context.Context, uid, after uint64, limit int) ([]Message, Window, error) {
	head, inbox := r.userKeys(uid)
	res, err := r.scripts.rng.Run(ctx, r.rdb, []string{r.keys.epoch, head, inbox},
		candidateEpoch(), strconv.FormatUint(after, 10), max(limit, 0)).Slice()
	if err != nil {
		return nil, Window{}, fmt.Errorf("msg redis range: %w", err)
	}
	if len(res) != 4 {
		return nil, Window{}, fmt.Errorf("msg redis range: script returned %d values", len(res))
	}
	w, err := parseWindow(res[:3])
	if err != nil {
		return nil, Window{}, fmt.Errorf("msg redis range: %w", err)
	}
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
		head, _ := r.userKeys(u.UID)
		keys = append(keys, head)
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

// Evictions implements EvictionCounter: the evictions made by this process's
// appends (with several msg processes on one Redis, their sum is the store's).
func (r *Redis) Evictions() uint64 { return r.evictions.Load() }

// PerUser implements RetentionLimit.
func (r *Redis) PerUser() int { return r.perUser }

// Deduplicated implements DedupeCounter: this process's appends that found their
// message already stored.
func (r *Redis) Deduplicated() uint64 { return r.deduped.Load() }

// Stored implements StoredCounter: the messages retained store-wide (the stored
// key, kept exact by every script), as of this process's latest Append or Ack, or
// Ping. Reading it costs no round trip; with other msg processes writing too, it
// lags by their writes since then.
func (r *Redis) Stored() int64 { return r.stored.Load() }
