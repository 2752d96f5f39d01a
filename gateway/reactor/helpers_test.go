package reactor

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// The tests use a minimal framing of their own: u32 big-endian payload length, then
// the payload. The reactor must not care what frames mean.
var (
	errZeroLength = errors.New("zero length")
	errTooLarge   = errors.New("frame too large")
)

const testMaxFrame = 16 << 20

func testFramer(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, nil
	}
	n := binary.BigEndian.Uint32(b)
	switch {
	case n == 0:
		return 0, errZeroLength
	case n > testMaxFrame:
		return 0, errTooLarge
	}
	return 4 + int(n), nil
}

func frame(payload []byte) []byte {
	b := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(b, uint32(len(payload)))
	copy(b[4:], payload)
	return b
}

func payloadOf(f []byte) []byte { return f[4:] }

// farewellFrame is the test protocol's kick: "BYE <reason>[: cause]".
func farewellFrame(r Reason, err error) []byte {
	s := "BYE " + r.String()
	if err != nil {
		s += ": " + err.Error()
	}
	return frame([]byte(s))
}

// funcHandler adapts functions to Handler; nil functions do nothing (OnFrame: Handled).
type funcHandler struct {
	open     func(c *Conn)
	frame    func(c *Conn, f []byte) Disposition
	deferred func(c *Conn, f []byte)
	close    func(c *Conn, r Reason, err error)
}

func (h *funcHandler) OnOpen(c *Conn) {
	if h.open != nil {
		h.open(c)
	}
}
func (h *funcHandler) OnFrame(c *Conn, f []byte) Disposition {
	if h.frame != nil {
		return h.frame(c, f)
	}
	return Handled
}
func (h *funcHandler) OnDeferred(c *Conn, f []byte) {
	if h.deferred != nil {
		h.deferred(c, f)
	}
}
func (h *funcHandler) OnClose(c *Conn, r Reason, err error) {
	if h.close != nil {
		h.close(c, r, err)
	}
}

// writeUntilRefused returns a handler that, at a connection's first frame, writes msg
// to it from another goroutine (as a router pushing would) until a Write fails, and
// the channel that Write's error arrives on.
func writeUntilRefused(msg []byte) (*funcHandler, <-chan error) {
	refused := make(chan error, 1)
	return &funcHandler{frame: func(c *Conn, f []byte) Disposition {
		go func() {
			for {
				if err := c.Write(msg); err != nil {
					refused <- err
					return
				}
			}
		}()
		return Handled
	}}, refused
}

// echoFrame writes every frame back inline.
func echoFrame(c *Conn, f []byte) Disposition {
	c.Write(f) //nolint:errcheck
	return Handled
}

// startReactor runs a reactor on 127.0.0.1 until the test ends, and checks that Run
// returns by itself once its context is cancelled.
func startReactor(t *testing.T, cfg Config) *Reactor {
	t.Helper()
	switch cfg.Addr {
	case "":
		cfg.Addr = "127.0.0.1:0"
	case "-": // no listener
		cfg.Addr = ""
	}
	if cfg.Framer == nil {
		cfg.Framer = testFramer
	}
	if cfg.Farewell == nil {
		cfg.Farewell = farewellFrame
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 2 * time.Second
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of cancel")
		}
	})
	return r
}

type client struct {
	t *testing.T
	net.Conn
}

func dial(t *testing.T, r *Reactor) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", r.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, Conn: c}
}

func (c *client) send(payload []byte) {
	c.t.Helper()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(frame(payload)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv reads one frame's payload within d.
func (c *client) recv(d time.Duration) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(d))
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return nil, err
	}
	p := make([]byte, binary.BigEndian.Uint32(h[:]))
	if _, err := io.ReadFull(c, p); err != nil {
		return nil, err
	}
	return p, nil
}

func (c *client) mustRecv(d time.Duration) []byte {
	c.t.Helper()
	p, err := c.recv(d)
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return p
}

// expectFarewellThenEOF reads frames until one starts with "BYE", checks it names
// want, and then checks the server closed the stream (EOF, not a reset).
func (c *client) expectFarewellThenEOF(want string, d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		p, err := c.recv(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for farewell %q: %v", want, err)
		}
		if len(p) >= 3 && string(p[:3]) == "BYE" {
			if got := string(p); len(got) < 4+len(want) || got[4:4+len(want)] != want {
				c.t.Fatalf("farewell = %q, want BYE %s", got, want)
			}
			break
		}
	}
	c.SetReadDeadline(deadline)
	var b [1]byte
	if n, err := c.Read(b[:]); n != 0 || err != io.EOF {
		c.t.Fatalf("after farewell: read n=%d err=%v, want EOF", n, err)
	}
}

// closeLog records OnClose calls and checks each connection closes exactly once and
// receives nothing after.
type closeLog struct {
	mu     sync.Mutex
	closed map[*Conn]Reason
	ch     chan Reason
	errs   []string
}

func newCloseLog() *closeLog {
	return &closeLog{closed: map[*Conn]Reason{}, ch: make(chan Reason, 1024)}
}

func (l *closeLog) onClose(c *Conn, r Reason, _ error) {
	l.mu.Lock()
	if _, dup := l.closed[c]; dup {
		l.errs = append(l.errs, "OnClose twice for "+c.String())
	}
	l.closed[c] = r
	l.mu.Unlock()
	l.ch <- r
}

func (l *closeLog) afterClose(c *Conn, what string) {
	l.mu.Lock()
	if _, ok := l.closed[c]; ok {
		l.errs = append(l.errs, what+" after OnClose for "+c.String())
	}
	l.mu.Unlock()
}

func (l *closeLog) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		t.Error(e)
	}
}

func (l *closeLog) next(t *testing.T, d time.Duration) Reason {
	t.Helper()
	select {
	case r := <-l.ch:
		return r
	case <-time.After(d):
		t.Fatalf("no OnClose within %v", d)
		return 0
	}
}
