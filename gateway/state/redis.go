package state

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig configures a Redis store. The zero value is ready to use.
type RedisConfig struct {
	// Prefix starts every key (default "floodgate:state:"), so stores with different
	// prefixes share a server without seeing each other. The scripts touch several
	// keys each: on Redis Cluster, use a hash-tagged prefix such as "{fgstate}:" so
	// that all keys land in one slot.
	Prefix string
	// Retention is how long a gateway whose lease ended stays listed by Gateways
	// (default 1h); its record then expires.
	Retention time.Duration
	// SweepBatch bounds the sessions one sweep script deletes (default 1000), so a
	// sweep never blocks the server for long; Sweep runs as many as it needs.
	SweepBatch int
}

// Redis is a Store on a Redis server (5.0 or later), shared by any number of state
// servers. The key layout and the scripts are in redis_lua.go.
//
// Leases are keys with PX TTLs holding the live epoch, so Redis itself ends a lapsed
// lease; epochs come from one INCR counter seeded from the server clock in µs (unique
// across a data loss, as in Memory). Every operation is one script, hence atomic and
// one round trip: Register succeeds only under the live epoch, Unregister is
// compare-and-delete, and Lookup checks the session's epoch against the lease.
//
// Dead sessions are reclaimed lazily by Lookup/Probe and in bulk by Sweep, which walks
// the per-epoch session index of each dead epoch, so its cost is proportional to the
// garbage, not to all sessions. Sessions counts the indexes of live epochs: one
// SCARD per gateway.
type Redis struct {
	rdb       *redis.Client
	prefix    string
	retention int64 // ms
	batch     int
	scripts   redisScripts
}

type redisScripts struct {
	acquire, renew, release, setDraining, gateways *redis.Script
	register, reregister, unregister, lookup       *redis.Script
	reregisterBatch                                *redis.Script
	sweep, sessions                                *redis.Script
}

// NewRedis returns a store on rdb; the caller keeps ownership of rdb (and closes it).
func NewRedis(rdb *redis.Client, cfg RedisConfig) *Redis {
	if cfg.Prefix == "" {
		cfg.Prefix = "floodgate:state:"
	}
	if cfg.Retention <= 0 {
		cfg.Retention = time.Hour
	}
	if cfg.SweepBatch <= 0 {
		cfg.SweepBatch = 1000
	}
	script := func(body string) *redis.Script { return redis.NewScript(luaPrelude + body) }
	return &Redis{
		rdb: rdb, prefix: cfg.Prefix, retention: cfg.Retention.Milliseconds(), batch: cfg.SweepBatch,
		scripts: redisScripts{
			acquire: script(luaAcquire), renew: script(luaRenew), release: script(luaRelease),
			setDraining: script(luaSetDraining), gateways: script(luaGateways),
			register: script(luaRegister), reregister: script(luaReregister), reregisterBatch: script(luaReregisterBatch),
			unregister: script(luaUnregister), lookup: script(luaLookup),
			sweep: script(luaSweep), sessions: script(luaSessions),
		},
	}
}

// run runs a script with the prefix as ARGV[1].
func (r *Redis) run(ctx context.Context, s *redis.Script, args ...any) *redis.Cmd {
	return s.Run(ctx, r.rdb, nil, append([]any{r.prefix}, args...)...)
}

