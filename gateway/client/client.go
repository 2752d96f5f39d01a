// Package client is a small blocking client for the Floodgate protocol, on the
// standard library's net.Conn: for tests, examples and tools. (The load generator
// uses the epoll reactor instead, to hold many thousands of connections.)
package client

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
)

// Conn is one client connection. Send-side methods and Next may be used from two
// different goroutines (one writer, one reader), as with net.Conn.
type Conn struct {
	nc       net.Conn
	r        *bufio.Reader
	buf      []byte // the last frame read; Frame bodies alias it until the next Next
	wbuf     []byte
	maxFrame int
}

// Dial connects to a gateway.
func Dial(addr string, timeout time.Duration) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return New(nc), nil
}

// New wraps an established connection.
func New(nc net.Conn) *Conn {
	return &Conn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), maxFrame: clientMaxFrame}
}

// NetConn returns the underlying connection (for deadlines, CloseWrite, raw bytes).
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// WriteRaw writes bytes as they are (for tests that send malformed input).
func (c *Conn) WriteRaw(b []byte) error {
	_, err := c.nc.Write(b)
	return err
}

func (c *Conn) write(encode func([]byte) []byte) error {
	c.wbuf = encode(c.wbuf[:0])
	_, err := c.nc.Write(c.wbuf)
	return err
}

// Buffered reports how many bytes have been read from the connection but not
// yet returned by Next: 0 means the frames that arrived are all consumed.
func (c *Conn) Buffered() int { return c.r.Buffered() }

// clientMaxFrame is the largest frame the client reads: far above any max_frame a
// server announces (PROTOCOL.md §2), a bound on what a broken server makes it hold.
const clientMaxFrame = 1 << 24

// Next reads the next frame. Its Body is valid until the next call to Next.
func (c *Conn) Next() (proto.Frame, error) {
	var h [4]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return proto.Frame{}, err
	}
	size, err := proto.FrameSize(h[:], c.maxFrame)
	if err != nil {
		return proto.Frame{}, err
	}
	if cap(c.buf) < size {
		c.buf = make([]byte, size)
	}
	c.buf = c.buf[:size]
	copy(c.buf, h[:])
	if _, err := io.ReadFull(c.r, c.buf[4:]); err != nil {
		return proto.Frame{}, fmt.Errorf("frame body: %w", err)
	}
	return proto.ParseFrame(c.buf)
}

// KickError is a KICK: the server's last frame before it closed the connection.
type KickError struct {
	Reason       proto.Reason
	Code         proto.Code
	RetryAfterMS uint32
	Message      string
}

func (e *KickError) Error() string {
	return fmt.Sprintf("kicked: %v %v (retry after %dms): %s", e.Reason, e.Code, e.RetryAfterMS, e.Message)
}

// ServerError is a non-fatal ERROR about one request.
type ServerError struct {
	Code    proto.Code
	Ref     uint64
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("server error %v for request %d: %s", e.Code, e.Ref, e.Message)
}

// AsError turns a KICK or ERROR frame into a *KickError or *ServerError; nil for
// other frames.
func AsError(f proto.Frame) error {
	switch f.Type {
	case proto.TypeKick:
		var k proto.Kick
		if err := k.Decode(f.Body); err != nil {
			return err
		}
		return &KickError{Reason: k.Reason, Code: k.Code, RetryAfterMS: k.RetryAfterMS, Message: string(k.Message)}
	case proto.TypeError:
		var e proto.Error
		if err := e.Decode(f.Body); err != nil {
			return err
		}
		return &ServerError{Code: e.Code, Ref: e.Ref, Message: string(e.Message)}
	}
	return nil
}

// Login sends LOGIN announcing proto.Version and waits for LOGIN_OK (frames
// before it are an error).
func (c *Conn) Login(uid uint64, token []byte) (proto.LoginOK, error) {
	return c.LoginVersion(proto.Version, uid, token)
}

// LoginVersion is Login announcing version: proto.VersionTrace opts in to
// SEND_TRACED and PUSH_TRACED (the caller then handles PUSH_TRACED from Next).
func (c *Conn) LoginVersion(version uint8, uid uint64, token []byte) (proto.LoginOK, error) {
	m := proto.Login{Version: version, UID: uid, Token: token}
	if err := c.write(m.Append); err != nil {
		return proto.LoginOK{}, err
	}
	f, err := c.Next()
	if err != nil {
		return proto.LoginOK{}, err
	}
	if err := AsError(f); err != nil {
		return proto.LoginOK{}, err
	}
	if f.Type != proto.TypeLoginOK {
		return proto.LoginOK{}, fmt.Errorf("got %v, want LOGIN_OK", f.Type)
	}
	var ok proto.LoginOK
	if err := ok.Decode(f.Body); err != nil {
		return proto.LoginOK{}, err
	}
	c.maxFrame = int(ok.MaxFrame)
	return ok, nil
}

// Send sends SEND (the SEND_ACK or ERROR arrives through Next).
func (c *Conn) Send(clientMsgID, to uint64, clientTS int64, payload []byte) error {
	m := proto.Send{ClientMsgID: clientMsgID, To: to, ClientTS: clientTS, Payload: payload}
	return c.write(m.Append)
}

// SendTraced sends SEND_TRACED: a SEND whose message the server traces (on a
// connection logged in with proto.VersionTrace only).
func (c *Conn) SendTraced(clientMsgID, to uint64, clientTS int64, payload []byte) error {
	m := proto.SendTraced{ClientMsgID: clientMsgID, To: to, ClientTS: clientTS, Payload: payload}
	return c.write(m.Append)
}

// Ack sends PUSH_ACK for every seq through seq of the store incarnation epoch.
func (c *Conn) Ack(seq, epoch uint64) error {
	m := proto.PushAck{Seq: seq, Epoch: epoch}
	return c.write(m.Append)
}

// Sync asks for the messages after seq `after` of incarnation epoch (0: from the
// start); the PUSHes and SYNC_END arrive through Next.
func (c *Conn) Sync(after, epoch uint64, limit uint32) error {
	m := proto.Sync{AfterSeq: after, Epoch: epoch, Limit: limit}
	return c.write(m.Append)
}

// Ping sends PING with ts (the PONG arrives through Next).
func (c *Conn) Ping(ts int64) error {
	m := proto.Ping{TS: ts}
	return c.write(m.Append)
}
