package link

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/internal/loglimit"
	"github.com/prometheus/client_golang/prometheus"
)

// Request is one request or notification received by a Server.
type Request struct {
	Peer   *Peer
	Method uint16
	// Body is valid only until the handler returns; copy what you keep.
	Body []byte
	// OneWay marks a notification: the handler's result is discarded.
	OneWay bool
	// Linger, set by the handler, lets its answer wait up to this long to share a
	// write with later ones (an answer off the latency path); 0, the default,
	// sends it once the reader has nothing more buffered.
	Linger time.Duration
}

// Handler serves requests. It runs on the connection's reader goroutine, one
// request at a time per connection, so it should not block for long: a slow
// handler holds up that peer's later requests (and only that peer's).
type Handler func(ctx context.Context, req *Request) ([]byte, error)

// ServerConfig configures a Server.
type ServerConfig struct {
	Addr    string // listen address
	Secret  []byte // cluster secret; peers must prove they hold it
	Handler Handler
	// OnConnect and OnDisconnect, if set, are called as authenticated peers come and go.
	OnConnect, OnDisconnect func(*Peer)
	// OnDrained, if set, is called on a connection's reader goroutine each time it
	// has handled every frame it had buffered, before it waits for more: where a
	// handler that queued work for a burst of requests (writes on other links, say)
	// sends it off.
	OnDrained    func(*Peer)
	WriteTimeout time.Duration // default 10s; a peer that takes no data this long (up to 1s more: see the package doc) is dropped
	// HandshakeTimeout bounds the whole handshake from accept (default 5s): a peer
	// that stalls or trickles is closed when it expires, whatever it has sent.
	HandshakeTimeout time.Duration
	// MaxHandshakes caps the connections in their handshake at once (default 64). A
	// connection accepted over the cap is closed at once, before any byte is read or
	// written, and counted; authenticated peers are not affected. Until it has
	// authenticated a connection holds a goroutine and a few hundred bytes, never the
	// 64 KiB read buffer of a peer.
	MaxHandshakes int
	// MaxHandshakesPerIP caps the handshakes under way from one remote address
	// (default 16), so that one host cannot hold every MaxHandshakes slot and lock
	// the cluster's own services out; over it a new connection from that address is
	// closed at once and counted. A fleet's services reconnecting together after a
	// restart stay far below it: a handshake lasts a few round trips.
	MaxHandshakesPerIP int
	// MaxPeers caps the authenticated peers at once (default 4096). A peer that
	// completes the handshake over the cap is closed at once and counted (its client
	// retries with back-off). Every peer holds 128 KiB of buffers, so the cap bounds
	// what a runaway client (one that leaks links) can take.
	MaxPeers int
	// DeadAfter closes a peer's connection once nothing at all was read on it for
	// this long (default 5s; clients ping every second: see liveness.go), so that a
	// peer gone silent — its host vanished, a partition — stops holding a place,
	// and notifications to it (a kick, a watch event) are not written into the void.
	DeadAfter time.Duration
	// Workers, with Order, serves requests side by side: the reader hands each
	// request Order accepts to one of Workers goroutines chosen by the key Order
	// returns, so that requests with equal keys are handled in order and others
	// concurrently, and answers go out as each finishes (see ordered.go). A request
	// Order declines, or every request when Workers is 0 (the default), is handled on
	// the reader, one at a time per connection. The handler of an ordered request
	// runs on a worker: OnDrained still runs on the reader.
	Workers int
	Order   func(*Request) (key uint64, ok bool)
	// Service names the server in its metrics' service label (default "link").
	Service string
	// Registry receives the floodgate_link_server_* metrics (nil: counted, not exported;
	// Stats reads them either way). Servers of one process may share a Registry.
	Registry prometheus.Registerer
	Logger   *slog.Logger
}

// Defaults of ServerConfig's limits.
const (
	DefaultHandshakeTimeout   = 5 * time.Second
	DefaultMaxHandshakes      = 64
	DefaultMaxHandshakesPerIP = 16
	DefaultMaxPeers           = 4096
)

