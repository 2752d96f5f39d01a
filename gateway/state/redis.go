package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/floodgate/floodgate/internal/redisconn"
	"github.com/floodgate/floodgate/internal/shardtag"
	"github.com/redis/go-redis/v9"
)

// RedisConfig configures a Redis store. The zero value is ready to use.
type RedisConfig struct {
	// Prefix starts every key (default "floodgate:state:"), so stores with different
	// prefixes share a deployment without seeing each other. It must not contain '{'
	// or '}': the hash tags that follow it place the keys on Cluster slots.
	Prefix string
	// Retention is how long a gateway whose lease ended stays listed by Gateways
	// (default 1h); its record then expires.
	Retention time.Duration
	// SweepBatch bounds the sessions one sweep script deletes (default 1000), so a
	// sweep never blocks a server for long; Sweep runs as many as it needs.
	SweepBatch int
}

// Timing of the cross-slot protocol (see Redis).
const (
	// registerWindow bounds the time from a registration's lease check to its
	// write: the write is not sent after it.
	registerWindow = 5 * time.Second
	// deadEpochGrace is how long after an epoch's death Sweep keeps walking its
	// indexes: longer than registerWindow, so the write of a registration that
	// checked the lease just before the death has landed before the last walk.
	deadEpochGrace = 30 * time.Second
	// casAttempts bounds the compare-and-set rounds of one registration (each
	// lost round means another registration of the same user won meanwhile).
	casAttempts = 16
	// gwTag is the hash tag of every gateway-wide key.
	gwTag = "{gw}"
)

// Redis is a Store on Redis (5.0 or later; tested with 7.0): one primary, a
// Sentinel-watched primary or a Redis Cluster — the same keys and scripts in every
// mode, as given by the redis.UniversalClient. The key layout and the scripts are in
// redis_lua.go.
//
// Leases are keys with PX TTLs holding the live epoch, so Redis itself ends a lapsed
// lease. They live with the other gateway-wide keys under one hash tag; each user's
// session lives under the tag of the user's bucket (shardtag), so sessions spread
// over a Cluster's shards and every script touches one slot only.
//
// A session and its gateway's lease are thus in different slots, and no operation
// reads both atomically. The guarantees hold anyway, because of one fact: a lease
// epoch never comes back to life (a lease key only ever gets a new, larger epoch,
// and a session is valid only while its gateway's lease holds the session's epoch).
//
//   - Lookup reads the session, then the lease. If the lease holds the session's
//     epoch at that second read, it held it since the registration (it was acquired
//     before and has not died since), so at the first read the session was stored
//     and valid: Lookup never returns a session of a dead epoch. A session under a
//     dead epoch is reported absent (LookupInvalid to Probe) and deleted by
//     compare-and-delete.
//   - Register checks the lease, then writes the session by compare-and-set in the
//     user's slot, returning the session it displaced (so that connection is kicked:
//     one session per user). If the lease dies between the two steps, the session
//     is written under a dead epoch: Lookup ignores it, exactly as if the login had
//     come just before the lease died, and the gateway re-registers its sessions
//     under its next lease (Reregister) as it does after any lease loss.
//   - Sweep reclaims what dead epochs leave: every epoch death is queued (Acquire of
//     a newer epoch, Release, or a lapse found by Sweep) and Sweep walks that epoch's
//     index in every bucket, again at each sweep until deadEpochGrace has passed
//     since the death. A registration's write is never sent more than
//     registerWindow after its lease check, so a write racing the death lands before
//     the last walk. What a lost write could still leave (a state server frozen
//     between the two steps) is one session, reclaimed by the next Lookup of that
//     user or replaced by the user's next login.
//
// Unregister is compare-and-delete in the user's slot. Sessions counts the index
// sets of every live epoch in every bucket (pipelined SCARDs: 256 per live gateway).
type Redis struct {
	rdb       redis.UniversalClient
	prefix    string
	tags      *shardtag.Table
	retention int64 // ms
	batch     int
	scripts   redisScripts
	// leaseChecked, if set (by tests only), runs between a registration's lease
	// check and its write: the window of the cross-slot race.
	leaseChecked func()
}

