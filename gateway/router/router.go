// Package router delivers stored messages to their recipients' gateways. The msg
// service sends it every message it stores (msg.RouteMethod); the router finds the
// recipient's session (from a cache, or the state service on a miss), pushes the
// message over a link to that gateway, and settles it back to the msg service
// (msg.SettleMethod) once the gateway took it for a live session, or once the
// recipient is known to be offline: either way the message stays stored for the
// recipient's next SYNC, and the router's job is done.
//
// Anything else is retried, from a fresh lookup each time, with pauses up to a
// second, for RetryWindow: a failed lookup (the state service down or
// restarting), an unreachable gateway (dead, restarting, or frozen: a push it does
// not answer within PushTimeout), NOT_HERE (the user moved). After the window the
// router gives up on the message without settling it, and the msg service, which
// resends every unsettled message with backoff, takes over. The router does not
// count on anything it holds surviving it: a restarted router is sent every
// unsettled message again.
//
// A message the router is already working on is not routed twice: a resend of it
// only redirects its settle to the msg connection that sent it last. The set of
// messages in flight is bounded (MaxInFlight, MaxInFlightBytes); beyond it the
// oldest is dropped unsettled, for the msg service to resend.
package router

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/gateway/link"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/prometheus/client_golang/prometheus"
)

// Lookup is what the router needs from the state service.
type Lookup interface {
	Lookup(ctx context.Context, uid uint64) (state.Session, bool, error)
}

// Config configures a Router.
type Config struct {
	Addr   string // link listen address for the msg service's feed
	Secret []byte
	Name   string // this router's link identity towards gateways; default "router"
	State  Lookup
	// CacheTTL bounds how long a cached route is trusted; default 30s.
	CacheTTL time.Duration
	// CacheSize bounds the route cache; default 1M entries.
	CacheSize int
	// MaxLookups bounds concurrent state lookups (more wait: backpressure on the
	// feed); default 256.
	MaxLookups    int
	LookupTimeout time.Duration // default 2s
	// RetryWindow is how long, from its arrival, a message keeps being routed again
	// after a failed lookup, an unreachable gateway or NOT_HERE (pauses from 50ms
	// doubling up to 1s, each followed by a fresh lookup; the first reroute after
	// NOT_HERE is immediate). After it the message is given up unsettled: the msg
	// service resends it. Default 60s.
	RetryWindow time.Duration
	// PushTimeout is how long a push waits for its gateway's answer before the
	// gateway counts as unreachable (a frozen gateway never answers); default 2s.
	PushTimeout time.Duration
	// MaxInFlight and MaxInFlightBytes (payloads) bound the messages being routed;
	// beyond either the oldest is dropped unsettled (the msg service resends it).
	// Defaults 262144 messages and 256 MiB.
	MaxInFlight      int
	MaxInFlightBytes int64
	Registry         prometheus.Registerer
	Logger           *slog.Logger
}

// Router is a running router.
type Router struct {
	cfg   Config
	log   *slog.Logger
	srv   *link.Server
	cache *routeCache
	m     *metrics
	sem   chan struct{}
	// ctx ends when Serve returns: routing in progress is abandoned.
	ctx    context.Context
	cancel context.CancelFunc

	gmu sync.Mutex
	gws map[string]*gatewayLink
	// clients are the gateway links of gws, for flushPushes to read without gmu.
	clients atomic.Pointer[[]*link.Client]

	pmu     sync.Mutex
	pending map[uint64][]*flight // uid → messages waiting for that uid's lookup

	// fmu guards the in-flight set: every message being routed, by identity, and
	// the same in arrival order (for dropping the oldest), and their payload bytes.
	fmu     sync.Mutex
	flights map[flightKey]*flight
	order   *list.List // of *flight
	bytes   int64

	settles chan settle // to the msg service, batched by settleLoop
}

type gatewayLink struct {
	epoch    uint64
	linkAddr string
	client   *link.Client
}

// flightKey is a stored message's identity: seqs compare within an epoch only.
type flightKey struct{ uid, epoch, seq uint64 }

