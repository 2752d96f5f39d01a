// Package router delivers stored messages to their recipients' gateways. The msg
// service feeds it every message it stores; the router finds the recipient's session
// (from a cache, or the state service on a miss), pushes the message over a link to
// that gateway, and re-routes once if the gateway says the user is no longer there.
// A message it cannot deliver — recipient offline, gateway gone — is not lost: it
// stays in the recipient's inbox until the client's next SYNC. A failed lookup is
// different: the recipient may well be online and waiting, with nothing to make its
// client SYNC, so the router keeps trying (RetryWindow) while the state service is
// down or restarting.
package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
	// Retries is how many times a message is routed again after NOT_HERE or an
	// unreachable gateway; default 5 (pauses of 100ms doubling: about 3s in all, a
	// few lease periods).
	Retries int
	// RetryWindow is how long a message keeps being routed again while its
	// recipient's state lookup fails (pauses from 50ms, doubling up to 1s); after
	// it, the message stays stored for SYNC. Default 30s: a state service's restart.
	RetryWindow time.Duration
	Registry    prometheus.Registerer
	Logger      *slog.Logger
}

// Router is a running router.
type Router struct {
	cfg   Config
	log   *slog.Logger
	srv   *link.Server
	cache *routeCache
	m     *metrics
	sem   chan struct{}

	gmu sync.Mutex
	gws map[string]*gatewayLink

	pmu     sync.Mutex
	pending map[uint64][]pendingMsg // uid → messages waiting for that uid's lookup
}

type gatewayLink struct {
	epoch    uint64
	linkAddr string
	client   *link.Client
}

type pendingMsg struct {
	m        *msg.Message
	attempt  int // routes again after NOT_HERE or an unreachable gateway
	failed   int // consecutive failed lookups (kept on the queue's first message)
	received time.Time
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
	if cfg.Retries <= 0 {
		cfg.Retries = 5
	}
	if cfg.RetryWindow <= 0 {
		cfg.RetryWindow = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Router{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "router"),
		cache:   newRouteCache(cfg.CacheTTL, cfg.CacheSize),
		sem:     make(chan struct{}, cfg.MaxLookups),
		gws:     map[string]*gatewayLink{},
		pending: map[uint64][]pendingMsg{},
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	r.m = newMetrics(reg, r)
	srv, err := link.Listen(link.ServerConfig{Addr: cfg.Addr, Secret: cfg.Secret, Handler: r.handle, Logger: r.log})
	if err != nil {
		return nil, err
	}
	r.srv = srv
	return r, nil
}

// Addr returns the feed's link address.
func (r *Router) Addr() string { return r.srv.Addr() }

// Serve serves the feed until ctx ends, then closes the gateway links.
func (r *Router) Serve(ctx context.Context) error {
	err := r.srv.Serve(ctx)
	r.gmu.Lock()
	for id, g := range r.gws {
		g.client.Close()
		delete(r.gws, id)
	}
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
	r.Stored(&m)
	return nil, nil
}

// Stored routes one stored message (it makes the Router a msg.Sink for in-process
// wiring). It does not wait for delivery.
func (r *Router) Stored(m *msg.Message) {
	r.m.received.Inc()
	r.route(pendingMsg{m: m, received: time.Now()})
}

// route sends p towards its recipient: straight to the gateway on a valid cache
// hit, else behind the recipient's lookup. Messages to one recipient that arrive
// while its lookup is under way queue behind it and go out in arrival order.
func (r *Router) route(p pendingMsg) {
	uid := p.m.To
	r.pmu.Lock()
	if q, waiting := r.pending[uid]; waiting {
		r.pending[uid] = append(q, p)
		r.pmu.Unlock()
		return
	}
	if s, ok := r.cache.get(uid, time.Now()); ok && r.liveEpoch(s.Gateway) == s.Epoch {
		r.pmu.Unlock()
		r.m.cacheHit.Inc()
		r.push(s, p)
		return
	}
	r.pending[uid] = []pendingMsg{p}
	r.pmu.Unlock()
	r.m.cacheMiss.Inc()
	r.sem <- struct{}{}
	go r.lookup(uid)
}

func (r *Router) lookup(uid uint64) {
	defer func() { <-r.sem }()
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.LookupTimeout)
	s, ok, err := r.cfg.State.Lookup(ctx, uid)
	cancel()
	r.pmu.Lock()
	defer r.pmu.Unlock() // held while pushing the queue, so later arrivals go after it
	q := r.pending[uid]
	delete(r.pending, uid)
	switch {
	case err != nil && time.Since(q[0].received) < r.cfg.RetryWindow:
		// Keep the queue pending, so that later messages to uid wait behind it in
		// order, and look up again after a pause.
		q[0].failed++
		r.pending[uid] = q
		r.m.lookupRetries.Inc()
		if q[0].failed == 1 {
			r.log.Debug("state lookup failed; retrying", "uid", uid, "messages", len(q), "err", err)
		}
		time.AfterFunc(min(retryPause<<min(q[0].failed, 5), time.Second), func() {
			r.sem <- struct{}{}
			r.lookup(uid)
		})
	case err != nil:
		r.m.routed["error"].Add(float64(len(q)))
		r.log.Warn("state lookups kept failing; messages stay stored for SYNC", "uid", uid, "messages", len(q),
			"for", time.Since(q[0].received).Round(time.Millisecond), "err", err)
	case !ok:
		r.m.routed["offline"].Add(float64(len(q)))
	default:
		r.cache.put(s, time.Now())
		for _, p := range q {
			r.push(s, p)
		}
	}
}

