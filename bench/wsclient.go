package bench

import (
	"fmt"

	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/floodgate/floodgate/gateway/ws"
)

// The load client's WebSocket transport (ClientConfig.WebSocket), the client side of
// gateway/proto/PROTOCOL.md §2.1, built on the client side of gateway/ws: after the
// TCP connect the client sends one opening handshake (ws.AppendRequest) with a fresh
// random Sec-WebSocket-Key, and the connection counts as established only once the
// server's 101 has arrived and ws.ParseResponse accepts it (its Sec-WebSocket-Accept
// matches the key). From then on the server's input is unmasked frames, which a
// ws.ClientDecoder reads. The client answers a ping with a pong and a close with a
// close echoing its status code, after which the connection ends; it sends no data
// messages (the WebSocket server variant runs the idle test only).

// wsSubprotocol is the subprotocol the client offers, as the browser page does.
const wsSubprotocol = "floodgate"

// wsMaxPayload bounds a server frame's payload, and a server message's: one
// client-protocol frame.
const wsMaxPayload = MaxMsgBytes

// wsFramer is the reactor Framer of a WebSocket client connection: the handshake
// response, then one server frame at a time, each frame's payload at most
// wsMaxPayload (ws.CutClientStream).
func wsFramer(b []byte) (int, error) { return ws.CutClientStream(b, wsMaxPayload) }

// wsState is a WebSocket connection's part of its dialState. Epoller-only.
type wsState struct {
	// key is the Sec-WebSocket-Key the opening handshake sent.
	key ws.Key
	// dec reads the server's frames once the handshake is done.
	dec ws.ClientDecoder
}

// sendWSHandshake starts a WebSocket connection: a fresh key, and the opening
// handshake for path / offering wsSubprotocol.
func (h clientHandler) sendWSHandshake(conn *reactor.Conn, st *dialState) {
	st.ws = &wsState{key: ws.NewKey(), dec: ws.ClientDecoder{MaxMessage: wsMaxPayload}}
	if err := conn.Write(ws.AppendRequest(nil, conn.RemoteAddr().String(), "/", st.ws.key, wsSubprotocol)); err != nil {
		h.fail(conn, st, fmt.Errorf("websocket: sending the handshake: %w", err))
	}
}

// onWSFrame handles one unit of a WebSocket connection's input (cut by wsFramer):
// before the upgrade the handshake response, after it a server frame. The server
// sends no data messages to an idle client; a ping is answered with a pong, a close
// with a close, after which the connection ends. A frame the decoder refuses fails
// the connection with the close code the decoder gives.
func (h clientHandler) onWSFrame(conn *reactor.Conn, st *dialState, f []byte) {
	if !st.opened {
		if _, n, err := ws.ParseResponse(f, st.ws.key, wsSubprotocol); err != nil || n != len(f) {
			if err == nil { // wsFramer cut a frame where the response belongs
				err = ws.ErrBadResponse
			}
			h.fail(conn, st, fmt.Errorf("opening handshake: %w", err))
			return
		}
		h.established(st)
		return
	}
	if ws.IsResponse(f) {
		conn.CloseWith(ws.AppendClientClose(nil, ws.CloseCode(ws.ErrBadResponse), "", h.c.masks.Next()))
		return
	}
	m, _, err := st.ws.dec.Decode(f) // f is one whole frame: wsFramer cut it
	if err != nil {
		conn.CloseWith(ws.AppendClientClose(nil, ws.CloseCode(err), "", h.c.masks.Next()))
		return
	}
	switch m.Op {
	case ws.OpPing:
		if err := conn.Write(ws.AppendClientFrame(nil, ws.OpPong, m.Payload, h.c.masks.Next())); err != nil {
			conn.Close()
		}
	case ws.OpClose:
		// Echo the status code, if any, as RFC 6455 §5.5.1 asks, then close.
		conn.CloseWith(ws.AppendClientClose(nil, m.Code, "", h.c.masks.Next()))
	}
}
