package client

import (
	"math/rand/v2"
	"testing"

	"github.com/floodgate/floodgate/gateway/proto"
)

// simKey names one message: its incarnation and seq.
type simKey struct{ epoch, seq uint64 }

// simFrame is one server → client frame on the simulated connection.
type simFrame struct {
	push *proto.Push
	end  *proto.SyncEnd
}

// windowSim plays a server with changing incarnations against one Window,
// over a cluster that reorders and duplicates live pushes before they reach
// the connection (the connection itself is FIFO, as TCP is; pushes are lost
// only with a connection, as the cluster redelivers until a gateway took them),
// with reconnects, unprompted SYNC_ENDs and evictions, and checks the receive
// rule's promises as it goes.
type windowSim struct {
	t   *testing.T
	ops []byte
	w   Window[simKey]
	now int64

	// the server
	epoch   uint64
	head    map[uint64]uint64 // per epoch: the newest seq stored
	acked   uint64            // current epoch: acknowledged through
	evicted map[uint64]uint64 // per epoch: seqs up to this were evicted unacknowledged

	pool []proto.Push // live pushes in flight before the connection
	conn []simFrame   // frames queued on the connection, in order

	// what the client saw
	delivered   map[simKey]int
	last        map[uint64]uint64 // per epoch: the last seq delivered
	reported    map[uint64]uint64 // per epoch: evictions SyncEnd reported
	retiredAt   map[uint64]uint64 // per epoch: contiguous when the window left it
	prevEpoch   uint64            // the epoch before the current one
	stale       int               // deliveries of incarnations the window never had
	epochsSoFar int
}

const (
	simGapWait = 50
	simLimit   = 4
)

func newWindowSim(t *testing.T, ops []byte) *windowSim {
	s := &windowSim{t: t, ops: ops, epoch: 1000, head: map[uint64]uint64{}, evicted: map[uint64]uint64{},
		delivered: map[simKey]int{}, last: map[uint64]uint64{}, reported: map[uint64]uint64{},
		retiredAt: map[uint64]uint64{}, epochsSoFar: 1}
	s.login()
	return s
}

// next consumes one byte of the script (0 once it is used up).
func (s *windowSim) next() byte {
	if len(s.ops) == 0 {
		return 0
	}
	b := s.ops[0]
	s.ops = s.ops[1:]
	return b
}

func (s *windowSim) oldest() uint64 {
	return min(max(s.acked, s.evicted[s.epoch])+1, s.head[s.epoch]+1)
}

func (s *windowSim) deliver(seq uint64, k simKey) {
	s.t.Helper()
	if k.seq != seq {
		s.t.Fatalf("deliver(%d) of message %+v", seq, k)
	}
	if k.seq == 0 || k.seq > s.head[k.epoch] {
		s.t.Fatalf("delivered %+v, which was never stored", k)
	}
	if k.epoch < s.w.Epoch() && k.epoch != s.w.retired.epoch {
		// Stale: an incarnation the window never had (the store restarted twice
		// before the client heard of the first restart). Delivered as it comes.
		s.stale++
		return
	}
	if s.delivered[k]++; s.delivered[k] > 1 {
		s.t.Fatalf("delivered %+v twice", k)
	}
	if k.seq <= s.last[k.epoch] {
		s.t.Fatalf("delivered %+v after seq %d of its epoch: out of order", k, s.last[k.epoch])
	}
	s.last[k.epoch] = k.seq
}

// observe runs one client-side step, noting when the window leaves an epoch.
func (s *windowSim) observe(f func()) {
	e0, c0 := s.w.Epoch(), s.w.Contiguous()
	f()
	if e := s.w.Epoch(); e != e0 && e0 != 0 {
		if _, seen := s.retiredAt[e0]; !seen {
			s.retiredAt[e0] = c0
		}
	}
}

func (s *windowSim) login() {
	s.observe(func() {
		s.w.Login(proto.LoginOK{Epoch: s.epoch, LastSeq: s.head[s.epoch], Oldest: s.oldest()})
	})
}

