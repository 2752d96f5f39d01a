package client

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/floodgate/floodgate/gateway/ws"
)

// wsConn carries the client protocol's byte stream over a WebSocket connection
// (PROTOCOL.md §2.1): each Write goes out as one masked binary message, and Read
// returns the payloads of the server's binary messages in order. The client
// package writes one whole frame per Write, so each message holds one frame, as
// the protocol asks.
type wsConn struct {
	net.Conn
	wmu  sync.Mutex // Write and the pongs Read sends
	mask ws.MaskSource
	out  []byte // under wmu

	in      []byte // unparsed input (Read's goroutine)
	pending []byte // the rest of the current binary message
	dec     ws.ClientDecoder
	closed  bool
	// CloseCode is the status of the server's close frame, once one came.
	closeCode uint16
}

// WebSocket performs the opening handshake on nc, a connection to a gateway's
// WebSocket port, for path on host (the Host header), and returns a net.Conn that
// carries the client protocol's byte stream over it: New on it gives a Conn that
// speaks the protocol over WebSocket. The handshake is bounded by nc's deadline.
func WebSocket(nc net.Conn, host, path string) (net.Conn, error) {
	key := ws.NewKey()
	if _, err := nc.Write(ws.AppendRequest(nil, host, path, key, "floodgate")); err != nil {
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	c := &wsConn{Conn: nc, mask: ws.NewMaskSource(), dec: ws.ClientDecoder{MaxMessage: 4 + clientMaxFrame}}
	buf := make([]byte, 0, 1024)
	for {
		_, n, err := ws.ParseResponse(buf, key, "floodgate")
		if err != nil {
			return nil, fmt.Errorf("websocket handshake: %w", err)
		}
		if n > 0 {
			c.in = append(c.in, buf[n:]...) // frames that came with the response
			return c, nil
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := nc.Read(buf[len(buf):cap(buf)])
		if err != nil {
			return nil, fmt.Errorf("websocket handshake: %w", err)
		}
		buf = buf[:len(buf)+m]
	}
}

// DialWebSocket connects to a gateway's WebSocket port at addr (ip:port) within
// timeout and returns a Conn speaking the protocol over it.
func DialWebSocket(addr string, timeout time.Duration) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(timeout))
	wc, err := WebSocket(nc, addr, "/")
	if err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return New(wc), nil
}

// Write sends b as one masked binary message.
func (c *wsConn) Write(b []byte) (int, error) {
	if err := c.send(ws.OpBinary, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (c *wsConn) send(op ws.Opcode, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.out = ws.AppendClientFrame(c.out[:0], op, payload, c.mask.Next())
	_, err := c.Conn.Write(c.out)
	return err
}

// Read returns bytes of the server's binary messages; io.EOF after its close frame
// (answered with a close of the same status).
func (c *wsConn) Read(b []byte) (int, error) {
	for len(c.pending) == 0 {
		if c.closed {
			return 0, io.EOF
		}
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	n := copy(b, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// next decodes the next server frame, reading more input while it is incomplete.
func (c *wsConn) next() error {
	for {
		m, n, err := c.dec.Decode(c.in)
		if err != nil {
			return fmt.Errorf("websocket: %w", err)
		}
		if n == 0 {
			if err := c.fill(); err != nil {
				return err
			}
			continue
		}
		// Keep the payload: the next fill may move c.in's bytes.
		payload := append([]byte(nil), m.Payload...)
		c.in = c.in[n:]
		switch m.Op {
		case ws.OpBinary:
			c.pending = payload
		case ws.OpPing:
			return c.send(ws.OpPong, payload)
		case ws.OpClose:
			c.closed, c.closeCode = true, m.Code
			c.wmu.Lock()
			c.out = ws.AppendClientClose(c.out[:0], m.Code, "", c.mask.Next())
			c.Conn.Write(c.out) //nolint:errcheck // the server is closing anyway
			c.wmu.Unlock()
		case ws.OpText:
			return errors.New("websocket: text message from the server")
		}
		return nil
	}
}

// fill reads more input.
func (c *wsConn) fill() error {
	if len(c.in) == cap(c.in) {
		grown := make([]byte, len(c.in), 2*cap(c.in)+4096)
		copy(grown, c.in)
		c.in = grown
	}
	m, err := c.Conn.Read(c.in[len(c.in):cap(c.in)])
	c.in = c.in[:len(c.in)+m]
	if m > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// WebSocketCloseCode returns the status of the server's close frame on a Conn made
// by DialWebSocket or over WebSocket, and whether one has come.
func WebSocketCloseCode(c *Conn) (uint16, bool) {
	wc, ok := c.nc.(*wsConn)
	if !ok || !wc.closed {
		return 0, false
	}
	return wc.closeCode, true
}
