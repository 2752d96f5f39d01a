package reactor

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// epoll event masks. EPOLLET makes every readiness an edge: the kernel reports it once
// and then stays silent until new data (or space) arrives. Hence the rules the loop
// lives by: read until the socket is drained, and when it stops early (the per-event
// byte cap, a pause), remember to come back by itself, because no further event will
// come for bytes that are already waiting (gnet#599; ET starvation).
const (
	evRead  = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET
	evWrite = evRead | unix.EPOLLOUT
)

// wakeSlot marks the epoller's eventfd in epoll data; connections use slot numbers.
const wakeSlot = -1

// op is a request handed to an epoller from another goroutine (or from itself).
type op uint8

const (
	opRegister op = iota // adopt c: table, epoll, OnOpen
	opClosing            // c moved to closing: flush, shut down writing, linger
	opResume             // c's reading was paused and may resume
	opShutdown           // close every connection with ReasonShutdown
	opForce              // tear down every connection that is left
	opExit               // leave the loop
)

type task struct {
	op op
	c  *Conn
}

// loop is one epoller: an epoll fd, the connections registered on it, and the single
// goroutine that owns them. Everything not marked otherwise is touched only by that
// goroutine.
type loop struct {
	r      *Reactor
	id     int
	epfd   int
	wakefd int
	events []unix.EpollEvent
	buf    []byte   // shared read buffer: frames are parsed in place here
	iov    [][]byte // writev scratch

	// The connection table. epoll data carries (slot, generation); a slot's
	// generation is bumped when its connection is torn down, so an event that was
	// already queued for the old connection can never be applied to a new one that
	// reuses the slot (golang/go#59545).
	table []*Conn
	gens  []uint32
	free  []uint32

	ready, readyNext []*Conn // connections to read again without waiting for an event
	lingering        []*Conn // closing connections in deadline order (constant linger)
	wheel            wheel
	now              int64 // reactor clock at the last wake-up
	exiting          bool

	mu     sync.Mutex // guards tasks and woken
	tasks  []task
	spare  []task
	woken  bool
	wakeup [8]byte // the eventfd increment (1, host order); read-only

	stats loopStats
}

func newLoop(r *Reactor, id int) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: wakeSlot}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("epoll_ctl(add eventfd): %w", err)
	}
	l := &loop{
		r:      r,
		id:     id,
		epfd:   epfd,
		wakefd: wakefd,
		events: make([]unix.EpollEvent, r.cfg.EpollBatch),
		buf:    make([]byte, r.cfg.ReadBuffer),
		iov:    make([][]byte, 0, 8),
		wheel:  newWheel(r.wheelTick, r.clock()),
	}
	l.wakeup[0] = 1 // little-endian 1; eventfd takes a host-order uint64
	return l, nil
}

func (l *loop) closeFDs() {
	unix.Close(l.epfd)
	unix.Close(l.wakefd)
}

// post hands t to the loop from any goroutine. Wake-ups are coalesced: only the post
// that finds the loop not yet woken writes to the eventfd.
func (l *loop) post(t task) {
	l.mu.Lock()
	l.tasks = append(l.tasks, t)
	wake := !l.woken
	l.woken = true
	l.mu.Unlock()
	if wake {
		unix.Write(l.wakefd, l.wakeup[:]) //nolint:errcheck // EAGAIN only if the counter is saturated: already awake
	}
}

func (l *loop) run() {
	for !l.exiting {
		n, err := unix.EpollWait(l.epfd, l.events, l.timeout())
		if err != nil && err != unix.EINTR {
			l.r.log.Error("epoll_wait failed; epoller stops", "epoller", l.id, "err", err)
			return
		}
		l.now = l.r.clock()
		l.stats.observeBatch(n)
		for i := 0; i < n; i++ {
			ev := &l.events[i]
			if ev.Fd == wakeSlot {
				var drain [8]byte
				unix.Read(l.wakefd, drain[:]) //nolint:errcheck // EAGAIN: nothing to drain
				l.runTasks()
				continue
			}
			l.dispatch(ev)
		}
		l.runReady()
		l.expire()
	}
}

