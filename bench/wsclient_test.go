package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/ws"
	"github.com/floodgate/floodgate/internal/poll"
)

// wsAnswer is how the fake WebSocket server answers one valid upgrade request: the
// bytes to write back, and whether to keep the connection open afterwards.
type wsAnswer func(req *ws.Upgrade) (reply []byte, keep bool)

// accept101 answers with a valid 101 selecting the floodgate subprotocol.
func accept101(req *ws.Upgrade) ([]byte, bool) {
	return ws.AppendResponse(nil, req, "floodgate"), true
}

// fakeWSServer is a goroutine-per-connection WebSocket server built on the codec's
// server side, independent of the gateway: it parses each opening handshake with
// ws.ParseUpgrade, records the request, and answers as told.
type fakeWSServer struct {
	addr netip.AddrPort
	mu   sync.Mutex
	reqs []ws.Upgrade
	bad  []error        // requests ParseUpgrade refused
	held []net.Conn     // connections kept open
	wg   sync.WaitGroup // connection goroutines
}

// startFakeWSServer listens on loopback until the test ends. after, if set, runs on
// each kept connection once the answer is written.
func startFakeWSServer(t *testing.T, answer wsAnswer, after func(c net.Conn)) *fakeWSServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeWSServer{addr: netip.MustParseAddrPort(l.Addr().String())}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c, answer, after)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		s.mu.Lock()
		for _, c := range s.held {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *fakeWSServer) serve(c net.Conn, answer wsAnswer, after func(net.Conn)) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var buf []byte
	chunk := make([]byte, 1024)
	for {
		n, err := c.Read(chunk)
		if err != nil {
			c.Close()
			return
		}
		buf = append(buf, chunk[:n]...)
		req, used, err := ws.ParseUpgrade(buf)
		if err != nil {
			s.mu.Lock()
			s.bad = append(s.bad, err)
			s.mu.Unlock()
			c.Close()
			return
		}
		if used == 0 {
			continue
		}
		reply, keep := answer(&req)
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		if keep {
			s.held = append(s.held, c)
		}
		s.mu.Unlock()
		_, _ = c.Write(reply)
		if !keep {
			c.Close()
			return
		}
		if after != nil {
			after(c)
		}
		return
	}
}

// startWSClient runs a WebSocket load client against addr until the test ends.
func startWSClient(t *testing.T, addr netip.AddrPort, conns int) *Client {
	t.Helper()
	return runClient(t, ClientConfig{
		Targets: []netip.AddrPort{addr}, Source: netip.MustParseAddr("127.0.0.4"), Conns: conns,
		DialWindow: 4, ConnectTimeout: 20 * time.Second, WebSocket: true, Logger: quiet(),
	})
}

// TestWSClientEstablishesOnlyUpgradedConnections runs WebSocket clients against a
// fake server answering in different ways: only a valid 101 counts as established;
// every other answer is a failed connection whose reason is reported. Every request
// the server saw was a valid upgrade offering floodgate, each with its own key.
func TestWSClientEstablishesOnlyUpgradedConnections(t *testing.T) {
	const conns = 12
	for _, tt := range []struct {
		name        string
		answer      wsAnswer
		established int64
		errContains string
	}{
		{"101", accept101, conns, ""},
		{"101 without a subprotocol", func(req *ws.Upgrade) ([]byte, bool) { return ws.AppendResponse(nil, req, ""), true }, conns, ""},
		{"503", func(*ws.Upgrade) ([]byte, bool) { return ws.AppendReject(nil, 503, "full"), false }, 0, "handshake refused"},
		{"wrong accept", func(*ws.Upgrade) ([]byte, bool) {
			return ws.AppendResponse(nil, &ws.Upgrade{Key: "AAAAAAAAAAAAAAAAAAAAAA=="}, ""), true
		}, 0, "Sec-WebSocket-Accept"},
		{"closed without an answer", func(*ws.Upgrade) ([]byte, bool) { return nil, false }, 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startFakeWSServer(t, tt.answer, nil)
			res, err := startWSClient(t, srv.addr, conns).Connect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Established != tt.established || res.Failed != conns-tt.established || res.Pending != 0 || res.Lost != 0 {
				t.Fatalf("connect: %+v", res)
			}
			if !strings.Contains(res.FirstError, tt.errContains) {
				t.Errorf("first error %q lacks %q", res.FirstError, tt.errContains)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.bad) > 0 {
				t.Fatalf("the server refused requests: %v", srv.bad)
			}
			keys := map[string]bool{}
			for _, r := range srv.reqs {
				if !r.Offers("floodgate") || keys[r.Key] {
					t.Errorf("request %+v: no floodgate offer, or a key used twice", r)
				}
				keys[r.Key] = true
			}
			if len(keys) != conns {
				t.Errorf("the server saw %d distinct handshakes, want %d", len(keys), conns)
			}
		})
	}
}

