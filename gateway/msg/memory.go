package msg

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// memShards spreads users over independently locked maps.
const memShards = 256

// Memory is the in-process Store: sharded maps of per-user inboxes. Everything is
// lost with the process; a new one starts a new epoch. Deduplication remembers each
// message appended with a client message id for one to two windows (a few dozen
// bytes each), per shard, as appends to that shard come in.
//
// An inbox holds at most its quota of unacknowledged messages (see Quota) and
// nothing older than the retention period; Sweep deletes inboxes left with nothing
// retained, one shard per call. A deleted inbox that is created again starts a new
// incarnation of the user's sequence space (see userEpoch), so no seq is issued
// twice within one epoch.
type Memory struct {
	epoch     uint64
	quota     Quota
	retention time.Duration
	step      time.Duration // see userEpoch
	window    time.Duration
	now       func() time.Time
	start     time.Time // dedupe windows, epoch steps and message times count from here
	nextID    atomic.Uint64
	deduped   atomic.Uint64
	refused   atomic.Uint64
	expired   atomic.Uint64
	deleted   atomic.Uint64
	inboxes   atomic.Int64
	stored    atomic.Int64  // messages retained now
	sweepNext atomic.Uint32 // the shard the next Sweep visits
	shards    [memShards]memShard
}

var (
	_ Store         = (*Memory)(nil)
	_ StoredCounter = (*Memory)(nil)
	_ DedupeCounter = (*Memory)(nil)
	_ LimitCounter  = (*Memory)(nil)
	_ InboxCounter  = (*Memory)(nil)
	_ Sweeper       = (*Memory)(nil)
)

type memShard struct {
	mu    sync.Mutex
	users map[uint64]*inbox
	// recent and previous remember appended messages by identity, in two
	// generations: time since the store's start is cut into windows, recent holds
	// the appends of window number recentGen and previous those of the window
	// before. Moving to a later window drops the older generations whole, so an
	// identity is remembered for at least one window and at most two, and the maps
	// hold no more than two windows' appends.
	recent, previous map[dedupeKey]dedupeHit
	recentGen        int64
}

// dedupeKey is a message's identity for deduplication.
type dedupeKey struct{ to, from, cmid uint64 }

// dedupeHit is what a deduplicated Append returns: the first Append's seq, id and
// epoch.
type dedupeHit struct{ seq, id, epoch uint64 }

// inbox is one user's retained messages: msgs[i] has seq first+i.
type inbox struct {
	epoch uint64 // the incarnation its seqs belong to (userEpoch at creation)
	head  uint64
	first uint64 // seq of msgs[0]; head+1 when empty
	bytes int64  // payload bytes retained
	msgs  []memEntry
}

// memEntry is one retained message and when it was stored (since Memory.start).
type memEntry struct {
	m  Message
	at time.Duration
}

// NewMemory returns an empty store whose quota is perUser unacknowledged messages
// per recipient (and WithQuotaBytes bytes; see Quota), that drops messages older
// than the retention period (WithRetention; DefaultRetention) and deduplicates
// appends within a window (WithDedupeWindow; DefaultDedupeWindow).
func NewMemory(perUser int, opts ...StoreOption) *Memory {
	o := newStoreOptions(perUser, opts)
	// The epoch is the start time: a restarted process (which lost everything) has
	// a larger one, so clients can tell the new incarnation from the old.
	m := &Memory{epoch: uint64(time.Now().UnixMicro()), quota: o.quota, retention: o.retention,
		step: epochStep(o.retention), window: o.dedupeWindow, now: o.now, start: o.now()}
	for i := range m.shards {
		m.shards[i].users = make(map[uint64]*inbox)
	}
	return m
}

func (m *Memory) shard(uid uint64) *memShard { return &m.shards[uid%memShards] }

