package node

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/floodgate/floodgate/gateway/ws"
)

// The WebSocket port (PROTOCOL.md §2.1) is a second reactor whose Framer cuts the
// opening handshake and then WebSocket frames (ws.CutStream). wsPort, its handler,
// answers the handshake and the control frames and unwraps each binary message into
// the client-protocol frame it carries, which then takes handle, the path of every
// TCP frame. Output is wrapped the other way where the node writes: a connection
// whose context is a *wsConn gets each frame in a binary message of its own.

// wsSubprotocol is the subprotocol the server selects when a client offers it.
const wsSubprotocol = "floodgate"

// wsMaxPreLoginControls is how many pings and pongs a connection may send before
// its LOGIN succeeds; one more closes it with 1008 (a browser sends none).
const wsMaxPreLoginControls = 16

// wsHeadroom is the room write leaves before a frame for the header of the binary
// message that carries it: the longest unmasked header, 2 bytes and an 8-byte length.
const wsHeadroom = 10

// wsConn is a WebSocket connection's state. It is the connection's context from
// OnOpen on and is never replaced, so that a writer on any goroutine can tell a
// WebSocket connection by its context's type; the session, once logged in, lives
// in it. The handler's callbacks for one connection never overlap, so the fields
// other than s need no synchronisation.
type wsConn struct {
	upgraded bool // the 101 went out: the input is frames from now on
	dec      ws.Decoder
	// units numbers the units (handshake, frames) the handler has taken, in the
	// order read: the position sentBeforeLoginOK compares with the reads counted at
	// LOGIN_OK, as the TCP path compares its frame count.
	units uint32
	// controls counts the pings and pongs before LOGIN succeeds: the rate limits
	// apply from then on, so before it wsMaxPreLoginControls bounds what a peer
	// that never logs in makes the gateway answer.
	controls uint32
	// deferred is the message behind the one frame OnFrame decoded, marked
	// (ws.MarkDecoded) and deferred: a fragmented message's assembled payload, or
	// nil for a message that came in that one frame, which is then the last
	// deferredLen bytes of the copy the worker gets. At most one marked frame is
	// outstanding: the reactor offers no frame to OnFrame while one of the
	// connection's frames waits for a worker, so the next mark comes after this
	// one was handled.
	deferred    []byte
	deferredLen int
	s           atomic.Pointer[session]
}

// sessionOf returns the connection's session, nil before LOGIN succeeds.
func sessionOf(c *reactor.Conn) *session {
	switch v := c.Context().(type) {
	case *session:
		return v
	case *wsConn:
		return v.s.Load()
	}
	return nil
}

// bindSession makes s the connection's session; a WebSocket connection's messages
// may be max_frame long from now on. It runs in one of the connection's own
// callbacks (the LOGIN's), so it may touch the Decoder.
func (n *Node) bindSession(c *reactor.Conn, s *session) {
	if w, ok := c.Context().(*wsConn); ok {
		w.dec.MaxMessage = lengthField + n.cfg.MaxFrame
		w.s.Store(s)
		return
	}
	c.SetContext(s)
}

// isWebSocket reports whether c came in on the WebSocket port.
func isWebSocket(c *reactor.Conn) bool {
	_, ok := c.Context().(*wsConn)
	return ok
}

// wsPort is the WebSocket port's reactor.Handler.
type wsPort struct{ n *Node }

// OnOpen implements reactor.Handler. Until its LOGIN succeeds a connection's
// messages are held to the pre-login frame limit, fragments included, as a TCP
// connection's frames are: an unauthenticated peer makes the gateway keep a few
// KiB at most (bindSession raises the limit to max_frame).
func (p wsPort) OnOpen(c *reactor.Conn) {
	limit := p.n.cfg.PreLoginMaxFrame
	if p.n.cfg.Echo {
		limit = p.n.cfg.MaxFrame
	}
	c.SetContext(&wsConn{dec: ws.Decoder{MaxMessage: lengthField + limit}})
}

// OnFrame implements reactor.Handler. A unit is decoded here exactly once (Decode
// unmasks in place); if the client frame it carries is deferred, the unit is marked
// so that OnDeferred, which gets a copy of the same bytes, does not decode it again.
func (p wsPort) OnFrame(c *reactor.Conn, unit []byte) reactor.Disposition {
	w := c.Context().(*wsConn)
	w.units++
	inner, ok := p.take(c, w, unit)
	if !ok {
		return reactor.Handled
	}
	if p.n.cfg.Echo {
		p.n.write(c, 0, func(b []byte) []byte { return append(b, inner...) })
		return reactor.Handled
	}
	d := p.n.handle(c, inner, true)
	if d == reactor.Defer {
		ws.MarkDecoded(unit)
		w.deferred, w.deferredLen = nil, len(inner)
		if len(inner) > len(unit) || &unit[len(unit)-len(inner)] != &inner[0] {
			w.deferred = inner // assembled from fragments: not in the unit
		}
	}
	return d
}