// timeout is how long epoll_wait may sleep: not at all while connections wait on the
// ready list, until the next timer otherwise.
func (l *loop) timeout() int {
	if len(l.ready) > 0 {
		return 0
	}
	next := int64(-1)
	if l.r.cfg.timers() {
		next = l.wheel.next()
	}
	if len(l.lingering) > 0 {
		if d := l.lingering[0].lastActive; next < 0 || d < next {
			next = d
		}
	}
	if next < 0 {
		return -1
	}
	ms := (next - l.r.clock() + 999_999) / 1_000_000
	return int(max(ms, 0))
}

func (l *loop) runTasks() {
	l.mu.Lock()
	tasks := l.tasks
	l.tasks = l.spare[:0]
	l.woken = false
	l.mu.Unlock()
	for i, t := range tasks {
		tasks[i] = task{}
		switch t.op {
		case opRegister:
			l.register(t.c)
		case opClosing:
			l.closing(t.c)
		case opResume:
			l.requeue(t.c)
		case opShutdown:
			l.closeAll()
		case opForce:
			for _, c := range l.table {
				if c != nil {
					l.teardown(c, ReasonShutdown, nil)
				}
			}
		case opExit:
			l.exiting = true
		}
	}
	l.spare = tasks[:0]
}

// register adds c to the table and to epoll, then (for an accepted connection)
// delivers OnOpen. A connection that was closed before it got here is torn down.
func (l *loop) register(c *Conn) {
	var slot uint32
	if n := len(l.free); n > 0 {
		slot = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		slot = uint32(len(l.table))
		l.table = append(l.table, nil)
		l.gens = append(l.gens, 0)
	}
	c.slot, c.gen = slot, l.gens[slot]
	l.table[slot] = c
	st := c.state.Load()
	mask := uint32(evRead)
	if st == stateConnecting || l.r.cfg.WriteReadiness == WriteAlways {
		mask = evWrite
	}
	ev := unix.EpollEvent{Events: mask, Fd: int32(slot), Pad: int32(c.gen)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, int(c.fd), &ev); err != nil {
		l.teardown(c, ReasonError, fmt.Errorf("epoll_ctl(add): %w", err))
		return
	}
	switch st {
	case stateOpen:
		l.opened(c)
	case stateClosing:
		l.teardown(c, c.reason, c.cause)
	}
}

// opened starts an open connection's life on this loop.
func (l *loop) opened(c *Conn) {
	c.lflags |= lfOpened
	c.lastActive, c.openedAt = l.now, l.now
	if d, ok := l.deadline(c); ok {
		l.wheel.add(c, d)
	}
	l.r.cfg.Handler.OnOpen(c)
}

// connected finishes a Dial on its first EPOLLOUT; false if the connection failed.
func (l *loop) connected(c *Conn) bool {
	soerr, err := unix.GetsockoptInt(int(c.fd), unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && soerr != 0 {
		err = unix.Errno(soerr)
	}
	if err != nil {
		l.teardown(c, ReasonError, fmt.Errorf("connect: %w", err))
		return false
	}
	c.mu.Lock()
	if c.state.Load() == stateConnecting {
		c.state.Store(stateOpen)
	}
	if c.out == nil && l.r.cfg.WriteReadiness == WriteDynamic {
		l.modify(c, evRead)
	}
	c.mu.Unlock()
	l.opened(c)
	return true
}

func (l *loop) lookup(ev *unix.EpollEvent) *Conn {
	slot := uint32(ev.Fd)
	if int(slot) >= len(l.table) {
		return nil
	}
	c := l.table[slot]
	if c == nil || c.gen != uint32(ev.Pad) {
		return nil
	}
	return c
}

// dispatch applies one epoll event to its connection.
func (l *loop) dispatch(ev *unix.EpollEvent) {
	c := l.lookup(ev)
	if c == nil {
		l.stats.staleEvents.Add(1)
		return
	}
	e := ev.Events
	if c.state.Load() == stateConnecting {
		if e&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 || !l.connected(c) {
			return
		}
	}
	// With EPOLLOUT always registered, ET reports it with every wake-up of a writable
	// socket; outState says whether anything waits (or a writer is mid-way, whose
	// EAGAIN edge may be this one).
	if e&unix.EPOLLOUT != 0 && c.outState.Load() != 0 {
		l.flush(c)
	}
	if e&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		c.lflags |= lfRDHUP
	}
	if e&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		l.read(c)
	}
	if e&unix.EPOLLERR != 0 && c.state.Load() != stateClosed {
		soerr, _ := unix.GetsockoptInt(int(c.fd), unix.SOL_SOCKET, unix.SO_ERROR)
		l.teardown(c, ReasonError, fmt.Errorf("socket error: %w", unix.Errno(soerr)))
	}
}

