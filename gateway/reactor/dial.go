package reactor

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Dial errors.
var (
	ErrStopping     = errors.New("reactor: stopping")
	ErrTooManyConns = errors.New("reactor: connection limit reached")
)

// Dial starts a non-blocking connection to remote, from local's address when it is
// valid (so that many connections can spread over several source addresses, each
// with its own ephemeral port range), and returns at once. ctx becomes the
// connection's Context before any callback. OnOpen follows when the handshake
// completes, or OnClose with ReasonError if it fails. Writes made before then are
// queued and sent on connect.
func (r *Reactor) Dial(remote netip.AddrPort, local netip.Addr, ctx any) (*Conn, error) {
	if r.stopping.Load() {
		return nil, ErrStopping
	}
	if r.conns.Add(1) > int64(r.maxConns) {
		r.conns.Add(-1)
		return nil, ErrTooManyConns
	}
	fd, err := dialSocket(remote, local, r.tuneSocket)
	if err != nil {
		r.conns.Add(-1)
		return nil, err
	}
	r.astats.dialed.Add(1)
	c := &Conn{fd: int32(fd), ctx: ctx}
	c.state.Store(stateConnecting)
	c.marks.Store(markAdmitted) // a connection we dialed has nothing to prove
	l := r.pickLoop()
	c.loop = l
	l.post(task{op: opRegister, c: c})
	return c, nil
}

func dialSocket(remote netip.AddrPort, local netip.Addr, tune func(fd int)) (int, error) {
	fd, err := unix.Socket(family(remote.Addr()), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	fail := func(what string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("dial %s: %s: %w", remote, what, err)
	}
	tune(fd) // before connect, so the buffer sizes shape the window from the SYN on
	if local.IsValid() {
		// Choose the port at connect time, by the full 4-tuple, instead of
		// reserving one per source address at bind time.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1); err != nil {
			return fail("IP_BIND_ADDRESS_NO_PORT", err)
		}
		if err := unix.Bind(fd, sockaddr(netip.AddrPortFrom(local, 0))); err != nil {
			return fail("bind "+local.String(), err)
		}
	}
	if err := unix.Connect(fd, sockaddr(remote)); err != nil && err != unix.EINPROGRESS {
		return fail("connect", err)
	}
	return fd, nil
}