// redisScripts are the store's scripts (their SHA1s computed here, not on the
// server).
type redisScripts struct {
	acquire, renew, release, setDraining, gateways *redis.Script
	sweepScan, garbageDone, sweepBucket            *redis.Script
	store, compareDelete                           *redis.Script
}

func newRedisScripts() redisScripts {
	return redisScripts{
		acquire: redis.NewScript(luaAcquire), renew: redis.NewScript(luaRenew), release: redis.NewScript(luaRelease),
		setDraining: redis.NewScript(luaSetDraining), gateways: redis.NewScript(luaGateways),
		sweepScan: redis.NewScript(luaSweepScan), garbageDone: redis.NewScript(luaGarbageDone),
		sweepBucket: redis.NewScript(luaSweepBucket),
		store:       redis.NewScript(luaStore), compareDelete: redis.NewScript(luaCompareDelete),
	}
}

// NewRedis returns a store on rdb (a *redis.Client, a Sentinel failover client or
// a *redis.ClusterClient); the caller keeps ownership of rdb (and closes it). It
// refuses a prefix with a brace, which would defeat the hash tags.
func NewRedis(rdb redis.UniversalClient, cfg RedisConfig) (*Redis, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "floodgate:state:"
	}
	if err := CheckRedisPrefix(cfg.Prefix); err != nil {
		return nil, err
	}
	if cfg.Retention <= 0 {
		cfg.Retention = time.Hour
	}
	if cfg.SweepBatch <= 0 {
		cfg.SweepBatch = 1000
	}
	return &Redis{rdb: rdb, prefix: cfg.Prefix, tags: shardtag.New(),
		retention: cfg.Retention.Milliseconds(), batch: cfg.SweepBatch, scripts: newRedisScripts()}, nil
}

// CheckRedisPrefix reports a key prefix the Redis store cannot use: one with '{'
// or '}', which would make Redis Cluster hash the prefix instead of the tags.
func CheckRedisPrefix(p string) error {
	if strings.ContainsAny(p, "{}") {
		return fmt.Errorf("state: redis prefix %q: must not contain '{' or '}' (the store adds its own hash tags)", p)
	}
	return nil
}

// Key names (redis_lua.go documents them).
func (r *Redis) gwKey(name string) string   { return r.prefix + gwTag + name }
func (r *Redis) recordKey(id string) string { return r.gwKey("gw:" + id) }
func (r *Redis) leaseKey(id string) string  { return r.gwKey("lease:" + id) }
func (r *Redis) sessKey(uid uint64) string {
	return r.prefix + r.tags.UserTag(uid) + "s:" + u64(uid)
}
func (r *Redis) idxKey(bucket int, id, epoch string) string {
	return r.prefix + r.tags.Tag(bucket) + "idx:" + id + ":" + epoch
}

// Ping checks that Redis answers: every primary, on a Cluster.
func (r *Redis) Ping(ctx context.Context) error {
	if err := redisconn.Ping(ctx, r.rdb); err != nil {
		return fmt.Errorf("state: redis ping: %w", err)
	}
	return nil
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// scriptCall is one script run, for runScripts.
type scriptCall struct {
	s    *redis.Script
	keys []string
	args []any
}

// runScripts runs calls in one pipeline (EVALSHA), then once more with EVAL those
// the server did not know (a new or failed-over server has an empty script cache).
// The commands' errors are in the results; err is the pipeline's own failure.
func (r *Redis) runScripts(ctx context.Context, calls []scriptCall) ([]*redis.Cmd, error) {
	out := make([]*redis.Cmd, len(calls))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			out[i] = c.s.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	var missing []int
	for i, cmd := range out {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return out, pipelineErr(err)
	}
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, i := range missing {
			out[i] = calls[i].s.Eval(ctx, p, calls[i].keys, calls[i].args...)
		}
		return nil
	})
	return out, pipelineErr(err)
}

// pipelineErr drops redis.Nil, which a pipeline returns when one of its commands
// found nothing (the caller reads each command's result).
func pipelineErr(err error) error {
	if errors.Is(err, redis.Nil) {
		return nil
	}
	var re redis.Error
	if errors.As(err, &re) {
		return nil // a command's own error: the caller reads it from the command
	}
	return err
}

