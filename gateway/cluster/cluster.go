// Package cluster is a gateway's Backend in the full stack: sessions are registered in
// the state service under the gateway's lease, messages are stored by the msg service
// (which hands them to the router and sees them delivered), pushes arrive from the
// router over the gateway's own link listener, and the lease is renewed with the
// gateway's load about three times per TTL — one write per gateway, however many
// clients heartbeat. Gateway (gateway.go) assembles a whole gateway around it.
//
// # One live session per user
//
// A login registers its session with the state service, which reports the session
// it replaced. When that one lives on another gateway, the state service tells that
// gateway to kick it (KICK REPLACED) and forwards the gateway's answer; the login
// waits for the answer (up to KickWait) before its LOGIN_OK, so the two sessions do
// not overlap. A gateway that lost its lease, or its link to the state service,
// registers its sessions again with Reregister, which refuses any a newer login
// replaced meanwhile: those are kicked.
//
// # Fencing
//
// The gateway serves SENDs and LOGINs only while it holds a lease it knows to be
// live on its own clock (acquired or renewed less than a TTL ago, minus a margin),
// and stops taking SENDs from its old sessions while it re-registers them after a
// loss: a session that was replaced elsewhere must never store a message as its
// user. A gateway cut off from the state service while its peers are not moves its
// clients to them (fence.go).
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
	"github.com/floodgate/floodgate/internal/fanout"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Cluster backend.
type Config struct {
	ID        string // gateway id
	LinkAddr  string // listen address of the gateway's link server (router pushes, control drains)
	AdminAddr string // advertised in the gateway table, for operators and control
	Secret    []byte
	State     state.Store // usually a *state.Client (which adds takeovers: see Kick, Kicked)
	Msgs      msg.Store   // usually a *msg.Client (which adds asynchronous appends)
	// LeaseTTL is the gateway's lease; it is renewed every TTL/3. Default 3s: a dead
	// gateway's sessions are invalid within 3s.
	LeaseTTL time.Duration
	// LogoutQueue bounds unregistrations waiting to be sent; default 65536. Beyond it
	// they are dropped (counted): the session then lingers in state until the user's
	// next login replaces it or the lease ends, and pushes to it get NOT_HERE (which
	// queues its unregistration again).
	LogoutQueue int
	// KickWait bounds how long a login waits for the gateway of the session it
	// replaced to confirm the kick; default 1s. Past it (that gateway is stuck) the
	// login goes ahead: the stuck gateway loses its lease, and re-registering after
	// that tells it the session was replaced.
	KickWait time.Duration
	// SendTimeout bounds how long the append of a SEND whose outcome is unknown is
	// retried before the connection is ended (so the client resends it); default 30s.
	// It must stay well inside the msg service's deduplication window.
	SendTimeout time.Duration
	// SendHold is how long a SEND that certainly was not stored (msg is down, or the
	// gateway cannot store for the session right now: its lease is being acquired
	// again) is held and retried before the client is told UNAVAILABLE; default 5s.
	// A store back within seconds then costs the client a late SEND_ACK rather than
	// an error and its own backoff (measured: refused at once, the last message
	// pending at a msg restart arrived 1.8–2.2 s after it, most of it the client's
	// backoff). 0 keeps the default; use a tiny value to refuse at once.
	SendHold time.Duration
	// IsolateOver is how long a gateway cut off from the state service takes to
	// move its clients to other gateways (see fence.go); default 5s. The kicks,
	// and so the logins elsewhere, are spread evenly over it.
	IsolateOver time.Duration
	Registry    prometheus.Registerer
	Logger      *slog.Logger
}

// takeovers is what a state.Client adds to the Store for one session per user.
type takeovers interface {
	RegisterTakeover(ctx context.Context, s state.Session) (prev state.Session, kickSent bool, err error)
	Kicked(prev, by state.Session) error
}

// asyncAppender is what a msg.Client adds to the Store: appends and acks that do
// not hold a worker while the store answers.
type asyncAppender interface {
	AppendGo(m *msg.Message, fn func(error))
	AckGo(uid, seq, epoch uint64, fn func(error))
}