// read takes the next frame off the connection.
func (s *windowSim) read() {
	if len(s.conn) == 0 {
		return
	}
	f := s.conn[0]
	s.conn = s.conn[1:]
	s.observe(func() {
		if f.push != nil {
			s.w.Push(f.push, simKey{f.push.Epoch, f.push.Seq}, s.now, s.deliver)
			return
		}
		n := s.w.SyncEnd(f.end, s.deliver)
		s.reported[s.w.Epoch()] += n
	})
	s.ackAndSync()
}

// ackAndSync is what a client does after each frame and on its timer.
func (s *windowSim) ackAndSync() {
	if a, ok := s.w.Ack(3); ok {
		if a.Epoch != s.w.Epoch() {
			s.t.Fatalf("ack %+v of another epoch than the window's %d", a, s.w.Epoch())
		}
		for q := uint64(1); q <= a.Seq; q++ {
			if s.delivered[simKey{a.Epoch, q}] == 0 && q > s.evicted[a.Epoch] {
				s.t.Fatalf("ack %+v covers seq %d, neither delivered nor evicted", a, q)
			}
		}
		if a.Epoch == s.epoch {
			s.acked = max(s.acked, min(a.Seq, s.head[s.epoch]))
		}
	}
	if s.w.NeedSync(s.now, simGapWait) {
		s.serveSync(s.w.Sync(simLimit))
	}
}

// serveSync answers a SYNC as the protocol says: replay from the start for
// another epoch, at most limit messages, then SYNC_END.
func (s *windowSim) serveSync(m proto.Sync) {
	after := m.AfterSeq
	if m.Epoch != s.epoch {
		after = 0
	}
	upTo := after
	for seq := max(after, s.oldest()-1) + 1; seq <= s.head[s.epoch] && seq <= max(after, s.oldest()-1)+uint64(m.Limit); seq++ {
		s.conn = append(s.conn, simFrame{push: &proto.Push{Seq: seq, Epoch: s.epoch}})
		upTo = seq
	}
	s.conn = append(s.conn, simFrame{end: &proto.SyncEnd{UpTo: upTo, Head: s.head[s.epoch], Oldest: s.oldest(), Epoch: s.epoch}})
}

func (s *windowSim) pick(n int) int { return int(s.next()) % n }

// step performs one scripted event.
func (s *windowSim) step(op byte) {
	switch op % 12 {
	case 0, 1: // a new message is stored and pushed live
		s.head[s.epoch]++
		s.pool = append(s.pool, proto.Push{Seq: s.head[s.epoch], Epoch: s.epoch})
	case 2, 3: // a live push reaches the connection, in any order
		if len(s.pool) > 0 {
			i := s.pick(len(s.pool))
			p := s.pool[i]
			s.pool = append(s.pool[:i], s.pool[i+1:]...)
			s.conn = append(s.conn, simFrame{push: &p})
		}
	case 4: // a live push is duplicated on the way
		if len(s.pool) > 0 {
			s.pool = append(s.pool, s.pool[s.pick(len(s.pool))])
		}
	case 5: // a stored message's push is held up in the cluster (redelivered later)
		if len(s.pool) > 1 {
			i := s.pick(len(s.pool))
			p := s.pool[i]
			s.pool = append(append(s.pool[:i], s.pool[i+1:]...), p)
		}
	case 6, 7: // the client reads
		s.read()
	case 8: // time passes: the client's timer
		s.now += int64(s.next()%4) * simGapWait / 2
		s.ackAndSync()
	case 9: // the store restarts as a new incarnation; late pushes of the old one may still arrive
		if s.epochsSoFar >= 4 {
			return
		}
		s.epochsSoFar++
		old := s.prevEpoch
		s.prevEpoch, s.epoch, s.acked = s.epoch, s.epoch+1+uint64(s.next()), 0
		// Keep only the late pushes of the incarnation just retired: anything older
		// is stale by the rule, and not deduplicated.
		keep := s.pool[:0]
		for _, p := range s.pool {
			if p.Epoch != old {
				keep = append(keep, p)
			}
		}
		s.pool = keep
	case 10: // the connection breaks; the client logs in again
		s.conn, s.pool = nil, nil
		s.w.Disconnected()
		s.login()
		s.ackAndSync()
	case 11: // the server tells the window unprompted, or evicts
		if s.next()%2 == 0 {
			s.conn = append(s.conn, simFrame{end: &proto.SyncEnd{Head: s.head[s.epoch], Oldest: s.oldest(), Epoch: s.epoch}})
		} else {
			s.evicted[s.epoch] = min(s.head[s.epoch], max(s.evicted[s.epoch], s.acked)+1+uint64(s.next()%3))
		}
	}
}

