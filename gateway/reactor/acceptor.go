package reactor

import (
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// acceptor is one accept loop: a non-blocking SO_REUSEPORT listener watched by its own
// small epoll set together with an eventfd that stops it.
type acceptor struct {
	r      *Reactor
	lfd    int
	epfd   int
	stopfd int
	addr   netip.AddrPort
	stopCh chan struct{}
	// interval is the minimum spacing of admissions for this loop (AcceptRate split
	// across the loops); next is the earliest time the next one may happen.
	interval int64
	next     int64
}

// Back-off after accept failures that retrying at once cannot fix (out of fds or
// memory): the listener is edge-triggered and the backlog keeps the connections, so
// sleeping loses nothing, while spinning would burn a core (vibe-d/eventcore#49).
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = 500 * time.Millisecond
)

func newAcceptor(r *Reactor, ap netip.AddrPort) (*acceptor, error) {
	lfd, bound, err := listen(ap, r.cfg.Backlog)
	if err != nil {
		return nil, err
	}
	a := &acceptor{r: r, lfd: lfd, addr: bound, stopCh: make(chan struct{}), epfd: -1, stopfd: -1}
	if r.cfg.AcceptRate > 0 {
		a.interval = int64(float64(time.Second) * float64(r.cfg.Listeners) / r.cfg.AcceptRate)
	}
	if a.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		a.closeFDs()
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if a.stopfd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		a.closeFDs()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	for _, ev := range []unix.EpollEvent{
		{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(lfd)},
		{Events: unix.EPOLLIN, Fd: int32(a.stopfd)},
	} {
		if err := unix.EpollCtl(a.epfd, unix.EPOLL_CTL_ADD, int(ev.Fd), &ev); err != nil {
			a.closeFDs()
			return nil, fmt.Errorf("epoll_ctl(add listener): %w", err)
		}
	}
	return a, nil
}

func (a *acceptor) closeFDs() {
	for _, fd := range []int{a.lfd, a.epfd, a.stopfd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	a.lfd, a.epfd, a.stopfd = -1, -1, -1
}

// stop wakes the loop, which returns; its fds are closed by the caller once it has
// (closing them under a running loop could hand its descriptor numbers to someone else).
func (a *acceptor) stop() {
	var one = [8]byte{1}
	unix.Write(a.stopfd, one[:]) //nolint:errcheck
	close(a.stopCh)
}

func (a *acceptor) run() {
	defer a.drainBacklog()
	events := make([]unix.EpollEvent, 2)
	for {
		n, err := unix.EpollWait(a.epfd, events, -1)
		if err != nil && err != unix.EINTR {
			a.r.log.Error("accept loop: epoll_wait failed", "err", err)
			return
		}
		for i := 0; i < n; i++ {
			if int(events[i].Fd) == a.stopfd {
				return
			}
		}
		if !a.acceptAll() {
			return
		}
	}
}

// acceptAll accepts until the backlog is empty (the listener is edge-triggered);
// false if the loop was stopped meanwhile.
func (a *acceptor) acceptAll() bool {
	backoff := time.Duration(0)
	for {
		if a.interval > 0 && !a.throttle() {
			return false
		}
		// accept4 through the raw system call: unix.Accept4 allocates the peer's
		// address on every call, and nothing here needs it.
		nfd, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(a.lfd), 0, 0,
			unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		switch errno {
		case 0:
			backoff = 0
			a.admit(int(nfd))
			continue
		case unix.EAGAIN:
			return true
		case unix.EINTR, unix.ECONNABORTED, unix.EPROTO:
			continue
		}
		a.r.astats.acceptErrors.Add(1)
		backoff = min(max(2*backoff, minAcceptBackoff), maxAcceptBackoff)
		if backoff == minAcceptBackoff || backoff == maxAcceptBackoff {
			a.r.log.Warn("accept failing; backing off", "err", errno, "backoff", backoff,
				"conns", a.r.conns.Load(), "nofile", a.r.limit.Soft)
		}
		if !a.sleep(backoff) {
			return false
		}
	}
}

// drainBacklog accepts what is still in the listen queue when the loop stops and
// says the shutdown farewell to it: closing a listener resets the connections in its
// backlog, which their clients (handshake done, maybe a LOGIN sent) would see as a
// crash rather than a shutdown.
func (a *acceptor) drainBacklog() {
	for range a.r.cfg.Backlog {
		nfd, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(a.lfd), 0, 0,
			unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		if errno != 0 {
			return
		}
		a.r.reject(int(nfd), ReasonShutdown)
	}
}

// throttle waits until the accept-rate limit allows the next admission.
func (a *acceptor) throttle() bool {
	now := a.r.clock()
	if a.next < now-a.interval {
		a.next = now - a.interval // allow a small burst after a quiet spell, not an unbounded one
	}
	a.next += a.interval
	if wait := a.next - now; wait > 0 {
		a.r.astats.throttled.Add(1)
		return a.sleep(time.Duration(wait))
	}
	return true
}

// sleep waits for d unless the loop is stopped first.
func (a *acceptor) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-a.stopCh:
		return false
	}
}