// connectWait bounds how long a push waits for a gateway link that is (re)connecting,
// for example right after the gateway appeared in the table.
const connectWait = time.Second

// push hands p to s's gateway and handles its answer asynchronously.
func (r *Router) push(s state.Session, p pendingMsg) {
	c := r.gatewayClient(s.Gateway)
	if c == nil {
		r.unreachable(s, p)
		return
	}
	if !c.Connected() {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), connectWait)
			defer cancel()
			if c.WaitConnected(ctx) != nil {
				r.unreachable(s, p)
				return
			}
			r.send(c, s, p)
		}()
		return
	}
	r.send(c, s, p)
}

// unreachable handles a push whose gateway cannot be reached. The route is
// suspect — most often the gateway died and its user is already logging in
// elsewhere, while its lease has not lapsed yet — so the cached route goes and the
// message is routed again, after a pause, from a fresh lookup. Dropping it instead
// would strand it: a recipient who has already SYNCed on its new gateway learns of
// a stored message only from a push or a later gap.
func (r *Router) unreachable(s state.Session, p pendingMsg) {
	r.reroute(s, p, "unreachable", retryPause<<(p.attempt+1))
}

// reroute drops s's cached route and routes p again from a fresh lookup after
// pause (0: at once, off the caller's goroutine, since route may wait for a lookup
// slot), unless p has used its retries: then it is counted under outcome and stays
// stored, for SYNC.
func (r *Router) reroute(s state.Session, p pendingMsg, outcome string, pause time.Duration) {
	r.cache.drop(s)
	if p.attempt >= r.cfg.Retries {
		r.m.routed[outcome].Inc()
		return
	}
	r.m.reroutes.Inc()
	p.attempt++
	if pause == 0 {
		go r.route(p)
		return
	}
	time.AfterFunc(pause, func() { r.route(p) })
}

// retryPause is the first pause before routing a message again after its gateway
// was unreachable; it doubles with each attempt.
const retryPause = 50 * time.Millisecond

func (r *Router) send(c *link.Client, s state.Session, p pendingMsg) {
	c.Go(gwlink.MethodPush, gwlink.AppendPush(nil, s.Conn, p.m), func(resp []byte, err error) {
		switch {
		case err != nil:
			r.unreachable(s, p)
		case len(resp) == 1 && resp[0] == gwlink.PushDelivered:
			r.m.routed["delivered"].Inc()
			r.m.latency.Observe(time.Since(p.received).Seconds())
		default: // NOT_HERE: the user moved; the cached route is stale
			r.reroute(s, p, "not_here", 0)
		}
	})
}

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
		})}
	}
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