// TestWSClientAgainstGatewayWebSocketPort runs the WebSocket load client against
// Floodgate's echo gateway's own WebSocket port, in process: every connection
// upgrades, and the gateway holds every one of them.
func TestWSClientAgainstGatewayWebSocketPort(t *testing.T) {
	const conns = 40
	n := startEchoGateway(t, "127.0.0.1:0")
	addr, err := netip.ParseAddrPort(n.WSAddr())
	if err != nil {
		t.Fatalf("WebSocket port %q: %v", n.WSAddr(), err)
	}
	cl := startWSClient(t, addr, conns)
	res, err := cl.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Established != conns || res.Failed != 0 || res.Pending != 0 || res.Lost != 0 {
		t.Fatalf("connect: %+v", res)
	}
	// Poll the gateway until it counts every connection (both ports summed; nothing
	// dials the TCP port).
	poll.Until(t, 10*time.Second, "the gateway holds every connection", func() (bool, string) {
		open := n.Stats().Conns
		return open == conns, fmt.Sprintf("%d of %d", open, conns)
	})
}

// TestWSClientAnswersPingAndClose: after the upgrade the server pings and then
// closes; the client answers with a masked pong of the same payload and a masked
// close echoing the status code, and the connection counts as lost.
func TestWSClientAnswersPingAndClose(t *testing.T) {
	replies := make(chan []byte, 1)
	after := func(c net.Conn) {
		out := ws.AppendFrame(nil, ws.OpPing, []byte("are you there"))
		out = ws.AppendClose(out, ws.CloseGoingAway, "bye")
		if _, err := c.Write(out); err != nil {
			replies <- nil
			return
		}
		var in []byte
		chunk := make([]byte, 256)
		var d ws.Decoder
		var msgs []byte // "pong:<payload>;close:<code>;" as decoded
		for range 16 {
			n, err := c.Read(chunk)
			in = append(in, chunk[:n]...)
			for {
				m, used, derr := d.Decode(in)
				if derr != nil || used == 0 {
					break
				}
				in = in[used:]
				switch m.Op {
				case ws.OpPong:
					msgs = append(msgs, "pong:"+string(m.Payload)+";"...)
				case ws.OpClose:
					msgs = append(msgs, "close:"+strconv.Itoa(int(m.Code))+";"...)
				}
			}
			if err != nil {
				break
			}
		}
		replies <- msgs
	}
	srv := startFakeWSServer(t, accept101, after)
	cl := startWSClient(t, srv.addr, 1)
	res, err := cl.Connect(context.Background())
	if err != nil || res.Established != 1 {
		t.Fatalf("connect: %+v, %v", res, err)
	}
	select {
	case got := <-replies:
		if want := "pong:are you there;close:1001;"; string(got) != want {
			t.Errorf("the server decoded %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server's read loop never ended")
	}
	poll.Until(t, 10*time.Second, "the connection counted lost after the server's close", func() (bool, string) {
		return cl.lost.Load() == 1, fmt.Sprintf("lost = %d", cl.lost.Load())
	})
}

// TestWSClientRefusesEcho: a WebSocket client only holds connections.
func TestWSClientRefusesEcho(t *testing.T) {
	srv := startFakeWSServer(t, accept101, nil)
	cl := startWSClient(t, srv.addr, 1)
	if _, err := cl.Echo(context.Background(), EchoSpec{MsgBytes: 64, Measure: time.Second}); err == nil {
		t.Error("Echo ran on a WebSocket client")
	}
}

// TestWSFramer: the load client cuts the server's response block, then each frame,
// each at most wsMaxPayload, and refuses a frame header no server may send with the
// codec's error.
func TestWSFramer(t *testing.T) {
	long := append([]byte{0x82, 126, 0x01, 0x00}, make([]byte, 256)...)
	huge := append([]byte{0x82, 127}, 0, 0, 0, 0, 0, 0x10, 0, 0) // 1 MiB payload
	for _, tt := range []struct {
		name string
		in   []byte
		want int
		err  error
	}{
		{"empty", nil, 0, nil},
		{"response, incomplete", []byte("HTTP/1.1 101 Switching Protocols\r\n"), 0, nil},
		{"response", []byte("HTTP/1.1 101 X\r\n\r\n\x82\x00"), 18, nil},
		{"one header byte", []byte{0x82}, 0, nil},
		{"binary, short form", []byte{0x82, 5, 1, 2}, 7, nil},
		{"binary, 16-bit form, header incomplete", long[:3], 0, nil},
		{"binary, 16-bit form", long[:10], 260, nil},
		{"binary, 64-bit form, over the limit", huge, 0, ws.ErrMessageTooBig},
		{"masked", []byte{0x82, 0x85}, 0, ws.ErrMasked},
		{"reserved bits", []byte{0xC2, 0}, 0, ws.ErrReservedBits},
		{"fragmented ping", []byte{0x09, 0}, 0, ws.ErrControlFragment},
		{"long close", []byte{0x88, 126, 0, 200}, 0, ws.ErrControlTooLong},
	} {
		got, err := wsFramer(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("%s: wsFramer = %d, %v; want %d, %v", tt.name, got, err, tt.want, tt.err)
		}
	}
	var he *ws.HandshakeError
	if _, err := wsFramer(append([]byte("H"), bytes.Repeat([]byte("x"), ws.MaxResponse)...)); !errors.As(err, &he) {
		t.Errorf("a response block over ws.MaxResponse: err %v, want a *ws.HandshakeError", err)
	}
}
