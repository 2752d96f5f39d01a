package state

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/cpu"
)

// MemoryConfig configures a Memory store. The zero value is ready to use.
type MemoryConfig struct {
	// Shards is the number of session-map shards, rounded up to a power of two
	// (default 64). More shards mean less lock contention between registrations.
	Shards int
	// Retention is how long a gateway whose lease ended stays listed by Gateways
	// before Sweep forgets it (default 1h).
	Retention time.Duration
	// Now is the store's clock (default time.Now), injectable for tests. It must not
	// run backwards: a lease that has lapsed must stay lapsed.
	Now func() time.Time
}

// Memory is the in-process Store, the default backend of the state service.
//
// Sessions live in sharded maps; each points at its gateway's record and at the
// epoch it was registered under, so Lookup validates a session with one atomic load
// (its gateway's lease) and no gateway-table lock. Memory is bounded: sessions of dead epochs are
// reclaimed lazily by Lookup/Probe (the one that finds a dead session deletes it) and
// in bulk by Sweep, which the Server calls periodically. Sweep scans the session maps
// only when some lease ended since the previous sweep, so it is nearly free while
// the gateway set is stable.
//
// Epochs come from one counter for all gateways, seeded with the wall clock in
// microseconds, so a restarted store (all data lost) still issues epochs above any it
// issued before, as long as it issued fewer than one per microsecond of its uptime —
// a peer caching an old epoch can never mistake it for a new lease.
type Memory struct {
	now       func() time.Time
	retention time.Duration
	shards    []memShard
	shift     uint // uid hash >> shift selects the shard

	// garbage is set whenever a lease ends by Acquire or Release, so the next Sweep
	// scans the sessions; lapses are found by Sweep itself.
	garbage atomic.Bool

	// gwMu guards gws, lastEpoch and the records' mutable fields. Register holds it
	// shared from its lease check until its session is stored, so that once Acquire,
	// Release or Sweep (which hold it exclusively) has seen an epoch dead, no session
	// can be added under that epoch any more and a sweep that follows misses none.
	gwMu      sync.RWMutex
	gws       map[string]*memGateway
	lastEpoch uint64
}

// memGateway is a gateway's record. A forgotten and re-acquired gateway gets a new
// record, so sessions pointing at the old one stay invalid.
type memGateway struct {
	id    string                   // immutable
	lease atomic.Pointer[memLease] // replaced whole, never mutated; set before the record is published
	// Guarded by Memory.gwMu:
	info      Gateway   // addresses, draining and load (Epoch and Expires come from lease)
	collected *memEpoch // the dead epoch whose sessions a sweep has already reclaimed
}

// memEpoch is one lease epoch of one gateway.
type memEpoch struct {
	n        uint64
	sessions atomic.Int64 // sessions stored under this epoch
}

// memLease is a snapshot of a gateway's lease: live before expires. Release stores
// one that expires at the release time.
type memLease struct {
	epoch   *memEpoch
	expires time.Time // carries a monotonic reading when taken from time.Now
}

// memSession is a stored session. It is comparable: Probe deletes a dead session
// only if the map still holds that very value.
type memSession struct {
	gw   *memGateway
	ep   *memEpoch
	conn uint64
}

// valid reports whether s is under its gateway's live lease at now.
func (s memSession) valid(now time.Time) bool {
	l := s.gw.lease.Load()
	return l.epoch == s.ep && now.Before(l.expires)
}

func (s memSession) session(uid uint64) Session {
	return Session{UID: uid, Gateway: s.gw.id, Conn: s.conn, Epoch: s.ep.n}
}

type memShard struct {
	mu sync.RWMutex
	m  map[uint64]memSession
	_  cpu.CacheLinePad // keep neighbouring shards' locks off one cache line
}

// NewMemory returns an empty Memory store.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.Shards <= 0 {
		cfg.Shards = 64
	}
	if cfg.Retention <= 0 {
		cfg.Retention = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	shardBits := uint(bits.Len(uint(cfg.Shards - 1)))
	m := &Memory{
		now:       cfg.Now,
		retention: cfg.Retention,
		shards:    make([]memShard, 1<<shardBits),
		shift:     64 - shardBits,
		gws:       map[string]*memGateway{},
		lastEpoch: uint64(cfg.Now().UnixMicro()),
	}
	for i := range m.shards {
		m.shards[i].m = map[uint64]memSession{}
	}
	return m
}

