package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/reactor"
)

// quiet is a logger for the reactors under test.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// echoServer runs Floodgate's echo gateway in process until the test ends.
func echoServer(t *testing.T) netip.AddrPort {
	t.Helper()
	return startEchoGateway(t, "").Reactor().Addr()
}

// startEchoGateway runs Floodgate's echo gateway in process until the test ends,
// with a WebSocket port on wsAddr unless it is "".
func startEchoGateway(t *testing.T, wsAddr string) *node.Node {
	t.Helper()
	n, err := node.New(node.Config{Echo: true, WSAddr: wsAddr, Logger: quiet(), Reactor: reactor.Config{
		Addr: "127.0.0.1:0", Epollers: 2, Listeners: 1, ShutdownTimeout: 2 * time.Second,
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("echo gateway: %v", err)
		}
	})
	return n
}

// startClient runs a client against addr until the test ends.
func startClient(t *testing.T, addr netip.AddrPort, conns int) *Client {
	t.Helper()
	return runClient(t, ClientConfig{
		Targets: []netip.AddrPort{addr}, Source: netip.MustParseAddr("127.0.0.3"), Conns: conns,
		DialWindow: 8, ConnectTimeout: 20 * time.Second, Logger: quiet(),
	})
}

// runClient builds a client from cfg and runs it until the test ends.
func runClient(t *testing.T, cfg ClientConfig) *Client {
	t.Helper()
	cl, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("client: %v", err)
		}
	})
	return cl
}

// TestClientEcho runs the load client against an in-process Floodgate echo server:
// every connection opens, every message comes back, and the histogram agrees with the
// counts. Nothing is asserted about speed.
func TestClientEcho(t *testing.T) {
	const conns = 50
	cl := startClient(t, echoServer(t), conns)
	ctx := context.Background()
	res, err := cl.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Established != conns || res.Failed != 0 || res.Pending != 0 || res.Lost != 0 {
		t.Fatalf("connect: %+v", res)
	}

	for _, spec := range []EchoSpec{
		{MsgBytes: 64, Depth: 1, Warmup: 100 * time.Millisecond, Measure: time.Second},
		{MsgBytes: 1024, Depth: 4, Warmup: 0, Measure: 300 * time.Millisecond},
	} {
		r, err := cl.Echo(ctx, spec)
		if err != nil {
			t.Fatalf("%+v: %v", spec, err)
		}
		if r.Conns != conns || r.MsgBytes != spec.MsgBytes || r.Depth != spec.Depth {
			t.Errorf("%+v: result header %+v", spec, r)
		}
		// Every message sent came back (the drain waits for them), at least the
		// first round of every connection was sent, and the window saw some.
		if r.Unanswered != 0 || r.Sent != r.Received || r.Sent < int64(conns*spec.Depth) ||
			r.WriteErrors != 0 || r.ConnsLost != 0 || r.Clamped != 0 {
			t.Errorf("%+v: counts %+v", spec, r)
		}
		if r.Measured <= 0 || r.Measured > r.Received {
			t.Errorf("%+v: measured %d of %d received", spec, r.Measured, r.Received)
		}
		h := hdrhistogram.Import(r.Hist)
		p50, p99 := h.ValueAtQuantile(50), h.ValueAtQuantile(99)
		if h.TotalCount() != r.Measured || h.Min() <= 0 || p50 > p99 || p99 > h.Max() || h.Max() > int64(time.Minute) {
			t.Errorf("%+v: histogram of %d samples (measured %d): min %d p50 %d p99 %d max %d",
				spec, h.TotalCount(), r.Measured, h.Min(), p50, p99, h.Max())
		}
	}

	if _, err := cl.Echo(ctx, EchoSpec{MsgBytes: MinMsgBytes - 1, Measure: time.Second}); err == nil {
		t.Error("a message too small for its timestamp was accepted")
	}
}

// TestClientCountsFailedDials: dials to a closed port fail, are counted, and Connect
// still returns.
func TestClientCountsFailedDials(t *testing.T) {
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	cl := startClient(t, netip.MustParseAddrPort(addr), 5)
	res, err := cl.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Established != 0 || res.Failed != 5 || res.Pending != 0 || res.FirstError == "" {
		t.Errorf("connect to a closed port: %+v", res)
	}
}

// TestServeClientProtocol drives a client through the harness protocol over pipes.
func TestServeClientProtocol(t *testing.T) {
	addr := echoServer(t)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- ServeClient(context.Background(), ClientConfig{Targets: []netip.AddrPort{addr}, Conns: 10, Logger: quiet()}, inR, outW)
		outW.Close()
	}()
	defer inW.Close()
	sc := bufio.NewScanner(outR)
	sc.Buffer(nil, maxLine)
	next := func() reply {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("no reply: %v", sc.Err())
		}
		var r reply
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("reply %q: %v", sc.Text(), err)
		}
		return r
	}
	send := func(c command) {
		t.Helper()
		b, _ := json.Marshal(c)
		if _, err := inW.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
	}

	if r := next(); r.Connect == nil || r.Connect.Established != 10 {
		t.Fatalf("first reply: %+v", r)
	}
	send(command{Cmd: "echo", MsgBytes: 100, Depth: 2, MeasureMS: 200})
	if r := next(); r.Error != "" || r.Echo == nil || r.Echo.Measured == 0 || r.Echo.Hist == nil || r.Echo.Unanswered != 0 {
		t.Fatalf("echo reply: %+v", r)
	}
	send(command{Cmd: "bogus"})
	if r := next(); r.Error == "" {
		t.Fatalf("bogus command: %+v", r)
	}
	send(command{Cmd: "stop"})
	if err := <-done; err != nil {
		t.Fatalf("ServeClient: %v", err)
	}
}
