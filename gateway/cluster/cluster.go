// Package cluster is a gateway's Backend in the full stack: sessions are registered in
// the state service under the gateway's lease, messages are stored by the msg service
// (which hands them to the router), pushes arrive from the router over the gateway's
// own link listener, and the lease is renewed with the gateway's load about three
// times per TTL — one write per gateway, however many clients heartbeat.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/gateway/link"
	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/state"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Cluster backend.
type Config struct {
	ID        string // gateway id
	LinkAddr  string // listen address of the gateway's link server (router pushes, control drains)
	AdminAddr string // advertised in the gateway table, for operators and control
	Secret    []byte
	State     state.Store // usually a *state.Client
	Msgs      msg.Store   // usually a *msg.Client
	// LeaseTTL is the gateway's lease; it is renewed every TTL/3. Default 3s: a dead
	// gateway's sessions are invalid within 3s.
	LeaseTTL time.Duration
	// LogoutQueue bounds unregistrations waiting to be sent; default 65536. Beyond it
	// they are dropped (counted): the session then lingers in state until the user's
	// next login replaces it or the lease ends, and pushes to it get NOT_HERE.
	LogoutQueue int
	Registry    prometheus.Registerer
	Logger      *slog.Logger
}

// Cluster is the backend. Create it, pass it to node.New as the Backend, then Run it
// with the gateway's client address and wait for Ready before serving clients.
type Cluster struct {
	cfg   Config
	log   *slog.Logger
	gw    node.Gateway
	srv   *link.Server
	epoch atomic.Uint64 // the live lease's epoch; 0 while none
	ready chan struct{}
	once  sync.Once
	lost  chan struct{} // a Register saw the lease lost: renew now
	lq    chan state.Session
	m     *metrics
}

