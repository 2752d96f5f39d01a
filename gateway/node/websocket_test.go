package node_test

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/ws"
	"github.com/floodgate/floodgate/internal/poll"
)

// wsNetConn is a WebSocket client under the client package: each Write goes out as
// one masked binary message (the codec's ws.AppendClientFrame), and Read returns the
// payloads of the server's binary messages in order, read by hand. It asserts what PROTOCOL.md §2.1 promises of
// the server: unmasked, unfragmented binary messages that each hold exactly one
// whole frame. A close frame ends the stream (io.EOF) and is kept in closeCode.
type wsNetConn struct {
	net.Conn
	t         *testing.T
	r         *bufio.Reader
	pending   []byte
	closeCode uint16
	closed    bool
	pongs     [][]byte
}

// wsHandshake sends an upgrade request with the given extra header lines and
// returns the response's header block.
func wsHandshake(t *testing.T, nc net.Conn, r *bufio.Reader, path, extra string) string {
	t.Helper()
	key := base64.StdEncoding.EncodeToString([]byte("floodgate-test-k"))
	req := "GET " + path + " HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp := readHeaderBlock(t, r)
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if !strings.HasPrefix(resp, "HTTP/1.1 101 ") ||
		!strings.Contains(resp, "Sec-WebSocket-Accept: "+base64.StdEncoding.EncodeToString(sum[:])+"\r\n") {
		t.Fatalf("handshake response %q", resp)
	}
	return resp
}

func readHeaderBlock(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var sb strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading response (%q so far): %v", sb.String(), err)
		}
		sb.WriteString(line)
		if line == "\r\n" {
			return sb.String()
		}
	}
}

// dialWS opens a WebSocket connection to the gateway's WebSocket port.
func (g *gateway) dialWS(t *testing.T) (*client.Conn, *wsNetConn) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", g.WSAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { nc.Close() })
	w := &wsNetConn{Conn: nc, t: t, r: bufio.NewReader(nc)}
	wsHandshake(t, nc, w.r, "/ws", "")
	return client.New(w), w
}