func (m *Memory) shard(uid uint64) *memShard {
	if m.shift == 64 {
		return &m.shards[0]
	}
	// Fibonacci hashing spreads sequential uids over the shards.
	return &m.shards[(uid*0x9E3779B97F4A7C15)>>m.shift]
}

// checkTTL rejects lease durations the Redis store could not express either.
func checkTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("state: lease ttl %v: want at least 1ms", ttl)
	}
	return nil
}

// Acquire implements Store. Each Acquire starts the gateway afresh: not draining,
// zero load.
func (m *Memory) Acquire(_ context.Context, g Gateway, ttl time.Duration) (uint64, error) {
	if err := checkTTL(ttl); err != nil {
		return 0, err
	}
	if g.ID == "" {
		return 0, fmt.Errorf("state: acquire: empty gateway id")
	}
	now := m.now()
	m.gwMu.Lock()
	defer m.gwMu.Unlock()
	gw := m.gws[g.ID]
	if gw == nil {
		gw = &memGateway{id: g.ID}
		m.gws[g.ID] = gw
	} else {
		m.garbage.Store(true) // the previous epoch's sessions are dead now
	}
	m.lastEpoch++
	gw.info = Gateway{ID: g.ID, Addr: g.Addr, LinkAddr: g.LinkAddr, AdminAddr: g.AdminAddr, WSAddr: g.WSAddr}
	gw.lease.Store(&memLease{epoch: &memEpoch{n: m.lastEpoch}, expires: now.Add(ttl)})
	return m.lastEpoch, nil
}

// liveLease returns id's lease if it is live with epoch at now; callers hold gwMu.
func (m *Memory) liveLease(id string, epoch uint64, now time.Time) (*memGateway, *memLease, error) {
	gw := m.gws[id]
	if gw == nil {
		return nil, nil, fmt.Errorf("gateway %q: %w", id, ErrLeaseLost)
	}
	l := gw.lease.Load()
	if l.epoch.n != epoch || !now.Before(l.expires) {
		return nil, nil, fmt.Errorf("gateway %q epoch %d: %w", id, epoch, ErrLeaseLost)
	}
	return gw, l, nil
}

// Renew implements Store.
func (m *Memory) Renew(_ context.Context, id string, epoch uint64, load Load, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	now := m.now()
	m.gwMu.Lock()
	defer m.gwMu.Unlock()
	gw, l, err := m.liveLease(id, epoch, now)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	gw.info.Load = load
	gw.lease.Store(&memLease{epoch: l.epoch, expires: now.Add(ttl)})
	return nil
}

// Release implements Store. Releasing a lease that is not live under epoch fails
// with ErrLeaseLost and leaves any newer lease alone.
func (m *Memory) Release(_ context.Context, id string, epoch uint64) error {
	now := m.now()
	m.gwMu.Lock()
	defer m.gwMu.Unlock()
	gw, l, err := m.liveLease(id, epoch, now)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	gw.lease.Store(&memLease{epoch: l.epoch, expires: now})
	m.garbage.Store(true)
	return nil
}

// SetDraining implements Store.
func (m *Memory) SetDraining(_ context.Context, id string, draining bool) error {
	m.gwMu.Lock()
	defer m.gwMu.Unlock()
	gw := m.gws[id]
	if gw == nil {
		return fmt.Errorf("set draining %q: %w", id, ErrUnknownGateway)
	}
	gw.info.Draining = draining
	return nil
}

