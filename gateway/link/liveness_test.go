package link

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/poll"
)

// silencer forwards TCP connections to a target and can go silent: while silent it
// forwards nothing in either direction yet closes nothing — a partition, or a host
// that vanished, as both ends of a connection see it.
type silencer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	silent bool
	wake   *sync.Cond
	conns  []net.Conn
}

func newSilencer(t *testing.T, target string) *silencer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silencer{ln: ln, target: target}
	s.wake = sync.NewCond(&s.mu)
	t.Cleanup(func() {
		ln.Close()
		s.setSilent(false)
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	go s.serve()
	return s
}

func (s *silencer) addr() string { return s.ln.Addr().String() }

func (s *silencer) setSilent(v bool) {
	s.mu.Lock()
	s.silent = v
	s.mu.Unlock()
	s.wake.Broadcast()
}

func (s *silencer) serve() {
	for {
		in, err := s.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", s.target)
		if err != nil {
			in.Close()
			continue
		}
		s.mu.Lock()
		s.conns = append(s.conns, in, out)
		s.mu.Unlock()
		go s.pipe(in, out)
		go s.pipe(out, in)
	}
}

// pipe copies src to dst, holding each chunk while the silencer is silent (and
// dropping it if the connection was closed meanwhile).
func (s *silencer) pipe(src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			dst.Close()
			return
		}
		s.mu.Lock()
		for s.silent {
			s.wake.Wait()
		}
		s.mu.Unlock()
		if _, err := dst.Write(buf[:n]); err != nil {
			src.Close()
			return
		}
	}
}

// A link whose peer goes silent is closed by both ends within DeadAfter: the
// client's call in flight fails with ErrDisconnected instead of waiting for the
// kernel to give up on the connection, the server forgets the peer, and once the
// network is back the client is connected again and calls work.
func TestSilentLinkIsClosedByBothEndsAndRedialled(t *testing.T) {
	const every, dead = 20 * time.Millisecond, 150 * time.Millisecond
	block := make(chan struct{})
	srv, _ := startServer(t, func(_ context.Context, r *Request) ([]byte, error) {
		if r.Method == 2 {
			<-block // never answered while the test watches
		}
		return r.Body, nil
	}, func(c *ServerConfig) { c.DeadAfter = dead })
	t.Cleanup(func() { close(block) })
	px := newSilencer(t, srv.Addr())
	c := dialClient(t, px.addr(), func(c *ClientConfig) { c.PingEvery, c.DeadAfter = every, dead })
	waitUp(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Call(ctx, 1, []byte("up")); err != nil {
		t.Fatal(err)
	}

	// A quiet link with pings flowing stays up well past DeadAfter.
	idle := time.Now()
	for time.Since(idle) < 3*dead {
		if !c.Connected() || len(srv.Peers()) != 1 {
			t.Fatalf("an idle, healthy link was closed after %v", time.Since(idle))
		}
		time.Sleep(every)
	}

	if s := c.Silent(); s >= dead {
		t.Fatalf("Silent() = %v on a link with pings answered every %v", s, every)
	}
	px.setSilent(true)
	start := time.Now()
	_, err := c.Call(ctx, 1, []byte("into the void"))
	if !errors.Is(err, ErrDisconnected) {
		t.Fatalf("call across a silent link: %v, want ErrDisconnected", err)
	}
	if took := time.Since(start); took > dead+time.Second {
		t.Fatalf("the silent link failed its call after %v, want about DeadAfter (%v)", took, dead)
	}
	if s := c.Silent(); s < dead-2*every { // measured to within a ping period
		t.Fatalf("Silent() = %v after the link was closed for %v of silence", s, dead)
	}
	poll.True(t, 5*time.Second, "the server to drop the silent peer", func() bool { return len(srv.Peers()) == 0 })

	px.setSilent(false)
	waitUp(t, c)
	if b, err := c.Call(ctx, 1, []byte("back")); err != nil || string(b) != "back" {
		t.Fatalf("after the network came back: %q, %v", b, err)
	}
}

// The server answers a ping with a pong carrying the ping's id.
func TestPingIsAnsweredWithPong(t *testing.T) {
	srv, _ := startServer(t, echoHandler)
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(nc)
	if err := clientHandshake(nc, r, secret, "raw"); err != nil {
		t.Fatal(err)
	}
	h := frameHeader(kindPing, 42, 0, 0)
	if _, err := nc.Write(h[:]); err != nil {
		t.Fatal(err)
	}
	f, _, err := readFrame(r, nil)
	if err != nil {
		t.Fatalf("after a ping: %v", err)
	}
	if f.kind != kindPong || f.id != 42 {
		t.Fatalf("got kind %d id %d, want a pong with id 42", f.kind, f.id)
	}
}

// Notifying a peer that takes no data never blocks the notifier: the queue fills,
// then Notify fails at once with ErrBacklogged.
func TestNotifyNeverBlocksOnAPeerThatTakesNoData(t *testing.T) {
	srv, _ := startServer(t, echoHandler)
	px := newSilencer(t, srv.Addr())
	c := dialClient(t, px.addr())
	waitUp(t, c)
	poll.True(t, 5*time.Second, "the peer to be known", func() bool { return len(srv.Peers()) == 1 })
	p := srv.Peers()[0]
	px.setSilent(true)
	body := make([]byte, 4<<10)
	start := time.Now()
	var err error
	for i := 0; i < 4*NotifyQueue && err == nil; i++ {
		err = p.Notify(9, body)
	}
	if !errors.Is(err, ErrBacklogged) {
		t.Fatalf("after %d MiB to a silent peer: %v, want ErrBacklogged", 4*NotifyQueue*len(body)>>20, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("notifying a silent peer took %v: Notify blocked", took)
	}
}
