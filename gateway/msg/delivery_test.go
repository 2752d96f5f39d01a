package msg

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeRouteLink records the route notifications a tracker sends.
type fakeRouteLink struct {
	mu   sync.Mutex
	up   bool
	sent []Message
}

func (l *fakeRouteLink) Notify(method uint16, body []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.up {
		return link.ErrUnavailable
	}
	if method != RouteMethod {
		panic("a tracker sent something other than a route notification")
	}
	m, err := DecodeMessage(append([]byte(nil), body...))
	if err != nil {
		panic(err)
	}
	l.sent = append(l.sent, m)
	return nil
}

func (l *fakeRouteLink) Connected() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

func (l *fakeRouteLink) setUp(up bool) {
	l.mu.Lock()
	l.up = up
	l.mu.Unlock()
}

// take returns and forgets the (uid, seq) of what was sent since the last take.
func (l *fakeRouteLink) take() [][2]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][2]uint64
	for _, m := range l.sent {
		out = append(out, [2]uint64{m.To, m.Seq})
	}
	l.sent = nil
	return out
}

// trackerFixture is a tracker over a memory store, with a fake link and a clock the
// test moves.
type trackerFixture struct {
	t     *testing.T
	tr    *tracker
	store *Memory
	link  *fakeRouteLink
	now   time.Time
}