// admit reserves a place under the connection limit, atomically and before anything
// else (check-then-act would let a burst through: plato's limit), and hands the
// connection to an epoller. Over the limit the connection gets the BUSY farewell.
func (a *acceptor) admit(fd int) {
	r := a.r
	if r.conns.Add(1) > int64(r.maxConns) {
		r.conns.Add(-1)
		r.astats.rejected.Add(1)
		r.reject(fd, ReasonBusy)
		return
	}
	var peer *netip.Addr
	if r.perAddr != nil {
		var ok bool
		if peer, ok = r.holdAddr(fd); !ok {
			r.conns.Add(-1)
			r.astats.rejectedAddr.Add(1)
			r.reject(fd, ReasonAddrLimit)
			return
		}
	}
	r.tuneSocket(fd)
	r.astats.accepted.Add(1)
	c := &Conn{fd: int32(fd), peer: peer}
	c.limits.Store(r.cfg.OpenLimits)
	c.state.Store(stateOpen)
	l := r.pickLoop()
	c.loop = l
	l.post(task{op: opRegister, c: c})
}

// holdAddr counts a connection from fd's peer address under MaxConnsPerAddr; false
// if the address already holds that many (nothing is counted then). A peer whose
// address cannot be read is let through uncounted (nil): it is gone already.
func (r *Reactor) holdAddr(fd int) (*netip.Addr, bool) {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return nil, true
	}
	ip := addrPort(sa).Addr().Unmap()
	r.addrMu.Lock()
	defer r.addrMu.Unlock()
	if int(r.perAddr[ip]) >= r.cfg.MaxConnsPerAddr {
		return nil, false
	}
	r.perAddr[ip]++
	return &ip, true
}

// releaseAddr gives back c's place under MaxConnsPerAddr. Called once, at teardown.
func (r *Reactor) releaseAddr(c *Conn) {
	if c.peer == nil {
		return
	}
	ip := *c.peer
	r.addrMu.Lock()
	if n := r.perAddr[ip] - 1; n > 0 {
		r.perAddr[ip] = n
	} else {
		delete(r.perAddr, ip)
	}
	r.addrMu.Unlock()
}

// reject says the farewell for reason on a connection that was never admitted, then
// closes it. The write cannot block: the socket is fresh and the farewell small. The
// write side is shut down first and any input read off, so that close sends a FIN
// after the farewell rather than a reset that could destroy it.
func (r *Reactor) reject(fd int, reason Reason) {
	if fw := r.farewell(reason, nil); len(fw) > 0 {
		unix.Write(fd, fw) //nolint:errcheck
	}
	unix.Shutdown(fd, unix.SHUT_WR) //nolint:errcheck
	var sink [512]byte
	for i := 0; i < 8; i++ {
		if n, _ := unix.Read(fd, sink[:]); n <= 0 {
			break
		}
	}
	unix.Close(fd)
}

func (r *Reactor) pickLoop() *loop {
	return r.loops[int(r.next.Add(1))%len(r.loops)]
}
