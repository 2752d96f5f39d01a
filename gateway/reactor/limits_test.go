package reactor

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/poll"
)

// GCRA arithmetic: a burst passes at once, then one unit per interval; a refused
// charge leaves the bucket untouched; a cost over the burst never passes.
func TestRateAdmitsBurstThenInterval(t *testing.T) {
	r := PerSecond(10, 3) // 100ms per unit
	var tat int64
	const ms = int64(time.Millisecond)
	steps := []struct {
		now  int64
		cost int64
		want bool
	}{
		{0, 1, true}, {0, 1, true}, {0, 1, true}, {0, 1, false}, // the burst, then refused
		{50 * ms, 1, false}, {100 * ms, 1, true}, {100 * ms, 1, false}, // one per interval
		{10_000 * ms, 3, true}, {10_000 * ms, 1, false}, // refilled to the burst, no further
		{20_000 * ms, 4, false}, {20_000 * ms, 3, true}, // over the burst never fits; the refusal cost nothing
	}
	for i, s := range steps {
		if got := r.Allow(&tat, s.now, s.cost); got != s.want {
			t.Fatalf("step %d (now %dms, cost %d): Allow = %v, want %v", i, s.now/ms, s.cost, got, s.want)
		}
	}
	if var0 := (Rate{}); !var0.Allow(&tat, 0, 1<<40) {
		t.Fatal("the zero Rate refused")
	}
}

// Before admission a header announcing more than OpenLimits.MaxFrame closes the
// connection at once (ReasonProtocol, ErrFrameTooLarge): the reactor never carries
// a partial frame bigger than the limit. After Admit the connection's limits apply.
func TestOpenFrameLimitClosesAtTheHeaderUntilAdmitted(t *testing.T) {
	log := newCloseLog()
	var causes sync.Map
	h := &funcHandler{
		frame: func(c *Conn, f []byte) Disposition {
			if string(payloadOf(f)) == "admit" {
				c.Admit(nil)
			}
			return echoFrame(c, f)
		},
		close: func(c *Conn, r Reason, err error) { causes.Store(c, err); log.onClose(c, r, err) },
	}
	r := startReactor(t, Config{Handler: h, OpenLimits: &Limits{MaxFrame: 4 + 64}})

	// The header of a 60 KB frame, and a little of it: the farewell comes at once,
	// not after the peer sends the rest.
	c := dial(t, r)
	big := frame(make([]byte, 60_000))
	c.Write(big[:100])
	c.expectFarewellThenEOF("protocol: "+ErrFrameTooLarge.Error(), 5*time.Second)
	if got := log.next(t, 5*time.Second); got != ReasonProtocol {
		t.Fatalf("closed with %v, want protocol", got)
	}

	// A frame at the limit passes; after Admit(nil) the big one does too.
	ok := dial(t, r)
	ok.send(bytes.Repeat([]byte("x"), 64))
	if p := ok.mustRecv(5 * time.Second); len(p) != 64 {
		t.Fatalf("echo of a 64-byte frame: %d bytes", len(p))
	}
	ok.send([]byte("admit"))
	ok.mustRecv(5 * time.Second)
	ok.send(make([]byte, 60_000))
	if p := ok.mustRecv(5 * time.Second); len(p) != 60_000 {
		t.Fatalf("echo after Admit: %d bytes, want 60000", len(p))
	}
	log.check(t)
}

