package client

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
)

// testWait bounds every wait of these tests.
const testWait = 5 * time.Second

// fakeGateway is a scripted server speaking raw frames on loopback: each test
// plays the gateway's side by hand, so it can do what a real one does only
// under faults (switch incarnations mid-connection, drop a connection before an
// answer, send SYNC_END unprompted).
type fakeGateway struct {
	t        *testing.T
	ln       net.Listener
	accepted chan *fakeConn
}

func newFakeGateway(t *testing.T) *fakeGateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{t: t, ln: ln, accepted: make(chan *fakeConn, 16)}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			g.accepted <- newFakeConn(t, nc)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return g
}

func (g *fakeGateway) addr() string { return g.ln.Addr().String() }

// accept returns the next connection the session made.
func (g *fakeGateway) accept() *fakeConn {
	g.t.Helper()
	select {
	case fc := <-g.accepted:
		return fc
	case <-time.After(testWait):
		g.t.Fatal("the session did not connect")
		return nil
	}
}

// frameCopy is a client frame whose body outlives the read buffer.
type frameCopy struct {
	typ  proto.Type
	body []byte
}

// fakeConn is the server's end of one connection. A goroutine reads the
// client's frames into a channel; PUSH_ACKs are also recorded in order.
type fakeConn struct {
	t      *testing.T
	c      *Conn
	frames chan frameCopy

	mu   sync.Mutex
	acks []proto.PushAck
}

func newFakeConn(t *testing.T, nc net.Conn) *fakeConn {
	fc := &fakeConn{t: t, c: New(nc), frames: make(chan frameCopy, 4096)}
	t.Cleanup(func() { nc.Close() })
	go func() {
		defer close(fc.frames)
		for {
			f, err := fc.c.Next()
			if err != nil {
				return
			}
			if f.Type == proto.TypePushAck {
				var a proto.PushAck
				if a.Decode(f.Body) == nil {
					fc.mu.Lock()
					fc.acks = append(fc.acks, a)
					fc.mu.Unlock()
				}
			}
			fc.frames <- frameCopy{f.Type, slices.Clone(f.Body)}
		}
	}()
	return fc
}

// expect returns the body of the next client frame of type want, skipping PING
// and PUSH_ACK; any other frame fails the test.
func (fc *fakeConn) expect(want proto.Type) []byte {
	fc.t.Helper()
	deadline := time.After(testWait)
	for {
		select {
		case f, ok := <-fc.frames:
			if !ok {
				fc.t.Fatalf("connection closed while waiting for %v", want)
			}
			switch f.typ {
			case want:
				return f.body
			case proto.TypePing, proto.TypePushAck:
				continue
			}
			fc.t.Fatalf("got %v, want %v", f.typ, want)
		case <-deadline:
			fc.t.Fatalf("no %v within %v", want, testWait)
		}
	}
}

func (fc *fakeConn) expectSync() proto.Sync {
	fc.t.Helper()
	var m proto.Sync
	if err := m.Decode(fc.expect(proto.TypeSync)); err != nil {
		fc.t.Fatal(err)
	}
	return m
}

func (fc *fakeConn) expectSend() proto.Send {
	fc.t.Helper()
	var m proto.Send
	if err := m.Decode(fc.expect(proto.TypeSend)); err != nil {
		fc.t.Fatal(err)
	}
	return m
}

// login answers the client's LOGIN with ok (defaults filled in).
func (fc *fakeConn) login(ok proto.LoginOK) {
	fc.t.Helper()
	fc.expect(proto.TypeLogin)
	if ok.HeartbeatMS == 0 {
		ok.HeartbeatMS = 30000
	}
	if ok.IdleTimeoutMS == 0 {
		ok.IdleTimeoutMS = 90000
	}
	if ok.MaxFrame == 0 {
		ok.MaxFrame = proto.DefaultMaxFrame
	}
	if ok.Oldest == 0 {
		ok.Oldest = ok.LastSeq + 1
	}
	fc.write(ok.Append(nil))
}

// loginAndSync logs the client in to an empty inbox and answers its first SYNC.
func (fc *fakeConn) loginAndSync(epoch uint64) {
	fc.t.Helper()
	fc.login(proto.LoginOK{Epoch: epoch})
	if m := fc.expectSync(); m.AfterSeq != 0 {
		fc.t.Fatalf("first SYNC %+v", m)
	}
	fc.write((&proto.SyncEnd{Head: 0, Oldest: 1, Epoch: epoch}).Append(nil))
}

// write sends frames, in one write.
func (fc *fakeConn) write(frames ...[]byte) {
	fc.t.Helper()
	if err := fc.c.WriteRaw(slices.Concat(frames...)); err != nil {
		fc.t.Fatal(err)
	}
}

// pushes encodes PUSH frames of epoch for seqs from..to.
func pushes(epoch, from, to uint64) [][]byte {
	var out [][]byte
	for seq := from; seq <= to; seq++ {
		out = append(out, (&proto.Push{Seq: seq, Epoch: epoch, MsgID: epoch<<20 | seq, From: 5, Payload: []byte("m")}).Append(nil))
	}
	return out
}

func (fc *fakeConn) ackList() []proto.PushAck {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return slices.Clone(fc.acks)
}

// close ends the connection from the server's side, without a KICK.
func (fc *fakeConn) close() { fc.c.Close() }

// received collects what OnMessage was handed.
type received struct {
	mu   sync.Mutex
	msgs []proto.Push
}

func (r *received) on(p proto.Push) {
	r.mu.Lock()
	r.msgs = append(r.msgs, p)
	r.mu.Unlock()
}

// keys returns what was received as (epoch, seq) pairs, in order.
func (r *received) keys() [][2]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][2]uint64, len(r.msgs))
	for i, p := range r.msgs {
		out[i] = [2]uint64{p.Epoch, p.Seq}
	}
	return out
}

func (r *received) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// runSession starts a session for uid 1 against g, with a fast reconnect
// schedule; runErr yields what Run returned.
func runSession(t *testing.T, g *fakeGateway, r *received) (s *Session, runErr <-chan error) {
	t.Helper()
	return runSessionWith(t, g, r, nil)
}

// runSessionWith is runSession with the configuration changed by mutate first.
func runSessionWith(t *testing.T, g *fakeGateway, r *received, mutate func(*SessionConfig)) (s *Session, runErr <-chan error) {
	t.Helper()
	cfg := SessionConfig{
		UID: 1, Token: func() []byte { return []byte("token") }, Gateways: []string{g.addr()},
		GapWait: 20 * time.Millisecond, Backoff: Backoff{Base: 5 * time.Millisecond, Max: 20 * time.Millisecond},
		Logger: slog.New(slog.DiscardHandler),
	}
	if r != nil {
		cfg.OnMessage = r.on
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s = NewSession(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done, finished := make(chan error, 1), make(chan struct{})
	go func() {
		done <- s.Run(ctx)
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(testWait):
			t.Error("Run did not return after its context ended")
		}
	})
	return s, done
}

// sendAsync runs Send in a goroutine; the channel yields its outcome.
func sendAsync(s *Session, to uint64, payload string) <-chan sendResult {
	ch := make(chan sendResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		id, err := s.Send(ctx, to, 0, []byte(payload))
		ch <- sendResult{id, err}
	}()
	return ch
}

func waitResult(t *testing.T, ch <-chan sendResult) sendResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(testWait + time.Second):
		t.Fatal("Send did not return")
		return sendResult{}
	}
}
