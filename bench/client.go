package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/floodgate/floodgate/gateway/ws"
)

// A load message is a protocol frame (u32 length | u8 type | body) whose body starts
// with the sender's clock reading (int64 nanoseconds, big-endian) and is padded with
// zeros to the message size. Echo servers return it unchanged, so the RTT needs no
// per-connection bookkeeping and any number of messages may be in flight.
const (
	stampOffset = proto.HeaderSize
	// MinMsgBytes is the smallest message: the frame header and the timestamp.
	MinMsgBytes = proto.HeaderSize + 8
	// MaxMsgBytes is the largest message: a frame of proto.DefaultMaxFrame.
	MaxMsgBytes = proto.DefaultMaxFrame + 4
)

// RTT histogram range: 1 ns to 60 s at 3 significant digits. A larger RTT is recorded
// at the top and counted as clamped rather than dropped (tcpkali#27).
const (
	histLowest  = 1
	histHighest = int64(60 * time.Second)
	histSigFigs = 3
)

// newHistogram returns an empty RTT histogram (nanoseconds).
func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histSigFigs)
}

// ClientConfig configures a load client.
type ClientConfig struct {
	// Targets are the servers; connection i goes to Targets[i%len(Targets)].
	Targets []netip.AddrPort
	// Source is the local address connections are made from; each source address has
	// its own ephemeral port range. The zero Addr lets the kernel choose.
	Source netip.Addr
	// Conns is the number of connections to open.
	Conns int
	// DialWindow bounds the connects in flight at once, so that a connect storm does
	// not overflow the servers' listen backlogs; default 256.
	DialWindow int
	// RecvBuffer sets SO_RCVBUF on every connection; 0 keeps the kernel's autotuning.
	// A small one makes the servers' writes hit EAGAIN.
	RecvBuffer int
	// ConnectTimeout bounds Connect; default 60 s.
	ConnectTimeout time.Duration
	// DrainTimeout bounds how long Echo waits, after its window, for the messages
	// still in flight; default 5 s.
	DrainTimeout time.Duration
	// WebSocket makes every connection a WebSocket client (PROTOCOL.md §2.1): it
	// counts as established once its opening handshake has been answered with a
	// valid 101, not at the TCP connect. Such a client only holds connections: Echo
	// refuses to run.
	WebSocket bool
	// Logger receives the reactor's logs; default slog.Default().
	Logger *slog.Logger
}

