package link

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var secret = []byte("cluster-secret-for-tests")

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func startServer(t *testing.T, h Handler, mutate ...func(*ServerConfig)) (*Server, func()) {
	t.Helper()
	cfg := ServerConfig{Addr: "127.0.0.1:0", Secret: secret, Handler: h, Logger: quiet()}
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("server did not stop")
		}
	}
	t.Cleanup(stop)
	return s, stop
}

func dialClient(t *testing.T, addr string, mutate ...func(*ClientConfig)) *Client {
	t.Helper()
	cfg := ClientConfig{Addr: addr, Secret: secret, Name: "test-client", Logger: quiet(), MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	for _, m := range mutate {
		m(&cfg)
	}
	c := Dial(cfg)
	t.Cleanup(c.Close)
	return c
}

func waitUp(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatalf("not connected: %v", err)
	}
}

func echoHandler(_ context.Context, r *Request) ([]byte, error) {
	if r.Method == 99 {
		return nil, errors.New("method 99 always fails")
	}
	return append([]byte(fmt.Sprintf("%d:", r.Method)), r.Body...), nil
}

func TestPipelinedCallsAllAnswered(t *testing.T) {
	s, _ := startServer(t, echoHandler)
	c := dialClient(t, s.Addr())
	waitUp(t, c)
	var wg sync.WaitGroup
	var bad atomic.Int32
	for g := range 16 {
		wg.Go(func() {
			for i := range 500 {
				body := fmt.Appendf(nil, "g%d-i%d", g, i)
				got, err := c.Call(context.Background(), uint16(g), body)
				if err != nil || string(got) != fmt.Sprintf("%d:%s", g, body) {
					bad.Add(1)
				}
			}
		})
	}
	// Asynchronous calls interleaved with the synchronous ones.
	var async sync.WaitGroup
	for i := range 1000 {
		async.Add(1)
		c.Go(7, binary.BigEndian.AppendUint32(nil, uint32(i)), func(b []byte, err error) {
			defer async.Done()
			if err != nil || binary.BigEndian.Uint32(b[2:]) != uint32(i) {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	async.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d calls got a wrong answer", n)
	}
}

func TestRequestsOnOneLinkAreHandledInOrder(t *testing.T) {
	var mu sync.Mutex
	var seen []uint32
	h := func(_ context.Context, r *Request) ([]byte, error) {
		mu.Lock()
		seen = append(seen, binary.BigEndian.Uint32(r.Body))
		mu.Unlock()
		return nil, nil
	}
	s, _ := startServer(t, h)
	c := dialClient(t, s.Addr())
	waitUp(t, c)
	var wg sync.WaitGroup
	for i := range 2000 {
		wg.Add(1)
		if i%3 == 0 {
			c.Notify(1, binary.BigEndian.AppendUint32(nil, uint32(i)))
			wg.Done()
			continue
		}
		c.Go(1, binary.BigEndian.AppendUint32(nil, uint32(i)), func([]byte, error) { wg.Done() })
	}
	wg.Wait()
	c.Call(context.Background(), 1, binary.BigEndian.AppendUint32(nil, 2000)) // after every notify
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2001 {
		t.Fatalf("handled %d, want 2001", len(seen))
	}
	for i, v := range seen {
		if v != uint32(i) {
			t.Fatalf("position %d handled request %d", i, v)
		}
	}
}

func TestRemoteErrorsPropagate(t *testing.T) {
	s, _ := startServer(t, echoHandler)
	c := dialClient(t, s.Addr())
	waitUp(t, c)
	_, err := c.Call(context.Background(), 99, nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "method 99 always fails" {
		t.Fatalf("err = %v", err)
	}
	if got, err := c.Call(context.Background(), 1, []byte("x")); err != nil || string(got) != "1:x" {
		t.Fatalf("link unusable after a remote error: %q %v", got, err)
	}
}

// A client with the wrong secret is refused, and so is a server with the wrong
// secret (the client checks the server's proof): neither ever connects.
func TestWrongSecretIsRefusedBothWays(t *testing.T) {
	var refused atomic.Int32
	s, _ := startServer(t, echoHandler)
	impostor := dialClient(t, s.Addr(), func(c *ClientConfig) { c.Secret = []byte("not-the-cluster-secret") })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := impostor.WaitConnected(ctx); err == nil {
		t.Fatal("a client with the wrong secret connected")
	}
	if _, err := impostor.Call(context.Background(), 1, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("call through a refused link: %v", err)
	}

	fake, _ := startServer(t, func(context.Context, *Request) ([]byte, error) {
		refused.Add(1)
		return nil, nil
	}, func(c *ServerConfig) { c.Secret = []byte("a-different-secret!!") })
	c := dialClient(t, fake.Addr())
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := c.WaitConnected(ctx2); err == nil {
		t.Fatal("the client accepted a server that does not hold the secret")
	}
	if refused.Load() != 0 {
		t.Fatal("a request reached a handler across a failed handshake")
	}
	// The real server still serves a real client.
	good := dialClient(t, s.Addr())
	waitUp(t, good)
	if _, err := good.Call(context.Background(), 1, nil); err != nil {
		t.Fatal(err)
	}
}

func TestGarbageFromANonPeerDoesNotHurtTheServer(t *testing.T) {
	s, _ := startServer(t, echoHandler, func(c *ServerConfig) { c.HandshakeTimeout = 200 * time.Millisecond })
	for _, junk := range []string{"GET / HTTP/1.1\r\n\r\n", "FGL1", string(make([]byte, 5000))} {
		nc, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		nc.Write([]byte(junk))
		nc.SetReadDeadline(time.Now().Add(6 * time.Second))
		buf := make([]byte, 256)
		for {
			if _, err := nc.Read(buf); err != nil {
				break // closed by the server
			}
		}
		nc.Close()
	}
	c := dialClient(t, s.Addr())
	waitUp(t, c)
	if _, err := c.Call(context.Background(), 1, nil); err != nil {
		t.Fatal(err)
	}
}

func TestNotificationsFlowBothWays(t *testing.T) {
	gotOnServer := make(chan string, 1)
	var peer atomic.Pointer[Peer]
	s, _ := startServer(t, func(_ context.Context, r *Request) ([]byte, error) {
		if r.OneWay {
			gotOnServer <- string(r.Body)
		}
		return nil, nil
	}, func(c *ServerConfig) { c.OnConnect = func(p *Peer) { peer.Store(p) } })
	gotOnClient := make(chan string, 1)
	c := dialClient(t, s.Addr(), func(c *ClientConfig) {
		c.OnNotify = func(m uint16, b []byte) { gotOnClient <- fmt.Sprintf("%d:%s", m, b) }
	})
	waitUp(t, c)
	c.Notify(3, []byte("up"))
	if got := <-gotOnServer; got != "up" {
		t.Fatalf("server got %q", got)
	}
	if p := peer.Load(); p == nil || p.Name() != "test-client" {
		t.Fatalf("peer %v", p)
	}
	peer.Load().Notify(4, []byte("down"))
	select {
	case got := <-gotOnClient:
		if got != "4:down" {
			t.Fatalf("client got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
}

// When the server goes away, calls fail promptly; when it comes back on the same
// address, the client reconnects by itself and OnConnect runs again.
func TestReconnectsAfterServerRestart(t *testing.T) {
	s, stop := startServer(t, echoHandler)
	addr := s.Addr()
	var connects atomic.Int32
	c := dialClient(t, addr, func(c *ClientConfig) {
		c.OnConnect = func(context.Context, *Client) { connects.Add(1) }
	})
	waitUp(t, c)
	stop()
	deadline := time.Now().Add(5 * time.Second)
	for c.Connected() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if _, err := c.Call(context.Background(), 1, nil); !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrDisconnected) {
		t.Fatalf("call while the server is down: %v", err)
	}
	s2, err := Listen(ServerConfig{Addr: addr, Secret: secret, Handler: echoHandler, Logger: quiet()})
	if err != nil {
		t.Skipf("could not rebind %s: %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s2.Serve(ctx)
	waitUp(t, c)
	if got, err := c.Call(context.Background(), 2, []byte("back")); err != nil || string(got) != "2:back" {
		t.Fatalf("after reconnect: %q %v", got, err)
	}
	if connects.Load() != 2 {
		t.Fatalf("OnConnect ran %d times, want 2", connects.Load())
	}
}

func TestCallContextCancel(t *testing.T) {
	block := make(chan struct{})
	s, _ := startServer(t, func(_ context.Context, r *Request) ([]byte, error) {
		if r.Method == 1 {
			<-block
		}
		return nil, nil
	})
	c := dialClient(t, s.Addr())
	waitUp(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, 1, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	close(block)
	if _, err := c.Call(context.Background(), 2, nil); err != nil {
		t.Fatalf("the late response of the abandoned call confused the next: %v", err)
	}
}

// BenchmarkCall measures one pipelined round trip over loopback with many callers.
func BenchmarkCall(b *testing.B) {
	c, ctx := benchLink(b)
	body := make([]byte, 100)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Call(ctx, 1, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
