package loadgen

import (
	"net/netip"

	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/floodgate/floodgate/gateway/ws"
)

// WebSocket users (Plan.WebSocketShare) speak the client protocol exactly as TCP
// users do, one frame of it per binary WebSocket message (PROTOCOL.md §2.1). Their
// connections live on a reactor of their own, whose Framer cuts the server's
// handshake response and then its WebSocket frames (ws.CutClientStream); its
// handler, wsHandler, does the handshake and the framing and hands each message's
// frame to the same code a TCP connection's frames go to. Everything above the
// framing — the user's state machine, the ledger, the latency measured from the
// payload's intended send time to the PUSH's arrival — is shared, so the two
// transports are measured alike.

// wsProtocol is the subprotocol the users offer; the gateway selects it.
const wsProtocol = "floodgate"

// wsMaxMessage bounds a server message: one client-protocol frame of the largest
// size the TCP framer accepts, with its length prefix.
const wsMaxMessage = 4 + 1<<24

// wsConn is one WebSocket connection's own state, the reactor's context for it:
// its user, the key its handshake sent (to check the answer), whether the
// handshake is done, and its decoder of the server's frames.
type wsConn struct {
	u        *user
	host     string
	key      ws.Key
	upgraded bool
	dec      ws.ClientDecoder
}

// wsHandler is the WebSocket reactor's handler: the agent behind a WebSocket layer.
type wsHandler struct{ a *Agent }

// OnOpen implements reactor.Handler: the TCP connection is up; send the upgrade
// request. The login follows the server's 101.
func (h wsHandler) OnOpen(c *reactor.Conn) {
	wc := c.Context().(*wsConn)
	a := h.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if wc.u.roleOf(c) == roleNone {
		return
	}
	a.wsbuf = ws.AppendRequest(a.wsbuf[:0], wc.host, "/", wc.key, wsProtocol)
	c.Write(a.wsbuf)
}

// OnDeferred implements reactor.Handler (everything is handled inline).
func (wsHandler) OnDeferred(*reactor.Conn, []byte) {}

// OnFrame implements reactor.Handler for one unit CutClientStream cut: the
// handshake response first, then one server frame each.
func (h wsHandler) OnFrame(c *reactor.Conn, unit []byte) reactor.Disposition {
	wc := c.Context().(*wsConn)
	a := h.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if !wc.upgraded {
		if !ws.IsResponse(unit) {
			a.wsFail(c, ws.ErrBadResponse)
			return reactor.Handled
		}
		if _, n, err := ws.ParseResponse(unit, wc.key, wsProtocol); err != nil || n != len(unit) {
			a.wsRefused++
			a.log.Debug("websocket handshake refused", "addr", wc.host, "err", err)
			c.Close()
			return reactor.Handled
		}
		wc.upgraded = true
		a.wsConns++
		a.opened(c, wc.u)
		return reactor.Handled
	}
	if ws.IsResponse(unit) {
		a.wsFail(c, ws.ErrBadResponse)
		return reactor.Handled
	}
	m, _, err := wc.dec.Decode(unit)
	if err != nil {
		a.wsFail(c, err)
		return reactor.Handled
	}
	switch m.Op {
	case ws.OpBinary:
		a.onFrame(c, wc.u, m.Payload)
	case ws.OpPing:
		a.wsbuf = ws.AppendClientFrame(a.wsbuf[:0], ws.OpPong, m.Payload, a.masks.Next())
		c.Write(a.wsbuf)
	case ws.OpClose:
		// The server's last words (its KICK) came before; echo the close (RFC
		// 6455 §5.5.1) and end the connection as a TCP FIN would.
		c.CloseWith(ws.AppendClientClose(nil, m.Code, "", a.masks.Next()))
	case ws.OpText:
		a.wsFail(c, &ws.Error{Code: ws.CloseUnsupportedData, Reason: "text message"})
	}
	return reactor.Handled
}

// OnClose implements reactor.Handler.
func (h wsHandler) OnClose(c *reactor.Conn, _ reactor.Reason, _ error) {
	wc := c.Context().(*wsConn)
	h.a.mu.Lock()
	defer h.a.mu.Unlock()
	h.a.closed(c, wc.u)
}

// wsFail fails a WebSocket connection whose server broke RFC 6455 or PROTOCOL.md
// §2.1: a protocol error, a close with the matching code. Caller holds the lock.
func (a *Agent) wsFail(c *reactor.Conn, err error) {
	a.protoErrors++
	a.log.Debug("websocket violation", "err", err)
	c.CloseWith(ws.AppendClientClose(nil, ws.CloseCode(err), "", a.masks.Next()))
}

// write sends one frame of the client protocol to u on c: as it is on TCP, in one
// masked binary message on WebSocket. Like every write of the agent it ignores
// the error: a connection that fails a write is ending, and OnClose follows.
// Caller holds the lock.
func (a *Agent) write(u *user, c *reactor.Conn, frame []byte) {
	if !u.ws {
		c.Write(frame)
		return
	}
	a.wsbuf = ws.AppendClientFrame(a.wsbuf[:0], ws.OpBinary, frame, a.masks.Next())
	c.Write(a.wsbuf)
}

// dialUser starts a connection of u to the gateway at index i of the list: its
// TCP port, or its WebSocket port for a WebSocket user. Caller holds the lock.
func (a *Agent) dialUser(u *user, i int, local netip.Addr) (*reactor.Conn, error) {
	if !u.ws {
		ap, err := netip.ParseAddrPort(a.gateways[i])
		if err != nil {
			return nil, err
		}
		return a.r.Dial(ap, local, u)
	}
	host := a.wsGateways[i]
	ap, err := netip.ParseAddrPort(host)
	if err != nil {
		return nil, err
	}
	return a.wr.Dial(ap, local, &wsConn{u: u, host: host, key: ws.NewKey(), dec: ws.ClientDecoder{MaxMessage: wsMaxMessage}})
}

// wsIndex is the gateway a WebSocket user dials instead of gateway i: i itself
// when it has a WebSocket port, otherwise the next one of the list that has one;
// -1 when none has. Caller holds the lock.
func (a *Agent) wsIndex(i int) int {
	n := len(a.gateways)
	for d := 0; d < n; d++ {
		j := (i + d) % n
		if j < len(a.wsGateways) && a.wsGateways[j] != "" {
			return j
		}
	}
	return -1
}
