package link

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	Addr   string
	Secret []byte
	Name   string // this process's identity, shown to the server
	// OnNotify receives the server's notifications on the reader goroutine; body is
	// valid only during the call.
	OnNotify func(method uint16, body []byte)
	// OnConnect runs after every successful (re)connect, before calls are accepted
	// on the new connection's behalf (for example to re-subscribe).
	OnConnect func(ctx context.Context, c *Client)
	// Observe, if set, is told each call's method, latency and error (for metrics).
	Observe    func(method uint16, d time.Duration, err error)
	MinBackoff time.Duration // default 50ms
	// MaxBackoff caps the pause between reconnection attempts; default 500ms. Every
	// recovery after a service restarts waits for its peers' next attempt: with 2 s,
	// the last message pending at a msg restart arrived 2.3 s after it (measured), and
	// a handful of links per process retrying twice a second cost nothing.
	MaxBackoff   time.Duration
	DialTimeout  time.Duration // default 2s
	WriteTimeout time.Duration // default 10s
	// PingEvery and DeadAfter are the link's liveness (see liveness.go): a ping
	// every PingEvery (default 1s), and the connection closed and redialled once
	// nothing at all was read on it for DeadAfter (default 5s). The server must be
	// configured with the same DeadAfter or a longer one.
	PingEvery, DeadAfter time.Duration
	Logger               *slog.Logger
}

// Client keeps one link connection to a server up, reconnecting with jittered
// exponential backoff, and multiplexes calls over it.
type Client struct {
	cfg    ClientConfig
	log    *slog.Logger
	nextID atomic.Uint64
	// heard is when a frame was last read, or a connection came up or went down
	// (ns since t0): Silent measures from it.
	heard  atomic.Int64
	t0     time.Time
	mu     sync.Mutex
	cur    *clientConn
	up     chan struct{} // closed while connected
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

type clientConn struct {
	nc      net.Conn
	w       *writer
	read    atomic.Uint64 // frames read: the watchdog's sign of life
	mu      sync.Mutex
	pending map[uint64]*call
	dead    error
}

type call struct {
	method uint16
	start  time.Time
	ch     chan result                  // for Call
	fn     func(body []byte, err error) // for Go
}

type result struct {
	body []byte
	err  error
}

// Dial starts maintaining a connection to cfg.Addr and returns at once; use
// WaitConnected to wait for the first connection.
func Dial(cfg ClientConfig) *Client {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 50 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 500 * time.Millisecond
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	cfg.PingEvery, cfg.DeadAfter = livenessDefaults(cfg.PingEvery, cfg.DeadAfter)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{cfg: cfg, log: cfg.Logger.With("link", cfg.Addr), up: make(chan struct{}),
		ctx: ctx, cancel: cancel, done: make(chan struct{}), t0: time.Now()}
	go c.maintain()
	return c
}

// Close stops the client; calls in flight fail with ErrClosed.
func (c *Client) Close() {
	c.cancel()
	<-c.done
}

// Silent reports how long the server has sent nothing at all: no response, no
// notification, no pong (the client pings every PingEvery, so a reachable server,
// even a slow one working through a backlog, is heard from regularly). It is
// measured to within PingEvery — the watchdog notes progress once per ping, which
// keeps the clock off the read path — from the last frame read, or from when the
// current connection came up; while disconnected it keeps growing.
func (c *Client) Silent() time.Duration {
	return time.Since(c.t0) - time.Duration(c.heard.Load())
}

// Connected reports whether a connection is up now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil
}

// WaitConnected waits until a connection is up or ctx ends.
func (c *Client) WaitConnected(ctx context.Context) error {
	c.mu.Lock()
	up := c.up
	c.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	}
}