// Back-off after an accept error (out of descriptors, buffers or memory): retrying
// at once cannot help and would burn a core, while the kernel's backlog keeps the
// connections that arrive meanwhile.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// Server accepts link connections.
type Server struct {
	cfg   ServerConfig
	ln    net.Listener
	log   *slog.Logger
	m     *serverMetrics
	hs    chan struct{} // one token per handshake in progress
	mu    sync.Mutex
	conns map[net.Conn]struct{} // every accepted connection, handshaking or not
	peers map[*Peer]struct{}    // the authenticated ones
	// hsByIP counts the handshakes under way by remote address.
	hsByIP map[netip.Addr]int
	// reserved counts the places taken under MaxPeers: the peers, and those whose
	// handshake is sending the server's proof.
	reserved int
	closing  bool
	wg       sync.WaitGroup
	// busy is set while connections are being turned away over MaxHandshakes, so
	// that a flood logs when it starts and when it ends rather than per connection.
	busy      atomic.Bool
	refuseLog loglimit.Limiter // refused connections are logged once a second at most
	workers   *workerPool      // nil without ServerConfig.Workers
}

// Listen binds the server's address.
func Listen(cfg ServerConfig) (*Server, error) {
	if len(cfg.Secret) == 0 || cfg.Handler == nil {
		return nil, errors.New("link: ServerConfig needs a Secret and a Handler")
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("link listener: %w", err)
	}
	s, err := NewServer(cfg, ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return s, nil
}

// NewServer serves link connections accepted from ln (which Serve closes);
// cfg.Addr is ignored. Listen is the usual way in; this one lets a caller supply
// its own listener.
func NewServer(cfg ServerConfig, ln net.Listener) (*Server, error) {
	if len(cfg.Secret) == 0 || cfg.Handler == nil {
		return nil, errors.New("link: ServerConfig needs a Secret and a Handler")
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes
	}
	if cfg.MaxHandshakesPerIP <= 0 {
		cfg.MaxHandshakesPerIP = DefaultMaxHandshakesPerIP
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = DefaultMaxPeers
	}
	if cfg.DeadAfter <= 0 {
		cfg.DeadAfter = DefaultDeadAfter
	}
	if cfg.Service == "" {
		cfg.Service = "link"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m, err := newServerMetrics(cfg.Registry, cfg.Service)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, ln: ln, log: cfg.Logger, m: m, hs: make(chan struct{}, cfg.MaxHandshakes),
		conns: map[net.Conn]struct{}{}, peers: map[*Peer]struct{}{}, hsByIP: map[netip.Addr]int{}}, nil
}

// Addr returns the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Peers returns the connected, authenticated peers.
func (s *Server) Peers() []*Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Peer, 0, len(s.peers))
	for p := range s.peers {
		out = append(out, p)
	}
	return out
}

