package reactor

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Errors returned by Conn methods.
var (
	// ErrClosed: the connection is closing or closed; the bytes were not queued.
	ErrClosed = errors.New("reactor: connection closed")
	// ErrSlow: the outbound queue would pass its hard cap. The connection is being
	// closed with ReasonSlow (and the farewell for it); the bytes were not queued.
	ErrSlow = errors.New("reactor: outbound queue over its hard cap (slow reader)")
)

// Connection states. Transitions only go forward:
// connecting → open → closing → closed, with any step allowed to jump to closed.
const (
	stateConnecting uint32 = iota // outbound connect in progress (Dial)
	stateOpen                     // frames are delivered
	stateClosing                  // farewell flushing, then lingering for the peer's FIN; input discarded
	stateClosed                   // torn down: fd closed, slot freed
)

// Pause bits in Conn.pause. Reading stops while either is set; whoever clears the last
// bit puts the connection back on its epoller's ready list, because under
// edge-triggered epoll nothing else would ever read the data already waiting.
const (
	pauseOut  uint32 = 1 << iota // outbound queue over the high watermark
	pauseIn                      // too many deferred frames waiting for a worker
	pauseUser                    // the handler asked (PauseReading)
)

// Bits in Conn.outState, which the epoller reads without the lock on EPOLLOUT.
const (
	outQueued  uint32 = 1 << iota // c.out != nil
	outWriting                    // a writer is between its direct write and queueing (WriteAlways only)
)

// Bits in Conn.marks.
const (
	// markAdmitted: the handler admitted the connection (or we dialed it).
	markAdmitted uint32 = 1 << iota
	// markKicked: the connection started closing by this side's decision (the
	// handler's Close, or a reactor close other than the peer's FIN or a socket
	// error): from then on no frame is handed to the handler, inline or deferred.
	// Frames of a peer that simply closed are still all handled.
	markKicked
)

// Epoller-only bits in Conn.lflags (no synchronisation needed).
const (
	lfReady   uint8 = 1 << iota // on the epoller's ready list
	lfPeerEOF                   // read returned 0: the peer will send nothing more
	lfOpened                    // OnOpen was delivered (or the dial completed)
	// lfRDHUP: an event reported the peer's FIN (EPOLLRDHUP/EPOLLHUP). A short read
	// then no longer proves the socket drained: the FIN is not data, only a read
	// returning 0 consumes it, and its one edge has already been delivered.
	lfRDHUP
)

// Conn is one TCP connection owned by one epoller. Its methods are safe for concurrent
// use by any goroutine. A Conn is never reused: after OnClose it only answers ErrClosed,
// so a handler that keeps a stale *Conn cannot write into someone else's connection
// (gnet#621). The fd, slot and generation belong to the epoller.
type Conn struct {
	// mu guards out, reason, cause, the moves to closing and closed, and every use of
	// fd for writing. The epoller closes fd only while holding mu, so a writer can
	// never write to a closed or reused descriptor.
	mu       sync.Mutex
	fd       int32
	slot     uint32 // index in the epoller's table
	gen      uint32 // the slot's generation when this Conn took it
	state    atomic.Uint32
	pause    atomic.Uint32
	outState atomic.Uint32
	// inWant is the full size of the frame whose head is in `in`, once its header is
	// complete; 0 while the header itself is partial. Epoller-only, like in.
	inWant int32
	lflags uint8
	reason Reason // why it closed; set once
	// framesRead counts the complete frames read so far (written by the epoller,
	// read by handlers on any goroutine).
	framesRead atomic.Uint32

	loop *loop
	out  *outQueue // unsent output; nil when none (idle connections hold no buffer)
	in   *[]byte   // the head of a frame that has not fully arrived; nil when none
	jobs *jobs     // deferred frames for the worker pool; nil until the first deferral

	// lastActive is the reactor-clock time of the last complete frame (or of the
	// open) while open, and the linger deadline once closing. Epoller-only.
	lastActive int64
	// openedAt is the reactor-clock time the connection opened, for the admission
	// deadline. Epoller-only.
	openedAt int64
	// limits are the inbound limits in force (nil: none). Any goroutine.
	limits atomic.Pointer[Limits]
	// marks holds markAdmitted and markKicked. Any goroutine.
	marks atomic.Uint32
	lim   limitState // the rate buckets' state; epoller-only
	// peer is the remote address counted against Config.MaxConnsPerAddr; nil when
	// that cap is off (a pointer: the cap is rare, and Conn stays small).
	peer  *netip.Addr
	cause error // the error behind reason, if any
	ctx   any   // the handler's per-connection value
}

