package reactor

import (
	"context"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func context2() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func netipMustParse(s string) netip.Addr         { return netip.MustParseAddr(s) }
func netipMustParsePort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// An event queued for a connection that was torn down must not be applied to the
// connection that reuses its slot: the generation differs, so it is dropped.
func TestStaleEventOnReusedSlotIsDropped(t *testing.T) {
	var frames, opens int
	h := &funcHandler{
		open:  func(*Conn) { opens++ },
		frame: func(*Conn, []byte) Disposition { frames++; return Handled },
	}
	r, err := New(Config{Handler: h, Framer: testFramer, Epollers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.closeFDs()
	l := r.loops[0] // not running: this goroutine plays the epoller

	pair := func() (int, int) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fds[1]) })
		return fds[0], fds[1]
	}
	adopt := func(fd int) *Conn {
		c := &Conn{fd: int32(fd), loop: l}
		c.state.Store(stateOpen)
		r.conns.Add(1)
		l.register(c)
		return c
	}

	fdA, _ := pair()
	a := adopt(fdA)
	staleEv := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(a.slot), Pad: int32(a.gen)}
	l.teardown(a, ReasonLocal, nil)

	fdB, peerB := pair()
	b := adopt(fdB)
	if b.slot != a.slot || b.gen == a.gen {
		t.Fatalf("B got slot %d gen %d; A had slot %d gen %d: want the same slot, a new generation", b.slot, b.gen, a.slot, a.gen)
	}
	if _, err := unix.Write(peerB, frame([]byte("for B"))); err != nil {
		t.Fatal(err)
	}

	l.dispatch(&staleEv)
	if frames != 0 || l.stats.staleEvents.Load() != 1 {
		t.Fatalf("stale event: %d frames delivered, %d counted stale; want 0 and 1", frames, l.stats.staleEvents.Load())
	}
	// The same event with B's generation is delivered: the check above could fail.
	fresh := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(b.slot), Pad: int32(b.gen)}
	l.dispatch(&fresh)
	if frames != 1 {
		t.Fatalf("fresh event: %d frames delivered, want 1", frames)
	}
	l.teardown(b, ReasonLocal, nil)
}

func TestWheelExpiresAndReArms(t *testing.T) {
	const tick = int64(10)
	w := newWheel(tick, 0)
	a, b, far := &Conn{}, &Conn{}, &Conn{}
	w.add(a, 25)
	w.add(b, 55)
	w.add(far, 10_000) // beyond the span: parked in the farthest slot, re-added later
	var due []*Conn
	w.advance(30, func(c *Conn) { due = append(due, c) })
	if len(due) != 1 || due[0] != a {
		t.Fatalf("at 30: due %v, want [a]", due)
	}
	due = nil
	w.advance(60, func(c *Conn) { due = append(due, c) })
	if len(due) != 1 || due[0] != b {
		t.Fatalf("at 60: due %d, want [b]", len(due))
	}
	due = nil
	w.advance(int64(wheelSlots)*tick, func(c *Conn) { due = append(due, c) })
	if len(due) != 1 || due[0] != far {
		t.Fatalf("far deadline should surface at the end of the span for re-arming; got %d", len(due))
	}
}

func TestOutQueueKeepsOrderAcrossChunks(t *testing.T) {
	var p bufPool
	var q outQueue
	var want []byte
	for i := range 100 {
		b := make([]byte, 1+i*97%5000)
		for j := range b {
			b[j] = byte(i + j)
		}
		q.push(&p, b)
		want = append(want, b...)
	}
	var got []byte
	iov := make([][]byte, 0, 3)
	for q.size > 0 {
		iov = q.appendIovecs(iov[:0])
		n := 0
		for _, b := range iov {
			take := min(len(b), 777) // partial writes
			got = append(got, b[:take]...)
			n += take
			if take < len(b) {
				break
			}
		}
		q.consume(&p, n)
	}
	if string(got) != string(want) {
		t.Fatal("outQueue reordered or lost bytes")
	}
	if len(q.chunks) != 0 {
		t.Fatalf("%d chunks left in an empty queue", len(q.chunks))
	}
}