func (c *ClientConfig) setDefaults() error {
	if len(c.Targets) == 0 {
		return errors.New("bench client: no targets")
	}
	if c.Conns <= 0 {
		return fmt.Errorf("bench client: %d connections", c.Conns)
	}
	if c.DialWindow <= 0 {
		c.DialWindow = 256
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = time.Minute
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Client is a load client on Floodgate's reactor in client mode. It has one epoller, so
// every handler callback runs on one goroutine and the handler's state needs no locks.
// Use: go Run(ctx); Connect; any number of Echo runs, one at a time; cancel ctx.
type Client struct {
	cfg   ClientConfig
	r     *reactor.Reactor
	epoch time.Time // the client's clock is time.Since(epoch), in nanoseconds

	conns      []*reactor.Conn // every Dial that started; Connect's goroutine only
	window     chan struct{}   // one token per connect in flight
	settled    atomic.Int64    // dials that ended, opened or failed
	allSettled chan struct{}   // closed when settled reaches Conns
	opened     atomic.Int64
	failed     atomic.Int64
	lost       atomic.Int64  // connections that closed after opening
	masks      ws.MaskSource // WebSocket frame mask keys. Epoller-only.
	firstErr   atomic.Pointer[string]

	run   atomic.Pointer[echoRun] // the Echo in progress, if any
	inRun atomic.Bool
}

// dialState is a connection's handler context. Epoller-only.
type dialState struct {
	// opened: counted as established (TCP: connected; WebSocket: upgraded).
	opened bool
	// ws is a WebSocket connection's state, nil on a TCP one.
	ws *wsState
	// failure is why the client closed a connection before opening it.
	failure error
}

// NewClient builds a client and its reactor; nothing is dialled before Connect.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	c := &Client{
		cfg:        cfg,
		epoch:      time.Now(),
		window:     make(chan struct{}, cfg.DialWindow),
		allSettled: make(chan struct{}),
		masks:      ws.NewMaskSource(),
	}
	framer := func(b []byte) (int, error) { return proto.FrameSize(b, proto.DefaultMaxFrame) }
	if cfg.WebSocket {
		framer = wsFramer
	}
	r, err := reactor.New(reactor.Config{
		Handler:          clientHandler{c},
		Framer:           framer,
		Epollers:         1,
		Workers:          1, // nothing is deferred
		MaxConns:         cfg.Conns,
		Linger:           time.Second,
		SocketRecvBuffer: cfg.RecvBuffer,
		ShutdownTimeout:  3 * time.Second,
		Logger:           cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("bench client: %w", err)
	}
	c.r = r
	return c, nil
}

// Run runs the client's reactor until ctx ends, then closes every connection
// gracefully (bounded) and returns.
func (c *Client) Run(ctx context.Context) error { return c.r.Run(ctx) }

// clock is the client's monotonic clock in nanoseconds.
func (c *Client) clock() int64 { return int64(time.Since(c.epoch)) }

// ConnectResult is the outcome of Connect.
type ConnectResult struct {
	Established int64   `json:"established"` // open now
	Failed      int64   `json:"failed"`      // dials that failed
	Pending     int64   `json:"pending"`     // dials still unresolved at the timeout
	Lost        int64   `json:"lost"`        // opened, then closed
	Seconds     float64 `json:"dial_s"`      // from the first dial until all settled
	FirstError  string  `json:"first_error,omitempty"`
}

// Connect dials ClientConfig.Conns connections, at most DialWindow in flight at once, and
// waits until every dial has opened or failed, or ConnectTimeout passes. It is called
// once, while Run runs. Failures are counted, not returned: the error is for a
// cancelled ctx only.
func (c *Client) Connect(ctx context.Context) (ConnectResult, error) {
	start := time.Now()
	timeout := time.NewTimer(c.cfg.ConnectTimeout)
	defer timeout.Stop()
	skipped := int64(0) // never dialled: the timeout came first
	result := func() ConnectResult {
		res := ConnectResult{
			Established: c.opened.Load() - c.lost.Load(),
			Failed:      c.failed.Load() + skipped,
			Pending:     int64(c.cfg.Conns) - c.settled.Load() - skipped,
			Lost:        c.lost.Load(),
			Seconds:     time.Since(start).Seconds(),
		}
		if p := c.firstErr.Load(); p != nil {
			res.FirstError = *p
		}
		return res
	}
	for i := range c.cfg.Conns {
		select {
		case c.window <- struct{}{}:
		case <-timeout.C:
			skipped = int64(c.cfg.Conns - i)
			return result(), nil
		case <-ctx.Done():
			return result(), ctx.Err()
		}
		target := c.cfg.Targets[i%len(c.cfg.Targets)]
		conn, err := c.r.Dial(target, c.cfg.Source, &dialState{})
		if err != nil {
			<-c.window
			c.dialFailed(err)
			continue
		}
		c.conns = append(c.conns, conn)
	}
	select {
	case <-c.allSettled:
	case <-timeout.C:
	case <-ctx.Done():
		return result(), ctx.Err()
	}
	return result(), nil
}

func (c *Client) dialFailed(err error) {
	c.failed.Add(1)
	msg := err.Error()
	c.firstErr.CompareAndSwap(nil, &msg)
	c.settle()
}

func (c *Client) settle() {
	if c.settled.Add(1) == int64(c.cfg.Conns) {
		close(c.allSettled)
	}
}

// EchoSpec describes one closed-loop echo run.
type EchoSpec struct {
	MsgBytes int           // the whole frame, header included: MinMsgBytes..MaxMsgBytes
	Depth    int           // messages kept in flight per connection; default 1
	Warmup   time.Duration // sent and echoed, not measured
	Measure  time.Duration // the measurement window
}

// EchoResult is the outcome of one Echo run. Hist holds the RTTs (nanoseconds) of the
// echoes received within the measurement window, one sample each.
type EchoResult struct {
	Conns          int                    `json:"conns"` // connections the run started on
	MsgBytes       int                    `json:"msg_bytes"`
	Depth          int                    `json:"depth"`
	MeasureSeconds float64                `json:"measure_s"`
	Measured       int64                  `json:"measured"` // echoes received within the window
	Sent           int64                  `json:"sent"`
	Received       int64                  `json:"received"`
	Unanswered     int64                  `json:"unanswered"` // sent, not echoed by the end of the drain
	WriteErrors    int64                  `json:"write_errors"`
	ConnsLost      int64                  `json:"conns_lost"` // connections closed during the run
	Clamped        int64                  `json:"clamped"`    // RTTs above the histogram's range
	Hist           *hdrhistogram.Snapshot `json:"hist"`
}

// echoRun is the state of one Echo. The atomics are shared with Echo's goroutine; the
// rest belongs to the epoller until it hands the tally over (once, on the first echo
// after the window), after which it never touches them again.
type echoRun struct {
	start, warmupEnd, measureEnd int64 // client clock
	sent, recv, writeErrs        atomic.Int64

	out      []byte // the epoller's message buffer
	hist     *hdrhistogram.Histogram
	measured int64
	clamped  int64
	handed   bool

	tally   chan echoTally // capacity 1
	drained chan struct{}  // capacity 1
}

type echoTally struct {
	hist              *hdrhistogram.Histogram
	measured, clamped int64
}

// newMessage returns a message of n bytes with its header set.
func newMessage(n int) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint32(b, uint32(n-4))
	b[4] = byte(proto.TypePing)
	return b
}

