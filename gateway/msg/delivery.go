package msg

import (
	"cmp"
	"container/heap"
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate/floodgate/internal/fanout"
)

// DeliveryConfig tunes how a Server sees each stored message through to the router
// (see ServerConfig.Router). Zero values take the defaults.
type DeliveryConfig struct {
	// ResendMin is how long a message may stay unsettled before it is sent to the
	// router again; the pause doubles with each resend of the user's messages, up to
	// ResendMax. Defaults 2s and 30s. The router retries by itself for a while, so
	// these resends are a backstop, for a message the router lost or gave up on.
	ResendMin, ResendMax time.Duration
	// ReconnectMax caps the pause between attempts to reach the router (default
	// 500ms). Every pending message is replayed as soon as the link is up again, so
	// this bounds how long after a router restart they wait.
	ReconnectMax time.Duration
	// Workers is how many users' pending messages are read back from the store at
	// once for resends and replays (default 16).
	Workers int
	// Queue is how many route notifications may wait for the router link (default
	// 8192). A message that finds it full is resent from the store instead, at once.
	Queue int
	// StoreTimeout bounds each store call the resends and replays make (default 5s).
	StoreTimeout time.Duration
	// UnmarkInterval is how often a store that persists which users have pending
	// messages (PendingStore) is told of users with none left (default 1s).
	UnmarkInterval time.Duration
}

func (c *DeliveryConfig) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ResendMin, 2*time.Second)
	def(&c.ResendMax, 30*time.Second)
	c.ResendMax = max(c.ResendMax, c.ResendMin)
	def(&c.ReconnectMax, 500*time.Millisecond)
	def(&c.StoreTimeout, 5*time.Second)
	def(&c.UnmarkInterval, time.Second)
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.Queue <= 0 {
		c.Queue = 8192
	}
}

// PendingStore is implemented by stores that outlive the msg process (Redis). They
// remember which users may have messages the router has not settled: Append marks
// the recipient, in the same atomic step as storing the message, and the delivery
// tracker unmarks users it holds nothing for. A msg server starting on such a store
// tracks every retained message of every marked user, so that messages stored but
// not settled when the previous process died are routed.
type PendingStore interface {
	// PendingUsers calls fn with each marked user (possibly more than once) until
	// fn returns false or every user was seen.
	PendingUsers(ctx context.Context, fn func(uid uint64) bool) error
	// Unmark unmarks each user whose head (last seq assigned) is still Head: a
	// user whose head moved on has a message stored since, which stays marked.
	Unmark(ctx context.Context, users []UserHead) error
}

// UserHead is a user and the last seq a delivery tracker saw stored for it.
type UserHead struct {
	UID, Head uint64
}

// routeLink is what the tracker needs of its link to the router (a link.Client).
type routeLink interface {
	Notify(method uint16, body []byte) error
	Connected() bool
}

// tracker keeps every stored message that the router has not settled: (uid, seq,
// id, epoch) and timing, never a payload — a resend reads the message back from the
// store, and a message the store no longer holds (acknowledged, expired, or lost
// with the inbox's incarnation) is no longer tracked. Entries exist only for
// messages the store retains, so the tracker is bounded as the store is.
//
// Each user with pending messages has one resend deadline: when it passes, all its
// pending messages are sent to the router again, in seq order, and the next
// deadline is twice as far (ResendMin doubling to ResendMax). A replay (the router
// link came back) makes every user due at once and restarts its pauses.
type tracker struct {
	cfg     DeliveryConfig
	store   Store
	persist PendingStore // nil: the store remembers nothing of this
	link    routeLink
	log     *slog.Logger
	m       *deliveryMetrics
	now     func() time.Time
	start   time.Time // entries' times count from here

	mu      sync.Mutex
	users   map[uint64]*pendingUser // users with at least one pending message
	due     dueHeap                 // the same users, soonest resend first
	n       int                     // pending messages
	unmarks []UserHead              // users left with none, for persist.Unmark
	// wakeAt is when the resend loop wakes next (it sleeps until the soonest
	// resend, or idleWake): a user due before it wakes the loop early.
	wakeAt time.Time

	queue     chan []byte   // route notifications waiting for the link
	kick      chan struct{} // wakes the resend loop early
	storeDown atomic.Bool   // the latest store read failed; logged on transitions
}