// requeue puts c on the ready list, once, to be read again after the others.
func (l *loop) requeue(c *Conn) {
	if c.lflags&lfReady != 0 || c.state.Load() == stateClosed {
		return
	}
	c.lflags |= lfReady
	l.ready = append(l.ready, c)
}

// runReady reads the connections that were put on the ready list before this round.
// Those requeued while it runs wait for the next round, after fresh events: a
// flooder gets one budget per round like everyone else.
func (l *loop) runReady() {
	if len(l.ready) == 0 {
		return
	}
	list := l.ready
	l.ready = l.readyNext[:0]
	for i, c := range list {
		list[i] = nil
		c.lflags &^= lfReady
		l.read(c)
	}
	l.readyNext = list[:0]
}

// read drains c. Under ET it must read until the socket is empty: a read that returns
// less than asked proves it (epoll(7)), EAGAIN proves it, anything else means come
// back. Complete frames are handed over in place; an incomplete one is carried.
func (l *loop) read(c *Conn) {
	switch c.state.Load() {
	case stateClosed:
		return
	case stateClosing:
		l.discard(c)
		return
	}
	cfg := &l.r.cfg
	budget := cfg.MaxReadPerEvent
	for budget > 0 {
		if c.pause.Load() != 0 {
			return // resumed by whoever clears the pause
		}
		if c.in != nil && c.inWant > 0 {
			// A frame of known size is being assembled: read only its missing bytes,
			// straight into its own buffer (no quadratic re-copying of a big frame).
			b := *c.in
			want := int(c.inWant)
			missing := want - len(b)
			n, err := unix.Read(int(c.fd), b[len(b):want])
			if !l.readResult(c, n, err) {
				return
			}
			budget -= n
			b = b[:len(b)+n]
			*c.in = b
			if n < missing && c.lflags&lfRDHUP == 0 {
				return // short read: drained
			}
			c.framesRead.Add(1)
			ok := l.deliver(c, b)
			// deliver may have closed the connection and, its peer's FIN already
			// read, torn it down — which returned c.in. Return it only if not.
			if c.in != nil {
				l.r.bufs.put(c.in)
				c.in, c.inWant = nil, 0
			}
			if !ok {
				return
			}
			continue
		}
		// Read into the shared buffer, behind a partial header carried over.
		t := 0
		if c.in != nil {
			t = copy(l.buf, *c.in)
			l.r.bufs.put(c.in)
			c.in = nil
		}
		n, err := unix.Read(int(c.fd), l.buf[t:])
		if n <= 0 && t > 0 {
			l.carry(c, l.buf[:t], 0)
		}
		if !l.readResult(c, n, err) {
			return
		}
		budget -= n
		end := t + n
		off, want, ok := l.parse(c, l.buf[:end])
		if !ok {
			return
		}
		if off < end {
			l.carry(c, l.buf[off:end], want)
		}
		if n < len(l.buf)-t && c.lflags&lfRDHUP == 0 {
			return // short read: drained
		}
	}
	// The budget is spent and data may still be waiting: no new edge will come for it.
	l.stats.readRequeues.Add(1)
	l.requeue(c)
}