// Serve accepts connections until ctx ends, then closes the listener and every
// connection and returns once their goroutines have finished. An accept error does
// not end it: it backs off (5ms doubling to 1s, reset by the next success) and tries
// again, so a burst of EMFILE cannot take the service down. It returns nil when ctx
// ended, or the error if someone else closed the listener.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	if s.cfg.Workers > 0 && s.cfg.Order != nil {
		wctx, cancel := context.WithCancel(ctx)
		s.workers = newWorkerPool(s.cfg.Workers)
		s.workers.start(wctx, s.cfg.Handler)
		defer func() { cancel(); s.workers.wg.Wait() }()
	}
	var err error
	var backoff time.Duration
	var streak uint64 // accept errors since the last success
	for {
		nc, aerr := s.ln.Accept()
		if aerr != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(aerr, net.ErrClosed) {
				err = fmt.Errorf("link listener closed: %w", aerr)
				break
			}
			s.m.acceptError()
			streak++
			if retryAtOnce(aerr) {
				continue
			}
			if backoff == 0 { // the first back-off of this streak
				s.log.Warn("link accept failing; backing off", "addr", s.Addr(), "err", aerr, "backoff", minAcceptBackoff)
			}
			backoff = nextAcceptBackoff(backoff)
			if !sleepCtx(ctx, backoff) {
				break
			}
			continue
		}
		if backoff > 0 {
			s.log.Info("link accepting again", "addr", s.Addr(), "errors", streak)
		}
		streak, backoff = 0, 0
		s.admit(ctx, nc)
	}
	// Close everything, including connections still in their handshake: tracking
	// starts at accept, so none can slip in after this and keep Serve waiting.
	s.mu.Lock()
	s.closing = true
	for nc := range s.conns {
		nc.Close()
	}
	for p := range s.peers {
		p.closedLocally.Store(true)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// admit takes a handshake slot for a freshly accepted connection and starts serving
// it, or closes it at once when MaxHandshakes are already under way, or
// MaxHandshakesPerIP from its address: the slots are taken here, before a goroutine
// exists, so a flood costs nothing but the accept.
func (s *Server) admit(ctx context.Context, nc net.Conn) {
	select {
	case s.hs <- struct{}{}:
	default:
		nc.Close()
		s.m.refused("busy")
		if !s.busy.Swap(true) {
			s.log.Warn("link handshakes at their cap; closing new connections", "addr", s.Addr(),
				"max_handshakes", s.cfg.MaxHandshakes)
		}
		return
	}
	if s.busy.Swap(false) {
		s.log.Info("link handshakes below their cap again", "addr", s.Addr())
	}
	ip := remoteIP(nc)
	switch s.track(nc, ip) {
	case trackClosing:
		<-s.hs
		nc.Close()
		return
	case trackIPBusy:
		<-s.hs
		nc.Close()
		s.m.refused("busy_ip")
		if n, ok := s.refuseLog.Allow(time.Now()); ok {
			s.log.Warn("link handshakes from one address at their cap; closing its new connections",
				"remote", ip.String(), "max_handshakes_per_ip", s.cfg.MaxHandshakesPerIP, "suppressed", n)
		}
		return
	}
	s.m.handshakes(1)
	s.wg.Go(func() {
		s.serveConn(ctx, nc, ip)
		s.untrack(nc)
	})
}

// remoteIP is the address nc comes from (IPv4-mapped addresses unmapped); the zero
// Addr for a connection that is not TCP.
func remoteIP(nc net.Conn) netip.Addr {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// retryAtOnce reports accept errors that concern one connection rather than the
// listener or the process (the peer reset it while it waited in the backlog; a
// signal): the next accept may well succeed, so there is nothing to wait for.
func retryAtOnce(err error) bool {
	return errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPROTO) || errors.Is(err, syscall.EINTR)
}

// nextAcceptBackoff is the pause after an accept error that followed a pause of
// prev (0 for the first error of a streak): 5ms, doubling, at most 1s.
func nextAcceptBackoff(prev time.Duration) time.Duration {
	return min(max(2*prev, minAcceptBackoff), maxAcceptBackoff)
}

// sleepCtx waits for d unless ctx ends first; false if it did.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Results of track.
const (
	trackOK      = iota
	trackClosing // the server is closing
	trackIPBusy  // MaxHandshakesPerIP handshakes from that address are under way
)

// track records an accepted connection from ip and counts its handshake against
// ip's share (handshakeDone gives it back).
func (s *Server) track(nc net.Conn, ip netip.Addr) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return trackClosing
	}
	if s.hsByIP[ip] >= s.cfg.MaxHandshakesPerIP {
		return trackIPBusy
	}
	s.hsByIP[ip]++
	s.conns[nc] = struct{}{}
	return trackOK
}

// handshakeDone gives back the handshake slots of a connection from ip.
func (s *Server) handshakeDone(ip netip.Addr) {
	s.mu.Lock()
	if s.hsByIP[ip]--; s.hsByIP[ip] <= 0 {
		delete(s.hsByIP, ip)
	}
	s.mu.Unlock()
	<-s.hs
	s.m.handshakes(-1)
}

func (s *Server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}