// run runs one script.
func (r *Redis) run(ctx context.Context, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	return s.Run(ctx, r.rdb, keys, args...)
}

// Acquire implements Store. Each Acquire starts the gateway afresh: not draining,
// zero load.
func (r *Redis) Acquire(ctx context.Context, g Gateway, ttl time.Duration) (uint64, error) {
	if err := checkTTL(ttl); err != nil {
		return 0, err
	}
	if g.ID == "" {
		return 0, fmt.Errorf("state: acquire: empty gateway id")
	}
	keys := []string{r.gwKey("epoch"), r.recordKey(g.ID), r.leaseKey(g.ID), r.gwKey("gws"), r.gwKey("garbage")}
	s, err := r.run(ctx, r.scripts.acquire, keys, g.ID, g.Addr, g.LinkAddr, g.AdminAddr, g.WSAddr, ttl.Milliseconds(), r.retention).Text()
	if err != nil {
		return 0, fmt.Errorf("state: acquire %q: %w", g.ID, err)
	}
	e, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("state: acquire %q: bad epoch %q: %w", g.ID, s, err)
	}
	return e, nil
}

// Renew implements Store.
func (r *Redis) Renew(ctx context.Context, id string, epoch uint64, load Load, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	lj, err := json.Marshal(load)
	if err != nil {
		return fmt.Errorf("state: renew %q: %w", id, err)
	}
	ok, err := r.run(ctx, r.scripts.renew, []string{r.recordKey(id), r.leaseKey(id)},
		u64(epoch), ttl.Milliseconds(), lj, r.retention).Bool()
	if err != nil {
		return fmt.Errorf("state: renew %q: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("renew: gateway %q epoch %d: %w", id, epoch, ErrLeaseLost)
	}
	return nil
}

// Release implements Store. Releasing a lease that is not live under epoch fails
// with ErrLeaseLost and leaves any newer lease alone.
func (r *Redis) Release(ctx context.Context, id string, epoch uint64) error {
	ok, err := r.run(ctx, r.scripts.release, []string{r.recordKey(id), r.leaseKey(id), r.gwKey("garbage")},
		id, u64(epoch)).Bool()
	if err != nil {
		return fmt.Errorf("state: release %q: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("release: gateway %q epoch %d: %w", id, epoch, ErrLeaseLost)
	}
	return nil
}

// SetDraining implements Store.
func (r *Redis) SetDraining(ctx context.Context, id string, draining bool) error {
	flag := "0"
	if draining {
		flag = "1"
	}
	ok, err := r.run(ctx, r.scripts.setDraining, []string{r.recordKey(id)}, flag).Bool()
	if err != nil {
		return fmt.Errorf("state: set draining %q: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("set draining %q: %w", id, ErrUnknownGateway)
	}
	return nil
}

// gatewayKeys returns the gateway ids and, for a script over them, first (then
// gw:<id> and lease:<id> per id) as KEYS and the ids as ARGV.
func (r *Redis) gatewayKeys(ctx context.Context, first string) (keys []string, ids []any, err error) {
	members, err := r.rdb.SMembers(ctx, r.gwKey("gws")).Result()
	if err != nil {
		return nil, nil, err
	}
	keys = make([]string, 0, 1+2*len(members))
	keys = append(keys, first)
	ids = make([]any, len(members))
	for i, id := range members {
		keys = append(keys, r.recordKey(id), r.leaseKey(id))
		ids[i] = id
	}
	return keys, ids, nil
}

// Gateways implements Store; the result is sorted by ID. Expiry is computed from the
// lease's remaining TTL and this process's clock, so skew between the hosts does not
// shift it.
func (r *Redis) Gateways(ctx context.Context) ([]Gateway, error) {
	keys, ids, err := r.gatewayKeys(ctx, r.gwKey("gws"))
	if err != nil {
		return nil, fmt.Errorf("state: gateways: %w", err)
	}
	if len(ids) == 0 {
		return []Gateway{}, nil
	}
	rows, err := r.run(ctx, r.scripts.gateways, keys, ids...).Slice()
	now := time.Now()
	if err != nil {
		return nil, fmt.Errorf("state: gateways: %w", err)
	}
	out := make([]Gateway, 0, len(rows))
	for _, row := range rows {
		g, err := parseGatewayRow(row, now)
		if err != nil {
			return nil, fmt.Errorf("state: gateways: %w", err)
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b Gateway) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// parseGatewayRow decodes one row of luaGateways.
func parseGatewayRow(row any, now time.Time) (Gateway, error) {
	f, ok := row.([]any)
	if !ok || len(f) != 10 {
		return Gateway{}, fmt.Errorf("bad gateway row %v", row)
	}
	str := func(i int) string { s, _ := f[i].(string); return s }
	g := Gateway{ID: str(0), Addr: str(1), LinkAddr: str(2), AdminAddr: str(3), WSAddr: str(9), Draining: str(6) == "1"}
	var err error
	if g.Epoch, err = strconv.ParseUint(str(4), 10, 64); err != nil {
		return Gateway{}, fmt.Errorf("gateway %q epoch: %w", g.ID, err)
	}
	exp, err := strconv.ParseInt(str(5), 10, 64)
	if err != nil {
		return Gateway{}, fmt.Errorf("gateway %q expiry: %w", g.ID, err)
	}
	if pttl, _ := f[8].(int64); pttl > 0 {
		g.Expires = now.Add(time.Duration(pttl) * time.Millisecond)
	} else {
		g.Expires = time.UnixMilli(exp)
		if g.Expires.After(now) {
			g.Expires = now // not live, whatever the clocks say
		}
	}
	if lj := str(7); lj != "" {
		if err := json.Unmarshal([]byte(lj), &g.Load); err != nil {
			return Gateway{}, fmt.Errorf("gateway %q load: %w", g.ID, err)
		}
	}
	return g, nil
}

// Statuses of storeSessions, as batchErrors reads them.
const (
	storeStored    = 0
	storeReplaced  = 1
	storeLeaseLost = 2
	storeChanged   = 3 // luaStore only: the expected session was not the stored one
)

// storeSessions writes ss (one gateway and epoch) after checking that the epoch is
// the gateway's live lease; with onlySame, a session is written only over an
// absent one or one of the same gateway and conn (Reregister). It returns one
// status per session (storeStored, storeReplaced or storeLeaseLost) and the
// session each found stored (UID 0 if none): the one it displaced when stored, the
// newer login when replaced.
//
// One round trip reads the lease and the stored sessions; then one script per
// bucket (pipelined) writes each session by compare-and-set on the session read,
// and a session changed meanwhile is read and tried again.
func (r *Redis) storeSessions(ctx context.Context, ss []Session, onlySame bool) ([]int64, []Session, error) {
	g, e := ss[0].Gateway, u64(ss[0].Epoch)
	st := make([]int64, len(ss))
	prev := make([]Session, len(ss))
	checked := time.Now()
	lease, err := r.readSessions(ctx, ss, prev, r.leaseKey(g))
	if err != nil {
		return nil, nil, err
	}
	if lease != e {
		for i := range st {
			st[i] = storeLeaseLost
		}
		return st, prev, nil
	}
	if r.leaseChecked != nil {
		r.leaseChecked()
	}
	// The write must follow the lease check within registerWindow (see Redis).
	ctx, cancel := context.WithDeadline(ctx, checked.Add(registerWindow))
	defer cancel()
	only := "0"
	if onlySame {
		only = "1"
	}
	pending := make([]int, len(ss))
	for i := range pending {
		pending[i] = i
	}
	for range casAttempts {
		order, byBucket, calls := r.storeCalls(ss, prev, pending, only)
		cmds, err := r.runScripts(ctx, calls)
		if err != nil {
			return nil, nil, err
		}
		var again []Session
		var againAt []int
		for k, b := range order {
			res, err := cmds[k].Int64Slice()
			if err != nil {
				return nil, nil, err
			}
			if len(res) != len(byBucket[b]) {
				return nil, nil, fmt.Errorf("store: %d results for %d sessions", len(res), len(byBucket[b]))
			}
			for j, i := range byBucket[b] {
				switch res[j] {
				case storeStored, storeReplaced:
					st[i] = res[j]
				case storeChanged:
					again, againAt = append(again, ss[i]), append(againAt, i)
				default:
					return nil, nil, fmt.Errorf("store: status %d", res[j])
				}
			}
		}
		if len(again) == 0 {
			return st, prev, nil
		}
		fresh := make([]Session, len(again))
		if _, err := r.readSessions(ctx, again, fresh, ""); err != nil {
			return nil, nil, err
		}
		for k, i := range againAt {
			prev[i] = fresh[k]
		}
		pending = againAt
	}
	return nil, nil, fmt.Errorf("store: sessions changed under %d attempts", casAttempts)
}

// storeCalls groups the pending sessions (indexes into ss) by bucket, in order of
// first appearance, and builds one store script call per bucket: each session
// written by compare-and-set on prev, the session read for it.
func (r *Redis) storeCalls(ss, prev []Session, pending []int, only string) (order []int, byBucket map[int][]int, calls []scriptCall) {
	g, e := ss[0].Gateway, u64(ss[0].Epoch)
	byBucket = map[int][]int{}
	for _, i := range pending {
		b := shardtag.Bucket(ss[i].UID)
		if byBucket[b] == nil {
			order = append(order, b)
		}
		byBucket[b] = append(byBucket[b], i)
	}
	calls = make([]scriptCall, 0, len(order))
	for _, b := range order {
		keys := []string{r.idxKey(b, g, e)}
		args := []any{g, e, only}
		for _, i := range byBucket[b] {
			p := prev[i]
			keys = append(keys, r.sessKey(ss[i].UID))
			if p.UID == 0 {
				keys = append(keys, keys[0])
				args = append(args, u64(ss[i].UID), u64(ss[i].Conn), "", "", "")
			} else {
				keys = append(keys, r.idxKey(b, p.Gateway, u64(p.Epoch)))
				args = append(args, u64(ss[i].UID), u64(ss[i].Conn), p.Gateway, u64(p.Conn), u64(p.Epoch))
			}
		}
		calls = append(calls, scriptCall{r.scripts.store, keys, args})
	}
	return order, byBucket, calls
}

// readSessions reads the stored sessions of ss's users into into (UID 0 where none)
// and, with leaseKey set, the lease in the same round trip ("" if none).
func (r *Redis) readSessions(ctx context.Context, ss []Session, into []Session, leaseKey string) (string, error) {
	var lease *redis.StringCmd
	got := make([]*redis.SliceCmd, len(ss))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if leaseKey != "" {
			lease = p.Get(ctx, leaseKey)
		}
		for i, s := range ss {
			got[i] = p.HMGet(ctx, r.sessKey(s.UID), "g", "c", "e")
		}
		return nil
	})
	if err = pipelineErr(err); err != nil {
		return "", err
	}
	for i, cmd := range got {
		v, err := cmd.Result()
		if err != nil {
			return "", err
		}
		if into[i], err = sessionOf(ss[i].UID, v); err != nil {
			return "", err
		}
	}
	if lease == nil {
		return "", nil
	}
	l, err := lease.Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return l, err
}

// sessionOf parses HMGET g c e of uid's session: UID 0 if there is none.
func sessionOf(uid uint64, v []any) (Session, error) {
	if len(v) != 3 || v[0] == nil {
		return Session{}, nil
	}
	s := Session{UID: uid}
	s.Gateway, _ = v[0].(string)
	c, _ := v[1].(string)
	e, _ := v[2].(string)
	var err error
	if s.Conn, err = strconv.ParseUint(c, 10, 64); err == nil {
		s.Epoch, err = strconv.ParseUint(e, 10, 64)
	}
	if err != nil {
		return Session{}, fmt.Errorf("session of uid %d %v: %w", uid, v, err)
	}
	return s, nil
}

// Register implements Store.
func (r *Redis) Register(ctx context.Context, s Session) (Session, error) {
	st, prev, err := r.storeSessions(ctx, []Session{s}, false)
	if err != nil {
		return Session{}, fmt.Errorf("state: register uid %d: %w", s.UID, err)
	}
	if st[0] == storeLeaseLost {
		return Session{}, fmt.Errorf("register uid %d: gateway %q epoch %d: %w", s.UID, s.Gateway, s.Epoch, ErrLeaseLost)
	}
	return prev[0], nil
}

// Reregister implements Store.
func (r *Redis) Reregister(ctx context.Context, s Session) error {
	st, prev, err := r.storeSessions(ctx, []Session{s}, true)
	if err != nil {
		return fmt.Errorf("state: reregister uid %d: %w", s.UID, err)
	}
	switch st[0] {
	case storeLeaseLost:
		return fmt.Errorf("reregister uid %d: gateway %q epoch %d: %w", s.UID, s.Gateway, s.Epoch, ErrLeaseLost)
	case storeReplaced:
		return fmt.Errorf("reregister uid %d: %w (now %s conn %d)", s.UID, ErrReplaced, prev[0].Gateway, prev[0].Conn)
	}
	return nil
}

// ReregisterBatch implements BatchReregisterer: one round trip for the lease and
// the stored sessions, then one script per bucket, pipelined.
func (r *Redis) ReregisterBatch(ctx context.Context, ss []Session) ([]error, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	for _, s := range ss {
		if s.Gateway != ss[0].Gateway || s.Epoch != ss[0].Epoch {
			return nil, fmt.Errorf("state: reregister batch mixes %s/%d with %s/%d", ss[0].Gateway, ss[0].Epoch, s.Gateway, s.Epoch)
		}
	}
	st, _, err := r.storeSessions(ctx, ss, true)
	if err != nil {
		return nil, fmt.Errorf("state: reregister batch: %w", err)
	}
	return batchErrors(ss, st)
}

// Unregister implements Store.
func (r *Redis) Unregister(ctx context.Context, s Session) (bool, error) {
	ok, err := r.compareDelete(ctx, s)
	if err != nil {
		return false, fmt.Errorf("state: unregister uid %d: %w", s.UID, err)
	}
	return ok, nil
}

// compareDelete deletes s.UID's session if it is exactly s.
func (r *Redis) compareDelete(ctx context.Context, s Session) (bool, error) {
	keys := []string{r.sessKey(s.UID), r.idxKey(shardtag.Bucket(s.UID), s.Gateway, u64(s.Epoch))}
	return r.run(ctx, r.scripts.compareDelete, keys, u64(s.UID), s.Gateway, u64(s.Conn), u64(s.Epoch)).Bool()
}

// Lookup implements Store.
func (r *Redis) Lookup(ctx context.Context, uid uint64) (Session, bool, error) {
	s, st, err := r.Probe(ctx, uid)
	if st != LookupHit {
		return Session{}, false, err
	}
	return s, true, err
}

// Probe implements Prober: it reads the session, then its gateway's lease (see
// Redis for why that order makes the answer exact), and deletes a dead session it
// finds by compare-and-delete.
func (r *Redis) Probe(ctx context.Context, uid uint64) (Session, LookupStatus, error) {
	v, err := r.rdb.HMGet(ctx, r.sessKey(uid), "g", "c", "e").Result()
	if err != nil {
		return Session{}, LookupMiss, fmt.Errorf("state: lookup uid %d: %w", uid, err)
	}
	s, err := sessionOf(uid, v)
	if err != nil {
		return Session{}, LookupMiss, fmt.Errorf("state: lookup: %w", err)
	}
	if s.UID == 0 {
		return Session{}, LookupMiss, nil
	}
	lease, err := r.rdb.Get(ctx, r.leaseKey(s.Gateway)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Session{}, LookupMiss, fmt.Errorf("state: lookup uid %d: lease of %q: %w", uid, s.Gateway, err)
	}
	if lease == u64(s.Epoch) {
		return s, LookupHit, nil
	}
	if _, err := r.compareDelete(ctx, s); err != nil {
		return s, LookupInvalid, fmt.Errorf("state: lookup uid %d: reclaim: %w", uid, err)
	}
	return s, LookupInvalid, nil
}

// deadEpoch is a queued garbage entry: a dead epoch of a gateway.
type deadEpoch struct {
	member    string // "<epoch>:<id>"
	id, epoch string
	died      int64 // server ms
}

// Sweep implements Sweeper. It queues the epochs that lapsed since the last sweep,
// then, for every queued dead epoch, empties its index in every bucket (pipelined
// rounds of SweepBatch sessions per bucket) and drops it from the queue once
// deadEpochGrace has passed since its death. Forgetting gateways needs no sweep:
// their records expire by themselves.
func (r *Redis) Sweep(ctx context.Context) (int, error) {
	keys, ids, err := r.gatewayKeys(ctx, r.gwKey("garbage"))
	if err != nil {
		return 0, fmt.Errorf("state: sweep: %w", err)
	}
	res, err := r.run(ctx, r.scripts.sweepScan, keys, ids...).StringSlice()
	if err != nil {
		return 0, fmt.Errorf("state: sweep: %w", err)
	}
	if len(res)%2 != 1 {
		return 0, fmt.Errorf("state: sweep: bad reply %q", res)
	}
	var dead []deadEpoch
	for i := 1; i < len(res); i += 2 {
		e, id, ok := strings.Cut(res[i], ":")
		died, err := strconv.ParseFloat(res[i+1], 64)
		if !ok || err != nil {
			return 0, fmt.Errorf("state: sweep: bad garbage entry %q %q", res[i], res[i+1])
		}
		dead = append(dead, deadEpoch{member: res[i], id: id, epoch: e, died: int64(died)})
	}
	total := 0
	for _, d := range dead {
		n, err := r.sweepEpoch(ctx, d)
		total += n
		if err != nil {
			return total, fmt.Errorf("state: sweep %s epoch %s: %w", d.id, d.epoch, err)
		}
		if err := r.run(ctx, r.scripts.garbageDone, []string{r.gwKey("garbage")}, d.member, deadEpochGrace.Milliseconds()).Err(); err != nil {
			return total, fmt.Errorf("state: sweep: %w", err)
		}
	}
	return total, nil
}

// sweepEpoch empties d's index in every bucket, returning the sessions it deleted.
func (r *Redis) sweepEpoch(ctx context.Context, d deadEpoch) (int, error) {
	buckets := make([]int, shardtag.Buckets)
	for b := range buckets {
		buckets[b] = b
	}
	n := 0
	for len(buckets) > 0 {
		members := make([]*redis.StringSliceCmd, len(buckets))
		_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for k, b := range buckets {
				members[k] = p.SRandMemberN(ctx, r.idxKey(b, d.id, d.epoch), int64(r.batch))
			}
			return nil
		})
		if err = pipelineErr(err); err != nil {
			return n, err
		}
		var calls []scriptCall
		var next []int
		for k, b := range buckets {
			uids, err := members[k].Result()
			if err != nil {
				return n, err
			}
			if len(uids) == 0 {
				continue
			}
			keys := []string{r.idxKey(b, d.id, d.epoch)}
			args := []any{d.id, d.epoch}
			for _, u := range uids {
				uid, err := strconv.ParseUint(u, 10, 64)
				if err != nil {
					return n, fmt.Errorf("index member %q: %w", u, err)
				}
				keys = append(keys, r.sessKey(uid))
				args = append(args, u)
			}
			calls = append(calls, scriptCall{r.scripts.sweepBucket, keys, args})
			if len(uids) == r.batch {
				next = append(next, b) // maybe more
			}
		}
		if len(calls) == 0 {
			break
		}
		cmds, err := r.runScripts(ctx, calls)
		if err != nil {
			return n, err
		}
		for _, c := range cmds {
			k, err := c.Int()
			if err != nil {
				return n, err
			}
			n += k
		}
		buckets = next
	}
	return n, nil
}

// Sessions implements SessionCounter: one SCARD per bucket and live gateway, in one
// pipeline.
func (r *Redis) Sessions(ctx context.Context) (int, error) {
	gws, err := r.Gateways(ctx)
	if err != nil {
		return 0, fmt.Errorf("state: sessions: %w", err)
	}
	now := time.Now()
	var cmds []*redis.IntCmd
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, g := range gws {
			if !g.Live(now) {
				continue
			}
			for b := range shardtag.Buckets {
				cmds = append(cmds, p.SCard(ctx, r.idxKey(b, g.ID, u64(g.Epoch))))
			}
		}
		return nil
	})
	if err = pipelineErr(err); err != nil {
		return 0, fmt.Errorf("state: sessions: %w", err)
	}
	n := 0
	for _, c := range cmds {
		k, err := c.Result()
		if err != nil {
			return 0, fmt.Errorf("state: sessions: %w", err)
		}
		n += int(k)
	}
	return n, nil
}