// Context returns the value stored with SetContext (or given to Dial).
func (c *Conn) Context() any { return c.ctx }

// SetContext stores the handler's per-connection value. Call it in OnOpen: callbacks
// for one connection are serialised, so OnFrame, OnDeferred and OnClose see it.
func (c *Conn) SetContext(v any) { c.ctx = v }

// RemoteAddr asks the kernel for the peer's address: a system call, for logs.
func (c *Conn) RemoteAddr() netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return netip.AddrPort{}
	}
	sa, err := unix.Getpeername(int(c.fd))
	if err != nil {
		return netip.AddrPort{}
	}
	return addrPort(sa)
}

// Admit marks the connection accepted by the handler — typically once its peer has
// authenticated — and installs lim (nil: none) as its inbound limits from now on:
// the admission deadline (Config.AdmitTimeout) no longer applies, and the frame
// size limit and rates become lim's. Safe from any goroutine; lim must not change
// afterwards.
func (c *Conn) Admit(lim *Limits) {
	c.limits.Store(lim)
	c.marks.Or(markAdmitted)
}

// Closed reports whether the connection is closing or closed.
func (c *Conn) Closed() bool { return c.state.Load() >= stateClosing }

// String identifies the connection in logs.
func (c *Conn) String() string {
	return fmt.Sprintf("conn(loop %d, slot %d, gen %d)", c.loop.id, c.slot, c.gen)
}

// Write sends b, in order with every other Write on this connection, from any
// goroutine, without blocking: it writes to the socket directly when nothing is queued,
// and queues what the socket does not take (copying it; b may be reused on return).
// Past the high watermark the connection stops reading until its queue drains; past
// the hard cap it is closed with ReasonSlow and Write returns ErrSlow. A Write is
// never torn: either none of b goes out (ErrSlow, ErrClosed), or all of it does,
// ahead of any farewell — so that a peer reading a framed protocol sees whole frames,
// then the kick, then the end. (A b that had started on the wire when the cap was
// passed is queued whole, past the cap, and the connection then closes as slow.)
// While a Dial is connecting, everything is queued.
func (c *Conn) Write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	c.mu.Lock()
	err, closing := c.writeLocked(b, false)
	c.mu.Unlock()
	if closing {
		c.loop.post(task{op: opClosing, c: c})
	}
	return err
}

// writeLocked is Write's body. overCap lets a farewell through in the closing state
// and past the hard cap (it is small and bounded). closing reports that this call
// moved the connection to closing, so the caller must tell the epoller (after
// unlocking). Caller holds c.mu.
func (c *Conn) writeLocked(b []byte, overCap bool) (err error, closing bool) {
	l := c.loop
	cfg := &l.r.cfg
	st := c.state.Load()
	if st == stateClosed || (st == stateClosing && !overCap) {
		return ErrClosed, false
	}
	// started is set once part of b is on the wire: the rest must then follow
	// whatever the cap says, or the peer would read a torn frame.
	started := false
	if c.out == nil && st != stateConnecting {
		if cfg.WriteReadiness == WriteAlways {
			// EPOLLOUT is always registered; an edge that fires between this write
			// and the queueing below must not be ignored (see loop.dispatch).
			c.outState.Store(outWriting)
		}
		n, werr := unix.Write(int(c.fd), b)
		if n > 0 {
			l.stats.bytesOut.Add(uint64(n))
			b = b[n:]
			started = true
		}
		if len(b) == 0 {
			c.outState.Store(0)
			return nil, false
		}
		if werr != nil && werr != unix.EAGAIN && werr != unix.EINTR {
			// The peer is gone (EPIPE, ECONNRESET). Stop here; the epoller tears down.
			c.outState.Store(0)
			werr = fmt.Errorf("reactor: write: %w", werr)
			return werr, c.beginCloseLocked(ReasonError, werr, nil)
		}
	}
	queued := 0
	if c.out != nil {
		queued = c.out.size
	}
	if !overCap && !started && queued+len(b) > cfg.WriteHardCap {
		c.outState.And(outQueued)
		return ErrSlow, c.beginCloseLocked(ReasonSlow, ErrSlow, l.r.farewell(ReasonSlow, ErrSlow))
	}
	if c.out == nil {
		c.out = &outQueue{}
		l.stats.writeQueued.Add(1)
		if st != stateConnecting && cfg.WriteReadiness == WriteDynamic {
			l.armWrite(c)
		}
	}
	c.outState.Store(outQueued)
	c.out.push(&l.r.bufs, b)
	l.stats.outBytes.Add(int64(len(b)))
	if c.out.size > cfg.WriteHighWater && c.pause.Load()&pauseOut == 0 {
		c.pause.Or(pauseOut)
		l.stats.readPauses.Add(1)
	}
	if !overCap && c.out.size > cfg.WriteHardCap {
		// Only a write that had started on the wire gets here: it is queued whole,
		// and the connection closes as slow behind it, farewell last.
		return nil, c.beginCloseLocked(ReasonSlow, ErrSlow, l.r.farewell(ReasonSlow, ErrSlow))
	}
	return nil, false
}