// pendingUser is one user's pending messages.
type pendingUser struct {
	uid, epoch uint64
	// last is the highest seq tracked since the user last had nothing pending: the
	// head this tracker knows of, for PendingStore.Unmark.
	last    uint64
	entries []pendingEntry // ascending seq
	due     time.Time      // next resend
	backoff time.Duration  // the pause that led to due
	replay  bool           // the next resend is a replay
	idx     int            // in tracker.due
}

type pendingEntry struct {
	seq, id uint64
	at      time.Duration // tracked at, since tracker.start
}

func newTracker(cfg DeliveryConfig, store Store, link routeLink, m *deliveryMetrics, log *slog.Logger) *tracker {
	cfg.setDefaults()
	t := &tracker{cfg: cfg, store: store, link: link, log: log, m: m, now: time.Now,
		users: map[uint64]*pendingUser{}, queue: make(chan []byte, cfg.Queue), kick: make(chan struct{}, 1)}
	t.start = t.now()
	t.persist, _ = store.(PendingStore)
	return t
}

// track starts tracking a stored message (again, for a deduplicated append: the
// router deduplicates) and hands it to the router. m is valid only during the
// call.
func (t *tracker) track(m *Message) {
	t.mu.Lock()
	tracked, early := t.add(m.To, m.Epoch, m.Seq, m.ID, t.now())
	t.mu.Unlock()
	if early {
		t.wake()
	}
	if !tracked {
		return
	}
	if !t.link.Connected() {
		return // replayed when the link is up
	}
	select {
	case t.queue <- AppendMessage(make([]byte, 0, EncodedSize(m)), m):
	default:
		t.m.queueFull.Inc()
		t.dueNow(m.To)
	}
}

// add records one pending message, reporting whether it did (not if it belongs to
// a store incarnation older than the user's tracked one) and whether the resend
// loop must wake earlier than it planned. The caller holds t.mu.
func (t *tracker) add(uid, epoch, seq, id uint64, now time.Time) (tracked, early bool) {
	u := t.users[uid]
	switch {
	case u == nil:
		u = &pendingUser{uid: uid, epoch: epoch, backoff: t.cfg.ResendMin, due: now.Add(t.cfg.ResendMin)}
		t.users[uid] = u
		heap.Push(&t.due, u)
		if u.due.Before(t.wakeAt) {
			t.wakeAt, early = u.due, true
		}
	case epoch < u.epoch:
		return false, false
	case epoch > u.epoch: // the store lost its state: what was tracked is gone
		t.n -= len(u.entries)
		t.m.untracked[untrackedGone].Add(float64(len(u.entries)))
		u.entries, u.epoch, u.last = u.entries[:0], epoch, 0
	}
	if i, found := u.find(seq); !found {
		u.entries = slices.Insert(u.entries, i, pendingEntry{seq: seq, id: id, at: now.Sub(t.start)})
		t.n++
	}
	u.last = max(u.last, seq)
	return true, early
}

// find returns the index of seq in u.entries, or where it would go.
func (u *pendingUser) find(seq uint64) (int, bool) {
	return slices.BinarySearchFunc(u.entries, seq, func(e pendingEntry, s uint64) int { return cmp.Compare(e.seq, s) })
}

// dueNow makes uid's pending messages due for a resend at once.
func (t *tracker) dueNow(uid uint64) {
	t.mu.Lock()
	if u := t.users[uid]; u != nil {
		u.due = t.now()
		heap.Fix(&t.due, u.idx)
	}
	t.mu.Unlock()
	t.wake()
}

func (t *tracker) wake() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// settle stops tracking the messages the router is done with; a settle that names
// no tracked message (settled already, or of an id since reused) changes nothing.
func (t *tracker) settle(ss []Settle) {
	now := t.now().Sub(t.start)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range ss {
		u := t.users[s.UID]
		if u == nil {
			continue
		}
		i, found := u.find(s.Seq)
		if !found || u.entries[i].id != s.ID {
			continue
		}
		t.m.settleLatency.Observe((now - u.entries[i].at).Seconds())
		t.m.untracked[untrackedSettled].Inc()
		u.entries = slices.Delete(u.entries, i, i+1)
		t.n--
		if len(u.entries) == 0 {
			t.forget(u)
		}
	}
}