// flight is one message being routed. It is routed by one chain of steps at a time
// (route, lookup, push, the answer, a reroute), so attempt and failed need no lock.
type flight struct {
	m        *msg.Message
	key      flightKey
	received time.Time
	attempt  int // routes again after NOT_HERE or an unreachable gateway
	failed   int // consecutive failed lookups (kept on the queue's first message)
	// peer (the msg connection to settle to) and elem (its place in Router.order;
	// nil once it is finished or dropped) are guarded by Router.fmu.
	peer *link.Peer
	elem *list.Element
}

// settle is one message to settle to a msg connection.
type settle struct {
	peer *link.Peer
	s    msg.Settle
}

// New binds the router's link listener.
func New(cfg Config) (*Router, error) {
	if cfg.State == nil {
		return nil, errors.New("router: Config.State is required")
	}
	if cfg.Name == "" {
		cfg.Name = "router"
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 1 << 20
	}
	if cfg.MaxLookups <= 0 {
		cfg.MaxLookups = 256
	}
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = 2 * time.Second
	}
	if cfg.RetryWindow <= 0 {
		cfg.RetryWindow = 60 * time.Second
	}
	if cfg.PushTimeout <= 0 {
		cfg.PushTimeout = 2 * time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1 << 18
	}
	if cfg.MaxInFlightBytes <= 0 {
		cfg.MaxInFlightBytes = 256 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Router{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "router"),
		cache:   newRouteCache(cfg.CacheTTL, cfg.CacheSize),
		sem:     make(chan struct{}, cfg.MaxLookups),
		ctx:     ctx,
		cancel:  cancel,
		gws:     map[string]*gatewayLink{},
		pending: map[uint64][]*flight{},
		flights: map[flightKey]*flight{},
		order:   list.New(),
		settles: make(chan settle, settleQueue),
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	r.m = newMetrics(reg, r)
	srv, err := link.Listen(link.ServerConfig{Addr: cfg.Addr, Secret: cfg.Secret, Handler: r.handle, Logger: r.log,
		Registry: reg, Service: "router", OnDrained: func(*link.Peer) { r.flushPushes() }})
	if err != nil {
		cancel()
		return nil, err
	}
	r.srv = srv
	return r, nil
}

// Addr returns the feed's link address.
func (r *Router) Addr() string { return r.srv.Addr() }

// Serve serves the feed until ctx ends, then abandons the messages in flight (the
// msg service resends them to the next router) and closes the gateway links.
func (r *Router) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(r.settleLoop)
	err := r.srv.Serve(ctx)
	r.cancel()
	wg.Wait()
	r.gmu.Lock()
	for id, g := range r.gws {
		g.client.Close()
		delete(r.gws, id)
	}
	r.clients.Store(nil)
	r.gmu.Unlock()
	return err
}

func (r *Router) handle(_ context.Context, req *link.Request) ([]byte, error) {
	if req.Method != msg.RouteMethod { // the msg service's feed of stored messages
		return nil, fmt.Errorf("router: unknown method %d", req.Method)
	}
	m, err := msg.DecodeMessage(bytes.Clone(req.Body)) // routing is asynchronous: own the bytes
	if err != nil {
		r.log.Warn("bad route notification", "err", err)
		return nil, err
	}
	r.m.received.Inc()
	if f := r.admit(&m, req.Peer); f != nil {
		r.route(f)
	}
	return nil, nil
}

// admit adds m to the in-flight set and returns its flight, or nil if m is in
// flight already (a resend: its settle now goes to peer, the latest sender). A full
// set drops its oldest flights.
func (r *Router) admit(m *msg.Message, peer *link.Peer) *flight {
	key := flightKey{uid: m.To, epoch: m.Epoch, seq: m.Seq}
	r.fmu.Lock()
	defer r.fmu.Unlock()
	if f := r.flights[key]; f != nil {
		f.peer = peer
		r.m.deduplicated.Inc()
		return nil
	}
	f := &flight{m: m, key: key, received: time.Now(), peer: peer}
	f.elem = r.order.PushBack(f)
	r.flights[key] = f
	r.bytes += int64(len(m.Payload))
	for r.order.Len() > r.cfg.MaxInFlight || (r.bytes > r.cfg.MaxInFlightBytes && r.order.Len() > 1) {
		r.remove(r.order.Front().Value.(*flight))
		r.m.routed["dropped"].Inc()
	}
	return f
}