// New binds the gateway's link listener.
func New(cfg Config) (*Cluster, error) {
	if cfg.State == nil || cfg.Msgs == nil || cfg.ID == "" {
		return nil, errors.New("cluster: Config needs ID, State and Msgs")
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 3 * time.Second
	}
	if cfg.LogoutQueue <= 0 {
		cfg.LogoutQueue = 1 << 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Cluster{
		cfg:   cfg,
		log:   cfg.Logger.With("gateway", cfg.ID),
		ready: make(chan struct{}),
		lost:  make(chan struct{}, 1),
		lq:    make(chan state.Session, cfg.LogoutQueue),
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	c.m = newMetrics(reg, prometheus.Labels{"gateway": cfg.ID}, &c.epoch)
	srv, err := link.Listen(link.ServerConfig{Addr: cfg.LinkAddr, Secret: cfg.Secret, Handler: c.handle, Logger: c.log})
	if err != nil {
		return nil, err
	}
	c.srv = srv
	return c, nil
}

// LinkAddr returns the bound address of the gateway's link server.
func (c *Cluster) LinkAddr() string { return c.srv.Addr() }

// Ready is closed once the gateway holds its first lease.
func (c *Cluster) Ready() <-chan struct{} { return c.ready }

// Attach implements node.Backend.
func (c *Cluster) Attach(g node.Gateway) { c.gw = g }

// Run holds the lease for a gateway whose clients connect to addr, serves the link
// listener and sends unregistrations, until ctx ends; then it releases the lease, so
// the gateway's sessions are invalid at once rather than after the TTL.
func (c *Cluster) Run(ctx context.Context, addr string) error {
	if c.gw == nil {
		return errors.New("cluster: Run before the node attached (pass the Cluster to node.New first)")
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.srv.Serve(ctx) })
	for range 4 {
		wg.Go(func() { c.unregisterLoop(ctx) })
	}
	c.leaseLoop(ctx, state.Gateway{ID: c.cfg.ID, Addr: addr, LinkAddr: c.LinkAddr(), AdminAddr: c.cfg.AdminAddr})
	wg.Wait()
	return nil
}

// leaseLoop acquires the lease, renews it with load figures, and re-acquires it
// when it is lost (for example after a state service with the memory backend
// restarted): the new epoch invalidates the old sessions, so every session still
// connected here is registered again under it.
func (c *Cluster) leaseLoop(ctx context.Context, g state.Gateway) {
	ttl := c.cfg.LeaseTTL
	sampler := newLoadSampler()
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	retry := time.Duration(0) // acquire retries back off from 50ms to a renewal period
	for ctx.Err() == nil {
		if c.epoch.Load() == 0 {
			epoch, err := c.cfg.State.Acquire(ctx, g, ttl)
			if err != nil {
				retry = min(max(2*retry, 50*time.Millisecond), ttl/3)
				if retry == ttl/3 {
					c.log.Warn("lease: acquire failed; retrying", "err", err)
				}
				c.m.leaseErrors.Inc()
				select {
				case <-time.After(retry):
				case <-ctx.Done():
				}
				continue
			} else {
				retry = 0
				first := c.epochSwap(epoch)
				c.log.Info("lease acquired", "epoch", epoch)
				c.m.leaseAcquired.Inc()
				c.once.Do(func() { close(c.ready) })
				if !first {
					go c.reregister(ctx, epoch)
				}
			}
		} else {
			load := sampler.sample(c.gw)
			err := c.cfg.State.Renew(ctx, g.ID, c.epoch.Load(), load, ttl)
			switch {
			case errors.Is(err, state.ErrLeaseLost):
				c.log.Warn("lease lost; acquiring a new one", "epoch", c.epoch.Load())
				c.m.leaseLost.Inc()
				c.epoch.Store(0)
				continue
			case err != nil:
				c.m.leaseErrors.Inc()
				c.log.Warn("lease: renew failed", "err", err)
			}
		}
		select {
		case <-t.C:
		case <-c.lost:
		case <-ctx.Done():
		}
	}
	if e := c.epoch.Load(); e != 0 {
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := c.cfg.State.Release(rctx, g.ID, e); err != nil {
			c.log.Warn("lease: release failed; it lapses by itself", "err", err)
		}
		cancel()
	}
}

// epochSwap records a new epoch; it reports whether this is the first lease.
func (c *Cluster) epochSwap(epoch uint64) bool {
	select {
	case <-c.ready:
		c.epoch.Store(epoch)
		return false
	default:
		c.epoch.Store(epoch)
		return true
	}
}

// reregister registers every current session under a new epoch, then pushes it
// what its inbox holds unacknowledged.
//
// Why the push: between losing the lease and registering again, this gateway's
// sessions were invalid, so the router found their users offline and left messages
// to them stored for SYNC. But those clients never went away and have no reason to
// SYNC: only a later PUSH revealing a gap would tell them, and for a quiet user that
// may be never. Re-pushing everything unacknowledged, after the registration (so
// that anything stored later is routed here), closes that hole; what the client
// already holds it drops as a duplicate by seq (PROTOCOL.md §8.2).
func (c *Cluster) reregister(ctx context.Context, epoch uint64) {
	var all []node.Session
	c.gw.EachSession(func(s node.Session) { all = append(all, s) })
	var n, pushed atomic.Int64
	work := make(chan node.Session)
	var wg sync.WaitGroup
	for range reregisterWorkers {
		wg.Go(func() {
			for s := range work {
				if _, err := c.cfg.State.Register(ctx, c.session(s, epoch)); err != nil {
					continue
				}
				n.Add(1)
				ms, _, err := c.cfg.Msgs.Range(ctx, s.UID, 0, catchUpLimit)
				if err != nil {
					c.log.Debug("catch-up after re-registration failed; the client's next gap SYNCs", "uid", s.UID, "err", err)
					continue
				}
				for i := range ms {
					if c.gw.Deliver(&ms[i]) {
						pushed.Add(1)
					}
				}
			}
		})
	}
	for _, s := range all {
		if c.epoch.Load() != epoch || ctx.Err() != nil {
			break // superseded
		}
		work <- s
	}
	close(work)
	wg.Wait()
	c.m.reregistered.Add(float64(n.Load()))
	c.m.caughtUp.Add(float64(pushed.Load()))
	c.log.Info("sessions registered again under the new lease", "epoch", epoch, "sessions", n.Load(), "of", len(all),
		"pushed", pushed.Load())
}

// reregisterWorkers bounds the registrations (and catch-up reads) in flight after a
// lease loss; the links pipeline them.
const reregisterWorkers = 32

// catchUpLimit bounds the messages pushed to one session after a re-registration;
// a client with more waiting sees the gap at the next push and SYNCs the rest.
const catchUpLimit = 256

func (c *Cluster) session(s node.Session, epoch uint64) state.Session {
	return state.Session{UID: s.UID, Gateway: c.cfg.ID, Conn: s.ID, Epoch: epoch}
}

// Login implements node.Backend: the session is registered before LOGIN_OK, so a
// message stored after the client's SYNC is routed here.
func (c *Cluster) Login(ctx context.Context, s node.Session) (msg.Window, error) {
	epoch := c.epoch.Load()
	if epoch == 0 {
		return msg.Window{}, errors.New("cluster: no lease yet")
	}
	if _, err := c.cfg.State.Register(ctx, c.session(s, epoch)); err != nil {
		if errors.Is(err, state.ErrLeaseLost) {
			select {
			case c.lost <- struct{}{}:
			default:
			}
		}
		return msg.Window{}, fmt.Errorf("register: %w", err)
	}
	return c.cfg.Msgs.Window(ctx, s.UID)
}

// Logout implements node.Backend without blocking: the unregistration is queued.
func (c *Cluster) Logout(s node.Session) {
	select {
	case c.lq <- c.session(s, c.epoch.Load()):
	default:
		c.m.logoutDropped.Inc()
	}
}

func (c *Cluster) unregisterLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-c.lq:
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if _, err := c.cfg.State.Unregister(rctx, s); err != nil {
				c.m.logoutFailed.Inc()
			}
			cancel()
		}
	}
}