// ack stops tracking uid's messages through seq of epoch: the client acknowledged
// them, so it has them whatever the router says.
func (t *tracker) ack(uid, seq, epoch uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.users[uid]
	if u == nil || u.epoch != epoch {
		return
	}
	k, found := u.find(seq)
	if found {
		k++
	}
	u.entries = slices.Delete(u.entries, 0, k)
	t.n -= k
	t.m.untracked[untrackedAcked].Add(float64(k))
	if len(u.entries) == 0 {
		t.forget(u)
	}
}

// forget drops a user left with nothing pending. The caller holds t.mu.
func (t *tracker) forget(u *pendingUser) {
	delete(t.users, u.uid)
	heap.Remove(&t.due, u.idx)
	if t.persist != nil {
		t.unmarks = append(t.unmarks, UserHead{UID: u.uid, Head: u.last})
	}
}

// replayAll makes every pending message due for a resend at once, counted as a
// replay: the router link has just come up, and whatever was sent on the previous
// one may be lost.
func (t *tracker) replayAll() {
	t.mu.Lock()
	now := t.now()
	for _, u := range t.users {
		u.due, u.backoff, u.replay = now, t.cfg.ResendMin, true
	}
	heap.Init(&t.due)
	t.mu.Unlock()
	t.wake()
}

// resendJob is one user's pending messages to send again: seqs first..last of
// epoch (those still pending when they are read back).
type resendJob struct {
	uid, epoch  uint64
	first, last uint64
	replay      bool
}

// takeDue returns at most n users whose resend is due at now, and moves each one's
// next resend on: ResendMin after a replay, else twice the last pause, up to
// ResendMax.
func (t *tracker) takeDue(now time.Time, n int) []resendJob {
	t.mu.Lock()
	defer t.mu.Unlock()
	var jobs []resendJob
	for len(jobs) < n && len(t.due) > 0 && !t.due[0].due.After(now) {
		u := t.due[0]
		jobs = append(jobs, resendJob{uid: u.uid, epoch: u.epoch, first: u.entries[0].seq,
			last: u.entries[len(u.entries)-1].seq, replay: u.replay})
		if u.replay {
			u.replay = false
		} else {
			u.backoff = min(2*u.backoff, t.cfg.ResendMax)
		}
		u.due = now.Add(u.backoff)
		heap.Fix(&t.due, 0)
	}
	return jobs
}

// sleep returns how long the resend loop sleeps: until the next resend is due (0:
// now), at most limit, and records when it wakes so that a sooner resend wakes it
// early. With the link down (!up) it sleeps limit, and only replayAll wakes it
// early: nothing can be sent before that.
func (t *tracker) sleep(now time.Time, limit time.Duration, up bool) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !up {
		t.wakeAt = time.Time{} // no time is before it
		return limit
	}
	d := limit
	if len(t.due) > 0 {
		d = max(min(t.due[0].due.Sub(now), limit), 0)
	}
	t.wakeAt = now.Add(d)
	return d
}

// resendBatch is the most users one pass of the resend loop takes.
const resendBatch = 1024

// resend runs jobs on cfg.Workers goroutines and returns when all are done (or ctx
// ends).
func (t *tracker) resend(ctx context.Context, jobs []resendJob) {
	fanout.Each(ctx, jobs, t.cfg.Workers, func(j resendJob, buf []byte) []byte { return t.resendUser(ctx, j, buf) })
}

// resendUser reads j's messages back from the store and sends those still pending
// to the router; buf is an encoding buffer, returned for reuse.
func (t *tracker) resendUser(ctx context.Context, j resendJob, buf []byte) []byte {
	for after := j.first - 1; after < j.last; {
		want := int(min(j.last-after, MaxRangeReply))
		rctx, cancel := context.WithTimeout(ctx, t.cfg.StoreTimeout)
		msgs, w, err := t.store.Range(rctx, j.uid, after, want)
		cancel()
		if err != nil {
			if ctx.Err() == nil && !t.storeDown.Swap(true) {
				t.log.Warn("msg store unreadable: unsettled messages wait to be resent", "uid", j.uid, "err", err)
			}
			return buf
		}
		if t.storeDown.Load() && t.storeDown.Swap(false) {
			t.log.Info("msg store readable again: resending unsettled messages")
		}
		hi := j.last // the messages read cover seqs (after, hi]
		if len(msgs) == want {
			hi = msgs[len(msgs)-1].Seq
		}
		for _, m := range t.confirm(j, after, hi, msgs, w) {
			buf = AppendMessage(buf[:0], &m)
			if err := t.link.Notify(RouteMethod, buf); err != nil {
				return buf // the link is down: everything is replayed when it is back
			}
			if j.replay {
				t.m.replays.Inc()
			} else {
				t.m.redeliveries.Inc()
			}
		}
		after = hi
	}
	return buf
}