// finish lets everything in flight arrive and the client catch up, then checks
// completeness: the current epoch whole (delivered or reported evicted), and
// every earlier epoch up to where the window left it.
func (s *windowSim) finish() {
	for len(s.pool) > 0 {
		s.step(2)
	}
	settle := func() {
		for range 1000 {
			for len(s.conn) > 0 {
				s.read()
			}
			s.now += simGapWait
			s.ackAndSync()
			if len(s.conn) == 0 && !s.w.NeedSync(s.now, simGapWait) {
				return
			}
		}
	}
	settle()
	e := s.epoch
	if s.w.Epoch() != e {
		// Only an incarnation that stored nothing yet can go unnoticed by a
		// connected client; its next login tells it.
		if s.head[e] != 0 {
			s.t.Fatalf("the window is still in epoch %d, the server in %d with %d messages", s.w.Epoch(), e, s.head[e])
		}
		s.step(10)
		settle()
	}
	if s.w.Epoch() != e || s.w.Contiguous() != s.head[e] || s.w.Held() != 0 || s.w.NeedSync(s.now+simGapWait, simGapWait) {
		s.t.Fatalf("did not converge: window epoch %d contiguous %d held %d, server epoch %d head %d",
			s.w.Epoch(), s.w.Contiguous(), s.w.Held(), e, s.head[e])
	}
	var got uint64
	for q := uint64(1); q <= s.head[e]; q++ {
		got += uint64(s.delivered[simKey{e, q}])
	}
	if got+s.reported[e] != s.head[e] {
		s.t.Fatalf("epoch %d: %d delivered + %d reported evicted, want %d in all", e, got, s.reported[e], s.head[e])
	}
	if s.reported[e] > s.evicted[e] {
		s.t.Fatalf("epoch %d: %d reported evicted, the server evicted at most %d", e, s.reported[e], s.evicted[e])
	}
	for re, c := range s.retiredAt {
		for q := uint64(1); q <= c; q++ {
			if s.delivered[simKey{re, q}] == 0 && q > s.evicted[re] {
				s.t.Fatalf("epoch %d: seq %d was below contiguous %d when the window left it, never delivered", re, q, c)
			}
		}
	}
}

func runWindowSim(t *testing.T, ops []byte) {
	s := newWindowSim(t, ops)
	for len(s.ops) > 0 {
		s.step(s.next())
	}
	s.finish()
}

// Random scripts: whatever the network and the server do, each (epoch, seq)
// is delivered at most once, in order within its epoch; acks never cover an
// undelivered seq; and once things settle the current incarnation is complete.
func TestWindowDeliversEachMessageOnceInOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		ops := make([]byte, 50+rng.IntN(400))
		for j := range ops {
			ops[j] = byte(rng.Uint32())
		}
		ok := t.Run("", func(t *testing.T) { runWindowSim(t, ops) })
		if !ok {
			t.Fatalf("script %d failed: %x", i, ops)
		}
	}
}

func FuzzWindow(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 2, 2, 6, 6, 6, 8})
	f.Add([]byte{0, 0, 2, 9, 7, 0, 2, 6, 6, 6, 8, 3})
	f.Add([]byte{0, 0, 0, 0, 4, 2, 3, 5, 2, 10, 11, 1, 11, 0, 8, 6, 7})
	f.Add([]byte{0, 1, 0, 11, 1, 2, 11, 2, 9, 0, 2, 1, 9, 5, 0, 2, 6, 7, 6, 8, 3, 8, 3})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 4096 {
			return
		}
		runWindowSim(t, ops)
	})
}