// OnDeferred implements reactor.Handler.
func (p wsPort) OnDeferred(c *reactor.Conn, unit []byte) {
	w := c.Context().(*wsConn)
	var inner []byte
	if ws.Decoded(unit) {
		inner = w.deferred
		if inner == nil {
			inner = unit[len(unit)-w.deferredLen:]
		}
		w.deferred = nil
	} else {
		w.units++
		var ok bool
		if inner, ok = p.take(c, w, unit); !ok {
			return
		}
	}
	p.n.handle(c, inner, false)
}

// OnClose implements reactor.Handler.
func (p wsPort) OnClose(c *reactor.Conn, r reactor.Reason, err error) { p.n.OnClose(c, r, err) }

// take handles one unit of input: the opening handshake, a control frame or a
// fragment, all answered here; or the last frame of a binary message, whose
// client-protocol frame it returns with ok.
func (p wsPort) take(c *reactor.Conn, w *wsConn, unit []byte) (inner []byte, ok bool) {
	n := p.n
	if !w.upgraded {
		n.upgrade(c, w, unit)
		return nil, false
	}
	m, _, err := w.dec.Decode(unit)
	if errors.Is(err, ws.ErrMessageTooBig) { // as on TCP: the frame inside is over the limit
		n.kickWS(c, proto.ReasonProtocol, proto.CodeFrameTooLarge, 0,
			"message over "+strconv.Itoa(w.dec.MaxMessage)+" bytes", ws.CloseTooBig)
		return nil, false
	}
	if err != nil {
		reason := ""
		if we := (*ws.Error)(nil); errors.As(err, &we) {
			reason = we.Reason
		}
		c.CloseWith(ws.AppendClose(nil, ws.CloseCode(err), reason))
		return nil, false
	}
	if (m.Op == ws.OpPing || m.Op == ws.OpPong) && w.s.Load() == nil && !n.cfg.Echo {
		if w.controls++; w.controls > wsMaxPreLoginControls {
			c.CloseWith(ws.AppendClose(nil, ws.ClosePolicyViolation, "too many control frames before login"))
			return nil, false
		}
	}
	switch m.Op {
	case ws.OpContinuation, ws.OpPong: // a fragment (kept by the Decoder), or a pong nobody asked for
		return nil, false
	case ws.OpPing:
		n.writeRaw(c, func(b []byte) []byte { return ws.AppendFrame(b, ws.OpPong, m.Payload) })
		return nil, false
	case ws.OpClose: // the peer ends the session: echo its status (RFC 6455 §5.5.1) and close
		c.CloseWith(ws.AppendClose(nil, m.Code, ""))
		return nil, false
	case ws.OpText:
		n.kickWS(c, proto.ReasonProtocol, proto.CodeMalformed, 0, "text message: the client protocol is binary", ws.CloseUnsupportedData)
		return nil, false
	}
	if n.cfg.Echo {
		return m.Payload, true
	}
	limit := n.cfg.MaxFrame
	if w.s.Load() == nil {
		limit = n.cfg.PreLoginMaxFrame
	}
	size, err := proto.FrameSize(m.Payload, limit)
	switch {
	case errors.Is(err, proto.ErrFrameTooLarge):
		n.kickWS(c, proto.ReasonProtocol, proto.CodeFrameTooLarge, 0,
			"frame over "+strconv.Itoa(limit)+" bytes", ws.CloseTooBig)
		return nil, false
	case err != nil || size != len(m.Payload):
		n.kick(c, proto.ReasonProtocol, proto.CodeMalformed, 0, "a binary message carries exactly one whole frame")
		return nil, false
	}
	return m.Payload, true
}

// upgrade answers the opening handshake: 101 and the connection speaks frames, the
// page for a plain GET of one of Config.Pages, or an HTTP error and a close.
func (n *Node) upgrade(c *reactor.Conn, w *wsConn, unit []byte) {
	req, _, err := ws.ParseUpgrade(unit)
	if err != nil {
		if page, status := n.plainGET(unit); status != 0 {
			c.CloseWith(appendPage(nil, status, page))
			return
		}
		var he *ws.HandshakeError
		if !errors.As(err, &he) {
			he = &ws.HandshakeError{Status: 400, Reason: err.Error()}
		}
		c.CloseWith(ws.AppendReject(nil, he.Status, he.Reason))
		return
	}
	protocol := ""
	if req.Offers(wsSubprotocol) {
		protocol = wsSubprotocol
	}
	w.upgraded = true
	n.writeRaw(c, func(b []byte) []byte { return ws.AppendResponse(b, &req, protocol) }) //nolint:errcheck // a failed write closes the connection itself
}

