package reactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Reason says why a connection closed.
type Reason uint8

// Close reasons.
const (
	ReasonPeer       Reason = iota + 1 // the peer closed its side (FIN)
	ReasonError                        // a socket error (reset, unreachable, ...)
	ReasonLocal                        // the handler called Close or CloseWith
	ReasonProtocol                     // the Framer rejected the input, or it ended inside a frame
	ReasonSlow                         // the outbound queue hit its hard cap
	ReasonIdle                         // nothing was read for Config.IdleTimeout
	ReasonBusy                         // refused at accept: over the connection limit (never opened)
	ReasonShutdown                     // the reactor is stopping
	ReasonUnadmitted                   // the handler did not admit it within Config.AdmitTimeout
	ReasonRate                         // more refused frames than its Limits allow (ErrRateExceeded)
	ReasonAddrLimit                    // refused at accept: its address holds MaxConnsPerAddr (never opened)
	numReasons
)

var reasonNames = [numReasons]string{"", "peer", "error", "local", "protocol", "slow", "idle", "busy", "shutdown",
	"unadmitted", "rate", "addr_limit"}

// String returns the reason's metric label.
func (r Reason) String() string {
	if r >= numReasons {
		return fmt.Sprintf("reason(%d)", uint8(r))
	}
	return reasonNames[r]
}

// Reasons lists every close reason, for exporting counters.
func Reasons() []Reason {
	return []Reason{ReasonPeer, ReasonError, ReasonLocal, ReasonProtocol, ReasonSlow, ReasonIdle, ReasonBusy, ReasonShutdown,
		ReasonUnadmitted, ReasonRate, ReasonAddrLimit}
}

// Disposition is a handler's answer to an inline frame.
type Disposition uint8

const (
	// Handled: the frame was dealt with inline on the epoller.
	Handled Disposition = iota
	// Defer: copy the frame and hand it to OnDeferred on a worker, in order.
	Defer
)

// Handler receives a connection's events. For one connection, callbacks never run
// concurrently and arrive in order: OnOpen, then each frame exactly once (OnFrame
// returning Handled, or OnDeferred), then OnClose, after which nothing more arrives.
// Frames stop as soon as the connection starts closing by this side's decision (the
// handler's Close, a kick by the reactor): frames read behind that point, or
// still queued for a worker, are dropped. Frames over the connection's rates
// (Limits) go to Config.Refused instead.
// A Dial that fails gets OnClose without OnOpen.
type Handler interface {
	// OnOpen runs on the epoller when an accepted connection is registered (or a
	// Dial completes).
	OnOpen(c *Conn)
	// OnFrame runs on the epoller for a complete frame, unless earlier frames of the
	// connection are still waiting for a worker (then the frame queues behind them
	// without being offered inline). frame aliases the epoller's buffer: it is valid
	// only during the call. Handle cheap frames inline and return Handled; return
	// Defer, without side effects, for anything that may take a while. It must
	// never block.
	OnFrame(c *Conn, frame []byte) Disposition
	// OnDeferred runs on a worker for a deferred frame; frame is valid only during
	// the call. It may block briefly, but a blocked worker holds up other connections.
	OnDeferred(c *Conn, frame []byte)
	// OnClose runs once, last. err is the error behind reason, if any.
	OnClose(c *Conn, reason Reason, err error)
}

// Framer finds frame boundaries. Given the unconsumed input b, it returns the full
// size of the frame starting at b (header included) as soon as the header is complete
// — which may be larger than len(b) — or 0 while the header itself is incomplete, or
// an error if the header is invalid (the connection is then closed with
// ReasonProtocol). It must not retain b.
type Framer func(b []byte) (int, error)

// ErrTruncatedFrame is the cause of a ReasonProtocol close when the peer's FIN came in
// the middle of a frame.
var ErrTruncatedFrame = errors.New("reactor: stream ended inside a frame")

