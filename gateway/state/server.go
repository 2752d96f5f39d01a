package state

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
	"github.com/prometheus/client_golang/prometheus"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	Addr   string // link listen address
	Secret []byte // cluster secret; peers without it are refused by the handshake
	Store  Store  // the backend: a *Memory, a *Redis, or anything else
	Logger *slog.Logger
	// Registry receives the floodgate_state_* metrics (nil: not exported).
	Registry prometheus.Registerer
	// Poll is how often the server reads the gateway table to spot lapses and changes
	// made through other servers on a shared store (default 100ms). Watchers learn of
	// a lapse within about Poll of the lease's expiry.
	Poll time.Duration
	// Refresh is the longest time between two snapshots to a watcher (default 1s), so
	// that the loads they carry stay fresh.
	Refresh time.Duration
	// SweepEvery is how often the server calls Sweep on a store that is a Sweeper
	// (default 10s).
	SweepEvery time.Duration
	// Workers serves store calls side by side on this many goroutines, in order per
	// user (a session's register, lookup and unregister) and per peer (a gateway's
	// lease calls), instead of one at a time per connection (0, the default). A
	// store a round trip away (Redis) needs it: one at a time, a gateway's logins
	// are capped at one per round trip, and its lease renewal waits behind them.
	Workers int
}

// Server serves a Store over the link to Clients, and pushes the gateway table to
// the clients that watch it.
type Server struct {
	cfg      ServerConfig
	store    Store
	prober   Prober // nil if the store is not one
	ln       *link.Server
	log      *slog.Logger
	m        *serverMetrics
	w        *watchTable
	peers    peerIndex    // connected peers by name, to reach a gateway's own link
	lastWarn atomic.Int64 // unix ns of the last rate-limited warning
	// leases is the gateway table as the push loop last read it (id → gateway), for
	// kickReplaced; nil until the first poll.
	leases atomic.Pointer[map[string]Gateway]
}

// peerIndex finds a connected peer by the name it gave in the handshake (a gateway
// names itself by its id), so the server can tell a gateway to kick a session.
type peerIndex struct {
	mu sync.Mutex
	m  map[string][]*link.Peer
}

func (x *peerIndex) add(p *link.Peer) {
	x.mu.Lock()
	if x.m == nil {
		x.m = map[string][]*link.Peer{}
	}
	x.m[p.Name()] = append(x.m[p.Name()], p)
	x.mu.Unlock()
}

func (x *peerIndex) remove(p *link.Peer) {
	x.mu.Lock()
	ps := x.m[p.Name()]
	for i, q := range ps {
		if q == p {
			ps = append(ps[:i], ps[i+1:]...)
			break
		}
	}
	if len(ps) == 0 {
		delete(x.m, p.Name())
	} else {
		x.m[p.Name()] = ps
	}
	x.mu.Unlock()
}

// notify sends a notification to every connected peer named name; it reports
// whether there was one.
func (x *peerIndex) notify(name string, method uint16, body []byte) bool {
	x.mu.Lock()
	ps := append([]*link.Peer(nil), x.m[name]...)
	x.mu.Unlock()
	sent := false
	for _, p := range ps {
		if p.Notify(method, body) == nil {
			sent = true
		}
	}
	return sent
}

// NewServer binds cfg.Addr; Serve then serves it.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("state: ServerConfig needs a Store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Second
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = 10 * time.Second
	}
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger.With("service", "state"),
		m: newServerMetrics(cfg.Registry, cfg.Store)}
	s.prober, _ = cfg.Store.(Prober)
	s.w = newWatchTable(s.m.watchers)
	ln, err := link.Listen(link.ServerConfig{
		Addr: cfg.Addr, Secret: cfg.Secret, Handler: s.handle, Workers: cfg.Workers, Order: orderKey,
		OnConnect:    s.peers.add,
		OnDisconnect: func(p *link.Peer) { s.w.remove(p); s.peers.remove(p) },
		Logger:       s.log, Registry: cfg.Registry, Service: "state",
	})
	if err != nil {
		return nil, fmt.Errorf("state server: %w", err)
	}
	s.ln = ln
	return s, nil
}