// plainGET recognises a GET that asks for no upgrade (it has no Upgrade header):
// 200 and the page for a path in Config.Pages (query ignored), 404 for any other;
// status 0 for a request that is a WebSocket handshake gone wrong.
func (n *Node) plainGET(req []byte) (page []byte, status int) {
	line, headers, _ := bytes.Cut(req, []byte("\r\n"))
	if bytes.Contains(bytes.ToLower(headers), []byte("\nupgrade:")) || bytes.HasPrefix(bytes.ToLower(headers), []byte("upgrade:")) {
		return nil, 0
	}
	f := bytes.Fields(line)
	if len(f) != 3 || string(f[0]) != "GET" {
		return nil, 0
	}
	path, _, _ := bytes.Cut(f[1], []byte("?"))
	if page, ok := n.cfg.Pages[string(path)]; ok {
		return page, 200
	}
	return []byte("not found\n"), 404
}

// appendPage appends an HTTP response carrying body, for a connection closed after it.
func appendPage(dst []byte, status int, body []byte) []byte {
	ctype, text := "text/html; charset=utf-8", "OK"
	if status != 200 {
		ctype, text = "text/plain; charset=utf-8", "Not Found"
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	dst = append(dst, "\r\nContent-Type: "...)
	dst = append(dst, ctype...)
	dst = append(dst, "\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// wsRefused is the WebSocket port's Config.Refused. A refused binary message that
// came in one frame is the client frame it carries, refused as on TCP (refused); a
// control frame is dropped (a ping is repeated; a close is followed by the peer's
// FIN). A refused fragment cannot be dropped without corrupting its message, so it
// ends the connection as a rate-limit kick would. It runs on the epoller and never
// touches the connection's Decoder (a worker may be using it): DecodeOne decodes
// the unit alone, unmasking it in place, which is safe as the unit is dropped.
func (n *Node) wsRefused(c *reactor.Conn, unit []byte) (counts bool) {
	op, fin, payload, err := ws.DecodeOne(unit)
	switch {
	case err != nil || op.IsControl():
		return true
	case op == ws.OpBinary && fin:
		return n.refused(c, payload)
	}
	n.kickWS(c, proto.ReasonPolicy, proto.CodeRateExceeded, jitterMS(policyRetryMin, policyRetryMax),
		"rate limits exceeded", ws.ClosePolicyViolation)
	return true
}

// wsFarewell is the WebSocket port's Config.Farewell. A connection refused at
// accept has not sent its handshake: it gets an HTTP 503 with Retry-After. A
// handshake the Framer refused gets its HTTP error, a frame header no client may
// send its WebSocket close; every other close gets the KICK the TCP port would
// send, in a binary message, and a close frame.
func (n *Node) wsFarewell(r reactor.Reason, err error) []byte {
	var he *ws.HandshakeError
	var we *ws.Error
	switch {
	case errors.As(err, &he):
		return ws.AppendReject(nil, he.Status, he.Reason)
	case errors.Is(err, ws.ErrMessageTooBig):
		// A frame header announcing more than max_frame: the KICK a TCP client
		// gets for the same (farewellKick counts and logs it).
		err = fmt.Errorf("%w: a message over %d bytes", reactor.ErrFrameTooLarge, lengthField+n.cfg.MaxFrame)
	case errors.As(err, &we):
		return ws.AppendClose(nil, we.Code, we.Reason)
	}
	k, ok := n.farewellKick(r, err)
	if !ok {
		return nil
	}
	if r == reactor.ReasonBusy || r == reactor.ReasonAddrLimit {
		return ws.AppendUnavailable(nil, (int(k.RetryAfterMS)+999)/1000, k.Code.String())
	}
	return appendWSKick(nil, &k, wsCloseCode(k.Reason, k.Code))
}

// appendWSKick appends k in a binary message and then the close frame with
// status code.
func appendWSKick(dst []byte, k *proto.Kick, code uint16) []byte {
	dst = ws.AppendFrameHeader(dst, ws.OpBinary, k.Size())
	dst = k.Append(dst)
	return ws.AppendClose(dst, code, "")
}

// wsCloseCode is the close status that follows a KICK (PROTOCOL.md §2.1).
func wsCloseCode(r proto.Reason, code proto.Code) uint16 {
	switch {
	case code == proto.CodeFrameTooLarge:
		return ws.CloseTooBig
	case r == proto.ReasonShutdown || r == proto.ReasonDrain:
		return ws.CloseGoingAway
	case r == proto.ReasonBusy:
		return ws.CloseTryAgainLater
	case r == proto.ReasonProtocol || r == proto.ReasonPolicy:
		return ws.ClosePolicyViolation
	}
	return ws.CloseNormal
}

// appendWSHeader appends, on a WebSocket connection (on), the header of the binary
// message that carries the size-byte frame the caller appends next.
func appendWSHeader(b []byte, on bool, size int) []byte {
	if !on {
		return b
	}
	return ws.AppendFrameHeader(b, ws.OpBinary, size)
}

// sentBeforeLoginOK is session.sentBeforeLoginOK for c: on the WebSocket port the
// frame's position in the stream is its unit's (handshake and control frames
// count, as the reactor's FramesRead does).
func sentBeforeLoginOK(c *reactor.Conn, s *session) bool {
	if w, ok := c.Context().(*wsConn); ok {
		return w.units <= s.readAtOK
	}
	return s.sentBeforeLoginOK()
}