// WriteReadiness selects how EPOLLOUT is used.
//
// WriteDynamic is the default, by measurement and by simplicity. make bench
// (reports/out/bench/reactor.md, 2026-11-26) found the two strategies tied: on plain
// echo no write ever queues, so both run the same path; under real backpressure
// (50 connections × 64 in flight through 4 KiB socket buffers, ~2.5 MiB queued)
// 107.3k vs 108.8k msgs/s and 5.98 vs 5.89 µs of server CPU per message (an earlier
// run: 88.3k vs 90.0k), inside the ±15% round-to-round spread. With no speed to gain, the simpler invariant wins:
// arming EPOLLOUT with epoll_ctl re-reads readiness at once, so no edge can be
// lost, whereas WriteAlways must guard the window between a writer's EAGAIN and
// its queueing (outWriting) against an edge the epoller would otherwise ignore.
type WriteReadiness uint8

const (
	// WriteDynamic arms EPOLLOUT only while output is queued (an epoll_ctl when a
	// connection falls behind and one when it catches up).
	WriteDynamic WriteReadiness = iota
	// WriteAlways registers EPOLLOUT once; the epoller ignores it while nothing is
	// queued (an atomic check per event instead of epoll_ctl calls).
	WriteAlways
)

// Config configures a Reactor. Zero values take the defaults noted.
type Config struct {
	// Addr is the listen address (ip:port; port 0 picks one). Empty: no listener,
	// for a reactor that only dials (a load generator).
	Addr string
	// Handler and Framer are required.
	Handler Handler
	Framer  Framer
	// Farewell returns the last words written before the reactor itself closes a
	// connection (ReasonProtocol, ReasonSlow, ReasonIdle, ReasonBusy,
	// ReasonShutdown, ReasonUnadmitted, ReasonRate, ReasonAddrLimit); nil for none.
	// err is the cause. Optional.
	Farewell func(r Reason, err error) []byte
	// Refused runs on the epoller for each complete frame over its connection's
	// rates (Limits.Frames, Limits.Bytes), which is not handed to the handler.
	// It may run while a worker handles an earlier frame of the same connection, so
	// it must leave the handler's per-connection state alone; it may Write, and its
	// output may overtake the answers to those earlier frames. frame is valid only
	// during the call; it must never block. It reports whether the refusal counts
	// towards Limits.MaxRefusals (a frame whose loss is harmless may be dropped
	// without counting as abuse). Optional: without it every refusal counts.
	Refused func(c *Conn, frame []byte) (counts bool)

	// OpenLimits are the inbound limits of an accepted connection until the handler
	// admits it (Conn.Admit); nil: none. A small MaxFrame here bounds what an
	// unauthenticated peer can make the reactor hold: a partial frame is carried in a
	// pooled buffer of the frame's size class.
	OpenLimits *Limits
	// AdmitTimeout closes an accepted connection that the handler has not admitted
	// within this long of opening, with ReasonUnadmitted; 0 disables. Only the
	// clock counts: input does not extend it. Dialed connections start admitted.
	AdmitTimeout time.Duration
	// MaxConnsPerAddr caps the connections held from one remote IP address; one
	// over it is refused at accept with the ReasonAddrLimit farewell (and counted,
	// never opened). 0: no cap. Costs a getpeername and a shared map lookup per
	// accept while on.
	MaxConnsPerAddr int

	Listeners int // accept loops, one SO_REUSEPORT listener each; default GOMAXPROCS
	Epollers  int // default GOMAXPROCS
	Workers   int // goroutines for deferred frames; default 4×GOMAXPROCS
	// MaxConns is the admission limit. 0 derives it from RLIMIT_NOFILE (which is
	// raised to its hard limit); a value the limit cannot hold is capped, and said.
	MaxConns int
	// AcceptRate limits admissions per second across all accept loops (0: none).
	// Connections over the rate wait in the kernel's backlog.
	AcceptRate float64
	Backlog    int // listen backlog; default 4096

	IdleTimeout time.Duration // close after this long without a complete frame; 0 disables
	// Linger bounds how long a closing connection waits for the peer's FIN after its
	// last output; default 2s.
	Linger time.Duration
	// ShutdownTimeout bounds Run's graceful close after its context ends; default 5s.
	ShutdownTimeout time.Duration

	ReadBuffer      int // each epoller's shared read buffer; default 64 KiB
	MaxReadPerEvent int // bytes read from one connection before serving others; default 64 KiB
	EpollBatch      int // events per epoll_wait; default 256
	WriteHighWater  int // queued output that pauses reading; default 64 KiB
	WriteHardCap    int // queued output that kicks the connection as slow; default 1 MiB
	MaxDeferred     int // deferred frame bytes per connection that pause reading; default 256 KiB
	WriteReadiness  WriteReadiness
	// SocketSendBuffer and SocketRecvBuffer set SO_SNDBUF and SO_RCVBUF on every
	// connection (0 keeps the kernel's autotuning). Autotuning lets one slow reader's
	// socket hold megabytes of kernel memory beyond WriteHardCap; a fixed size bounds it.
	SocketSendBuffer int
	SocketRecvBuffer int

	Logger *slog.Logger // default slog.Default()
}