// Gateways implements Store; the result is sorted by ID.
func (m *Memory) Gateways(context.Context) ([]Gateway, error) {
	m.gwMu.RLock()
	out := make([]Gateway, 0, len(m.gws))
	for _, gw := range m.gws {
		g := gw.info
		l := gw.lease.Load()
		g.Epoch, g.Expires = l.epoch.n, l.expires
		out = append(out, g)
	}
	m.gwMu.RUnlock()
	slices.SortFunc(out, func(a, b Gateway) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Register implements Store.
func (m *Memory) Register(_ context.Context, s Session) (Session, error) {
	prev, err := m.register(s, false)
	if err != nil {
		return Session{}, fmt.Errorf("register uid %d: %w", s.UID, err)
	}
	return prev, nil
}

// Reregister implements Store.
func (m *Memory) Reregister(_ context.Context, s Session) error {
	if _, err := m.register(s, true); err != nil {
		return fmt.Errorf("reregister uid %d: %w", s.UID, err)
	}
	return nil
}

// ReregisterBatch implements BatchReregisterer.
func (m *Memory) ReregisterBatch(ctx context.Context, ss []Session) ([]error, error) {
	errs := make([]error, len(ss))
	for i, s := range ss {
		errs[i] = m.Reregister(ctx, s)
	}
	return errs, nil
}

// register stores s under its gateway's live lease, returning the session it
// replaced; with onlySame, only if the stored one is absent or has s's gateway and
// conn (else ErrReplaced).
func (m *Memory) register(s Session, onlySame bool) (Session, error) {
	now := m.now()
	m.gwMu.RLock()
	defer m.gwMu.RUnlock() // held until the session is stored: see gwMu
	gw, l, err := m.liveLease(s.Gateway, s.Epoch, now)
	if err != nil {
		return Session{}, err
	}
	sh := m.shard(s.UID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old, had := sh.m[s.UID]
	if had && onlySame && (old.gw.id != s.Gateway || old.conn != s.Conn) {
		return Session{}, fmt.Errorf("%w (now %s conn %d)", ErrReplaced, old.gw.id, old.conn)
	}
	sh.m[s.UID] = memSession{gw: gw, ep: l.epoch, conn: s.Conn}
	var prev Session
	if had {
		old.ep.sessions.Add(-1)
		prev = old.session(s.UID)
	}
	l.epoch.sessions.Add(1)
	return prev, nil
}

// Unregister implements Store.
func (m *Memory) Unregister(_ context.Context, s Session) (bool, error) {
	sh := m.shard(s.UID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cur, ok := sh.m[s.UID]
	if !ok || cur.gw.id != s.Gateway || cur.conn != s.Conn || cur.ep.n != s.Epoch {
		return false, nil
	}
	delete(sh.m, s.UID)
	cur.ep.sessions.Add(-1)
	return true, nil
}

// Lookup implements Store.
func (m *Memory) Lookup(ctx context.Context, uid uint64) (Session, bool, error) {
	s, st, err := m.Probe(ctx, uid)
	if st != LookupHit {
		return Session{}, false, err
	}
	return s, true, err
}

// Probe implements Prober. A dead session it finds is deleted on the way out.
func (m *Memory) Probe(_ context.Context, uid uint64) (Session, LookupStatus, error) {
	sh := m.shard(uid)
	sh.mu.RLock()
	cur, ok := sh.m[uid]
	sh.mu.RUnlock()
	if !ok {
		return Session{}, LookupMiss, nil
	}
	if cur.valid(m.now()) {
		return cur.session(uid), LookupHit, nil
	}
	sh.mu.Lock()
	if sh.m[uid] == cur { // not replaced meanwhile
		delete(sh.m, uid)
		cur.ep.sessions.Add(-1)
	}
	sh.mu.Unlock()
	return cur.session(uid), LookupInvalid, nil
}

// Sweep implements Sweeper. It forgets gateways whose lease ended more than the
// retention ago, and scans the sessions only if a lease ended since the last sweep.
// Deleting a session found invalid is safe at any time because invalidity is
// permanent.
func (m *Memory) Sweep(ctx context.Context) (int, error) {
	now := m.now()
	need := m.garbage.Swap(false)
	m.gwMu.Lock()
	for id, gw := range m.gws {
		l := gw.lease.Load()
		if now.Before(l.expires) {
			continue
		}
		if gw.collected != l.epoch { // lapsed since the last sweep
			gw.collected = l.epoch
			need = true
		}
		if now.Sub(l.expires) >= m.retention {
			delete(m.gws, id)
		}
	}
	m.gwMu.Unlock()
	if !need {
		return 0, nil
	}
	n := 0
	for i := range m.shards {
		if err := ctx.Err(); err != nil {
			m.garbage.Store(true) // finish next time
			return n, fmt.Errorf("state: sweep: %w", err)
		}
		sh := &m.shards[i]
		sh.mu.Lock()
		for uid, s := range sh.m {
			if !s.valid(now) {
				delete(sh.m, uid)
				s.ep.sessions.Add(-1)
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n, nil
}

// Sessions implements SessionCounter: the sessions under live leases.
func (m *Memory) Sessions(context.Context) (int, error) {
	now := m.now()
	m.gwMu.RLock()
	defer m.gwMu.RUnlock()
	n := int64(0)
	for _, gw := range m.gws {
		if l := gw.lease.Load(); now.Before(l.expires) {
			n += l.epoch.sessions.Load()
		}
	}
	return int(n), nil
}

// Stored returns the number of sessions held, dead ones not yet reclaimed included.
func (m *Memory) Stored() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