// Send implements node.Backend.
func (c *Cluster) Send(ctx context.Context, from uint64, s *proto.Send) (uint64, error) {
	m := msg.Message{From: from, To: s.To, ClientTS: s.ClientTS, Payload: s.Payload}
	if err := c.cfg.Msgs.Append(ctx, &m); err != nil {
		return 0, err
	}
	return m.ID, nil
}

// Ack implements node.Backend.
func (c *Cluster) Ack(ctx context.Context, uid, seq, epoch uint64) error {
	return c.cfg.Msgs.Ack(ctx, uid, seq, epoch)
}

// Sync implements node.Backend.
func (c *Cluster) Sync(ctx context.Context, uid, after uint64, limit int) ([]msg.Message, msg.Window, error) {
	return c.cfg.Msgs.Range(ctx, uid, after, limit)
}

// handle serves the gateway's link: router pushes and control drains.
func (c *Cluster) handle(_ context.Context, req *link.Request) ([]byte, error) {
	switch req.Method {
	case gwlink.MethodPush:
		_, m, err := gwlink.DecodePush(req.Body) // Deliver encodes the PUSH before returning
		if err != nil {
			return nil, err
		}
		if c.gw.Deliver(&m) {
			return []byte{gwlink.PushDelivered}, nil
		}
		return []byte{gwlink.PushNotHere}, nil
	case gwlink.MethodDrain:
		var dr gwlink.DrainRequest
		if err := json.Unmarshal(req.Body, &dr); err != nil {
			return nil, fmt.Errorf("drain request: %w", err)
		}
		if err := dr.Validate(); err != nil {
			return nil, err
		}
		return gwlink.Marshal(c.gw.Drain(dr)), nil
	case gwlink.MethodUndrain:
		return gwlink.Marshal(c.gw.Undrain()), nil
	}
	return nil, fmt.Errorf("gateway link: unknown method %d", req.Method)
}

// loadSampler turns counters into the rates a lease renewal reports, smoothed.
type loadSampler struct {
	at         time.Time
	accepted   uint64
	cpu        time.Duration
	acceptRate float64
	cpuRate    float64
}

func newLoadSampler() *loadSampler { return &loadSampler{at: time.Now(), cpu: processCPU()} }

// smoothing is the weight of the newest sample in the moving averages.
const smoothing = 0.3

func (l *loadSampler) sample(g node.Gateway) state.Load {
	now, st, cpu := time.Now(), g.Stats(), processCPU()
	if dt := now.Sub(l.at).Seconds(); dt > 0 {
		l.acceptRate += smoothing * (float64(st.Accepted-l.accepted)/dt - l.acceptRate)
		l.cpuRate += smoothing * ((cpu-l.cpu).Seconds()/dt - l.cpuRate)
	}
	l.at, l.accepted, l.cpu = now, st.Accepted, cpu
	return state.Load{
		Conns: int(st.Conns), MaxConns: st.MaxConns, Sessions: g.Sessions(),
		AcceptRate: l.acceptRate, CPU: l.cpuRate,
		OutboundQueued: st.OutboundQueued, WorkerQueue: st.WorkerQueue,
	}
}

// processCPU is the process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