func (c *Config) setDefaults() error {
	if c.Handler == nil || c.Framer == nil {
		return errors.New("reactor: Config.Handler and Config.Framer are required")
	}
	procs := runtime.GOMAXPROCS(0)
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Listeners, procs)
	def(&c.Epollers, procs)
	def(&c.Workers, 4*procs)
	def(&c.Backlog, 4096)
	def(&c.ReadBuffer, 64<<10)
	def(&c.MaxReadPerEvent, 64<<10)
	def(&c.EpollBatch, 256)
	def(&c.WriteHighWater, 64<<10)
	def(&c.WriteHardCap, 1<<20)
	def(&c.MaxDeferred, 256<<10)
	if c.Linger <= 0 {
		c.Linger = 2 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 5 * time.Second
	}
	if c.WriteHighWater > c.WriteHardCap {
		return fmt.Errorf("reactor: WriteHighWater (%d) must not exceed WriteHardCap (%d)", c.WriteHighWater, c.WriteHardCap)
	}
	if c.ReadBuffer < 64 {
		return fmt.Errorf("reactor: ReadBuffer %d is too small", c.ReadBuffer)
	}
	if c.AdmitTimeout < 0 || c.IdleTimeout < 0 || c.MaxConnsPerAddr < 0 {
		return errors.New("reactor: AdmitTimeout, IdleTimeout and MaxConnsPerAddr must not be negative")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// timers reports whether the epollers keep a timing wheel (idle and admission
// deadlines).
func (c *Config) timers() bool { return c.IdleTimeout > 0 || c.AdmitTimeout > 0 }

// Reactor is the epoll engine: accept loops, epollers and a worker pool. It knows
// nothing about what the frames mean.
type Reactor struct {
	cfg       Config
	log       *slog.Logger
	limit     FileLimit
	maxConns  int
	loops     []*loop
	acceptors []*acceptor
	addr      netip.AddrPort
	workq     chan *jobs
	ovMu      sync.Mutex
	overflow  []*jobs       // scheduled connections the full queue could not take (see schedule)
	ovKick    chan struct{} // wakes the pump
	bufs      bufPool
	start     time.Time
	wheelTick int64

	conns      atomic.Int64
	next       atomic.Uint32 // round-robin over loops
	astats     acceptStats
	addrMu     sync.Mutex
	perAddr    map[netip.Addr]int32 // connections held by remote address (MaxConnsPerAddr on)
	running    atomic.Bool
	stopping   atomic.Bool
	drained    chan struct{} // closed once stopping and no connection is left
	quit       chan struct{} // closed to stop the workers, once no job is scheduled
	jobsMu     sync.Mutex
	jobsActive int // connections scheduled on the worker pool
	jobsIdle   *sync.Cond
	drainMu    sync.Once
	stopAcc    sync.Once
	accWG      sync.WaitGroup
}

// New builds a reactor: it raises RLIMIT_NOFILE, derives the connection limit, creates
// the epollers and binds the listeners (so Addr is known before Run).
func New(cfg Config) (*Reactor, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	r := &Reactor{cfg: cfg, log: cfg.Logger, start: time.Now(), drained: make(chan struct{}), quit: make(chan struct{}),
		ovKick: make(chan struct{}, 1)}
	r.jobsIdle = sync.NewCond(&r.jobsMu)
	if cfg.MaxConnsPerAddr > 0 {
		r.perAddr = make(map[netip.Addr]int32)
	}
	if err := r.applyFileLimit(); err != nil {
		return nil, err
	}
	r.wheelTick = int64(wheelTick(cfg.IdleTimeout, cfg.AdmitTimeout))
	r.workq = make(chan *jobs, 2*r.maxConns+1024)
	for i := 0; i < cfg.Epollers; i++ {
		l, err := newLoop(r, i)
		if err != nil {
			r.closeFDs()
			return nil, err
		}
		r.loops = append(r.loops, l)
	}
	if cfg.Addr != "" {
		ap, err := ParseAddr(cfg.Addr)
		if err != nil {
			r.closeFDs()
			return nil, err
		}
		for i := 0; i < cfg.Listeners; i++ {
			a, err := newAcceptor(r, ap)
			if err != nil {
				r.closeFDs()
				return nil, err
			}
			r.acceptors = append(r.acceptors, a)
			ap = a.addr // the others share the port the first one got
		}
		r.addr = ap
	}
	return r, nil
}

// Discard releases the listeners and epoll descriptors of a reactor that was built
// but will never Run: a later step of its owner's set-up failed. Only before Run.
func (r *Reactor) Discard() { r.closeFDs() }

// tuneSocket applies the per-connection socket options.
func (r *Reactor) tuneSocket(fd int) {
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) //nolint:errcheck
	if n := r.cfg.SocketSendBuffer; n > 0 {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, n) //nolint:errcheck
	}
	if n := r.cfg.SocketRecvBuffer; n > 0 {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, n) //nolint:errcheck
	}
}