// send stamps buf with now and writes it on conn.
func (e *echoRun) send(conn *reactor.Conn, buf []byte, now int64) {
	binary.BigEndian.PutUint64(buf[stampOffset:], uint64(now))
	e.sent.Add(1)
	if err := conn.Write(buf); err != nil {
		e.sent.Add(-1)
		e.writeErrs.Add(1)
	}
}

// record adds one RTT sample. Epoller-only.
func (e *echoRun) record(rtt int64) {
	if rtt > histHighest {
		rtt = histHighest
		e.clamped++
	}
	e.hist.RecordValue(max(rtt, histLowest)) //nolint:errcheck // in range by construction
	e.measured++
}

// Echo runs one closed-loop echo: every open connection gets Depth messages, and each
// echo is answered with the next message until the window ends; echoes received
// within [Warmup, Warmup+Measure) are measured. It then waits (up to DrainTimeout) for
// the messages still in flight, so that the next run starts clean.
func (c *Client) Echo(ctx context.Context, spec EchoSpec) (EchoResult, error) {
	if spec.Depth <= 0 {
		spec.Depth = 1
	}
	if spec.MsgBytes < MinMsgBytes || spec.MsgBytes > MaxMsgBytes {
		return EchoResult{}, fmt.Errorf("bench client: message size %d outside [%d, %d]", spec.MsgBytes, MinMsgBytes, MaxMsgBytes)
	}
	if spec.Measure <= 0 || spec.Warmup < 0 {
		return EchoResult{}, fmt.Errorf("bench client: bad window: warmup %v, measure %v", spec.Warmup, spec.Measure)
	}
	if c.cfg.WebSocket {
		return EchoResult{}, errors.New("bench client: a WebSocket client only holds idle connections")
	}
	if !c.inRun.CompareAndSwap(false, true) {
		return EchoResult{}, errors.New("bench client: an echo run is already in progress")
	}
	defer c.inRun.Store(false)

	now := c.clock()
	run := &echoRun{
		start:      now,
		warmupEnd:  now + int64(spec.Warmup),
		measureEnd: now + int64(spec.Warmup+spec.Measure),
		out:        newMessage(spec.MsgBytes),
		hist:       newHistogram(),
		tally:      make(chan echoTally, 1),
		drained:    make(chan struct{}, 1),
	}
	lostBefore := c.lost.Load()
	c.run.Store(run)
	defer c.run.Store(nil)

	res := EchoResult{MsgBytes: spec.MsgBytes, Depth: spec.Depth, MeasureSeconds: spec.Measure.Seconds()}
	buf := newMessage(spec.MsgBytes)
	for _, conn := range c.conns {
		if conn.Closed() {
			continue
		}
		res.Conns++
		for range spec.Depth {
			run.send(conn, buf, c.clock())
		}
	}
	if res.Conns == 0 {
		return res, errors.New("bench client: no open connection")
	}

	window := time.NewTimer(time.Duration(run.measureEnd - c.clock()))
	defer window.Stop()
	select {
	case <-window.C:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	drain := time.NewTimer(c.cfg.DrainTimeout)
	defer drain.Stop()
	var err error
	select {
	case t := <-run.tally:
		res.Measured, res.Clamped = t.measured, t.clamped
		res.Hist = t.hist.Export()
		select {
		case <-run.drained:
		case <-drain.C:
		case <-ctx.Done():
			return res, ctx.Err()
		}
	case <-drain.C:
		err = errors.New("bench client: no echo arrived after the measurement window")
	case <-ctx.Done():
		return res, ctx.Err()
	}
	res.Sent, res.Received = run.sent.Load(), run.recv.Load()
	res.Unanswered = max(res.Sent-res.Received, 0)
	res.WriteErrors = run.writeErrs.Load()
	res.ConnsLost = c.lost.Load() - lostBefore
	return res, err
}

// clientHandler is the client's reactor.Handler. All its callbacks run on the one
// epoller goroutine.
type clientHandler struct{ c *Client }

// OnOpen implements reactor.Handler: a TCP connection is established; a WebSocket
// one sends its opening handshake.
func (h clientHandler) OnOpen(conn *reactor.Conn) {
	st := conn.Context().(*dialState)
	if h.c.cfg.WebSocket {
		h.sendWSHandshake(conn, st)
		return
	}
	h.established(st)
}

// established counts a connection as open and lets the next dial start.
func (h clientHandler) established(st *dialState) {
	st.opened = true
	h.c.opened.Add(1)
	<-h.c.window
	h.c.settle()
}

// fail closes a connection that did not open; OnClose counts it with err.
func (h clientHandler) fail(conn *reactor.Conn, st *dialState, err error) {
	if st.failure == nil {
		st.failure = err
	}
	conn.Close()
}

// OnFrame implements reactor.Handler: it measures an echo and sends the next message,
// or, on a WebSocket connection, handles the handshake response or a server frame.
func (h clientHandler) OnFrame(conn *reactor.Conn, f []byte) reactor.Disposition {
	if h.c.cfg.WebSocket {
		h.onWSFrame(conn, conn.Context().(*dialState), f)
		return reactor.Handled
	}
	run := h.c.run.Load()
	if run == nil || len(f) < MinMsgBytes {
		return reactor.Handled
	}
	stamp := int64(binary.BigEndian.Uint64(f[stampOffset:]))
	if stamp < run.start {
		return reactor.Handled // left over from an earlier run that timed out its drain
	}
	recv := run.recv.Add(1)
	now := h.c.clock()
	if now < run.measureEnd {
		if now >= run.warmupEnd {
			run.record(now - stamp)
		}
		run.send(conn, run.out, now)
		return reactor.Handled
	}
	if !run.handed {
		run.handed = true
		run.tally <- echoTally{hist: run.hist, measured: run.measured, clamped: run.clamped}
	}
	if recv == run.sent.Load() {
		select {
		case run.drained <- struct{}{}:
		default:
		}
	}
	return reactor.Handled
}

// OnDeferred implements reactor.Handler; the client defers nothing.
func (clientHandler) OnDeferred(*reactor.Conn, []byte) {}

// OnClose implements reactor.Handler.
func (h clientHandler) OnClose(conn *reactor.Conn, _ reactor.Reason, err error) {
	st := conn.Context().(*dialState)
	if st.opened {
		h.c.lost.Add(1)
		return
	}
	<-h.c.window
	if st.failure != nil {
		err = st.failure
	}
	if err == nil {
		err = errors.New("closed before opening")
	}
	h.c.dialFailed(err)
}