// A connection the handler never admits is closed at AdmitTimeout with
// ReasonUnadmitted, however it trickles; an admitted one is not.
func TestUnadmittedConnectionsCloseAtTheDeadline(t *testing.T) {
	log := newCloseLog()
	h := &funcHandler{
		frame: func(c *Conn, f []byte) Disposition {
			c.Admit(nil)
			return echoFrame(c, f)
		},
		close: log.onClose,
	}
	const deadline = 300 * time.Millisecond
	r := startReactor(t, Config{Handler: h, AdmitTimeout: deadline})
	admitted := dial(t, r)
	admitted.send([]byte("hello"))
	admitted.mustRecv(5 * time.Second)

	start := time.Now()
	silent := dial(t, r)
	trickler := dial(t, r)
	// An unfinished frame, one byte every 20ms: bytes do not extend the deadline.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		b := frame(make([]byte, 1000))
		for i := 0; i < len(b); i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := trickler.Conn.Write(b[i : i+1]); err != nil {
				return
			}
		}
	}()
	for _, c := range []*client{silent, trickler} {
		c.expectFarewellThenEOF("unadmitted", 5*time.Second)
	}
	if took := time.Since(start); took < deadline || took > deadline+time.Second {
		t.Fatalf("closed after %v, want about %v", took, deadline)
	}
	for range 2 {
		if got := log.next(t, 5*time.Second); got != ReasonUnadmitted {
			t.Fatalf("closed with %v, want unadmitted", got)
		}
	}
	admitted.send([]byte("still here"))
	if p := admitted.mustRecv(5 * time.Second); string(p) != "still here" {
		t.Fatalf("admitted connection: got %q", p)
	}
	if s := r.Stats(); s.ClosedBy(ReasonUnadmitted) != 2 {
		n := s.ClosedBy(ReasonUnadmitted)
		t.Fatalf("closed unadmitted = %d, want 2", n)
	}
	log.check(t)
}