// wheelTick picks the timing wheel's resolution: about 1/32 of the shorter timeout
// in use, within [5ms, 1s], so a close lands within ~3% of its deadline.
func wheelTick(idle, admit time.Duration) time.Duration {
	d := idle
	if admit > 0 && (d <= 0 || admit < d) {
		d = admit
	}
	return min(max(d/32, 5*time.Millisecond), time.Second)
}

// applyFileLimit raises RLIMIT_NOFILE and settles the connection limit, logging both.
func (r *Reactor) applyFileLimit() error {
	want := uint64(0)
	if r.cfg.MaxConns > 0 {
		want = uint64(r.cfg.MaxConns) + fdReserve(uint64(r.cfg.MaxConns))
	}
	lim, err := RaiseFileLimit(want)
	if err != nil {
		return err
	}
	r.limit = lim
	allowed := lim.ConnLimit()
	switch {
	case r.cfg.MaxConns == 0:
		r.maxConns = allowed
		r.log.Info("connection limit derived from RLIMIT_NOFILE",
			"nofile_soft", lim.Soft, "nofile_hard", lim.Hard, "max_conns", allowed)
	case r.cfg.MaxConns > allowed:
		r.maxConns = allowed
		r.log.Warn("max connections capped: RLIMIT_NOFILE cannot hold more in one process "+
			"(raising the hard limit needs CAP_SYS_RESOURCE); run more processes for more connections",
			"requested", r.cfg.MaxConns, "nofile_hard", lim.Hard, "max_conns", allowed)
	default:
		r.maxConns = r.cfg.MaxConns
		r.log.Info("connection limit", "max_conns", r.maxConns, "nofile_soft", lim.Soft, "nofile_hard", lim.Hard)
	}
	return nil
}