// readResult accounts for one read and handles its end conditions; true if n > 0
// bytes arrived and reading may go on.
func (l *loop) readResult(c *Conn, n int, err error) bool {
	if n > 0 {
		// Bytes alone are not activity: a peer trickling an unfinished frame is idle
		// (deliver stamps lastActive for each complete frame).
		l.stats.bytesIn.Add(uint64(n))
		return true
	}
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		// drained (EINTR: the next event or round retries)
	case err == nil: // EOF
		l.peerClosed(c)
	default:
		l.teardown(c, ReasonError, fmt.Errorf("read: %w", err))
	}
	return false
}

// peerClosed handles the peer's FIN. Everything it sent before has been read and
// handed over (RDHUP with unread data must not lose it: netty#3709). A frame cut off
// by the FIN is a protocol error the peer is told about: it may still be reading.
func (l *loop) peerClosed(c *Conn) {
	c.lflags |= lfPeerEOF
	if c.in != nil {
		l.close(c, ReasonProtocol, ErrTruncatedFrame)
		return
	}
	l.close(c, ReasonPeer, nil)
}

// parse hands every complete frame in b to the handler. It returns how many bytes it
// consumed, the full size of the incomplete frame at b[off:] if its header is
// complete (0 if not), and false if the connection stopped being open.
func (l *loop) parse(c *Conn, b []byte) (off, want int, ok bool) {
	// Count the read's complete frames before handing any over: a worker may run the
	// first frame while this loop is still on the next, and FramesRead must already
	// cover every frame that arrived with it.
	n := uint32(0)
	for o := 0; o < len(b); n++ {
		size, err := l.r.cfg.Framer(b[o:])
		if err != nil || size == 0 || size > len(b)-o {
			break
		}
		o += size
	}
	c.framesRead.Add(n)
	maxFrame := 0
	if lim := c.limits.Load(); lim != nil {
		maxFrame = lim.MaxFrame
	}
	for off < len(b) {
		size, err := l.r.cfg.Framer(b[off:])
		if err == nil && maxFrame > 0 && size > maxFrame {
			err = ErrFrameTooLarge // refused on its header: none of it is carried
		}
		if err != nil {
			l.close(c, ReasonProtocol, err)
			return off, 0, false
		}
		if size == 0 || size > len(b)-off {
			return off, size, true
		}
		if !l.deliver(c, b[off:off+size]) {
			return off, 0, false
		}
		off += size
	}
	return off, 0, true
}

// carry keeps the head of an incomplete frame in a pooled per-connection buffer of
// the frame's size class (the header's when the size is not known yet): parse has
// checked the size against the connection's MaxFrame, so a connection under a small
// limit holds a small buffer.
func (l *loop) carry(c *Conn, head []byte, want int) {
	b := l.r.bufs.get(max(want, len(head)))
	*b = append(*b, head...)
	c.in, c.inWant = b, int32(want)
}

// deliver hands one complete frame to the handler, or to the worker pool when the
// handler defers it or when earlier frames of this connection are still queued there
// (so that frames are always handled in order). A frame over the connection's rates
// goes to Config.Refused instead. Nothing is handed over once the connection is
// closing (a KICK was sent): the frames behind it are dropped, here and on the
// workers. It reports whether c is still open.
func (l *loop) deliver(c *Conn, frame []byte) bool {
	l.stats.framesIn.Add(1)
	if c.state.Load() != stateOpen {
		return false
	}
	c.lastActive = l.now
	if lim := c.limits.Load(); lim != nil && !c.admitFrame(lim, len(frame), l.now) {
		l.stats.refused.Add(1)
		counts := true
		if l.r.cfg.Refused != nil {
			counts = l.r.cfg.Refused(c, frame)
		}
		if counts && c.refusal(lim, len(frame), l.now) {
			l.close(c, ReasonRate, ErrRateExceeded)
		}
		return c.state.Load() == stateOpen
	}
	if c.jobs.busy() || l.r.cfg.Handler.OnFrame(c, frame) == Defer {
		if c.state.Load() == stateOpen {
			l.r.deferFrame(c, frame)
		}
	}
	return c.state.Load() == stateOpen
}