// confirm compares j's pending messages with seqs in (after, hi] against msgs, the
// store's messages in that range (ascending, window w): it stops tracking the
// pending messages the store no longer holds and returns those it does.
func (t *tracker) confirm(j resendJob, after, hi uint64, msgs []Message, w Window) []Message {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.users[j.uid]
	if u == nil || u.epoch != j.epoch {
		return nil
	}
	if w.Epoch != u.epoch {
		if w.Epoch > u.epoch { // the store lost its state, and these messages with it
			t.n -= len(u.entries)
			t.m.untracked[untrackedGone].Add(float64(len(u.entries)))
			u.entries = u.entries[:0]
			t.forget(u)
		}
		return nil
	}
	var send []Message
	kept, k := u.entries[:0], 0
	for _, e := range u.entries {
		if e.seq <= after || e.seq > hi {
			kept = append(kept, e)
			continue
		}
		for k < len(msgs) && msgs[k].Seq < e.seq {
			k++
		}
		if k < len(msgs) && msgs[k].Seq == e.seq && msgs[k].ID == e.id {
			kept = append(kept, e)
			send = append(send, msgs[k])
			continue
		}
		t.n-- // acknowledged or expired
		t.m.untracked[untrackedGone].Inc()
	}
	clear(u.entries[len(kept):])
	u.entries = kept
	if len(kept) == 0 {
		t.forget(u)
	}
	return send
}

// onNotify serves the router link's notifications (link.ClientConfig.OnNotify).
func (t *tracker) onNotify(method uint16, body []byte) {
	if method != SettleMethod {
		t.log.Warn("router link: unknown notification", "method", method)
		return
	}
	ss, err := DecodeSettles(nil, body)
	if err != nil {
		t.log.Warn("router link: bad settle notification", "err", err)
		return
	}
	t.settle(ss)
}

// run resends due messages, forwards route notifications and unmarks users until
// ctx ends.
func (t *tracker) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { t.forward(ctx) })
	if t.persist != nil {
		wg.Go(func() { t.unmarkLoop(ctx) })
	}
	t.resendLoop(ctx)
	wg.Wait()
}

// idleWake bounds how long the resend loop sleeps with nothing due.
const idleWake = time.Second

func (t *tracker) resendLoop(ctx context.Context) {
	timer := time.NewTimer(t.sleep(t.now(), idleWake, true))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		case <-timer.C:
		}
		up := t.link.Connected()
		for up && ctx.Err() == nil {
			jobs := t.takeDue(t.now(), resendBatch)
			if len(jobs) == 0 {
				break
			}
			t.resend(ctx, jobs)
		}
		timer.Reset(t.sleep(t.now(), idleWake, up))
	}
}

// batchLink is a routeLink that can queue notifications and write them out
// together (a link.Client does).
type batchLink interface {
	QueueNotify(method uint16, body []byte) error
	Flush() error
}

// forwardBatch bounds the route notifications forward writes at once.
const forwardBatch = 256

// forward sends queued route notifications to the router, in order: as many per
// write as have queued up (up to forwardBatch), when the link can batch them.
func (t *tracker) forward(ctx context.Context) {
	bl, batching := t.link.(batchLink)
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-t.queue:
			if !batching {
				if t.link.Notify(RouteMethod, b) != nil {
					t.m.unsent.Inc() // replayed when the link is back
				}
				continue
			}
			n := 1
			if bl.QueueNotify(RouteMethod, b) != nil {
				t.m.unsent.Inc()
			}
		more:
			for ; n < forwardBatch; n++ {
				select {
				case b := <-t.queue:
					if bl.QueueNotify(RouteMethod, b) != nil {
						t.m.unsent.Inc()
					}
				default:
					break more
				}
			}
			if bl.Flush() != nil {
				t.m.unsent.Add(float64(n)) // they went down with the connection: replayed when it is back
			}
		}
	}
}