// remove takes f out of the in-flight set. The caller holds fmu.
func (r *Router) remove(f *flight) {
	r.order.Remove(f.elem)
	f.elem = nil
	delete(r.flights, f.key)
	r.bytes -= int64(len(f.m.Payload))
}

// active reports whether f is still to be routed: not finished, not dropped, and
// the router still serving.
func (r *Router) active(f *flight) bool {
	if r.ctx.Err() != nil {
		return false
	}
	r.fmu.Lock()
	defer r.fmu.Unlock()
	return f.elem != nil
}

// finish ends f's routing with outcome, settling it to its msg connection if
// settled (delivered or offline). A flight finished or dropped already is left
// alone, so a late answer counts once.
func (r *Router) finish(f *flight, outcome string, settled bool) {
	r.fmu.Lock()
	if f.elem == nil {
		r.fmu.Unlock()
		return
	}
	r.remove(f)
	peer := f.peer
	r.fmu.Unlock()
	r.m.routed[outcome].Inc()
	if !settled || peer == nil {
		return
	}
	select {
	case r.settles <- settle{peer: peer, s: msg.Settle{UID: f.m.To, Seq: f.m.Seq, ID: f.m.ID}}:
	default:
		r.m.settles["dropped"].Inc() // msg resends it, and the next push settles it
	}
}

// settleQueue bounds the settles waiting for settleLoop.
const settleQueue = 1 << 16

// settleLinger is how long settleLoop collects settles after the first one before
// it sends them: settles are off the latency path (the msg service resends only
// after seconds), and collecting them for a few milliseconds makes one write carry
// many rather than each costing one.
const settleLinger = 5 * time.Millisecond

// settleLoop sends queued settles to their msg connections, as many per
// notification as have queued up within settleLinger of the first (up to
// msg.MaxSettles), until the router stops.
func (r *Router) settleLoop() {
	bodies := map[*link.Peer][]byte{}
	flush := func(p *link.Peer) {
		b := bodies[p]
		delete(bodies, p)
		result := "sent"
		if p.Notify(msg.SettleMethod, b) != nil {
			result = "failed" // the msg connection is gone: its successor resends
		}
		r.m.settles[result].Add(float64(len(b) / msg.SettleSize))
	}
	add := func(s settle) {
		b := msg.AppendSettle(bodies[s.peer], s.s)
		bodies[s.peer] = b
		if len(b)/msg.SettleSize >= msg.MaxSettles {
			flush(s.peer)
		}
	}
	linger := time.NewTimer(settleLinger)
	linger.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case s := <-r.settles:
			add(s)
		}
		linger.Reset(settleLinger)
	collect:
		for {
			select {
			case <-r.ctx.Done():
				return
			case s := <-r.settles:
				add(s)
			case <-linger.C:
				break collect
			}
		}
		for p := range bodies {
			flush(p)
		}
	}
}

// route sends f towards its recipient: straight to the gateway on a valid cache
// hit, else behind the recipient's lookup. Messages to one recipient that arrive
// while its lookup is under way queue behind it and go out in arrival order.
func (r *Router) route(f *flight) {
	if !r.active(f) {
		return
	}
	uid := f.m.To
	r.pmu.Lock()
	if q, waiting := r.pending[uid]; waiting {
		r.pending[uid] = append(q, f)
		r.pmu.Unlock()
		return
	}
	if s, ok := r.cache.get(uid, time.Now()); ok && r.liveEpoch(s.Gateway) == s.Epoch {
		r.pmu.Unlock()
		r.m.cacheHit.Inc()
		r.push(s, f)
		return
	}
	r.pending[uid] = []*flight{f}
	r.pmu.Unlock()
	r.m.cacheMiss.Inc()
	r.sem <- struct{}{}
	go r.lookup(uid)
}