// discard reads and drops input while closing, until the peer's FIN.
func (l *loop) discard(c *Conn) {
	budget := l.r.cfg.MaxReadPerEvent
	for budget > 0 {
		n, err := unix.Read(int(c.fd), l.buf)
		if n <= 0 {
			switch {
			case err == unix.EAGAIN || err == unix.EINTR:
			case err == nil:
				c.lflags |= lfPeerEOF
				if c.outState.Load() == 0 {
					l.teardown(c, c.reason, c.cause)
				}
			default:
				l.teardown(c, c.reason, c.cause)
			}
			return
		}
		l.stats.bytesIn.Add(uint64(n))
		budget -= n
		if n < len(l.buf) && c.lflags&lfRDHUP == 0 {
			return
		}
	}
	l.requeue(c)
}

// flush writes c's queued output with writev until it is empty or the socket is full.
func (l *loop) flush(c *Conn) {
	var failed error
	resume, finished := false, false
	c.mu.Lock()
	q := c.out
	for q != nil && q.size > 0 {
		iov := q.appendIovecs(l.iov[:0])
		want := 0
		for _, b := range iov {
			want += len(b)
		}
		n, err := unix.Writev(int(c.fd), iov)
		if n > 0 {
			q.consume(&l.r.bufs, n)
			l.stats.bytesOut.Add(uint64(n))
			l.stats.outBytes.Add(-int64(n))
		}
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN || (err == nil && n < want) {
			break // full; the next EPOLLOUT edge resumes
		}
		if err != nil {
			failed = err
			break
		}
	}
	clear(l.iov[:cap(l.iov)])
	if q != nil && failed == nil {
		if q.size == 0 {
			q.release(&l.r.bufs)
			c.out = nil
			c.outState.Store(0)
			if l.r.cfg.WriteReadiness == WriteDynamic && c.state.Load() != stateClosed {
				l.modify(c, evRead)
			}
			finished = c.state.Load() == stateClosing
		}
		if q.size <= l.r.cfg.WriteHighWater/2 && c.pause.Load()&pauseOut != 0 {
			resume = c.pause.And(^pauseOut) == pauseOut
		}
	}
	c.mu.Unlock()
	switch {
	case failed != nil:
		l.teardown(c, ReasonError, fmt.Errorf("writev: %w", failed))
	case finished:
		l.finishWrites(c)
	case resume:
		l.requeue(c)
	}
}

// armWrite asks for EPOLLOUT while output is pending (WriteDynamic). Any goroutine;
// caller holds c.mu, which also orders it against teardown's EPOLL_CTL_DEL.
func (l *loop) armWrite(c *Conn) { l.modify(c, evWrite) }

func (l *loop) modify(c *Conn, mask uint32) {
	if c.fd < 0 {
		return
	}
	l.stats.writeArms.Add(1)
	ev := unix.EpollEvent{Events: mask, Fd: int32(c.slot), Pad: int32(c.gen)}
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, int(c.fd), &ev) //nolint:errcheck // only fails for a closed fd, which mu excludes
}

// close starts closing c from the loop itself, with the farewell the reactor's
// configuration gives for the reason.
func (l *loop) close(c *Conn, r Reason, cause error) {
	c.mu.Lock()
	ok := c.beginCloseLocked(r, cause, l.r.farewell(r, cause))
	c.mu.Unlock()
	if ok {
		l.closing(c)
	}
}

// closing sees a connection through its close: once its output is flushed the write
// side is shut down; it is torn down at the peer's FIN or at the linger deadline.
func (l *loop) closing(c *Conn) {
	if c.state.Load() != stateClosing {
		return
	}
	if c.lflags&lfOpened == 0 {
		l.teardown(c, c.reason, c.cause) // never connected: nothing to flush or say
		return
	}
	c.lastActive = l.now + int64(l.r.cfg.Linger)
	l.lingering = append(l.lingering, c)
	if c.outState.Load() == 0 {
		l.finishWrites(c)
	}
}

// finishWrites runs once a closing connection's output is all sent.
func (l *loop) finishWrites(c *Conn) {
	if c.lflags&lfPeerEOF != 0 {
		l.teardown(c, c.reason, c.cause)
		return
	}
	unix.Shutdown(int(c.fd), unix.SHUT_WR) //nolint:errcheck // ENOTCONN: the peer is already gone; the linger ends it
	l.discard(c)
}