func (c *Client) maintain() {
	defer close(c.done)
	backoff := time.Duration(0)
	for c.ctx.Err() == nil {
		err := c.connectOnce()
		if c.ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff = 0 // it was up; start over from the minimum
		}
		backoff = min(max(2*backoff, c.cfg.MinBackoff), c.cfg.MaxBackoff)
		wait := backoff/2 + rand.N(backoff/2+1) // jittered: peers must not reconnect in lockstep
		if err != nil {
			c.log.Warn("link connect failed", "err", err, "retry_in", wait)
		}
		select {
		case <-time.After(wait):
		case <-c.ctx.Done():
		}
	}
}

// connectOnce dials, authenticates and serves one connection until it breaks.
// It returns nil if the connection was established (and later lost).
func (c *Client) connectOnce() error {
	d := net.Dialer{Timeout: c.cfg.DialTimeout}
	nc, err := d.DialContext(c.ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	r := bufio.NewReaderSize(nc, 64<<10)
	if err := clientHandshake(nc, r, c.cfg.Secret, c.cfg.Name); err != nil {
		nc.Close()
		return err
	}
	cc := &clientConn{nc: nc, pending: map[uint64]*call{}}
	cc.w = newWriter(nc, c.cfg.WriteTimeout, func(error) { nc.Close() })
	stop := context.AfterFunc(c.ctx, func() { nc.Close() })
	defer stop()

	c.mu.Lock()
	c.cur = cc
	c.mu.Unlock()
	c.heard.Store(int64(time.Since(c.t0)))
	if c.cfg.OnConnect != nil {
		c.cfg.OnConnect(c.ctx, c)
	}
	c.mu.Lock()
	close(c.up)
	c.mu.Unlock()
	c.log.Debug("link connected")

	wctx, stopWatch := context.WithCancel(c.ctx)
	go watchdog(wctx, nc, &cc.read, c.cfg.PingEvery, c.cfg.DeadAfter,
		func() { cc.w.send(kindPing, 0, 0, nil) },
		func(now time.Time) { c.heard.Store(int64(now.Sub(c.t0))) },
		func() { c.log.Warn("link silent; closing it to redial", "silent_for", c.cfg.DeadAfter) })
	err = c.readLoop(cc, r)
	stopWatch()
	c.mu.Lock()
	c.cur = nil
	c.up = make(chan struct{})
	c.mu.Unlock()
	reason := ErrDisconnected
	if c.ctx.Err() != nil {
		reason = ErrClosed
	}
	cc.fail(reason)
	cc.w.stop(reason)
	nc.Close()
	if c.ctx.Err() == nil {
		c.log.Warn("link lost", "err", err)
	}
	return nil
}

func (c *Client) readLoop(cc *clientConn, r *bufio.Reader) error {
	var buf []byte
	for {
		f, b, err := readFrame(r, buf)
		buf = b
		if err != nil {
			return err
		}
		cc.read.Add(1)
		switch f.kind {
		case kindPong:
		case kindNotify:
			if c.cfg.OnNotify != nil {
				c.cfg.OnNotify(f.method, f.body)
			}
		case kindResponse, kindError:
			cc.mu.Lock()
			cl := cc.pending[f.id]
			delete(cc.pending, f.id)
			cc.mu.Unlock()
			if cl == nil {
				continue // the caller gave up (context ended)
			}
			var res result
			if f.kind == kindError {
				res.err = &RemoteError{Msg: string(f.body)}
			} else {
				res.body = bytes.Clone(f.body)
			}
			c.finish(cl, res)
		default:
			return errors.New("link: unexpected frame kind from the server")
		}
	}
}

func (c *Client) finish(cl *call, res result) {
	if c.cfg.Observe != nil {
		c.cfg.Observe(cl.method, time.Since(cl.start), res.err)
	}
	if cl.fn != nil {
		cl.fn(res.body, res.err)
		return
	}
	cl.ch <- res
}

// fail ends every pending call with err.
func (cc *clientConn) fail(err error) {
	cc.mu.Lock()
	pending := cc.pending
	cc.pending = nil
	cc.dead = err
	cc.mu.Unlock()
	for _, cl := range pending {
		if cl.fn != nil {
			cl.fn(nil, err)
		} else {
			cl.ch <- result{err: err}
		}
	}
}

// start registers cl and sends its request (or, with linger > 0, queues it to be
// written within linger); on error cl is not pending.
func (c *Client) start(method uint16, body []byte, cl *call, linger time.Duration) (*clientConn, uint64, error) {
	c.mu.Lock()
	cc := c.cur
	c.mu.Unlock()
	if cc == nil {
		if c.ctx.Err() != nil {
			return nil, 0, ErrClosed
		}
		return nil, 0, ErrUnavailable
	}
	id := c.nextID.Add(1)
	cc.mu.Lock()
	if cc.dead != nil {
		cc.mu.Unlock()
		return nil, 0, cc.dead
	}
	cc.pending[id] = cl
	cc.mu.Unlock()
	var err error
	if linger > 0 {
		if err = cc.w.enqueue(kindRequest, id, method, body, false); err == nil {
			cc.w.flushWithin(linger)
		}
	} else {
		err = cc.w.send(kindRequest, id, method, body)
	}
	if err != nil {
		cc.forget(id)
		return nil, 0, err
	}
	return cc, id, nil
}

func (cc *clientConn) forget(id uint64) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if _, ok := cc.pending[id]; !ok {
		return false
	}
	delete(cc.pending, id)
	return true
}