func (g *gateway) loginWS(t *testing.T, uid uint64) (*client.Conn, *wsNetConn, proto.LoginOK) {
	t.Helper()
	c, w := g.dialWS(t)
	ok, err := c.Login(uid, g.signer.Mint(uid, time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatalf("login %d over WebSocket: %v", uid, err)
	}
	return c, w, ok
}

// appendMasked appends one masked client frame, FIN set, with a fixed mask key.
func appendMasked(dst []byte, op ws.Opcode, payload []byte) []byte {
	return ws.AppendClientFrame(dst, op, payload, [4]byte{0x12, 0x34, 0x56, 0x78})
}

// appendMaskedFragment is appendMasked for a frame that does not end its message:
// FIN clear.
func appendMaskedFragment(dst []byte, op ws.Opcode, payload []byte) []byte {
	start := len(dst)
	dst = appendMasked(dst, op, payload)
	dst[start] &^= 0x80
	return dst
}

func (w *wsNetConn) Write(b []byte) (int, error) {
	if _, err := w.Conn.Write(appendMasked(nil, ws.OpBinary, b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// writeRaw sends bytes as they are (frames built by the test).
func (w *wsNetConn) writeRaw(b []byte) {
	if _, err := w.Conn.Write(b); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

func (w *wsNetConn) Read(b []byte) (int, error) {
	for len(w.pending) == 0 {
		if w.closed {
			return 0, io.EOF
		}
		if err := w.readMessage(); err != nil {
			return 0, err
		}
	}
	n := copy(b, w.pending)
	w.pending = w.pending[n:]
	return n, nil
}

// readMessage reads one server frame, asserting the server's side of §2.1.
func (w *wsNetConn) readMessage() error {
	var h [2]byte
	if _, err := io.ReadFull(w.r, h[:]); err != nil {
		return err
	}
	if h[0]&0x80 == 0 || h[0]&0x70 != 0 || h[1]&0x80 != 0 {
		w.t.Errorf("server frame header % x: want FIN, no reserved bits, unmasked", h)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var x [2]byte
		io.ReadFull(w.r, x[:])
		n = uint64(binary.BigEndian.Uint16(x[:]))
	case 127:
		var x [8]byte
		io.ReadFull(w.r, x[:])
		n = binary.BigEndian.Uint64(x[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(w.r, p); err != nil {
		return err
	}
	switch op := h[0] & 0x0F; op {
	case 0x2:
		if len(p) < 5 || int(binary.BigEndian.Uint32(p))+4 != len(p) {
			w.t.Errorf("binary message of %d bytes does not hold exactly one frame", len(p))
		}
		w.pending = p
	case 0x8:
		w.closed = true
		if len(p) >= 2 {
			w.closeCode = binary.BigEndian.Uint16(p)
		}
	case 0xA:
		w.pongs = append(w.pongs, p)
	default:
		w.t.Errorf("server sent opcode %#x", op)
	}
	return nil
}

func withWebSocket(c *node.Config) { c.WSAddr = "127.0.0.1:0" }

// A WebSocket user and a TCP user talk: logins, SEND and PUSH both ways, PING,
// and a SYNC replay that sends each PUSH in a binary message of its own.
func TestWebSocketAndTCPUsersExchangeMessages(t *testing.T) {
	g := startGateway(t, withWebSocket)
	a, _, _ := g.loginWS(t, 1)
	b, _ := g.login(t, 2)
	for i, pair := range []struct {
		from, to *client.Conn
		toUID    uint64
	}{{a, b, 2}, {b, a, 1}} {
		if err := pair.from.Send(uint64(i+1), pair.toUID, 0, []byte(fmt.Sprintf("hello %d", i))); err != nil {
			t.Fatal(err)
		}
		if f := next(t, pair.from); f.Type != proto.TypeSendAck {
			t.Fatalf("exchange %d: got %v, want SEND_ACK", i, f.Type)
		}
		f := next(t, pair.to)
		var p proto.Push
		if f.Type != proto.TypePush || p.Decode(f.Body) != nil || string(p.Payload) != fmt.Sprintf("hello %d", i) {
			t.Fatalf("exchange %d: got %v %q", i, f.Type, p.Payload)
		}
	}
	a.Ping(77)
	var pong proto.Pong
	if f := next(t, a); f.Type != proto.TypePong || pong.Decode(f.Body) != nil || pong.TS != 77 {
		t.Fatalf("got %v, want PONG 77", f.Type)
	}
	// Offline catch-up over WebSocket: 40 messages, one SYNC.
	for i := 1; i <= 40; i++ {
		b.Send(uint64(100+i), 3, 0, []byte{byte(i)})
		if f := next(t, b); f.Type != proto.TypeSendAck {
			t.Fatalf("got %v", f.Type)
		}
	}
	c, _, ok := g.loginWS(t, 3)
	c.Sync(0, ok.Epoch, 0)
	for i := 1; ; i++ {
		f := next(t, c)
		if f.Type == proto.TypeSyncEnd {
			if i != 41 {
				t.Fatalf("SYNC_END after %d pushes, want 40", i-1)
			}
			break
		}
		var p proto.Push
		if f.Type != proto.TypePush || p.Decode(f.Body) != nil || p.Seq != uint64(i) {
			t.Fatalf("replay %d: %v seq %d", i, f.Type, p.Seq)
		}
	}
}

// Frames the epoller defers (SEND waits on the store) and the ones queued behind
// them while they wait reach the worker by two paths — decoded on the epoller and
// marked, or raw — and each must be decoded exactly once: 200 SENDs in one write,
// each answered once, in order.
func TestWebSocketPipelinedSendsAreEachHandledOnce(t *testing.T) {
	g := startGateway(t, func(c *node.Config) {
		withWebSocket(c)
		withoutRates(c)
		c.Backend = node.NewLocal(msg.NewMemory(1000))
	})
	a, w, _ := g.loginWS(t, 1)
	var batch []byte
	for i := 1; i <= 200; i++ {
		s := proto.Send{ClientMsgID: uint64(i), To: 2, Payload: []byte("x")}
		batch = appendMasked(batch, ws.OpBinary, s.Append(nil))
	}
	w.writeRaw(batch)
	for i := 1; i <= 200; i++ {
		var ack proto.SendAck
		if f := next(t, a); f.Type != proto.TypeSendAck || ack.Decode(f.Body) != nil || ack.ClientMsgID != uint64(i) {
			t.Fatalf("answer %d: %v %+v", i, f.Type, ack)
		}
	}
}

// A LOGIN fragmented into three frames with a ping between them: the ping is
// answered at once, the assembled LOGIN (deferred to a worker, not in any one
// unit) is handled once.
func TestWebSocketFragmentedLoginWithInterleavedPing(t *testing.T) {
	g := startGateway(t, withWebSocket)
	c, w := g.dialWS(t)
	login := proto.Login{Version: proto.Version, UID: 5, Token: g.signer.Mint(5, time.Now().Add(time.Hour))}
	frame := login.Append(nil)
	third := len(frame) / 3
	var raw []byte
	raw = appendMaskedFragment(raw, ws.OpBinary, frame[:third])
	raw = appendMasked(raw, ws.OpPing, []byte("are you there"))
	raw = appendMaskedFragment(raw, ws.OpContinuation, frame[third:2*third])
	raw = appendMasked(raw, ws.OpContinuation, frame[2*third:])
	w.writeRaw(raw)
	f := next(t, c)
	var ok proto.LoginOK
	if f.Type != proto.TypeLoginOK || ok.Decode(f.Body) != nil || ok.Session == 0 {
		t.Fatalf("got %v, want LOGIN_OK", f.Type)
	}
	if len(w.pongs) != 1 || string(w.pongs[0]) != "are you there" {
		t.Fatalf("pongs %q, want one echoing the ping", w.pongs)
	}
}

// Every way the server ends a WebSocket session: the KICK in a binary message
// and the close status PROTOCOL.md §2.1 gives it, or a bare close for a client
// that broke RFC 6455 or closed itself.
func TestWebSocketEndings(t *testing.T) {
	g := startGateway(t, withWebSocket)
	tests := []struct {
		name      string
		act       func(t *testing.T, c *client.Conn, w *wsNetConn)
		kick      proto.Code // 0: no KICK
		closeCode uint16
	}{
		{"text message", func(t *testing.T, c *client.Conn, w *wsNetConn) {
			w.writeRaw(appendMasked(nil, ws.OpText, []byte("hello")))
		}, proto.CodeMalformed, 1003},
		{"two frames in one message", func(t *testing.T, c *client.Conn, w *wsNetConn) {
			p := (&proto.Ping{TS: 1}).Append(nil)
			w.writeRaw(appendMasked(nil, ws.OpBinary, append(p, p...)))
		}, proto.CodeMalformed, 1008},
		{"frame over the pre-login limit", func(t *testing.T, c *client.Conn, w *wsNetConn) {
			l := proto.Login{Version: proto.Version, UID: 9, Token: bytes.Repeat([]byte{'t'}, 1500)}
			w.writeRaw(appendMasked(nil, ws.OpBinary, l.Append(nil)))
		}, proto.CodeFrameTooLarge, 1009},
		{"fragments over the pre-login limit", func(t *testing.T, c *client.Conn, w *wsNetConn) {
			part := bytes.Repeat([]byte{'x'}, 600) // each fragment small, together over 1 KiB
			w.writeRaw(appendMaskedFragment(appendMaskedFragment(nil, ws.OpBinary, part), ws.OpContinuation, part))
		}, proto.CodeFrameTooLarge, 1009},
		{"frame header over max_frame after login", func(t *testing.T, c *client.Conn, w *wsNetConn) {
			if _, err := c.Login(8, g.signer.Mint(8, time.Now().Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
			w.writeRaw([]byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4}) // announces 1 MiB
		}, proto.CodeFrameTooLarge, 1009},
		{"logged in elsewhere", func(t *testing.T, c *client.Conn, w *wsNetConn) {
			if _, err := c.Login(7, g.signer.Mint(7, time.Now().Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
			g.login(t, 7)
		}, proto.CodeSessionReplaced, 1000},
		{"ping flood before login", func(t *testing.T, c *client.Conn, w *wsNetConn) {
			var pings []byte
			for range 17 {
				pings = appendMasked(pings, ws.OpPing, []byte("p"))
			}
			w.writeRaw(pings)
		}, 0, 1008},
		{"unmasked frame", func(t *testing.T, c *client.Conn, w *wsNetConn) {
			w.writeRaw([]byte{0x82, 0x01, 0x00})
		}, 0, 1002},
		{"client close", func(t *testing.T, c *client.Conn, w *wsNetConn) {
			w.writeRaw(appendMasked(nil, ws.OpClose, []byte{0x03, 0xE8}))
		}, 0, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, w := g.dialWS(t)
			tt.act(t, c, w)
			var kick *client.KickError
			for {
				f, err := c.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if f.Type == proto.TypeKick {
					if kick != nil {
						t.Fatal("two KICKs")
					}
					kick, _ = client.AsError(f).(*client.KickError)
				}
			}
			switch {
			case tt.kick == 0 && kick != nil:
				t.Fatalf("got %v, want no KICK", kick)
			case tt.kick != 0 && (kick == nil || kick.Code != tt.kick):
				t.Fatalf("got KICK %v, want code %v", kick, tt.kick)
			case !w.closed || w.closeCode != tt.closeCode:
				t.Fatalf("close frame: seen %v, status %d; want %d", w.closed, w.closeCode, tt.closeCode)
			}
		})
	}
}

// The handshake's other answers: the page for a plain GET of a configured path,
// 404 for another, the HTTP errors of a bad upgrade, and the subprotocol choice.
func TestWebSocketHTTPAnswers(t *testing.T) {
	page := []byte("<!doctype html><title>chat</title>")
	g := startGateway(t, func(c *node.Config) { withWebSocket(c); c.Pages = map[string][]byte{"/chat": page} })
	tests := []struct {
		name, request, wantStatus, wantBody string
	}{
		{"page", "GET /chat?uid=1 HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 ", string(page)},
		{"not found", "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 ", "not found\n"},
		{"no key", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", "HTTP/1.1 400 ", ""},
		{"old version", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 8\r\n\r\n", "HTTP/1.1 426 ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := net.DialTimeout("tcp", g.WSAddr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			nc.Write([]byte(tt.request))
			resp, err := io.ReadAll(nc) // the server closes after answering
			if err != nil {
				t.Fatal(err)
			}
			head, body, _ := strings.Cut(string(resp), "\r\n\r\n")
			if !strings.HasPrefix(head, tt.wantStatus) || tt.wantBody != "" && body != tt.wantBody {
				t.Fatalf("response %q, want status %q and body %q", resp, tt.wantStatus, tt.wantBody)
			}
		})
	}
	t.Run("subprotocol", func(t *testing.T) {
		for _, offer := range []string{"chat, floodgate", "chat"} {
			nc, err := net.DialTimeout("tcp", g.WSAddr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			resp := wsHandshake(t, nc, bufio.NewReader(nc), "/", "Sec-WebSocket-Protocol: "+offer+"\r\n")
			nc.Close()
			chose := strings.Contains(resp, "Sec-WebSocket-Protocol: floodgate\r\n")
			if want := strings.Contains(offer, "floodgate"); chose != want {
				t.Fatalf("offer %q: response %q", offer, resp)
			}
		}
	})
}

// In echo mode the WebSocket port sends each binary message back.
func TestWebSocketEcho(t *testing.T) {
	g := startGateway(t, func(c *node.Config) { withWebSocket(c); c.Echo = true; c.Signer, c.Backend = nil, nil })
	c, _ := g.dialWS(t)
	frame := (&proto.Ping{TS: 99}).Append(nil)
	if err := c.WriteRaw(frame); err != nil {
		t.Fatal(err)
	}
	var p proto.Ping
	if f := next(t, c); f.Type != proto.TypePing || p.Decode(f.Body) != nil || p.TS != 99 {
		t.Fatalf("echo: got %v", f.Type)
	}
}

// A connection refused at accept has not sent its handshake yet: it is answered
// with an HTTP 503 and a retry hint, not a WebSocket frame.
func TestWebSocketRefusedAtAcceptGets503(t *testing.T) {
	g := startGateway(t, func(c *node.Config) { withWebSocket(c); c.Reactor.MaxConns = 1 })
	g.dialWS(t) // holds the one connection
	nc, err := net.DialTimeout("tcp", g.WSAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := io.ReadAll(nc)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(resp); !strings.HasPrefix(s, "HTTP/1.1 503 ") || !strings.Contains(s, "\r\nRetry-After: ") {
		t.Fatalf("refused connection got %q, want a 503 with Retry-After", s)
	}
}

// The two ports share the process's file limit: the node reports one connection
// limit, not their sum (control and ipconf judge a gateway's load by it).
func TestWebSocketPortDoesNotDoubleTheConnectionLimit(t *testing.T) {
	g := startGateway(t, func(c *node.Config) { withWebSocket(c); c.Reactor.MaxConns = 100 })
	g.dialWS(t)
	g.login(t, 3)
	poll.True(t, 5*time.Second, "both connections counted", func() bool { return g.Stats().Conns == 2 })
	if s := g.Stats(); s.MaxConns != 100 {
		t.Fatalf("MaxConns = %d with a WebSocket port, want 100", s.MaxConns)
	}
}
