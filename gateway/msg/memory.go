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
type Memory struct {
	epoch     uint64
	limit     int // messages retained per user
	window    time.Duration
	now       func() time.Time
	start     time.Time // dedupe windows count from here
	nextID    atomic.Uint64
	evictions atomic.Uint64
	deduped   atomic.Uint64
	stored    atomic.Int64 // messages retained now
	shards    [memShards]memShard
}

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

// dedupeHit is what a deduplicated Append returns: the first Append's seq and id.
type dedupeHit struct{ seq, id uint64 }

// inbox is one user's retained messages: msgs[i] has seq first+i.
type inbox struct {
	head  uint64
	first uint64 // seq of msgs[0]; head+1 when empty
	msgs  []Message
}

// NewMemory returns an empty store that retains at most perUser messages per user
// (evicting the oldest unacknowledged ones beyond that; see Evictions) and
// deduplicates appends within a window (WithDedupeWindow; DefaultDedupeWindow).
func NewMemory(perUser int, opts ...StoreOption) *Memory {
	o := newStoreOptions(opts)
	// The epoch is the start time: a restarted process (which lost everything) has
	// a larger one, so clients can tell the new incarnation from the old.
	m := &Memory{epoch: uint64(time.Now().UnixMicro()), limit: max(perUser, 1), window: o.dedupeWindow,
		now: o.now, start: o.now()}
	for i := range m.shards {
		m.shards[i].users = make(map[uint64]*inbox)
	}
	return m
}

func (m *Memory) shard(uid uint64) *memShard { return &m.shards[uid%memShards] }

// Append implements Store.
func (m *Memory) Append(_ context.Context, msg *Message) error {
	if msg.To == 0 {
		return ErrNoRecipient
	}
	msg.Epoch = m.epoch
	stored := *msg
	stored.ClientMsgID = 0
	stored.Payload = append([]byte(nil), msg.Payload...)
	sh := m.shard(msg.To)
	key := dedupeKey{to: msg.To, from: msg.From, cmid: msg.ClientMsgID}
	sh.mu.Lock()
	if msg.ClientMsgID != 0 {
		if hit, ok := sh.seen(key, int64(m.now().Sub(m.start)/m.window)); ok {
			sh.mu.Unlock()
			msg.Seq, msg.ID = hit.seq, hit.id
			m.deduped.Add(1)
			return nil
		}
	}
	msg.ID = m.nextID.Add(1)
	stored.ID = msg.ID
	ib := sh.users[msg.To]
	if ib == nil {
		ib = &inbox{first: 1}
		sh.users[msg.To] = ib
	}
	ib.head++
	stored.Seq, msg.Seq = ib.head, ib.head
	if len(ib.msgs) == m.limit {
		ib.msgs[0] = Message{}
		ib.msgs = ib.msgs[1:]
		ib.first++
		m.evictions.Add(1)
		m.stored.Add(-1)
	}
	ib.msgs = append(ib.msgs, stored)
	if msg.ClientMsgID != 0 {
		if sh.recent == nil {
			sh.recent = make(map[dedupeKey]dedupeHit)
		}
		sh.recent[key] = dedupeHit{seq: msg.Seq, id: msg.ID}
	}
	sh.mu.Unlock()
	m.stored.Add(1)
	return nil
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
	if epoch != m.epoch {
		return nil
	}
	sh := m.shard(uid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ib := sh.users[uid]
	if ib == nil || seq < ib.first {
		return nil
	}
	n := int(min(seq, ib.head) - ib.first + 1)
	clear(ib.msgs[:n])
	ib.msgs = ib.msgs[n:]
	ib.first += uint64(n)
	m.stored.Add(-int64(n))
	if len(ib.msgs) == 0 {
		ib.msgs = nil // an acknowledged inbox holds no backing array
	}
	return nil
}

// Range implements Store.
func (m *Memory) Range(_ context.Context, uid, after uint64, limit int) ([]Message, Window, error) {
	sh := m.shard(uid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ib := sh.users[uid]
	if ib == nil {
		return nil, Window{Epoch: m.epoch, Head: 0, Oldest: 1}, nil
	}
	w := Window{Epoch: m.epoch, Head: ib.head, Oldest: ib.first}
	from := 0
	if after >= ib.first {
		from = int(min(after-ib.first+1, uint64(len(ib.msgs))))
	}
	out := ib.msgs[from:]
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return append([]Message(nil), out...), w, nil
}

// Window implements Store.
func (m *Memory) Window(_ context.Context, uid uint64) (Window, error) {
	sh := m.shard(uid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ib := sh.users[uid]; ib != nil {
		return Window{Epoch: m.epoch, Head: ib.head, Oldest: ib.first}, nil
	}
	return Window{Epoch: m.epoch, Head: 0, Oldest: 1}, nil
}

// Evictions returns how many unacknowledged messages were evicted by the per-user limit.
func (m *Memory) Evictions() uint64 { return m.evictions.Load() }

// PerUser implements RetentionLimit.
func (m *Memory) PerUser() int { return m.limit }

// Deduplicated implements DedupeCounter.
func (m *Memory) Deduplicated() uint64 { return m.deduped.Load() }

// Stored returns how many messages are retained now.
func (m *Memory) Stored() int64 { return m.stored.Load() }