func (s *Server) serveConn(ctx context.Context, nc net.Conn, ip netip.Addr) {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	// The handshake reads straight from the connection, exactly the bytes it needs:
	// an unauthenticated peer never costs the 64 KiB read buffer, and nothing it sent
	// after the handshake is left behind in a small one. The peer's place under
	// MaxPeers is reserved before the server's proof goes out, so a client that
	// counts itself connected is never dropped for the cap afterwards.
	name, admitted, err := serverHandshake(nc, s.cfg.Secret, s.cfg.HandshakeTimeout, s.reservePeer)
	s.handshakeDone(ip)
	if err != nil {
		msg, reason := "link peer refused", "auth"
		if errors.Is(err, errTooManyPeers) {
			msg, reason = "link peer refused: too many peers", "peers"
		} else if admitted {
			s.releasePeer() // reserved, but the proof did not go out
		}
		s.m.refused(reason)
		if n, ok := s.refuseLog.Allow(time.Now()); ok {
			s.log.Warn(msg, "remote", nc.RemoteAddr().String(), "err", err, "suppressed", n)
		}
		nc.Close()
		return
	}
	p := &Peer{name: name, remote: nc.RemoteAddr().String(), nc: nc,
		notes: make(chan notification, NotifyQueue), gone: make(chan struct{})}
	p.w = newWriter(nc, s.cfg.WriteTimeout, func(error) { nc.Close() })
	go p.notifier()
	defer close(p.gone)
	s.mu.Lock()
	s.peers[p] = struct{}{}
	s.mu.Unlock()
	r := bufio.NewReaderSize(nc, 64<<10)
	if s.cfg.OnConnect != nil {
		s.cfg.OnConnect(p)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	go watchdog(wctx, nc, &p.read, min(DefaultPingEvery, s.cfg.DeadAfter/2), s.cfg.DeadAfter, nil, nil, func() {
		p.silent.Store(true)
		s.log.Warn("link peer silent; closing it", "peer", name, "remote", p.remote, "silent_for", s.cfg.DeadAfter)
	})
	err = s.readLoop(ctx, p, r)
	stopWatch()
	p.Close()
	s.mu.Lock()
	delete(s.peers, p)
	s.mu.Unlock()
	s.releasePeer()
	if s.cfg.OnDisconnect != nil {
		s.cfg.OnDisconnect(p)
	}
	if err != nil && !p.closedLocally.Load() && !p.silent.Load() {
		s.log.Info("link peer gone", "peer", name, "remote", p.remote, "err", err)
	}
}

// errTooManyPeers refuses a handshake when MaxPeers are connected.
var errTooManyPeers = errors.New("link: too many peers")

// reservePeer takes a place under MaxPeers for an authenticated client named name;
// errTooManyPeers when there is none.
func (s *Server) reservePeer(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reserved >= s.cfg.MaxPeers {
		return fmt.Errorf("%w (%d connected; %q refused)", errTooManyPeers, s.reserved, name)
	}
	s.reserved++
	s.m.peerCount(1)
	return nil
}

// releasePeer gives back a place taken by reservePeer.
func (s *Server) releasePeer() {
	s.mu.Lock()
	s.reserved--
	s.mu.Unlock()
	s.m.peerCount(-1)
}

// flushAfter bounds how long the answers a reader has queued wait for the rest of
// a burst of requests: they leave once no further request is buffered, or once the
// oldest has waited this long (a slow handler must not hold them back).
const flushAfter = 500 * time.Microsecond

// readLoop serves p's frames in arrival order. Answers are queued rather than sent
// one by one, and flushed on this goroutine once no further frame is buffered (or
// after flushAfter), so that a burst of pipelined requests is answered in one
// write.
func (s *Server) readLoop(ctx context.Context, p *Peer, r *bufio.Reader) error {
	var buf []byte
	req := &Request{Peer: p}
	var queuedAt time.Time // when the oldest unflushed answer was queued; zero: none
	handled := false       // frames handled since the reader was last drained
	for {
		if handled && r.Buffered() == 0 {
			handled = false
			if s.cfg.OnDrained != nil {
				s.cfg.OnDrained(p)
			}
		}
		if !queuedAt.IsZero() && (r.Buffered() == 0 || time.Since(queuedAt) >= flushAfter) {
			if err := p.w.flush(); err != nil {
				return err
			}
			queuedAt = time.Time{}
		}
		f, b, err := readFrame(r, buf)
		buf = b
		if err != nil {
			return err
		}
		p.read.Add(1)
		handled = true
		switch f.kind {
		case kindPing:
			err = p.w.queue(kindPong, f.id, 0, nil)
		case kindRequest, kindNotify:
			req.Method, req.Body, req.OneWay, req.Linger = f.method, f.body, f.kind == kindNotify, 0
			if s.workers != nil {
				if key, ok := s.cfg.Order(req); ok {
					j := orderedJob{peer: p, id: f.id, method: f.method, body: append([]byte(nil), f.body...), oneWay: req.OneWay}
					if !s.workers.submit(ctx, key, j) {
						return ctx.Err()
					}
					continue
				}
			}
			resp, herr := s.cfg.Handler(ctx, req)
			if req.OneWay {
				continue
			}
			if herr != nil {
				err = p.w.queue(kindError, f.id, f.method, []byte(herr.Error()))
			} else if err = p.w.queue(kindResponse, f.id, f.method, resp); err == nil && req.Linger > 0 {
				p.w.flushWithin(req.Linger)
				continue
			}
		default:
			return fmt.Errorf("link: unexpected frame kind %d from a client", f.kind)
		}
		if err != nil {
			return err
		}
		if queuedAt.IsZero() {
			queuedAt = time.Now()
		}
	}
}

// Peer is one authenticated client connection on a Server.
type Peer struct {
	name          string
	remote        string
	nc            net.Conn
	w             *writer
	closedLocally atomic.Bool
	silent        atomic.Bool   // closed by the watchdog
	read          atomic.Uint64 // frames read: the watchdog's sign of life
	// notes queues notifications for the notifier goroutine (see Notify).
	notes chan notification
	gone  chan struct{} // closed when the connection's serving ends
	// Value is free for the service to attach per-peer state (set in OnConnect).
	Value atomic.Value
}

// Name returns the name the peer gave in the handshake.
func (p *Peer) Name() string { return p.name }

// notification is one queued Notify.
type notification struct {
	method uint16
	body   []byte
}

// NotifyQueue bounds the notifications queued for one peer.
const NotifyQueue = 4096

// ErrBacklogged: a notification was refused because the peer's queue is full — it
// has not been taking data (cut off, or stalled).
var ErrBacklogged = errors.New("link: peer backlogged")

// Notify queues a one-way message to the peer and returns at once; a goroutine of
// the peer's writes it, batched with its other traffic, in order. It never blocks
// its caller: a peer that takes no data (a partition: the kernel's send buffer
// fills, and a write then waits for the write timeout) would otherwise stall
// whoever notifies it — the state service's handler of another gateway's login,
// telling this one to kick a session, and with it every request queued behind
// that login on the other gateway's link. Past NotifyQueue queued, it fails with
// ErrBacklogged, which the caller treats as an unreachable peer.
func (p *Peer) Notify(method uint16, body []byte) error {
	select {
	case <-p.gone:
		return ErrDisconnected
	default:
	}
	select {
	case p.notes <- notification{method: method, body: bytes.Clone(body)}:
		return nil
	default:
		return ErrBacklogged
	}
}

// notifier writes the peer's queued notifications until its connection ends.
func (p *Peer) notifier() {
	for {
		select {
		case n := <-p.notes:
			if p.w.send(kindNotify, 0, n.method, n.body) != nil {
				return
			}
		case <-p.gone:
			return
		}
	}
}

// Close drops the connection.
func (p *Peer) Close() {
	p.closedLocally.Store(true)
	p.w.stop(ErrClosed)
	p.nc.Close()
}