func newTrackerFixture(t *testing.T, perUser int, cfg DeliveryConfig) *trackerFixture {
	f := &trackerFixture{t: t, link: &fakeRouteLink{up: true}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.store = NewMemory(perUser, WithRetention(time.Hour), WithClock(func() time.Time { return f.now }))
	f.tr = newTracker(cfg, f.store, f.link, newDeliveryMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	f.tr.now = func() time.Time { return f.now }
	f.tr.start = f.now
	return f
}

// store appends a message to uid and tracks it, as the server does; it returns it.
func (f *trackerFixture) store1(uid uint64) Message {
	f.t.Helper()
	m := Message{From: 1, To: uid, Payload: []byte("p")}
	if err := f.store.Append(context.Background(), &m); err != nil {
		f.t.Fatal(err)
	}
	f.tr.track(&m)
	return m
}

// resendDue runs one pass of the resend loop at the fixture's time and returns
// what it sent.
func (f *trackerFixture) resendDue() [][2]uint64 {
	f.link.take()
	f.tr.resend(context.Background(), f.tr.takeDue(f.now, resendBatch))
	return f.link.take()
}

// wantPending checks the tracker's pending message and user counts.
func (f *trackerFixture) wantPending(msgs, users int) {
	f.t.Helper()
	if n, u := f.tr.pending(); n != msgs || u != users {
		f.t.Fatalf("pending %d messages of %d users, want %d of %d", n, u, msgs, users)
	}
}

// An unsettled message is resent after ResendMin, then after pauses doubling up to
// ResendMax, and at no other time.
func TestTrackerResendsWithDoublingPauses(t *testing.T) {
	f := newTrackerFixture(t, 100, DeliveryConfig{ResendMin: 2 * time.Second, ResendMax: 30 * time.Second})
	start := f.now
	f.store1(7)
	var at []time.Duration
	for s := time.Duration(0); s <= 100*time.Second; s += 100 * time.Millisecond {
		f.now = start.Add(s)
		if sent := f.resendDue(); len(sent) > 0 {
			if !slices.Equal(sent, [][2]uint64{{7, 1}}) {
				t.Fatalf("at %v resent %v", s, sent)
			}
			at = append(at, s)
		}
	}
	want := []time.Duration{2, 6, 14, 30, 60, 90}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(at, want) {
		t.Fatalf("resent at %v, want %v", at, want)
	}
	if got := testutil.ToFloat64(f.tr.m.redeliveries); got != 6 {
		t.Fatalf("redeliveries %v, want 6", got)
	}
}

// A settle stops tracking exactly the message it names (uid, seq and id); one with
// another id changes nothing; a user settled in full is no longer resent.
func TestTrackerSettleStopsResends(t *testing.T) {
	f := newTrackerFixture(t, 100, DeliveryConfig{ResendMin: time.Second})
	var ms []Message
	for range 3 {
		ms = append(ms, f.store1(1))
	}
	other := f.store1(2)
	f.wantPending(4, 2)
	f.tr.settle([]Settle{{UID: 1, Seq: 2, ID: ms[1].ID + 100}, {UID: 9, Seq: 1, ID: 1}})
	f.wantPending(4, 2)
	f.tr.settle([]Settle{{UID: 1, Seq: 2, ID: ms[1].ID}})
	f.wantPending(3, 2)
	f.now = f.now.Add(time.Second)
	sent := f.resendDue()
	slices.SortStableFunc(sent, func(a, b [2]uint64) int { return cmp.Compare(a[0], b[0]) }) // users resend in parallel
	if !slices.Equal(sent, [][2]uint64{{1, 1}, {1, 3}, {2, 1}}) {
		t.Fatalf("resent %v, want uid 1's seqs 1 then 3, and uid 2's seq 1", sent)
	}
	f.tr.settle([]Settle{{UID: 2, Seq: 1, ID: other.ID}, {UID: 1, Seq: 1, ID: ms[0].ID}, {UID: 1, Seq: 3, ID: ms[2].ID}})
	f.wantPending(0, 0)
	f.now = f.now.Add(time.Hour)
	if sent := f.resendDue(); len(sent) != 0 {
		t.Fatalf("resent %v after everything was settled", sent)
	}
	if got := testutil.ToFloat64(f.tr.m.untracked[untrackedSettled]); got != 4 {
		t.Fatalf("settled %v, want 4", got)
	}
}

// A recipient's ack settles its messages through the acked seq, and only in the
// epoch they were stored in.
func TestTrackerAckSettlesThroughSeq(t *testing.T) {
	f := newTrackerFixture(t, 100, DeliveryConfig{})
	var last Message
	for range 5 {
		last = f.store1(3)
	}
	for _, c := range []struct {
		name       string
		seq, epoch uint64
		wantMsgs   int
	}{
		{"another epoch", 4, last.Epoch + 1, 5},
		{"through seq 3", 3, last.Epoch, 2},
		{"behind", 1, last.Epoch, 2},
		{"beyond the head", 99, last.Epoch, 0},
	} {
		f.tr.ack(3, c.seq, c.epoch)
		if n, _ := f.tr.pending(); n != c.wantMsgs {
			t.Fatalf("%s: %d pending, want %d", c.name, n, c.wantMsgs)
		}
	}
	f.wantPending(0, 0)
}

// Messages the store no longer holds are no longer tracked: those that expired or
// were acknowledged behind the tracker's back are dropped when a resend reads them
// back.
func TestTrackerDropsWhatTheStoreNoLongerHolds(t *testing.T) {
	f := newTrackerFixture(t, 100, DeliveryConfig{ResendMin: time.Second})
	start := f.now
	f.store1(4)
	f.store1(4)
	f.now = start.Add(50 * time.Minute)
	var last Message
	for range 3 {
		last = f.store1(4)
	}
	f.wantPending(5, 1)
	f.now = start.Add(70 * time.Minute) // seqs 1 and 2 are past the fixture's retention of an hour
	if err := f.store.Ack(context.Background(), 4, 4, last.Epoch); err != nil {
		t.Fatal(err)
	}
	if sent := f.resendDue(); !slices.Equal(sent, [][2]uint64{{4, 5}}) {
		t.Fatalf("resent %v, want only seq 5 (1 and 2 expired, 3 and 4 were acknowledged)", sent)
	}
	f.wantPending(1, 1)
	if got := testutil.ToFloat64(f.tr.m.untracked[untrackedGone]); got != 4 {
		t.Fatalf("gone %v, want 4", got)
	}
}

// A replay (the router link came back) makes every pending message due at once,
// counted as replays, and restarts each user's pauses at ResendMin.
func TestTrackerReplayResendsEverythingAtOnce(t *testing.T) {
	f := newTrackerFixture(t, 100, DeliveryConfig{ResendMin: 2 * time.Second, ResendMax: 30 * time.Second})
	start := f.now
	f.store1(1)
	f.now = start.Add(2 * time.Second)
	f.resendDue() // the next pause is 4s
	f.store1(2)
	f.now = start.Add(3 * time.Second)
	if sent := f.resendDue(); len(sent) != 0 {
		t.Fatalf("resent %v before anything was due", sent)
	}
	f.tr.replayAll()
	if sent := f.resendDue(); len(sent) != 2 {
		t.Fatalf("the replay sent %v, want both users' messages", sent)
	}
	if got := testutil.ToFloat64(f.tr.m.replays); got != 2 {
		t.Fatalf("replays %v, want 2", got)
	}
	f.now = start.Add(5 * time.Second) // ResendMin after the replay
	if sent := f.resendDue(); len(sent) != 2 {
		t.Fatalf("%v resent ResendMin after the replay, want both", sent)
	}
}

// While the link is down nothing is queued for it (the replay on reconnect sends
// it); a message that finds the queue full is made due for a resend at once.
func TestTrackerQueueAndLinkDown(t *testing.T) {
	f := newTrackerFixture(t, 100, DeliveryConfig{Queue: 1, ResendMin: time.Hour})
	f.link.setUp(false)
	f.store1(1)
	if len(f.tr.queue) != 0 {
		t.Fatal("a message was queued while the link was down")
	}
	f.link.setUp(true)
	f.store1(2) // queued
	f.store1(3) // the queue is full
	if got := testutil.ToFloat64(f.tr.m.queueFull); got != 1 {
		t.Fatalf("queue full %v, want 1", got)
	}
	if sent := f.resendDue(); !slices.Equal(sent, [][2]uint64{{3, 1}}) {
		t.Fatalf("resent %v, want uid 3's message at once", sent)
	}
}

// Messages of a newer store incarnation replace what was tracked for the user (the
// store lost it); messages of an older one are ignored; a resend that finds the
// store in a newer incarnation stops tracking the user.
func TestTrackerFollowsStoreIncarnations(t *testing.T) {
	f := newTrackerFixture(t, 100, DeliveryConfig{ResendMin: time.Second})
	f.tr.track(&Message{To: 5, Seq: 1, ID: 1, Epoch: 10})
	f.tr.track(&Message{To: 5, Seq: 2, ID: 2, Epoch: 10})
	f.tr.track(&Message{To: 5, Seq: 1, ID: 3, Epoch: 20})
	f.wantPending(1, 1)
	f.tr.track(&Message{To: 5, Seq: 7, ID: 4, Epoch: 15})
	f.wantPending(1, 1)
	f.now = f.now.Add(time.Second)
	if sent := f.resendDue(); len(sent) != 0 { // the store's epoch is its start time: newer than 20
		t.Fatalf("resent %v of a lost incarnation", sent)
	}
	f.wantPending(0, 0)
}

// The settle body round-trips, and malformed ones are refused.
func TestSettleBodies(t *testing.T) {
	want := []Settle{{1, 2, 3}, {1<<64 - 1, 0, 1 << 63}}
	var b []byte
	for _, s := range want {
		b = AppendSettle(b, s)
	}
	got, err := DecodeSettles(nil, b)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("decoded %v, %v; want %v", got, err, want)
	}
	for _, n := range []int{0, 1, 23, 25, 47, (MaxSettles + 1) * SettleSize} {
		if _, err := DecodeSettles(nil, make([]byte, n)); err == nil {
			t.Errorf("a settle body of %d bytes decoded", n)
		}
	}
}

func FuzzDecodeSettles(f *testing.F) {
	f.Add([]byte{})
	f.Add(AppendSettle(nil, Settle{1, 2, 3}))
	f.Add(AppendSettle(AppendSettle(nil, Settle{1, 2, 3}), Settle{4, 5, 6}))
	f.Add(make([]byte, 25))
	f.Fuzz(func(t *testing.T, b []byte) {
		ss, err := DecodeSettles(nil, b)
		if err != nil {
			return
		}
		var again []byte
		for _, s := range ss {
			again = AppendSettle(again, s)
		}
		if string(again) != string(b) {
			t.Fatalf("%x decoded to %v, which encodes to %x", b, ss, again)
		}
	})
}

// batchingRouteLink is a fakeRouteLink that can queue notifications, counting the
// flushes that write them out.
type batchingRouteLink struct {
	fakeRouteLink
	queued  []Message
	flushes int
}

func (l *batchingRouteLink) QueueNotify(method uint16, body []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, err := DecodeMessage(append([]byte(nil), body...))
	if err != nil || method != RouteMethod {
		panic("a tracker queued something other than a route notification")
	}
	l.queued = append(l.queued, m)
	return nil
}

func (l *batchingRouteLink) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = append(l.sent, l.queued...)
	l.queued = nil
	l.flushes++
	return nil
}

func (l *batchingRouteLink) flushCount() (flushes, sent int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushes, len(l.sent)
}

func TestRoutesQueuedTogetherLeaveInOneFlushInOrder(t *testing.T) {
	f := newTrackerFixture(t, 100, DeliveryConfig{})
	bl := &batchingRouteLink{fakeRouteLink: fakeRouteLink{up: true}}
	f.tr.link = bl
	for uid := uint64(1); uid <= 10; uid++ {
		f.store1(uid) // queued for forward, which is not running yet
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.tr.forward(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, sent := bl.flushCount(); sent == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the queued routes were not all sent")
		}
		time.Sleep(time.Millisecond)
	}
	if flushes, _ := bl.flushCount(); flushes != 1 {
		t.Fatalf("%d flushes for 10 routes queued together, want 1", flushes)
	}
	for i, s := range bl.take() {
		if s[0] != uint64(i+1) {
			t.Fatalf("route %d is to uid %d, want %d: out of order", i, s[0], i+1)
		}
	}
}