// Addr returns the bound listen address (the real port when Config.Addr had port 0).
func (r *Reactor) Addr() netip.AddrPort { return r.addr }

// MaxConns returns the admission limit in force.
func (r *Reactor) MaxConns() int { return r.maxConns }

// FileLimit returns RLIMIT_NOFILE as the reactor left it.
func (r *Reactor) FileLimit() FileLimit { return r.limit }

// clock is the reactor's monotonic time in nanoseconds.
func (r *Reactor) clock() int64 { return int64(time.Since(r.start)) }

// farewell returns the configured last words for r.
func (r *Reactor) farewell(reason Reason, err error) []byte {
	if r.cfg.Farewell == nil {
		return nil
	}
	switch reason {
	case ReasonProtocol, ReasonSlow, ReasonIdle, ReasonBusy, ReasonShutdown, ReasonUnadmitted, ReasonRate, ReasonAddrLimit:
		return r.cfg.Farewell(reason, err)
	}
	return nil
}

// connClosed releases a connection's place in the limit.
func (r *Reactor) connClosed() {
	if r.conns.Add(-1) == 0 && r.stopping.Load() {
		r.drainMu.Do(func() { close(r.drained) })
	}
}

// Run serves until ctx ends, then shuts down: accepting stops, every connection is
// closed with ReasonShutdown (and its farewell) and given until ShutdownTimeout to
// go, the rest are torn down, and Run returns once every callback has run.
func (r *Reactor) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("reactor: Run called twice")
	}
	var loopsWG, workersWG sync.WaitGroup
	for i := 0; i < r.cfg.Workers; i++ {
		workersWG.Go(func() {
			for {
				select {
				case j := <-r.workq:
					r.work(j)
				case <-r.quit:
					return
				}
			}
		})
	}
	workersWG.Go(r.pump)
	for _, l := range r.loops {
		loopsWG.Go(l.run)
	}
	for _, a := range r.acceptors {
		r.accWG.Go(a.run)
	}
	r.log.Info("reactor running", "addr", r.addr, "epollers", len(r.loops),
		"listeners", len(r.acceptors), "workers", r.cfg.Workers, "max_conns", r.maxConns)

	<-ctx.Done()
	r.StopAccepting()
	r.stopping.Store(true)
	if r.conns.Load() == 0 {
		r.drainMu.Do(func() { close(r.drained) })
	}
	for _, l := range r.loops {
		l.post(task{op: opShutdown})
	}
	timer := time.NewTimer(r.cfg.ShutdownTimeout)
	select {
	case <-r.drained:
		timer.Stop()
	case <-timer.C:
		r.log.Warn("shutdown timeout: tearing down the remaining connections", "left", r.conns.Load())
		for _, l := range r.loops {
			l.post(task{op: opForce})
		}
		<-r.drained
	}
	for _, l := range r.loops {
		l.post(task{op: opExit})
	}
	loopsWG.Wait()
	// No epoller is left to schedule work; let the workers finish what is
	// scheduled (every OnClose included), then stop them.
	r.waitJobs()
	close(r.quit)
	workersWG.Wait()
	r.closeFDs()
	r.log.Info("reactor stopped")
	return nil
}

// StopAccepting closes the listeners; established connections are unaffected. Used
// to drain a gateway, and by Run on shutdown. Idempotent.
func (r *Reactor) StopAccepting() {
	r.stopAcc.Do(func() {
		for _, a := range r.acceptors {
			a.stop()
		}
		r.accWG.Wait()
		for _, a := range r.acceptors {
			a.closeFDs()
		}
	})
}

func (r *Reactor) closeFDs() {
	for _, l := range r.loops {
		l.closeFDs()
	}
	if !r.running.Load() { // never started: StopAccepting will not run
		for _, a := range r.acceptors {
			a.closeFDs()
		}
	}
}