func (r *Router) lookup(uid uint64) {
	defer func() { <-r.sem }()
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.LookupTimeout)
	s, ok, err := r.cfg.State.Lookup(ctx, uid)
	cancel()
	r.pmu.Lock()
	defer r.pmu.Unlock() // held while pushing the queue, so later arrivals go after it
	q := r.pending[uid]
	delete(r.pending, uid)
	switch {
	case r.ctx.Err() != nil:
		// The router stopped: the msg service resends to its successor.
	case err != nil && time.Since(q[0].received) < r.cfg.RetryWindow:
		// Keep the queue pending, so that later messages to uid wait behind it in
		// order, and look up again after a pause.
		q[0].failed++
		r.pending[uid] = q
		r.m.lookupRetries.Inc()
		if q[0].failed == 1 {
			r.log.Debug("state lookup failed; retrying", "uid", uid, "messages", len(q), "err", err)
		}
		time.AfterFunc(retryPause(q[0].failed), func() {
			r.sem <- struct{}{}
			r.lookup(uid)
		})
	case err != nil:
		r.log.Warn("state lookups kept failing; the messages are left to the msg service's resends", "uid", uid,
			"messages", len(q), "for", time.Since(q[0].received).Round(time.Millisecond), "err", err)
		for _, f := range q {
			r.finish(f, "error", false)
		}
	case !ok:
		for _, f := range q {
			r.finish(f, "offline", true)
		}
	default:
		r.cache.put(s, time.Now())
		for _, f := range q {
			r.push(s, f)
		}
		r.flushPushes()
	}
}

// connectWait bounds how long a push waits for a gateway link that is (re)connecting,
// for example right after the gateway appeared in the table.
const connectWait = time.Second

// push hands f to s's gateway and handles its answer asynchronously.
func (r *Router) push(s state.Session, f *flight) {
	if !r.active(f) {
		return
	}
	c := r.gatewayClient(s.Gateway)
	if c == nil {
		r.reroute(s, f, "unreachable")
		return
	}
	if !c.Connected() {
		go func() {
			ctx, cancel := context.WithTimeout(r.ctx, connectWait)
			defer cancel()
			if c.WaitConnected(ctx) != nil {
				r.reroute(s, f, "unreachable")
				return
			}
			r.send(c, s, f)
		}()
		return
	}
	r.send(c, s, f)
}

// send pushes f to s's gateway over c. An answer that does not come within
// PushTimeout counts as an unreachable gateway; if it comes later and says
// delivered, f is finished then (its reroute, under way, finds it done).
func (r *Router) send(c *link.Client, s state.Session, f *flight) {
	var answered atomic.Bool
	timer := time.AfterFunc(r.cfg.PushTimeout, func() {
		if answered.CompareAndSwap(false, true) {
			r.m.pushTimeouts.Inc()
			r.reroute(s, f, "unreachable")
		}
	})
	c.GoLater(gwlink.MethodPush, gwlink.AppendPush(nil, s.Conn, stampRouted(f.m)), pushLinger, func(resp []byte, err error) {
		delivered := err == nil && len(resp) == 1 && resp[0] == gwlink.PushDelivered
		if !answered.CompareAndSwap(false, true) {
			if delivered {
				r.delivered(f)
			}
			return
		}
		timer.Stop()
		switch {
		case err != nil:
			r.reroute(s, f, "unreachable")
		case delivered:
			r.delivered(f)
		default: // NOT_HERE: the user moved, or the session was replaced
			r.reroute(s, f, "not_here")
		}
	})
}

// stampRouted returns m itself if it is untraced, else a copy whose trace says it
// was routed now: a flight's message is pushed again on a reroute, and a late
// answer of an earlier push may still read it, so its own trace is not touched.
func stampRouted(m *msg.Message) *msg.Message {
	if m.Trace == nil {
		return m
	}
	c := *m
	c.Trace = m.Trace.With(func(t *msg.Trace) { t.Routed = time.Now().UnixNano() })
	return &c
}