// Cluster is the backend. Create it, pass it to node.New as the Backend, then Run it
// with the gateway's client addresses and wait for Ready before serving clients.
type Cluster struct {
	cfg   Config
	log   *slog.Logger
	gw    node.Gateway
	srv   *link.Server
	epoch atomic.Uint64 // the live lease's epoch; 0 while none
	// validUntil is when the lease may have lapsed, on this process's monotonic
	// clock (ns since t0): the start of the last successful acquire or renew plus
	// the TTL less a margin. Past it the gateway cannot know its sessions are valid.
	validUntil atomic.Int64
	t0         time.Time
	// fenced is set from a lease loss until every old session is re-registered (or
	// kicked): SENDs of a user whose session is not re-registered yet (not in
	// cleared) are refused meanwhile.
	fenced  atomic.Bool
	cleared atomic.Pointer[sync.Map] // uid → struct{}: re-registered since the fence went up
	// stateAnswers: the last lease call got an answer; isolated: the clients are
	// being moved away; peers: the other gateways, as last fetched (fence.go).
	stateAnswers atomic.Bool
	lastAnswer   atomic.Int64 // when the last lease call got its answer (c.now())
	contactSince atomic.Int64 // since when every lease call has been answered (c.now())
	isolated     atomic.Bool
	peers        atomic.Pointer[[]state.Gateway]
	ready        chan struct{}
	once         sync.Once
	lost         chan struct{} // renew now: a Register saw the lease lost, or it is past validUntil
	lq           chan state.Session
	m            *metrics

	wmu     sync.Mutex
	waiters map[[2]uint64]chan struct{} // (uid, session id) of logins waiting for a kick
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
	if cfg.KickWait <= 0 {
		cfg.KickWait = time.Second
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 30 * time.Second
	}
	if cfg.SendHold <= 0 {
		cfg.SendHold = 5 * time.Second
	}
	if cfg.IsolateOver <= 0 {
		cfg.IsolateOver = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Cluster{
		cfg:     cfg,
		log:     cfg.Logger.With("gateway", cfg.ID),
		t0:      time.Now(),
		ready:   make(chan struct{}),
		lost:    make(chan struct{}, 1),
		lq:      make(chan state.Session, cfg.LogoutQueue),
		waiters: map[[2]uint64]chan struct{}{},
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	c.m = newMetrics(reg, prometheus.Labels{"gateway": cfg.ID}, &c.epoch, &c.isolated)
	srv, err := link.Listen(link.ServerConfig{Addr: cfg.LinkAddr, Secret: cfg.Secret, Handler: c.handle, Logger: c.log,
		Registry: reg, Service: "gateway"})
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

// ClientAddrs is where a gateway's clients connect: what its lease advertises in
// the gateway table, and so what ipconf hands out.
type ClientAddrs struct {
	Addr   string // the client port (ip:port)
	WSAddr string // the WebSocket port (ip:port); "" when the gateway has none
}

// Run holds the lease for a gateway whose clients connect to addrs, serves the link
// listener and sends unregistrations, until ctx ends; then it releases the lease, so
// the gateway's sessions are invalid at once rather than after the TTL.
func (c *Cluster) Run(ctx context.Context, addrs ClientAddrs) error {
	if c.gw == nil {
		return errors.New("cluster: Run before the node attached (pass the Cluster to node.New first)")
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.srv.Serve(ctx) })
	wg.Go(func() { c.fenceLoop(ctx) })
	for range 4 {
		wg.Go(func() { c.unregisterLoop(ctx) })
	}
	c.leaseLoop(ctx, state.Gateway{ID: c.cfg.ID, Addr: addrs.Addr, WSAddr: addrs.WSAddr,
		LinkAddr: c.LinkAddr(), AdminAddr: c.cfg.AdminAddr})
	wg.Wait()
	return nil
}

// now is the process's monotonic clock, for validUntil.
func (c *Cluster) now() int64 { return int64(time.Since(c.t0)) }

// leaseHeld reports whether the gateway holds a lease it knows to be live. When it
// does not, it asks the lease loop to renew now rather than at its next tick: a
// gateway that was frozen past its TTL learns at its first request after waking
// that it lost the lease, not up to a renewal period later.
func (c *Cluster) leaseHeld() bool {
	if c.epoch.Load() != 0 && c.now() < c.validUntil.Load() {
		return true
	}
	c.renewNow()
	return false
}

// renewNow wakes the lease loop.
func (c *Cluster) renewNow() {
	select {
	case c.lost <- struct{}{}:
	default:
	}
}

// extend records a successful acquire or renew that was sent at start.
func (c *Cluster) extend(start int64) {
	c.validUntil.Store(start + int64(c.cfg.LeaseTTL-c.cfg.LeaseTTL/10))
}

// leaseLoop acquires the lease, renews it with load figures, and re-acquires it
// when it is lost (the gateway was frozen past its TTL, cut off from the state
// service, or the state service lost its data): the new epoch invalidates the old
// sessions, so every session still connected here is registered again under it —
// those a newer login did not replace meanwhile.
func (c *Cluster) leaseLoop(ctx context.Context, g state.Gateway) {
	ttl := c.cfg.LeaseTTL
	sampler := newLoadSampler()
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	retry := time.Duration(0) // acquire retries back off from 50ms to a renewal period
	failing := false          // renewals are failing (logged once)
	for ctx.Err() == nil {
		if c.epoch.Load() == 0 {
			start := c.now()
			cctx, cancel := context.WithTimeout(ctx, c.callTimeout())
			epoch, err := c.cfg.State.Acquire(cctx, g, ttl)
			cancel()
			c.noteLeaseCall(err)
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
			}
			retry = 0
			c.extend(start)
			first := c.epochSwap(epoch)
			c.log.Info("lease acquired", "epoch", epoch)
			c.m.leaseAcquired.Inc()
			c.once.Do(func() { close(c.ready) })
			if !first {
				go c.reregister(ctx, epoch, true)
			}
		} else {
			load := sampler.sample(c.gw)
			start := c.now()
			cctx, cancel := context.WithTimeout(ctx, c.callTimeout())
			err := c.cfg.State.Renew(cctx, g.ID, c.epoch.Load(), load, ttl)
			cancel()
			c.noteLeaseCall(err)
			if err == nil && failing {
				failing = false
				c.log.Info("lease: renewing again")
			}
			switch {
			case err == nil:
				c.extend(start)
			case errors.Is(err, state.ErrLeaseLost):
				c.log.Warn("lease lost: refusing SENDs until each session is registered again under a new lease",
					"epoch", c.epoch.Load())
				c.m.leaseLost.Inc()
				c.cleared.Store(new(sync.Map))
				c.fenced.Store(true)
				c.epoch.Store(0)
				continue
			default:
				c.m.leaseErrors.Inc()
				if !failing { // once per outage: renewals are retried every few hundred ms
					failing = true
					c.log.Warn("lease: renew failed; retrying until the lease lapses or the state service answers", "err", err)
				}
			}
		}
		lastTry := time.Now()
		select {
		case <-t.C:
		case <-c.lost:
			// Asked to renew early: at most every minRenewGap, or a state service
			// that is down would be asked again for every refused request.
			select {
			case <-time.After(minRenewGap - time.Since(lastTry)):
			case <-ctx.Done():
			}
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

// minRenewGap is the least time between two lease calls made on request (renewNow).
const minRenewGap = 100 * time.Millisecond

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

// Resync re-registers every session under the current lease: call it when the link
// to the state service comes back (state.ClientConfig.OnReconnect), because a kick
// sent while it was down never arrived. Sessions replaced meanwhile are kicked.
func (c *Cluster) Resync() {
	if e := c.epoch.Load(); e != 0 {
		c.reregister(context.Background(), e, false)
	}
}

// reregister registers every current session again under epoch with Reregister:
// those a newer login replaced are kicked (REPLACED); with notice, each of the others
// is sent its inbox window in an unprompted SYNC_END.
//
// Why the notice: between losing the lease and registering again, this gateway's
// sessions were invalid, so the router found their users offline and left messages
// to them stored. Those clients never went away and have no reason to SYNC; the
// SYNC_END tells them the head, and they fetch what they miss at their own pace.
func (c *Cluster) reregister(ctx context.Context, epoch uint64, notice bool) {
	t0 := time.Now()
	var all []node.Session
	c.gw.EachSession(func(s node.Session) { all = append(all, s) })
	var batches [][]node.Session
	for len(all) > 0 {
		n := min(len(all), reregisterBatch)
		batches, all = append(batches, all[:n]), all[n:]
	}
	var kept, replaced, noticed atomic.Int64
	fanout.Each(ctx, batches, reregisterWorkers, func(batch []node.Session, _ struct{}) struct{} {
		if c.epoch.Load() != epoch {
			return struct{}{} // superseded: a newer lease's re-registration takes over
		}
		k, r, n := c.reregisterBatch(ctx, epoch, batch, notice)
		kept.Add(k)
		replaced.Add(r)
		noticed.Add(n)
		return struct{}{}
	})
	if ctx.Err() == nil && c.epoch.Load() == epoch {
		c.fenced.Store(false)
	}
	c.m.reregistered.Add(float64(kept.Load()))
	c.m.reregisterReplaced.Add(float64(replaced.Load()))
	c.m.noticed.Add(float64(noticed.Load()))
	level := slog.LevelInfo
	if notice {
		level = slog.LevelWarn // after a lease loss: worth seeing at the default level
	}
	c.log.Log(ctx, level, "sessions registered again", "epoch", epoch, "took", time.Since(t0).Round(time.Millisecond),
		"kept", kept.Load(), "replaced", replaced.Load(), "noticed", noticed.Load())
}

// Re-registration goes in batches of reregisterBatch sessions (one round trip to
// state and one to msg each, with a state.Client and a msg.Client), reregisterWorkers
// batches at a time: 12,500 sessions take tens of milliseconds rather than the
// seconds one call per session took (measured: 2,000 sessions in 0.86 s, one call
// each, on two cores shared with the whole harness).
const (
	reregisterBatch   = 256
	reregisterWorkers = 4
)

// batchDirectory and batchWindows are the batch calls of a state.Client and a
// msg.Client.
type (
	batchDirectory interface {
		ReregisterBatch(ctx context.Context, ss []state.Session) ([]error, error)
	}
	batchWindows interface {
		Windows(ctx context.Context, uids []uint64) ([]msg.Window, error)
	}
)

// reregisterBatch re-registers one batch of sessions under epoch, kicks the replaced
// ones, lifts the SEND fence of the others and, with notice, tells them their
// windows. It returns how many it kept, kicked and told.
func (c *Cluster) reregisterBatch(ctx context.Context, epoch uint64, batch []node.Session, notice bool) (kept, replaced, noticed int64) {
	ss := make([]state.Session, len(batch))
	for i, s := range batch {
		ss[i] = c.session(s, epoch)
	}
	var errs []error
	if bd, ok := c.cfg.State.(batchDirectory); ok {
		if err := c.retry(ctx, epoch, "re-registration", func() (err error) {
			errs, err = bd.ReregisterBatch(ctx, ss)
			return err
		}); err != nil {
			return 0, 0, 0 // superseded by a newer lease, or shutting down
		}
	} else {
		errs = make([]error, len(ss))
		for i := range ss {
			errs[i] = c.cfg.State.Reregister(ctx, ss[i])
		}
	}
	var keep []node.Session
	cleared := c.cleared.Load()
	for i, err := range errs {
		switch {
		case errors.Is(err, state.ErrReplaced):
			replaced++
			c.gw.Replace(batch[i].UID, batch[i].ID)
		case err != nil:
			c.log.Debug("re-registration failed", "uid", batch[i].UID, "err", err)
		default:
			keep = append(keep, batch[i])
			if cleared != nil {
				cleared.Store(batch[i].UID, struct{}{}) // its SENDs are safe again
			}
		}
	}
	kept = int64(len(keep))
	if !notice || len(keep) == 0 {
		return kept, replaced, 0
	}
	uids := make([]uint64, len(keep))
	for i, s := range keep {
		uids[i] = s.UID
	}
	var ws []msg.Window
	if err := c.retry(ctx, epoch, "windows after re-registration", func() (err error) {
		ws, err = c.windows(ctx, uids)
		return err
	}); err != nil {
		return kept, replaced, 0
	}
	for i, s := range keep {
		if c.gw.Notice(s.UID, s.ID, ws[i]) {
			noticed++
		}
	}
	return kept, replaced, noticed
}

// windows reads the inbox windows of uids, in one call where the store has it.
func (c *Cluster) windows(ctx context.Context, uids []uint64) ([]msg.Window, error) {
	if bw, ok := c.cfg.Msgs.(batchWindows); ok {
		return bw.Windows(ctx, uids)
	}
	ws := make([]msg.Window, len(uids))
	for i, u := range uids {
		var err error
		if ws[i], err = c.cfg.Msgs.Window(ctx, u); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// retry calls fn until it succeeds, the lease of epoch is superseded, or ctx ends,
// pausing from 50ms, doubling to 2s, between attempts. Re-registration must not
// give up on a transient failure: a session left unregistered gets no pushes and
// may not send, and one registered but never told its window does not know that
// messages wait for it (seen: at the heal of a cut of every gateway, one gateway's
// first window calls failed while its msg link redialled, 2,816 clients were never
// told, and 6 messages passed their deadline unread).
func (c *Cluster) retry(ctx context.Context, epoch uint64, what string, fn func() error) error {
	pause := 50 * time.Millisecond
	for {
		err := fn()
		if err == nil || ctx.Err() != nil || c.epoch.Load() != epoch {
			return err
		}
		c.log.Debug(what+" failed; retrying", "err", err, "in", pause)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return ctx.Err()
		}
		pause = min(2*pause, 2*time.Second)
	}
}

func (c *Cluster) session(s node.Session, epoch uint64) state.Session {
	return state.Session{UID: s.UID, Gateway: c.cfg.ID, Conn: s.ID, Epoch: epoch}
}

// Login implements node.Backend: the session is registered before LOGIN_OK, so a
// message stored after the client's SYNC is routed here; an older session of the
// user on another gateway is kicked first (see the package doc).
func (c *Cluster) Login(ctx context.Context, s node.Session) (msg.Window, error) {
	epoch := c.epoch.Load()
	if epoch == 0 || !c.leaseHeld() {
		return msg.Window{}, errors.New("cluster: no live lease")
	}
	ses := c.session(s, epoch)
	var err error
	if td, ok := c.cfg.State.(takeovers); ok {
		err = c.registerTakeover(ctx, td, ses)
	} else {
		_, err = c.cfg.State.Register(ctx, ses)
	}
	if err != nil {
		if errors.Is(err, state.ErrLeaseLost) {
			c.renewNow()
		}
		if errors.Is(err, node.ErrRegistered) {
			c.Logout(s) // registered, but it will get no LOGIN_OK
		}
		return msg.Window{}, fmt.Errorf("register: %w", err)
	}
	w, err := c.cfg.Msgs.Window(ctx, s.UID)
	if err != nil {
		c.Logout(s) // registered, but it will get no LOGIN_OK
		return msg.Window{}, fmt.Errorf("%w: window: %w", node.ErrRegistered, err)
	}
	return w, nil
}

// registerTakeover registers ses and, if the session it replaced is being kicked on
// another gateway, waits (up to KickWait) until that gateway says it is closed.
func (c *Cluster) registerTakeover(ctx context.Context, td takeovers, ses state.Session) error {
	key := [2]uint64{ses.UID, ses.Conn}
	done := make(chan struct{})
	c.wmu.Lock()
	c.waiters[key] = done // before the call: the answer may beat the response
	c.wmu.Unlock()
	defer func() {
		c.wmu.Lock()
		delete(c.waiters, key)
		c.wmu.Unlock()
	}()
	_, sent, err := td.RegisterTakeover(ctx, ses)
	if err != nil || !sent {
		return err
	}
	t := time.NewTimer(c.cfg.KickWait)
	defer t.Stop()
	select {
	case <-done:
		c.m.takeovers["confirmed"].Inc()
	case <-t.C:
		c.m.takeovers["timeout"].Inc()
		c.log.Warn("the replaced session's gateway did not confirm its kick; logging in anyway", "uid", ses.UID, "waited", c.cfg.KickWait)
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for the kick: %w", node.ErrRegistered, ctx.Err())
	}
	return nil
}

// Kick handles the state service's MethodKick (state.ClientConfig.OnKick): the
// login `by` replaced prev, a session of this gateway. It kicks prev if it is still
// here (or refuses its LOGIN_OK if it is still logging in) and answers Kicked
// either way, so the new login stops waiting. It does not block.
func (c *Cluster) Kick(prev, by state.Session) {
	if prev.Gateway == c.cfg.ID && c.gw.Replace(prev.UID, prev.Conn) {
		c.m.takeovers["kicked_here"].Inc()
	}
	if td, ok := c.cfg.State.(takeovers); ok {
		if err := td.Kicked(prev, by); err != nil {
			c.log.Debug("kicked: could not answer", "uid", prev.UID, "err", err)
		}
	}
}

// Kicked handles a forwarded MethodKicked (state.ClientConfig.OnKicked): the
// session that this gateway's login `by` replaced is closed.
func (c *Cluster) Kicked(_, by state.Session) {
	c.wmu.Lock()
	done := c.waiters[[2]uint64{by.UID, by.Conn}]
	delete(c.waiters, [2]uint64{by.UID, by.Conn})
	c.wmu.Unlock()
	if done != nil {
		close(done)
	}
}

// Logout implements node.Backend without blocking: the unregistration is queued.
func (c *Cluster) Logout(s node.Session) {
	c.unregister(c.session(s, c.epoch.Load()))
}

func (c *Cluster) unregister(s state.Session) {
	select {
	case c.lq <- s:
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

// Send implements node.Backend: the append is asynchronous, and one whose outcome
// is unknown (the msg link broke, or msg did not answer in time) is retried with
// the same client message id — msg deduplicates it — until it is known, the
// client's connection is gone, or SendTimeout has passed. One that certainly was
// not stored is retried for SendHold before it is refused. A trace travels with
// the message to the msg service (which stamps it stored).
func (c *Cluster) Send(from uint64, s *proto.Send, trace *msg.Trace, closed func() bool, done func(uint64, error)) {
	a := &sendAttempt{c: c, closed: closed, done: done, start: time.Now(),
		m: &msg.Message{From: from, To: s.To, ClientTS: s.ClientTS, Payload: append([]byte(nil), s.Payload...),
			ClientMsgID: s.ClientMsgID, Trace: trace}}
	a.try()
}

// mayStore reports whether a SEND of uid may be stored now: the gateway holds a live
// lease, and after a lease loss the user's session is registered again (a session a
// newer login replaced elsewhere must never store a message as its user).
func (c *Cluster) mayStore(uid uint64) bool {
	if !c.leaseHeld() {
		return false
	}
	if !c.fenced.Load() {
		return true
	}
	m := c.cleared.Load()
	if m == nil {
		return false
	}
	_, ok := m.Load(uid)
	return ok
}

// Ack implements node.Backend. With a msg.Client it does not wait for the answer:
// acknowledgements are cumulative, a lost one only makes a later SYNC replay what
// the client already has, and a worker held for every ack while msg is slow would
// stall every connection's requests behind it.
func (c *Cluster) Ack(ctx context.Context, uid, seq, epoch uint64) error {
	if ag, ok := c.cfg.Msgs.(asyncAppender); ok {
		ag.AckGo(uid, seq, epoch, func(err error) {
			if err != nil {
				c.m.ackFailed.Inc()
				c.log.Debug("ack failed", "uid", uid, "seq", seq, "err", err)
			}
		})
		return nil
	}
	return c.cfg.Msgs.Ack(ctx, uid, seq, epoch)
}

// AcksAsync implements node.AsyncAcker: Ack waits for nothing when the message
// store takes acknowledgements asynchronously (a msg.Client does).
func (c *Cluster) AcksAsync() bool {
	_, ok := c.cfg.Msgs.(asyncAppender)
	return ok
}

// Sync implements node.Backend.
func (c *Cluster) Sync(ctx context.Context, uid, after uint64, limit int) ([]msg.Message, msg.Window, error) {
	return c.cfg.Msgs.Range(ctx, uid, after, limit)
}

// pushAnswerLinger is how long a DELIVERED answer to a router's push may wait to
// share a write: it only leads to the message's settle, off the latency path, and
// well within the router's PushTimeout.
const pushAnswerLinger = 5 * time.Millisecond

// handle serves the gateway's link: router pushes and control drains.
func (c *Cluster) handle(_ context.Context, req *link.Request) ([]byte, error) {
	switch req.Method {
	case gwlink.MethodPush:
		conn, m, err := gwlink.DecodePush(req.Body) // Deliver encodes the PUSH before returning
		if err != nil {
			return nil, err
		}
		if c.gw.Deliver(&m, conn) {
			// The client has its PUSH: the router only settles on this answer, so
			// it may wait to share a write with the next ones.
			req.Linger = pushAnswerLinger
			return []byte{gwlink.PushDelivered}, nil
		}
		// No such session here, yet the directory pointed at it: its unregistration
		// was lost or is still queued. Queue it (again) so the directory heals; a
		// record under an older epoch is invalid anyway, and a newer session of the
		// user is left alone (compare-and-delete).
		if e := c.epoch.Load(); e != 0 {
			c.unregister(state.Session{UID: m.To, Gateway: c.cfg.ID, Conn: conn, Epoch: e})
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
	case gwlink.MethodLease:
		return c.leaseStatus(), nil
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