// FramesRead reports how many complete frames have been read from the connection so
// far, handled or still queued for a worker (all the frames one read brought are
// counted before the first of them is handed over). Frames reach the handler in the order
// read, so a handler that numbers the frames it handles can tell whether a frame was
// read before some moment of its own (the count it took then): a protocol that
// forbids frames before a reply uses it to judge frames pipelined behind a request.
func (c *Conn) FramesRead() uint32 { return c.framesRead.Load() }

// OutputRoom reports how many more bytes may be written before the outbound queue
// reaches its hard cap (and the connection is kicked as slow); 0 once closing. A
// handler replaying a backlog sizes its batches by it, so that its own replay never
// gets a prompt reader kicked.
func (c *Conn) OutputRoom() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Load() >= stateClosing {
		return 0
	}
	room := c.loop.r.cfg.WriteHardCap
	if c.out != nil {
		room -= c.out.size
	}
	return max(room, 0)
}

// PauseReading stops reading from the connection until ResumeReading: what the peer
// sends waits in the kernel, whose receive window then pushes back on the peer. A
// load generator uses it to play a slow reader. Safe from any goroutine.
func (c *Conn) PauseReading() { c.pause.Or(pauseUser) }

// ResumeReading undoes PauseReading. Under edge-triggered epoll nothing would report
// the bytes that arrived meanwhile, so the connection is put back on its epoller's
// ready list to be read at once.
func (c *Conn) ResumeReading() {
	if c.pause.And(^pauseUser) == pauseUser {
		c.loop.post(task{op: opResume, c: c})
	}
}

// Close closes the connection gracefully: queued output is flushed, then the write
// side is shut down and the connection lingers (up to Config.Linger) for the peer's
// FIN, so that closing never becomes a reset that destroys what the peer has yet to
// read. Idempotent; safe from any goroutine. OnClose follows with ReasonLocal.
func (c *Conn) Close() { c.CloseWith(nil) }

// CloseWith is Close with last words: farewell is queued, past the hard cap if need
// be, before the write side is shut down. Use it for a protocol's kick frame.
func (c *Conn) CloseWith(farewell []byte) {
	c.mu.Lock()
	closing := c.beginCloseLocked(ReasonLocal, nil, farewell)
	c.mu.Unlock()
	if closing {
		c.loop.post(task{op: opClosing, c: c})
	}
}

// beginCloseLocked moves the connection to closing, once, queueing farewell. It
// returns true if it made the move; the caller must then hand the connection to its
// epoller (loop.closing), after releasing c.mu. Caller holds c.mu.
func (c *Conn) beginCloseLocked(r Reason, cause error, farewell []byte) bool {
	st := c.state.Load()
	if st >= stateClosing {
		return false
	}
	c.reason, c.cause = r, cause
	if r != ReasonPeer && r != ReasonError {
		c.marks.Or(markKicked)
	}
	c.state.Store(stateClosing)
	if st != stateConnecting && len(farewell) > 0 {
		c.writeLocked(farewell, true) //nolint:errcheck // best effort: the peer may be gone
	}
	return true
}