// Ping checks that the server answers (for health checks).
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("state: redis ping: %w", err)
	}
	return nil
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// Acquire implements Store. Each Acquire starts the gateway afresh: not draining,
// zero load.
func (r *Redis) Acquire(ctx context.Context, g Gateway, ttl time.Duration) (uint64, error) {
	if err := checkTTL(ttl); err != nil {
		return 0, err
	}
	if g.ID == "" {
		return 0, fmt.Errorf("state: acquire: empty gateway id")
	}
	s, err := r.run(ctx, r.scripts.acquire, g.ID, g.Addr, g.LinkAddr, g.AdminAddr, ttl.Milliseconds(), r.retention).Text()
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
	ok, err := r.run(ctx, r.scripts.renew, id, u64(epoch), ttl.Milliseconds(), lj, r.retention).Bool()
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
	ok, err := r.run(ctx, r.scripts.release, id, u64(epoch)).Bool()
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
	ok, err := r.run(ctx, r.scripts.setDraining, id, flag).Bool()
	if err != nil {
		return fmt.Errorf("state: set draining %q: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("set draining %q: %w", id, ErrUnknownGateway)
	}
	return nil
}

// Gateways implements Store; the result is sorted by ID. Expiry is computed from the
// lease's remaining TTL and this process's clock, so skew between the hosts does not
// shift it.
func (r *Redis) Gateways(ctx context.Context) ([]Gateway, error) {
	rows, err := r.run(ctx, r.scripts.gateways).Slice()
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
	if !ok || len(f) != 9 {
		return Gateway{}, fmt.Errorf("bad gateway row %v", row)
	}
	str := func(i int) string { s, _ := f[i].(string); return s }
	g := Gateway{ID: str(0), Addr: str(1), LinkAddr: str(2), AdminAddr: str(3), Draining: str(6) == "1"}
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

// Register implements Store.
func (r *Redis) Register(ctx context.Context, s Session) (Session, error) {
	res, err := r.run(ctx, r.scripts.register, u64(s.UID), s.Gateway, u64(s.Conn), u64(s.Epoch)).Slice()
	if err != nil {
		return Session{}, fmt.Errorf("state: register uid %d: %w", s.UID, err)
	}
	st, _ := res[0].(int64)
	switch {
	case st == 0:
		return Session{}, fmt.Errorf("register uid %d: gateway %q epoch %d: %w", s.UID, s.Gateway, s.Epoch, ErrLeaseLost)
	case len(res) == 1:
		return Session{}, nil
	}
	prev, err := parseSession(s.UID, res[1:])
	if err != nil {
		return Session{}, fmt.Errorf("state: register uid %d: %w", s.UID, err)
	}
	return prev, nil
}

// Reregister implements Store.
func (r *Redis) Reregister(ctx context.Context, s Session) error {
	res, err := r.run(ctx, r.scripts.reregister, u64(s.UID), s.Gateway, u64(s.Conn), u64(s.Epoch)).Slice()
	if err != nil {
		return fmt.Errorf("state: reregister uid %d: %w", s.UID, err)
	}
	switch st, _ := res[0].(int64); st {
	case 0:
		return fmt.Errorf("reregister uid %d: gateway %q epoch %d: %w", s.UID, s.Gateway, s.Epoch, ErrLeaseLost)
	case 2:
		return fmt.Errorf("reregister uid %d: %w (now %v conn %v)", s.UID, ErrReplaced, res[1], res[2])
	}
	return nil
}

// ReregisterBatch implements BatchReregisterer: one script for the whole batch.
func (r *Redis) ReregisterBatch(ctx context.Context, ss []Session) ([]error, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 2+2*len(ss))
	args = append(args, ss[0].Gateway, u64(ss[0].Epoch))
	for _, s := range ss {
		if s.Gateway != ss[0].Gateway || s.Epoch != ss[0].Epoch {
			return nil, fmt.Errorf("state: reregister batch mixes %s/%d with %s/%d", ss[0].Gateway, ss[0].Epoch, s.Gateway, s.Epoch)
		}
		args = append(args, u64(s.UID), u64(s.Conn))
	}
	res, err := r.run(ctx, r.scripts.reregisterBatch, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("state: reregister batch: %w", err)
	}
	if len(res) != len(ss) {
		return nil, fmt.Errorf("state: reregister batch: %d results for %d sessions", len(res), len(ss))
	}
	return batchErrors(ss, res)
}

// parseSession parses a script's {gateway, conn, epoch} for uid.
func parseSession(uid uint64, res []any) (Session, error) {
	if len(res) != 3 {
		return Session{}, fmt.Errorf("session of %d values", len(res))
	}
	s := Session{UID: uid}
	s.Gateway, _ = res[0].(string)
	c, _ := res[1].(string)
	e, _ := res[2].(string)
	var err error
	if s.Conn, err = strconv.ParseUint(c, 10, 64); err == nil {
		s.Epoch, err = strconv.ParseUint(e, 10, 64)
	}
	if err != nil {
		return Session{}, fmt.Errorf("session %v: %w", res, err)
	}
	return s, nil
}

// Unregister implements Store.
func (r *Redis) Unregister(ctx context.Context, s Session) (bool, error) {
	ok, err := r.run(ctx, r.scripts.unregister, u64(s.UID), s.Gateway, u64(s.Conn), u64(s.Epoch)).Bool()
	if err != nil {
		return false, fmt.Errorf("state: unregister uid %d: %w", s.UID, err)
	}
	return ok, nil
}

// Lookup implements Store.
func (r *Redis) Lookup(ctx context.Context, uid uint64) (Session, bool, error) {
	s, st, err := r.Probe(ctx, uid)
	if st != LookupHit {
		return Session{}, false, err
	}
	return s, true, err
}

// Probe implements Prober. A dead session it finds is deleted by the same script.
func (r *Redis) Probe(ctx context.Context, uid uint64) (Session, LookupStatus, error) {
	res, err := r.run(ctx, r.scripts.lookup, u64(uid)).Slice()
	if err != nil {
		return Session{}, LookupMiss, fmt.Errorf("state: lookup uid %d: %w", uid, err)
	}
	st, _ := res[0].(int64)
	if st == int64(LookupMiss) {
		return Session{}, LookupMiss, nil
	}
	if len(res) != 4 || (st != int64(LookupHit) && st != int64(LookupInvalid)) {
		return Session{}, LookupMiss, fmt.Errorf("state: lookup uid %d: bad reply %v", uid, res)
	}
	s, err := parseSession(uid, res[1:])
	if err != nil {
		return Session{}, LookupMiss, fmt.Errorf("state: lookup uid %d: %w", uid, err)
	}
	return s, LookupStatus(st), nil
}

// Sweep implements Sweeper: it runs the sweep script until no dead index is left.
// Forgetting gateways needs no sweep: their records expire by themselves.
func (r *Redis) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		res, err := r.run(ctx, r.scripts.sweep, r.batch).Int64Slice()
		if err != nil {
			return total, fmt.Errorf("state: sweep: %w", err)
		}
		if len(res) != 2 {
			return total, fmt.Errorf("state: sweep: bad reply %v", res)
		}
		total += int(res[0])
		if res[1] == 0 {
			return total, nil
		}
	}
}

// Sessions implements SessionCounter.
func (r *Redis) Sessions(ctx context.Context) (int, error) {
	n, err := r.run(ctx, r.scripts.sessions).Int()
	if err != nil {
		return 0, fmt.Errorf("state: sessions: %w", err)
	}
	return n, nil
}
