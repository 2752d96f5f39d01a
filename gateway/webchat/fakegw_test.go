package webchat

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/ws"
)

// fakeGateway is a scripted gateway for the page's state machine: it accepts
// WebSocket connections on a loopback port and hands each to the test, which
// reads the page's frames and writes the answers it chooses.
type fakeGateway struct {
	ln    net.Listener
	conns chan *fakeConn
	mu    sync.Mutex
	all   []net.Conn
}

// startFakeGateway listens on 127.0.0.1 until the test ends.
func startFakeGateway(t *testing.T) *fakeGateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{ln: ln, conns: make(chan *fakeConn, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			g.all = append(g.all, c)
			g.mu.Unlock()
			select {
			case g.conns <- &fakeConn{c: c}:
			default:
				c.Close()
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, c := range g.all {
			c.Close()
		}
	})
	return g
}

// accepted returns how many connections the gateway has accepted.
func (g *fakeGateway) accepted() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.all)
}

// script runs a fake gateway's side of a test in its own goroutine: Fatalf ends
// the script (not the test) and records why; Wait returns the failures.
type script struct {
	mu   sync.Mutex
	errs []string
	done chan struct{}
}

func runScript(fn func(s *script)) *script {
	s := &script{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		fn(s)
	}()
	return s
}

// Fatalf records a failure and ends the script's goroutine.
func (s *script) Fatalf(format string, args ...any) {
	s.mu.Lock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
	s.mu.Unlock()
	runtime.Goexit()
}

// failures waits for the script (at most d) and returns its failures.
func (s *script) failures(d time.Duration) []string {
	select {
	case <-s.done:
	case <-time.After(d):
		return []string{fmt.Sprintf("script still running after %v", d)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs
}

// ioTimeout bounds every read and the wait for a connection in a script.
const ioTimeout = 10 * time.Second

// next returns the next connection the page opened, its handshake done.
func (g *fakeGateway) next(s *script) *fakeConn {
	select {
	case c := <-g.conns:
		c.handshake(s)
		return c
	case <-time.After(ioTimeout):
		s.Fatalf("the page opened no connection within %v", ioTimeout)
		return nil
	}
}

// fakeConn is one WebSocket connection of the fake gateway. It answers the
// page's heartbeat PINGs itself and keeps the other frames in arrival order.
type fakeConn struct {
	c      net.Conn
	in     []byte
	dec    ws.Decoder
	queued []proto.Frame
	pings  int  // heartbeat PINGs answered
	closed bool // the page sent its close frame
}

func (c *fakeConn) read(s *script) {
	buf := make([]byte, 64<<10)
	c.c.SetReadDeadline(time.Now().Add(ioTimeout)) //nolint:errcheck
	n, err := c.c.Read(buf)
	if err != nil {
		s.Fatalf("read: %v (waiting for the page)", err)
	}
	c.in = append(c.in, buf[:n]...)
}

func (c *fakeConn) handshake(s *script) {
	for {
		req, n, err := ws.ParseUpgrade(c.in)
		if err != nil {
			s.Fatalf("upgrade: %v", err)
		}
		if n == 0 {
			c.read(s)
			continue
		}
		c.in = c.in[n:]
		proto := ""
		if req.Offers("floodgate") {
			proto = "floodgate"
		}
		c.raw(s, ws.AppendResponse(nil, &req, proto))
		return
	}
}

func (c *fakeConn) raw(s *script, b []byte) {
	if _, err := c.c.Write(b); err != nil {
		s.Fatalf("write: %v", err)
	}
}

// write sends frames, each as one binary message.
func (c *fakeConn) write(s *script, frames ...[]byte) {
	var out []byte
	for _, f := range frames {
		out = ws.AppendFrame(out, ws.OpBinary, f)
	}
	c.raw(s, out)
}

// kick sends KICK as the last message, then a close frame, and closes (§2.1).
func (c *fakeConn) kick(s *script, r proto.Reason, code proto.Code, retryMS uint32, closeCode uint16) {
	c.raw(s, ws.AppendClose(ws.AppendFrame(nil, ws.OpBinary,
		(&proto.Kick{Reason: r, Code: code, RetryAfterMS: retryMS, Message: []byte("scripted")}).Append(nil)), closeCode, ""))
	c.c.Close()
}

// step handles the next message from the page, reading as needed: a PING is
// answered, another frame queued, a close frame noted.
func (c *fakeConn) step(s *script) {
	for {
		m, n, err := c.dec.Decode(c.in)
		if err != nil {
			s.Fatalf("websocket: %v", err)
		}
		if n == 0 {
			c.read(s)
			continue
		}
		payload := bytes.Clone(m.Payload)
		c.in = c.in[n:]
		switch m.Op {
		case ws.OpBinary:
			f, err := proto.ParseFrame(payload)
			if err != nil {
				s.Fatalf("a binary message that is not one frame: %v (% x)", err, payload)
			}
			if f.Type == proto.TypePing {
				var p proto.Ping
				if err := p.Decode(f.Body); err != nil {
					s.Fatalf("PING: %v", err)
				}
				c.write(s, (&proto.Pong{TS: p.TS}).Append(nil))
				c.pings++
				return
			}
			c.queued = append(c.queued, f)
		case ws.OpClose:
			c.closed = true
			c.raw(s, ws.AppendClose(nil, m.Code, "")) // echo it, and close (RFC 6455 §5.5.1)
			c.c.Close()
		case ws.OpText:
			s.Fatalf("the page sent a text message %q", payload)
		}
		return
	}
}

// expect returns the first frame of type t not taken yet, reading until one
// comes; other frames stay queued for later expects.
func (c *fakeConn) expect(s *script, t proto.Type) proto.Frame {
	for {
		for i, f := range c.queued {
			if f.Type == t {
				c.queued = append(c.queued[:i], c.queued[i+1:]...)
				return f
			}
		}
		if c.closed {
			s.Fatalf("the page closed the connection while the script waited for %v", t)
		}
		c.step(s)
	}
}

// expectClose reads until the page's close frame, queueing the frames before it.
func (c *fakeConn) expectClose(s *script) {
	for !c.closed {
		c.step(s)
	}
}

// expectPings reads until the page has sent n heartbeat PINGs on c.
func (c *fakeConn) expectPings(s *script, n int) {
	for c.pings < n {
		if c.closed {
			s.Fatalf("the page closed the connection after %d PINGs, want %d", c.pings, n)
		}
		c.step(s)
	}
}

// queuedTypes returns the types of the frames read but not taken, in order.
func (c *fakeConn) queuedTypes() []proto.Type {
	var ts []proto.Type
	for _, f := range c.queued {
		ts = append(ts, f.Type)
	}
	return ts
}

// expectAckUpTo reads PUSH_ACKs until one acknowledges seq of epoch; every ack
// on the way must be of epoch and below seq (acks never pass a gap).
func (c *fakeConn) expectAckUpTo(s *script, seq, epoch uint64) {
	for {
		var a proto.PushAck
		if err := a.Decode(c.expect(s, proto.TypePushAck).Body); err != nil {
			s.Fatalf("PUSH_ACK: %v", err)
		}
		if a.Epoch != epoch || a.Seq > seq {
			s.Fatalf("PUSH_ACK(%d, %d), want up to (%d, %d)", a.Seq, a.Epoch, seq, epoch)
		}
		if a.Seq == seq {
			return
		}
	}
}

// u64 reads the big-endian u64 at off of a frame body.
func u64(b []byte, off int) uint64 { return binary.BigEndian.Uint64(b[off:]) }