// Addr returns the bound link address.
func (s *Server) Addr() string { return s.ln.Addr() }

// Serve serves until ctx ends, then closes every connection and returns once its
// goroutines have finished. Call it once.
func (s *Server) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { s.pushLoop(ctx) })
	if sw, ok := s.store.(Sweeper); ok {
		wg.Go(func() { s.sweepLoop(ctx, sw) })
	}
	s.log.Info("state serving", "addr", s.Addr())
	err := s.ln.Serve(ctx)
	cancel()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("state server: %w", err)
	}
	return nil
}

// orderKey orders the store calls for ServerConfig.Workers: a session's by its
// user (the body's first 8 bytes), so that one user's register, lookup and
// unregister keep their order; a re-registration batch by its first user; the
// rest that touch the store by the peer, so that a gateway's lease calls keep
// theirs. Watch and kick notices stay on the reader.
func orderKey(req *link.Request) (uint64, bool) {
	switch req.Method {
	case MethodRegister, MethodUnregister, MethodReregister, MethodLookup:
		if len(req.Body) < 8 {
			return 0, false // answered on the reader: a bad request
		}
		return binary.BigEndian.Uint64(req.Body), true
	case MethodReregisterBatch:
		// A batch is keyed by its first user, so that a gateway's batches (after a
		// lease loss, thousands of sessions) are served side by side: each holds
		// other users, and every write in it is a compare-and-set anyway.
		if len(req.Body) >= 10 {
			if at := 10 + int(binary.BigEndian.Uint16(req.Body[8:])); len(req.Body) >= at+8 {
				return binary.BigEndian.Uint64(req.Body[at:]), true
			}
		}
		return 0, false // answered on the reader: a bad request
	case MethodAcquire, MethodRenew, MethodRelease, MethodSetDraining, MethodGateways:
		h := fnv.New64a()
		h.Write([]byte(req.Peer.Name()))
		return h.Sum64(), true
	}
	return 0, false
}

// handle is the link handler. Errors go out tagged with a code (see toWire); the
// expected ones (lost leases, unknown gateways) are the caller's business and are not
// logged.
func (s *Server) handle(ctx context.Context, req *link.Request) ([]byte, error) {
	if req.OneWay && req.Method == MethodKicked {
		if err := s.kicked(req.Body); err != nil {
			s.warnLimited("bad kicked notification", "peer", req.Peer.Name(), "err", err)
		}
		return nil, nil
	}
	resp, err := s.dispatch(ctx, req)
	if err != nil {
		if !errors.Is(err, ErrLeaseLost) && !errors.Is(err, ErrUnknownGateway) {
			s.warnLimited("state call failed", "method", MethodName(req.Method), "peer", req.Peer.Name(), "err", err)
		}
		return nil, toWire(err)
	}
	return resp, nil
}

// dispatch routes a request to its method's handler.
func (s *Server) dispatch(ctx context.Context, req *link.Request) ([]byte, error) {
	switch req.Method {
	case MethodRegister:
		return s.register(ctx, req.Body)
	case MethodReregister:
		return s.reregister(ctx, req.Body)
	case MethodReregisterBatch:
		return s.reregisterBatch(ctx, req.Body)
	case MethodUnregister:
		return s.unregister(ctx, req.Body)
	case MethodLookup:
		return s.lookup(ctx, req.Body)
	case MethodAcquire:
		return s.acquire(ctx, req.Body)
	case MethodRenew:
		return s.renew(ctx, req.Body)
	case MethodRelease:
		return s.release(ctx, req.Body)
	case MethodSetDraining:
		return s.setDraining(ctx, req.Body)
	case MethodGateways:
		gws, err := s.store.Gateways(ctx)
		if err != nil {
			return nil, err
		}
		return encodeSnapshot(gws, time.Now()), nil
	case MethodWatch:
		s.w.add(req.Peer)
		return nil, nil
	}
	return nil, fmt.Errorf("%w: unknown method %d", errBadRequest, req.Method)
}