// The idle timer counts whole frames only: a peer trickling an unfinished frame
// one byte at a time is idle. (Before, any byte reset it, and a trickler was never
// closed.)
func TestTricklingAnUnfinishedFrameIsIdle(t *testing.T) {
	const idle = 300 * time.Millisecond
	r := startReactor(t, Config{Handler: &funcHandler{frame: echoFrame}, IdleTimeout: idle})
	c := dial(t, r)
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		c.expectFarewellThenEOF("idle", 5*time.Second)
	}()
	b := frame(make([]byte, 1000))
	for i := 0; i < len(b); i++ { // at most 1,004 × 20ms
		select {
		case <-closed:
			if took := time.Since(start); took > idle+700*time.Millisecond {
				t.Fatalf("idle close after %v, want about %v", took, idle)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		c.Conn.Write(b[i : i+1]) //nolint:errcheck // fails once closed
	}
	t.Fatal("a trickling connection was never closed as idle")
}

// Frames behind a close are not handed over: neither those later in the same
// read nor those already queued for a worker. (Before, both ran after the kick.)
func TestNothingIsHandledAfterAClose(t *testing.T) {
	var mu sync.Mutex
	var handled []string
	h := &funcHandler{
		frame: func(c *Conn, f []byte) Disposition {
			if string(payloadOf(f)) == "inline-kick" {
				c.CloseWith(frame([]byte("BYE local")))
				return Handled
			}
			return Defer
		},
		deferred: func(c *Conn, f []byte) {
			mu.Lock()
			handled = append(handled, string(payloadOf(f)))
			mu.Unlock()
			if string(payloadOf(f)) == "kick" {
				c.CloseWith(frame([]byte("BYE local")))
			}
		},
	}
	r := startReactor(t, Config{Handler: h})
	for _, first := range []string{"kick", "inline-kick"} {
		c := dial(t, r)
		var b []byte
		for _, p := range []string{first, "after-1", "after-2", "after-3"} {
			b = append(b, frame([]byte(p))...)
		}
		c.Conn.Write(b)
		c.expectFarewellThenEOF("local", 5*time.Second)
	}
	poll.True(t, 5*time.Second, "both connections torn down", func() bool { return r.Stats().Conns == 0 })
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 1 || handled[0] != "kick" {
		t.Fatalf("handled %q, want only the kicking frame", handled)
	}
}

// Frames over an admitted connection's rates go to Refused, not to the handler;
// more than MaxRefusals of them close it with ReasonRate and its farewell.
func TestRateLimitsRefuseThenClose(t *testing.T) {
	var lim atomic.Pointer[Limits] // what the next connection is admitted with
	lim.Store(&Limits{Frames: PerSecond(1, 5), MaxRefusals: 3, RefusalWindow: time.Minute})
	var handled, refused atomic.Int64
	log := newCloseLog()
	h := &funcHandler{
		open:  func(c *Conn) { c.Admit(lim.Load()) },
		frame: func(c *Conn, f []byte) Disposition { handled.Add(1); return Handled },
		close: log.onClose,
	}
	// Frames ending in "d" are harmless to drop: their refusals do not count.
	r := startReactor(t, Config{Handler: h, Refused: func(c *Conn, f []byte) bool {
		refused.Add(1)
		return !bytes.HasSuffix(f, []byte("d"))
	}})
	c := dial(t, r)
	var b []byte
	for range 20 {
		b = append(b, frame([]byte("f"))...)
	}
	c.Conn.Write(b)
	c.expectFarewellThenEOF("rate: "+ErrRateExceeded.Error(), 5*time.Second)
	if got := log.next(t, 5*time.Second); got != ReasonRate {
		t.Fatalf("closed with %v, want rate", got)
	}
	// 20 frames in one read at one instant: the burst of 5 passes, 4 refusals
	// close the connection, the rest is never looked at.
	if handled.Load() != 5 || refused.Load() != 4 || r.Stats().FramesRefused != 4 {
		t.Fatalf("handled %d, refused %d (stats %d); want 5 and 4", handled.Load(), refused.Load(), r.Stats().FramesRefused)
	}
	// The byte rate: a frame larger than what is left is refused too.
	lim.Store(&Limits{Bytes: PerSecond(1, 100)})
	c2 := dial(t, r)
	c2.send(make([]byte, 90)) // 94 bytes: passes
	c2.send(make([]byte, 10)) // 14 more: refused
	poll.True(t, 5*time.Second, "the second frame refused", func() bool { return refused.Load() == 5 })
	if handled.Load() != 6 {
		t.Fatalf("handled %d, want 6", handled.Load())
	}
	// Refusals the hook says do not count never close the connection.
	lim.Store(&Limits{Frames: PerSecond(1, 1), MaxRefusals: 1, RefusalWindow: time.Minute})
	c3 := dial(t, r)
	b = b[:0]
	for range 20 {
		b = append(b, frame([]byte("d"))...)
	}
	c3.Conn.Write(b)
	poll.True(t, 5*time.Second, "19 uncounted refusals", func() bool { return refused.Load() == 5+19 })
	c3.send([]byte("e")) // counts: the second counted refusal would close; this is the first
	poll.True(t, 5*time.Second, "the counted refusal", func() bool { return refused.Load() == 5+20 })
	if s := r.Stats(); s.Conns != 2 || handled.Load() != 7 {
		t.Fatalf("%d connections open, %d handled; want 2 (c2 and c3) and 7", s.Conns, handled.Load())
	}
	log.check(t)
}

// RefusalBytes bounds the refused volume, not only the count: refused frames of
// 10 KiB with RefusalBytes 4 KiB weigh 3 refusals each, so MaxRefusals 10 closes
// the connection at the fourth, where unweighted it would take eleven.
func TestLargeRefusedFramesWeighMore(t *testing.T) {
	tests := []struct {
		name         string
		refusalBytes int
		size         int
		closesAfter  int // refused frames up to and including the one that closes
	}{
		{"unweighted", 0, 10 << 10, 11},
		{"10 KiB frames weigh 3 each", 4 << 10, 10 << 10, 4},
		{"small frames weigh 1", 4 << 10, 100, 11},
		{"exactly one unit weighs 1", 4 << 10, 4 << 10, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := &Limits{Frames: PerSecond(1, 1), MaxRefusals: 10, RefusalWindow: time.Minute, RefusalBytes: tt.refusalBytes}
			c := &Conn{}
			now := int64(time.Hour)
			if !c.admitFrame(lim, tt.size, now) {
				t.Fatal("the first frame (the burst) was refused")
			}
			for i := 1; i <= 100; i++ {
				if c.admitFrame(lim, tt.size, now) {
					t.Fatalf("frame %d passed at the same instant as the burst", i)
				}
				if c.refusal(lim, tt.size, now) {
					if i != tt.closesAfter {
						t.Fatalf("closed at refused frame %d, want %d", i, tt.closesAfter)
					}
					return
				}
			}
			t.Fatal("100 refused frames never closed the connection")
		})
	}
}