// userEpoch is the epoch an inbox created at now gets, and the one Window reports
// for a user without an inbox: the store's epoch plus the number of epoch steps
// since the store started. An inbox is deleted only once userEpoch has moved past
// its own epoch (see expireAndCheck), so one created again after its deletion has a
// larger epoch than every seq issued before: its client resets (PROTOCOL.md §8.3)
// and takes the new seqs from 1, with no seq issued twice within one epoch and no
// gap. Users with an inbox keep its epoch however many steps pass.
func (m *Memory) userEpoch(now time.Time) uint64 {
	return m.epoch + uint64(max(now.Sub(m.start), 0)/m.step)
}

// Append implements Store. It refuses a message that would take its recipient's
// unacknowledged messages over the quota with an error wrapping ErrRecipientFull,
// unless it is a retry of one already stored.
func (m *Memory) Append(_ context.Context, msg *Message) error {
	if msg.To == 0 {
		return ErrNoRecipient
	}
	now := m.now()
	sh := m.shard(msg.To)
	key := dedupeKey{to: msg.To, from: msg.From, cmid: msg.ClientMsgID}
	sh.mu.Lock()
	if msg.ClientMsgID != 0 {
		if hit, ok := sh.seen(key, int64(now.Sub(m.start)/m.window)); ok {
			sh.mu.Unlock()
			msg.Seq, msg.ID, msg.Epoch = hit.seq, hit.id, hit.epoch
			m.deduped.Add(1)
			return nil
		}
	}
	ib := sh.users[msg.To]
	if ib != nil {
		m.expire(ib, now)
	}
	size := int64(len(msg.Payload))
	if ib != nil && (len(ib.msgs)+1 > m.quota.Messages || ib.bytes+size > m.quota.Bytes) || size > m.quota.Bytes {
		sh.mu.Unlock()
		m.refused.Add(1)
		return ErrRecipientFull
	}
	if ib == nil {
		ib = &inbox{epoch: m.userEpoch(now), first: 1}
		sh.users[msg.To] = ib
		m.inboxes.Add(1)
	}
	stored := *msg
	stored.ClientMsgID = 0
	stored.Trace = nil // not kept: a replay is untraced (see Message.Trace)
	stored.Payload = append([]byte(nil), msg.Payload...)
	msg.ID = m.nextID.Add(1)
	ib.head++
	stored.ID, stored.Seq, stored.Epoch = msg.ID, ib.head, ib.epoch
	msg.Seq, msg.Epoch = ib.head, ib.epoch
	ib.msgs = append(ib.msgs, memEntry{m: stored, at: now.Sub(m.start)})
	ib.bytes += size
	if msg.ClientMsgID != 0 {
		if sh.recent == nil {
			sh.recent = make(map[dedupeKey]dedupeHit)
		}
		sh.recent[key] = dedupeHit{seq: msg.Seq, id: msg.ID, epoch: msg.Epoch}
	}
	sh.mu.Unlock()
	m.stored.Add(1)
	return nil
}

// expire drops ib's messages stored more than the retention period before now,
// counting them. The caller holds the shard's lock.
func (m *Memory) expire(ib *inbox, now time.Time) {
	cutoff := now.Sub(m.start) - m.retention
	n := 0
	for n < len(ib.msgs) && ib.msgs[n].at <= cutoff {
		n++
	}
	if n > 0 {
		m.drop(ib, n)
		m.expired.Add(uint64(n))
	}
}

// drop removes ib's n oldest messages. The caller holds the shard's lock.
func (m *Memory) drop(ib *inbox, n int) {
	for i := range ib.msgs[:n] {
		ib.bytes -= int64(len(ib.msgs[i].m.Payload))
	}
	clear(ib.msgs[:n])
	ib.msgs = ib.msgs[n:]
	ib.first += uint64(n)
	m.stored.Add(-int64(n))
	if len(ib.msgs) == 0 {
		ib.msgs = nil // an emptied inbox holds no backing array
	}
}