// closeAll starts closing every connection on this loop (shutdown).
func (l *loop) closeAll() {
	for _, c := range l.table {
		if c == nil {
			continue
		}
		if c.state.Load() == stateConnecting {
			l.teardown(c, ReasonShutdown, nil)
			continue
		}
		l.close(c, ReasonShutdown, nil)
	}
}

// expire runs the timers: idle connections are closed, and lingering ones whose
// deadline passed are torn down.
func (l *loop) expire() {
	if l.r.cfg.timers() {
		l.wheel.advance(l.now, l.timerDue)
	}
	i := 0
	for ; i < len(l.lingering); i++ {
		c := l.lingering[i]
		if c.state.Load() == stateClosed {
			l.lingering[i] = nil
			continue
		}
		if c.lastActive > l.now {
			break
		}
		l.lingering[i] = nil
		l.teardown(c, c.reason, c.cause)
	}
	if i > 0 {
		l.lingering = append(l.lingering[:0], l.lingering[i:]...)
	}
}

// deadline returns c's next timer deadline: the admission deadline while the handler
// has not admitted it, and the idle deadline; ok is false when neither applies.
func (l *loop) deadline(c *Conn) (d int64, ok bool) {
	cfg := &l.r.cfg
	if cfg.AdmitTimeout > 0 && c.marks.Load()&markAdmitted == 0 {
		d, ok = c.openedAt+int64(cfg.AdmitTimeout), true
	}
	if cfg.IdleTimeout > 0 {
		if i := c.lastActive + int64(cfg.IdleTimeout); !ok || i < d {
			d, ok = i, true
		}
	}
	return d, ok
}

// timerDue is the wheel's callback: close c if its admission or idle deadline has
// passed, else re-arm it at the next one (lazily: activity never touches the wheel).
func (l *loop) timerDue(c *Conn) {
	if c.state.Load() != stateOpen {
		return // closing or closed: the wheel just forgets it
	}
	cfg := &l.r.cfg
	switch {
	case cfg.AdmitTimeout > 0 && c.marks.Load()&markAdmitted == 0 && c.openedAt+int64(cfg.AdmitTimeout) <= l.now:
		l.close(c, ReasonUnadmitted, nil)
	case cfg.IdleTimeout > 0 && c.lastActive+int64(cfg.IdleTimeout) <= l.now:
		l.close(c, ReasonIdle, nil)
	default:
		if d, ok := l.deadline(c); ok {
			l.wheel.add(c, d)
		}
	}
}

// teardown ends c: closed state, slot freed (generation bumped), epoll
// registration removed, fd closed exactly once, buffers returned, and OnClose
// delivered after any frames still queued for the workers.
func (l *loop) teardown(c *Conn, r Reason, cause error) {
	c.mu.Lock()
	st := c.state.Load()
	if st == stateClosed {
		c.mu.Unlock()
		return
	}
	if st != stateClosing {
		c.reason, c.cause = r, cause
	}
	c.state.Store(stateClosed)
	fd := int(c.fd)
	c.fd = -1
	if c.out != nil {
		// Output left unsent (the linger ran out on a peer that stopped reading):
		// the kernel may hold the first part of a frame whose rest is dropped here.
		// Reset the connection rather than end it with a FIN, so the peer sees an
		// error, never a torn frame followed by a clean end of stream.
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}) //nolint:errcheck
		l.stats.outBytes.Add(-int64(c.out.size))
		c.out.release(&l.r.bufs)
		c.out = nil
	}
	c.outState.Store(0)
	c.mu.Unlock()

	l.table[c.slot] = nil
	l.gens[c.slot]++
	l.free = append(l.free, c.slot)
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil) //nolint:errcheck
	unix.Close(fd)
	if c.in != nil {
		l.r.bufs.put(c.in)
		c.in, c.inWant = nil, 0
	}
	l.stats.closed[c.reason].Add(1)
	l.r.releaseAddr(c)
	l.r.connClosed()
	l.r.notifyClose(c)
}