// MaxConnsPerAddr refuses the connection over the cap with the addr_limit farewell
// and counts it; a place freed by a close is available again.
func TestConnectionsPerAddressAreCapped(t *testing.T) {
	r := startReactor(t, Config{Handler: &funcHandler{frame: echoFrame}, MaxConnsPerAddr: 2})
	a, b := dial(t, r), dial(t, r)
	for _, c := range []*client{a, b} {
		c.send([]byte("hi"))
		c.mustRecv(5 * time.Second)
	}
	over := dial(t, r)
	over.expectFarewellThenEOF("addr_limit", 5*time.Second)
	if s := r.Stats(); s.RejectedAddr != 1 || s.Accepted != 2 {
		t.Fatalf("rejected %d, accepted %d; want 1 and 2", s.RejectedAddr, s.Accepted)
	}
	a.Close()
	poll.True(t, 5*time.Second, "the closed connection to be torn down", func() bool { return r.Stats().Conns == 1 })
	again := dial(t, r)
	again.send([]byte("back"))
	if p := again.mustRecv(5 * time.Second); string(p) != "back" {
		t.Fatalf("got %q", p)
	}
	// Another loopback address is another address.
	other, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, net.TCPAddrFromAddrPort(r.Addr()))
	if err != nil {
		t.Fatalf("dial from 127.0.0.2: %v", err)
	}
	oc := &client{t: t, Conn: other}
	t.Cleanup(func() { other.Close() })
	oc.send([]byte("other"))
	if p := oc.mustRecv(5 * time.Second); string(p) != "other" {
		t.Fatalf("got %q", p)
	}
}

// Charging a frame against a connection's rates allocates nothing (it runs for
// every frame of every logged-in connection, on the epoller).
func TestChargingAFrameDoesNotAllocate(t *testing.T) {
	lim := &Limits{Frames: PerSecond(200, 400), Bytes: PerSecond(1<<20, 2<<20), MaxRefusals: 100, RefusalWindow: time.Second}
	c := &Conn{}
	now := int64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		now += int64(time.Millisecond)
		if !c.admitFrame(lim, 100, now) {
			c.refusal(lim, 100, now)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame", allocs)
	}
}

func BenchmarkChargeFrame(b *testing.B) {
	lim := &Limits{Frames: PerSecond(200, 400), Bytes: PerSecond(1<<20, 2<<20)}
	c := &Conn{}
	for i := range b.N {
		c.admitFrame(lim, 100, int64(i)*int64(10*time.Millisecond))
	}
}

// A large frame being assembled in its own buffer is refused and its refusal
// closes the connection, whose peer has already sent everything and its FIN: the
// close runs to the teardown inside the delivery, which returns the frame's
// buffer. The reader must not return it a second time (it did: a nil pointer
// panic that took a gateway down under the hostile scenario's flooders).
func TestRefusalThatEndsTheConnectionDuringALargeFrame(t *testing.T) {
	lim := &Limits{Bytes: PerSecond(1, 1000), MaxRefusals: 1, RefusalWindow: time.Minute}
	log := newCloseLog()
	h := &funcHandler{
		open:  func(c *Conn) { c.Admit(lim) },
		frame: func(c *Conn, f []byte) Disposition { return Handled },
		close: log.onClose,
	}
	r := startReactor(t, Config{Handler: h, Refused: func(*Conn, []byte) bool { return true }})
	for range 3 {
		c := dial(t, r)
		big := frame(make([]byte, 200_000)) // larger than the read buffer: assembled in its own
		c.Conn.Write(append(append([]byte(nil), big...), big...))
		c.Conn.(*net.TCPConn).CloseWrite()
		if got := log.next(t, 10*time.Second); got != ReasonRate {
			t.Fatalf("closed with %v, want rate", got)
		}
	}
	poll.True(t, 5*time.Second, "every connection torn down", func() bool { return r.Stats().Conns == 0 })
	log.check(t)
}