// pushLinger is the longest a push waits to share a write with others. The
// routes of a burst from the msg feed go out together when the feed's reader has
// handled it (flushPushes, from link.ServerConfig.OnDrained), and those behind a
// lookup when it has pushed them; the linger is the backstop for the rest
// (reroutes).
const pushLinger = 2 * time.Millisecond

// flushPushes writes out the pushes queued on every gateway link.
func (r *Router) flushPushes() {
	if cs := r.clients.Load(); cs != nil {
		for _, c := range *cs {
			c.Flush()
		}
	}
}

func (r *Router) delivered(f *flight) {
	r.m.latency.Observe(time.Since(f.received).Seconds())
	r.finish(f, "delivered", true)
}

// reroute drops s's cached route and routes f again from a fresh lookup after a
// pause (none for a first NOT_HERE: the user just moved), unless f has been in
// flight for RetryWindow: then it is given up, counted under outcome, unsettled.
func (r *Router) reroute(s state.Session, f *flight, outcome string) {
	r.cache.drop(s)
	if !r.active(f) {
		return
	}
	if time.Since(f.received) >= r.cfg.RetryWindow {
		r.finish(f, outcome, false)
		return
	}
	r.m.reroutes.Inc()
	f.attempt++
	if outcome == "not_here" && f.attempt == 1 {
		go r.route(f) // route may wait for a lookup slot: not on the caller's goroutine
		return
	}
	time.AfterFunc(retryPause(f.attempt), func() { r.route(f) })
}

// retryPause is the pause before the n-th (from 1) retry: 50ms doubling, at most
// maxRetryPause.
func retryPause(n int) time.Duration {
	return min(50*time.Millisecond<<min(n, 10), maxRetryPause)
}

// maxRetryPause caps the pauses between retries, so that a message reaches its
// recipient within about that long after the fault that held it up heals.
const maxRetryPause = time.Second

// SetGateways takes the state service's gateway table (from its watch): it records
// each live gateway's epoch, which is what makes cached routes valid or not, and
// keeps one link open to each live gateway.
func (r *Router) SetGateways(table []state.Gateway) {
	now := time.Now()
	live := map[string]state.Gateway{}
	for _, g := range table {
		if g.Live(now) && g.LinkAddr != "" {
			live[g.ID] = g
		}
	}
	r.gmu.Lock()
	defer r.gmu.Unlock()
	for id, gl := range r.gws {
		if g, ok := live[id]; !ok || g.LinkAddr != gl.linkAddr {
			gl.client.Close()
			delete(r.gws, id)
		}
	}
	for id, g := range live {
		if gl, ok := r.gws[id]; ok {
			gl.epoch = g.Epoch
			continue
		}
		r.gws[id] = &gatewayLink{epoch: g.Epoch, linkAddr: g.LinkAddr, client: link.Dial(link.ClientConfig{
			Addr: g.LinkAddr, Secret: r.cfg.Secret, Name: r.cfg.Name, Logger: r.log.With("gateway", id),
			MaxBackoff: maxRetryPause,
		})}
	}
	cs := make([]*link.Client, 0, len(r.gws))
	for _, gl := range r.gws {
		cs = append(cs, gl.client)
	}
	r.clients.Store(&cs)
}

// liveEpoch returns gateway id's live epoch, 0 if it is not live.
func (r *Router) liveEpoch(id string) uint64 {
	r.gmu.Lock()
	defer r.gmu.Unlock()
	if g, ok := r.gws[id]; ok {
		return g.epoch
	}
	return 0
}

func (r *Router) gatewayClient(id string) *link.Client {
	r.gmu.Lock()
	defer r.gmu.Unlock()
	if g, ok := r.gws[id]; ok {
		return g.client
	}
	return nil
}

// liveGateways counts the gateways the router holds links to.
func (r *Router) liveGateways() int {
	r.gmu.Lock()
	defer r.gmu.Unlock()
	return len(r.gws)
}

// inFlight returns the messages being routed and their payload bytes.
func (r *Router) inFlight() (int, int64) {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	return r.order.Len(), r.bytes
}