// Call sends a request and waits for its response (or ctx). It fails at once with
// ErrUnavailable while disconnected.
func (c *Client) Call(ctx context.Context, method uint16, body []byte) ([]byte, error) {
	cl := &call{method: method, start: time.Now(), ch: make(chan result, 1)}
	cc, id, err := c.start(method, body, cl, 0)
	if err != nil {
		return nil, err
	}
	select {
	case r := <-cl.ch:
		return r.body, r.err
	case <-ctx.Done():
		if cc.forget(id) {
			return nil, ctx.Err()
		}
		r := <-cl.ch // it completed meanwhile
		return r.body, r.err
	}
}

// Go sends a request without waiting; fn receives the response (or the error) on
// another goroutine, exactly once. fn must not block.
func (c *Client) Go(method uint16, body []byte, fn func(body []byte, err error)) {
	cl := &call{method: method, start: time.Now(), fn: fn}
	if _, _, err := c.start(method, body, cl, 0); err != nil {
		fn(nil, err)
	}
}

// GoLater is Go for a request that may wait up to linger before it is written: it
// leaves with the connection's next write, or when linger has passed, so that
// requests off the latency path (acknowledgements) share writes rather than each
// costing one. One timer per linger serves every request that waits. GoLater
// never blocks: with 256 KiB already waiting behind a write (the server takes no
// data) fn gets ErrBacklogged at once.
func (c *Client) GoLater(method uint16, body []byte, linger time.Duration, fn func(body []byte, err error)) {
	cl := &call{method: method, start: time.Now(), fn: fn}
	if _, _, err := c.start(method, body, cl, max(linger, 0)); err != nil {
		fn(nil, err)
	}
}

// Notify sends a one-way message.
func (c *Client) Notify(method uint16, body []byte) error {
	return c.onConn(func(w *writer) error { return w.send(kindNotify, 0, method, body) })
}

// QueueNotify is Notify without the write: the message leaves with the next Flush,
// or with any other send on the connection that writes, so that a burst of
// notifications goes out in one write. One still queued when the connection breaks
// is lost, as one in flight would be.
func (c *Client) QueueNotify(method uint16, body []byte) error {
	return c.onConn(func(w *writer) error { return w.queue(kindNotify, 0, method, body) })
}

// Flush writes out what QueueNotify queued (nothing if another write under way
// takes it).
func (c *Client) Flush() error {
	return c.onConn((*writer).flush)
}

// onConn runs fn on the current connection's writer, or fails with
// ErrUnavailable while there is none.
func (c *Client) onConn(fn func(*writer) error) error {
	c.mu.Lock()
	cc := c.cur
	c.mu.Unlock()
	if cc == nil {
		return ErrUnavailable
	}
	return fn(cc.w)
}