// register stores a login's session; the answer is empty when it replaced none,
// else a flags byte (RegisterKickSent: the replaced session's gateway was told to
// kick it) and the replaced session.
func (s *Server) register(ctx context.Context, body []byte) ([]byte, error) {
	ses, err := decodeSession(body)
	if err != nil {
		return nil, fmt.Errorf("%w: register: %v", errBadRequest, err)
	}
	prev, err := s.store.Register(ctx, ses)
	s.m.registrations[result(err, "ok")].Inc()
	if err != nil {
		return nil, err
	}
	if prev.UID == 0 {
		return nil, nil
	}
	var flags byte
	if s.kickReplaced(prev, ses) {
		flags |= RegisterKickSent
	}
	return appendSession(append(make([]byte, 0, 1+sessionHeader+len(prev.Gateway)), flags), prev), nil
}

// reregister confirms one session a gateway still holds.
func (s *Server) reregister(ctx context.Context, body []byte) ([]byte, error) {
	ses, err := decodeSession(body)
	if err != nil {
		return nil, fmt.Errorf("%w: reregister: %v", errBadRequest, err)
	}
	err = s.store.Reregister(ctx, ses)
	s.m.reregistrations[result(err, "ok")].Inc()
	return nil, err
}

// reregisterBatch confirms a batch of sessions, in one call to the store when it
// can take a batch; the answer is a status byte per session (0, or
// ReregisterReplaced, ReregisterLeaseLost). Any other error fails the batch.
func (s *Server) reregisterBatch(ctx context.Context, body []byte) ([]byte, error) {
	ss, err := decodeReregisterBatch(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	var errs []error
	if b, ok := s.store.(BatchReregisterer); ok {
		if errs, err = b.ReregisterBatch(ctx, ss); err != nil {
			return nil, err
		}
	} else {
		errs = make([]error, len(ss))
		for i, ses := range ss {
			errs[i] = s.store.Reregister(ctx, ses)
		}
	}
	resp := make([]byte, len(ss))
	for i, err := range errs {
		s.m.reregistrations[result(err, "ok")].Inc()
		switch {
		case errors.Is(err, ErrReplaced):
			resp[i] = ReregisterReplaced
		case errors.Is(err, ErrLeaseLost):
			resp[i] = ReregisterLeaseLost
		case err != nil:
			return nil, err
		}
	}
	return resp, nil
}

// unregister deletes a session if it is still the stored one; the answer is 1
// if it was deleted, 0 if it was stale.
func (s *Server) unregister(ctx context.Context, body []byte) ([]byte, error) {
	ses, err := decodeSession(body)
	if err != nil {
		return nil, fmt.Errorf("%w: unregister: %v", errBadRequest, err)
	}
	deleted, err := s.store.Unregister(ctx, ses)
	switch {
	case err != nil:
		s.m.unregisters["error"].Inc()
		return nil, err
	case deleted:
		s.m.unregisters["deleted"].Inc()
		return []byte{1}, nil
	}
	s.m.unregisters["stale"].Inc()
	return []byte{0}, nil
}

// lookup answers a user's stored session and its status: a hit, a miss, or
// invalid (it died with its gateway's lease).
func (s *Server) lookup(ctx context.Context, body []byte) ([]byte, error) {
	if len(body) != 8 {
		return nil, fmt.Errorf("%w: lookup body of %d bytes, want 8", errBadRequest, len(body))
	}
	ses, st, err := s.probe(ctx, binary.BigEndian.Uint64(body))
	if err != nil {
		s.m.lookups["error"].Inc()
		return nil, err
	}
	s.m.lookups[st.String()].Inc()
	return appendLookup(make([]byte, 0, 1+16+len(ses.Gateway)), ses, st), nil
}

// acquire grants a gateway a lease; the answer is its epoch.
func (s *Server) acquire(ctx context.Context, body []byte) ([]byte, error) {
	var r acquireRequest
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	if err := checkTTL(r.TTL); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	epoch, err := s.store.Acquire(ctx, r.Gateway, r.TTL)
	if err != nil {
		return nil, err
	}
	s.m.acquires.Inc()
	s.w.wake()
	return binary.BigEndian.AppendUint64(nil, epoch), nil
}

// renew extends a lease and records the gateway's load.
func (s *Server) renew(ctx context.Context, body []byte) ([]byte, error) {
	var r renewRequest
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	if err := checkTTL(r.TTL); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	err := s.store.Renew(ctx, r.ID, r.Epoch, r.Load, r.TTL)
	s.m.renewals[result(err, "ok")].Inc()
	return nil, err
}

// release ends a lease. The watchers are told it is a release before the store
// is: the poller must not see the lease's end as a lapse.
func (s *Server) release(ctx context.Context, body []byte) ([]byte, error) {
	var r releaseRequest
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	s.w.releasing(r.ID, r.Epoch, true)
	if err := s.store.Release(ctx, r.ID, r.Epoch); err != nil {
		s.w.releasing(r.ID, r.Epoch, false)
		return nil, err
	}
	s.m.releases.Inc()
	s.w.wake()
	return nil, nil
}

// setDraining marks a gateway draining (or not).
func (s *Server) setDraining(ctx context.Context, body []byte) ([]byte, error) {
	var r drainingRequest
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	if err := s.store.SetDraining(ctx, r.ID, r.Draining); err != nil {
		return nil, err
	}
	s.w.wake()
	return nil, nil
}

// kickReplaced tells the gateway holding prev, which the login cur replaced, to
// kick it (MethodKick); it reports whether it did. A login on the same gateway needs
// no word: that gateway replaced its own session. If prev's gateway is not connected
// (dead, or cut off) the notification is skipped: that gateway re-registers every
// session it still holds with Reregister when it reconnects or re-acquires its
// lease, and learns there that this one was replaced.
//
// A kick to a gateway whose lease under prev's epoch is known to have ended (lapsed,
// or superseded by a newer one) is still sent, but reported as not sent, so the
// login does not wait for its answer: that gateway has fenced itself (it stops
// serving before its lease lapses) and will learn of the replacement when it
// registers its sessions again. Waiting would cost every login that moves off a
// gateway cut off from this service a whole KickWait, holding one of its new
// gateway's workers meanwhile (measured: 11,105 clients moved off a partitioned
// gateway took ~20 s to log in elsewhere, most of it such waits, and the queued
// logins were shed BUSY).
func (s *Server) kickReplaced(prev, cur Session) bool {
	if prev.Gateway == cur.Gateway {
		return false
	}
	if s.peers.notify(prev.Gateway, MethodKick, appendTakeover(nil, prev, cur)) {
		if s.leaseEnded(prev.Gateway, prev.Epoch) {
			s.m.kicks["lease_ended"].Inc()
			return false
		}
		s.m.kicks["sent"].Inc()
		return true
	}
	s.m.kicks["unreachable"].Inc()
	return false
}

// kicked forwards a gateway's MethodKicked to the gateway of the replacing session.
func (s *Server) kicked(body []byte) error {
	_, by, err := decodeTakeover(body)
	if err != nil {
		return fmt.Errorf("%w: kicked: %v", errBadRequest, err)
	}
	s.peers.notify(by.Gateway, MethodKicked, body)
	return nil
}

// probe is Probe where the store has it, else Lookup (which cannot tell an invalid
// session from a missing one).
func (s *Server) probe(ctx context.Context, uid uint64) (Session, LookupStatus, error) {
	if s.prober != nil {
		return s.prober.Probe(ctx, uid)
	}
	ses, ok, err := s.store.Lookup(ctx, uid)
	if ok {
		return ses, LookupHit, err
	}
	return Session{}, LookupMiss, err
}

func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return nil
}

// sweepLoop reclaims dead sessions every SweepEvery.
func (s *Server) sweepLoop(ctx context.Context, sw Sweeper) {
	t := time.NewTicker(s.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := sw.Sweep(ctx)
		s.m.reclaimed.Add(float64(n))
		if err != nil && ctx.Err() == nil {
			s.warnLimited("state sweep failed", "err", err)
		}
		if n > 0 {
			s.log.Debug("state sweep", "reclaimed", n)
		}
	}
}

// warnLimited logs a warning unless one was logged in the last second: a failing
// store would otherwise log once per call.
func (s *Server) warnLimited(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := s.lastWarn.Load()
	if now-last < int64(time.Second) || !s.lastWarn.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn(msg, args...)
}
