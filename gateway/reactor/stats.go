package reactor

import (
	"math/bits"
	"sync/atomic"
)

// BatchBuckets is the number of buckets in Stats.EpollBatch: events returned per
// epoll_wait, bucket i counting batches of size in [2^(i-1), 2^i) (bucket 0: empty
// wake-ups), the last bucket everything larger.
const BatchBuckets = 10

// loopStats are one epoller's counters. They sit in the loop so that the hot path
// increments a cache line only its own goroutine (and its connections' writers) touch.
type loopStats struct {
	_            [64]byte // keep other loops' counters off this cache line
	waits        atomic.Uint64
	events       atomic.Uint64
	batch        [BatchBuckets]atomic.Uint64
	staleEvents  atomic.Uint64
	bytesIn      atomic.Uint64
	bytesOut     atomic.Uint64
	framesIn     atomic.Uint64
	refused      atomic.Uint64 // frames over their connection's rates
	readRequeues atomic.Uint64
	readPauses   atomic.Uint64
	writeQueued  atomic.Uint64 // writes the socket did not take whole: queued for EPOLLOUT
	writeArms    atomic.Uint64 // epoll_ctl calls arming or disarming EPOLLOUT (WriteDynamic)
	outBytes     atomic.Int64  // queued outbound bytes now
	deferred     atomic.Int64  // deferred frame bytes waiting for workers now
	closed       [numReasons]atomic.Uint64
}

func (s *loopStats) observeBatch(n int) {
	s.waits.Add(1)
	s.events.Add(uint64(n))
	s.batch[min(bits.Len(uint(n)), BatchBuckets-1)].Add(1)
}

// acceptStats are the accept loops' counters.
type acceptStats struct {
	accepted     atomic.Uint64
	dialed       atomic.Uint64
	rejected     atomic.Uint64 // over the connection limit: BUSY
	rejectedAddr atomic.Uint64 // over the per-address cap
	acceptErrors atomic.Uint64 // EMFILE, ENFILE, ENOBUFS, ENOMEM...: each one backed off
	throttled    atomic.Uint64 // accepts delayed by the accept-rate limit
}

// Stats is a snapshot of the reactor's counters (totals since start unless noted).
type Stats struct {
	Conns        int64  // connections now, including closing ones
	MaxConns     int    // the admission limit in force
	Accepted     uint64 // connections admitted by the accept loops
	Dialed       uint64 // outbound connections started
	RejectedBusy uint64 // connections refused over the limit (BUSY farewell)
	RejectedAddr uint64 // connections refused over MaxConnsPerAddr (ReasonAddrLimit farewell)
	AcceptErrors uint64 // accept failures that forced a back-off (EMFILE, ENFILE, ...)
	Throttled    uint64 // accepts delayed by the accept-rate limit
	// Closed counts torn-down connections by reason, indexed by Reason.
	Closed         [numReasons]uint64
	BytesIn        uint64
	BytesOut       uint64
	FramesIn       uint64
	FramesRefused  uint64 // complete frames refused by their connection's rates (not handed over)
	OutboundQueued int64  // bytes queued for slow sockets now
	DeferredQueued int64  // bytes of deferred frames waiting for workers now
	WorkerQueue    int    // connections waiting for a worker now
	EpollWaits     uint64
	EpollEvents    uint64
	// EpollBatch is the histogram of events per epoll_wait (see BatchBuckets).
	EpollBatch   [BatchBuckets]uint64
	StaleEvents  uint64 // events dropped because their slot's generation moved on
	ReadRequeues uint64 // reads cut short by the per-event byte cap and requeued
	ReadPauses   uint64 // times a connection stopped reading (output high watermark, deferred backlog)
	WriteQueued  uint64 // writes the socket did not take whole, so output was queued for EPOLLOUT
	WriteArms    uint64 // epoll_ctl calls arming or disarming EPOLLOUT (WriteDynamic only)
}

// ClosedBy returns how many connections were torn down for reason r.
func (s *Stats) ClosedBy(r Reason) uint64 {
	if int(r) >= len(s.Closed) {
		return 0
	}
	return s.Closed[r]
}

// Stats returns a snapshot of the counters. Safe from any goroutine; each counter is
// read atomically, the set as a whole is not a single instant.
func (r *Reactor) Stats() Stats {
	s := Stats{
		Conns:        r.conns.Load(),
		MaxConns:     r.maxConns,
		Accepted:     r.astats.accepted.Load(),
		Dialed:       r.astats.dialed.Load(),
		RejectedBusy: r.astats.rejected.Load(),
		RejectedAddr: r.astats.rejectedAddr.Load(),
		AcceptErrors: r.astats.acceptErrors.Load(),
		Throttled:    r.astats.throttled.Load(),
		WorkerQueue:  r.queued(),
	}
	for _, l := range r.loops {
		ls := &l.stats
		s.EpollWaits += ls.waits.Load()
		s.EpollEvents += ls.events.Load()
		for i := range ls.batch {
			s.EpollBatch[i] += ls.batch[i].Load()
		}
		s.StaleEvents += ls.staleEvents.Load()
		s.BytesIn += ls.bytesIn.Load()
		s.BytesOut += ls.bytesOut.Load()
		s.FramesIn += ls.framesIn.Load()
		s.FramesRefused += ls.refused.Load()
		s.ReadRequeues += ls.readRequeues.Load()
		s.ReadPauses += ls.readPauses.Load()
		s.WriteQueued += ls.writeQueued.Load()
		s.WriteArms += ls.writeArms.Load()
		s.OutboundQueued += ls.outBytes.Load()
		s.DeferredQueued += ls.deferred.Load()
		for i := range ls.closed {
			s.Closed[i] += ls.closed[i].Load()
		}
	}
	return s
}

// Add adds o's counters to s: the totals of several reactors in one process (a
// gateway's ports). WorkerQueue adds up (each reactor has its own workers);
// MaxConns is the larger of the two, not their sum: the reactors share the
// process's file limit, from which each derives its own, so the process holds no
// more connections than one limit. (Summed, a gateway with an idle WebSocket port
// looked half as full as it was, and control never recommended scaling out.)
func (s *Stats) Add(o Stats) {
	s.Conns += o.Conns
	s.MaxConns = max(s.MaxConns, o.MaxConns)
	s.Accepted += o.Accepted
	s.Dialed += o.Dialed
	s.RejectedBusy += o.RejectedBusy
	s.RejectedAddr += o.RejectedAddr
	s.AcceptErrors += o.AcceptErrors
	s.Throttled += o.Throttled
	for i := range s.Closed {
		s.Closed[i] += o.Closed[i]
	}
	s.BytesIn += o.BytesIn
	s.BytesOut += o.BytesOut
	s.FramesIn += o.FramesIn
	s.FramesRefused += o.FramesRefused
	s.OutboundQueued += o.OutboundQueued
	s.DeferredQueued += o.DeferredQueued
	s.WorkerQueue += o.WorkerQueue
	s.EpollWaits += o.EpollWaits
	s.EpollEvents += o.EpollEvents
	for i := range s.EpollBatch {
		s.EpollBatch[i] += o.EpollBatch[i]
	}
	s.StaleEvents += o.StaleEvents
	s.ReadRequeues += o.ReadRequeues
	s.ReadPauses += o.ReadPauses
	s.WriteQueued += o.WriteQueued
	s.WriteArms += o.WriteArms
}