// seen moves the shard's dedupe generations on to window number gen and looks key
// up. The caller holds sh.mu.
func (sh *memShard) seen(key dedupeKey, gen int64) (dedupeHit, bool) {
	switch {
	case gen == sh.recentGen+1:
		sh.previous, sh.recent = sh.recent, nil
	case gen > sh.recentGen+1:
		sh.previous, sh.recent = nil, nil // both generations are older than a window
	}
	sh.recentGen = max(sh.recentGen, gen)
	if hit, ok := sh.recent[key]; ok {
		return hit, true
	}
	hit, ok := sh.previous[key]
	return hit, ok
}

// Ack implements Store.
func (m *Memory) Ack(_ context.Context, uid, seq, epoch uint64) error {
	sh := m.shard(uid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ib := sh.users[uid]
	if ib == nil || epoch != ib.epoch || seq < ib.first {
		return nil
	}
	m.drop(ib, int(min(seq, ib.head)-ib.first+1))
	return nil
}

// Range implements Store.
func (m *Memory) Range(_ context.Context, uid, after uint64, limit int) ([]Message, Window, error) {
	now := m.now()
	sh := m.shard(uid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ib := sh.users[uid]
	if ib == nil {
		return nil, Window{Epoch: m.userEpoch(now), Head: 0, Oldest: 1}, nil
	}
	m.expire(ib, now)
	w := Window{Epoch: ib.epoch, Head: ib.head, Oldest: ib.first}
	from := 0
	if after >= ib.first {
		from = int(min(after-ib.first+1, uint64(len(ib.msgs))))
	}
	es := ib.msgs[from:]
	if limit > 0 && len(es) > limit {
		es = es[:limit]
	}
	var out []Message
	if len(es) > 0 {
		out = make([]Message, len(es))
		for i := range es {
			out[i] = es[i].m
		}
	}
	return out, w, nil
}

// Window implements Store.
func (m *Memory) Window(_ context.Context, uid uint64) (Window, error) {
	now := m.now()
	sh := m.shard(uid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ib := sh.users[uid]; ib != nil {
		m.expire(ib, now)
		return Window{Epoch: ib.epoch, Head: ib.head, Oldest: ib.first}, nil
	}
	return Window{Epoch: m.userEpoch(now), Head: 0, Oldest: 1}, nil
}

// Sweep implements Sweeper: it visits the next of the store's 256 shards (under
// that shard's lock only, so never the whole store at once), drops its expired
// messages, and deletes each inbox left with nothing retained whose epoch is
// behind userEpoch. It reports more when the shard it visited is not the last of
// a full pass.
func (m *Memory) Sweep(context.Context) (more bool, err error) {
	i := m.sweepNext.Add(1) - 1
	now := m.now()
	epoch := m.userEpoch(now)
	sh := &m.shards[i%memShards]
	sh.mu.Lock()
	for uid, ib := range sh.users {
		m.expire(ib, now)
		if len(ib.msgs) == 0 && ib.epoch < epoch {
			delete(sh.users, uid)
			m.inboxes.Add(-1)
			m.deleted.Add(1)
		}
	}
	sh.mu.Unlock()
	return (i+1)%memShards != 0, nil
}

// Deduplicated implements DedupeCounter.
func (m *Memory) Deduplicated() uint64 { return m.deduped.Load() }

// Stored returns how many messages are retained now.
func (m *Memory) Stored() int64 { return m.stored.Load() }

// Refused implements LimitCounter.
func (m *Memory) Refused() uint64 { return m.refused.Load() }

// Expired implements LimitCounter.
func (m *Memory) Expired() uint64 { return m.expired.Load() }

// Inboxes implements InboxCounter.
func (m *Memory) Inboxes() int64 { return m.inboxes.Load() }

// DeletedInboxes implements InboxCounter.
func (m *Memory) DeletedInboxes() uint64 { return m.deleted.Load() }

// Limits implements QuotaReporter.
func (m *Memory) Limits() (Quota, time.Duration) { return m.quota, m.retention }