// unmarkLoop tells the PendingStore, every UnmarkInterval, of the users left with
// nothing pending.
func (t *tracker) unmarkLoop(ctx context.Context) {
	tick := time.NewTicker(t.cfg.UnmarkInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.flushUnmarks(ctx)
		}
	}
}

// unmarkBatch is the most users one PendingStore.Unmark call names.
const unmarkBatch = 512

// flushUnmarks unmarks the users queued by forget that still have nothing pending
// (one with messages again stays marked).
func (t *tracker) flushUnmarks(ctx context.Context) {
	t.mu.Lock()
	users := t.unmarks[:0:0]
	for _, uh := range t.unmarks {
		if t.users[uh.UID] == nil {
			users = append(users, uh)
		}
	}
	t.unmarks = nil
	t.mu.Unlock()
	for len(users) > 0 && ctx.Err() == nil {
		n := min(len(users), unmarkBatch)
		uctx, cancel := context.WithTimeout(ctx, t.cfg.StoreTimeout)
		err := t.persist.Unmark(uctx, users[:n])
		cancel()
		if err != nil {
			// They stay marked: a restart tracks their retained messages, routes them
			// again, and the router settles them at once.
			t.log.Warn("msg store: unmarking users with nothing pending failed", "users", len(users), "err", err)
			return
		}
		users = users[n:]
	}
}

// load tracks every retained message of every user the PendingStore has marked,
// and sends each to the router: at start, messages the previous process stored but
// did not see settled.
func (t *tracker) load(ctx context.Context) {
	var uids []uint64
	err := t.persist.PendingUsers(ctx, func(uid uint64) bool {
		uids = append(uids, uid)
		return true
	})
	if err != nil {
		t.log.Warn("msg store: listing users with pending messages failed; they are routed again only as new messages arrive", "err", err)
	}
	slices.Sort(uids)
	uids = slices.Compact(uids)
	var msgs atomic.Int64
	fanout.Each(ctx, uids, t.cfg.Workers, func(uid uint64, buf []byte) []byte {
		n, buf := t.loadUser(ctx, uid, buf)
		msgs.Add(int64(n))
		return buf
	})
	if len(uids) > 0 {
		t.log.Info("msg: tracking messages left unsettled by the previous process", "users", len(uids), "messages", msgs.Load())
	}
}

// loadUser tracks uid's retained messages and sends them to the router, returning
// how many it tracked.
func (t *tracker) loadUser(ctx context.Context, uid uint64, buf []byte) (int, []byte) {
	rctx, cancel := context.WithTimeout(ctx, t.cfg.StoreTimeout)
	msgs, w, err := t.store.Range(rctx, uid, 0, 0)
	cancel()
	if err != nil {
		t.log.Warn("msg store: reading a user's unsettled messages failed", "uid", uid, "err", err)
		return 0, buf
	}
	t.mu.Lock()
	now := t.now()
	for i := range msgs {
		t.add(uid, msgs[i].Epoch, msgs[i].Seq, msgs[i].ID, now) // sent below: no early wake needed
	}
	if len(msgs) == 0 && t.users[uid] == nil {
		t.unmarks = append(t.unmarks, UserHead{UID: uid, Head: w.Head})
	}
	t.mu.Unlock()
	for i := range msgs {
		buf = AppendMessage(buf[:0], &msgs[i])
		if t.link.Notify(RouteMethod, buf) != nil {
			break // replayed when the link is up
		}
		t.m.replays.Inc()
	}
	return len(msgs), buf
}

// pending returns how many messages and users are pending.
func (t *tracker) pending() (msgs, users int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n, len(t.users)
}

// dueHeap orders users by their next resend.
type dueHeap []*pendingUser

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *dueHeap) Push(x any) {
	u := x.(*pendingUser)
	u.idx = len(*h)
	*h = append(*h, u)
}
func (h *dueHeap) Pop() any {
	old := *h
	u := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	u.idx = -1
	return u
}
