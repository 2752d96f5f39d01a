// Package node is the gateway process's core: it holds client connections on the
// reactor and speaks the client protocol — LOGIN, PING, SEND, PUSH, PUSH_ACK, SYNC,
// KICK — delegating storage, the session directory and routing to a Backend.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate/floodgate/gateway/msg"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/floodgate/floodgate/gateway/reactor/reactorprom"
	"github.com/floodgate/floodgate/gateway/ws"
	"github.com/floodgate/floodgate/internal/loglimit"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Node.
type Config struct {
	// ID names this gateway in metrics, logs and (later) the session directory.
	ID string
	// Reactor is the connection engine's configuration. Handler, Framer and
	// Farewell are set by the node; IdleTimeout defaults to 3 × Heartbeat.
	Reactor reactor.Config
	// Heartbeat is the PING interval announced to clients in LOGIN_OK; default 30s.
	Heartbeat time.Duration
	// MaxFrame is the largest frame length accepted and announced; default
	// proto.DefaultMaxFrame.
	MaxFrame int
	// PreLoginMaxFrame is the largest frame length accepted until a LOGIN's token
	// is verified (a bigger one is kicked FRAME_TOO_LARGE at its header, before any
	// of it is kept); default DefaultPreLoginMaxFrame, at most MaxFrame.
	PreLoginMaxFrame int
	// LoginTimeout closes, with KICK IDLE/LOGIN_TIMEOUT, a connection that has not
	// sent a complete LOGIN this long after accept; default DefaultLoginTimeout.
	LoginTimeout time.Duration
	// Rates are the rate limits of logged-in connections; nil: DefaultRates().
	Rates *Rates
	// SyncLimit caps the messages one SYNC replays (the default for a SYNC with
	// limit 0, and the cap); default 256.
	SyncLimit int
	// MaxWaiting is how many connections may wait for a worker before new LOGINs
	// are turned away with KICK BUSY and a retry hint (load shedding); default 16 ×
	// the reactor's workers.
	MaxWaiting int
	// RequestTimeout bounds each backend call; default 5s.
	RequestTimeout time.Duration
	// Signer verifies LOGIN tokens. Required unless Echo.
	Signer *proto.Signer
	// Backend is the rest of the stack. Required unless Echo.
	Backend Backend
	// WSAddr is the WebSocket port's listen address (ip:port; port 0 picks one):
	// the same client protocol in WebSocket binary messages (PROTOCOL.md §2.1).
	// Empty: no WebSocket port. It shares the Reactor settings but runs its own
	// reactor, whose Framer cuts WebSocket frames.
	WSAddr string
	// Pages are the HTML pages the WebSocket port serves to a plain GET (no
	// upgrade), by path — the browser chat client at /chat; any other plain GET
	// is answered 404.
	Pages map[string][]byte
	// Echo answers every frame with itself, without parsing it: a pure reactor
	// benchmark mode.
	Echo bool
	// Registry receives the node's and the reactor's metrics; nil for none.
	Registry prometheus.Registerer
	Logger   *slog.Logger
}

// Node is one gateway.
type Node struct {
	cfg      Config
	log      *slog.Logger
	r        *reactor.Reactor
	ws       *reactor.Reactor // the WebSocket port's, or nil
	sessions *sessions
	nextID   atomic.Uint64
	loginMu  [loginLocks]sync.Mutex
	m        *metrics
	scratch  sync.Pool // *[]byte for encoding outbound frames
	draining atomic.Bool
	isolated atomic.Bool // Isolate: cut off from the session directory; logins kicked DRAIN / ISOLATED
	// kickLog lets one kick a second into the log at info (kickLogged): a drain or a
	// flood kicks thousands, which the kicks metric counts.
	kickLog loglimit.Limiter
	// open are the reactor limits of a connection until its LOGIN's token is
	// verified, admitted those after; sendRate is each session's SEND bucket, on
	// the clock since start.
	open     *reactor.Limits
	admitted *reactor.Limits
	sendRate reactor.Rate
	start    time.Time
	penalty  penaltyBox
}

// New builds a node and its reactor (binding the listeners).
func New(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 30 * time.Second
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = proto.DefaultMaxFrame
	}
	if cfg.MaxFrame < proto.MinMaxFrame {
		return nil, fmt.Errorf("node: max frame %d is below the protocol minimum %d", cfg.MaxFrame, proto.MinMaxFrame)
	}
	if cfg.SyncLimit <= 0 {
		cfg.SyncLimit = 256
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if !cfg.Echo && (cfg.Signer == nil || cfg.Backend == nil) {
		return nil, errors.New("node: a Signer and a Backend are required (or Echo)")
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("gateway", cfg.ID), sessions: newSessions(), start: time.Now()}
	// Session ids start at the clock so that a restarted gateway never reuses one:
	// the directory and the router name a session by (gateway id, session id).
	n.nextID.Store(uint64(time.Now().UnixNano()))
	n.scratch.New = func() any { b := make([]byte, 0, 512); return &b }
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry() // counted, not exported
	}
	labels := prometheus.Labels{"gateway": cfg.ID}
	n.m = newMetrics(reg, labels, func() float64 { return float64(n.sessions.len()) })

	rc := cfg.Reactor
	maxFrame := cfg.MaxFrame
	rc.Framer = func(b []byte) (int, error) { return proto.FrameSize(b, maxFrame) }
	rc.Farewell = n.farewell
	rc.Logger = n.log
	if rc.IdleTimeout == 0 {
		rc.IdleTimeout = 3 * cfg.Heartbeat
	}
	if cfg.Echo {
		rc.Handler = echo{}
	} else {
		open, admitted, sends, err := n.cfg.limits()
		if err != nil {
			return nil, err
		}
		n.open, n.admitted, n.sendRate = open, admitted, sends
		rc.OpenLimits, rc.AdmitTimeout, rc.Refused = open, n.cfg.LoginTimeout, n.refused
		rc.Handler = n
		cfg.Backend.Attach(n)
	}
	r, err := reactor.New(rc)
	if err != nil {
		return nil, err
	}
	n.r = r
	n.cfg.Reactor = rc
	if n.cfg.MaxWaiting <= 0 {
		workers := rc.Workers
		if workers <= 0 {
			workers = 4 * runtime.GOMAXPROCS(0) // the reactor's default
		}
		n.cfg.MaxWaiting = 16 * workers
	}
	if cfg.WSAddr != "" {
		if err := n.newWebSocketPort(rc); err != nil {
			r.Discard()
			return nil, err
		}
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "floodgate_gateway_websocket_connections", ConstLabels: labels,
			Help: "Connections held on the WebSocket port now (also counted in floodgate_reactor_connections).",
		}, func() float64 { return float64(n.ws.Stats().Conns) }))
	}
	// One set of reactor series for both ports: their sum (Stats).
	reg.MustRegister(reactorprom.NewFunc(n.Stats, labels))
	return n, nil
}

// newWebSocketPort builds the WebSocket port's reactor: the client port's
// settings, another address, a Framer that cuts the handshake and WebSocket frames,
// and limits with room for the WebSocket framing. Before LOGIN a unit may be as
// long as the opening handshake (ws.MaxRequest); the frame inside a binary message
// is held to the pre-login limit by the handler.
func (n *Node) newWebSocketPort(rc reactor.Config) error {
	maxPayload := lengthField + n.cfg.MaxFrame
	rc.Addr = n.cfg.WSAddr
	rc.Framer = func(b []byte) (int, error) { return ws.CutStream(b, maxPayload) }
	rc.Farewell = n.wsFarewell
	if n.cfg.Echo {
		rc.Handler = wsPort{n}
	} else {
		open := *n.open
		open.MaxFrame = max(ws.MaxRequest, ws.MaxHeader+open.MaxFrame)
		rc.OpenLimits, rc.Refused, rc.Handler = &open, n.wsRefused, wsPort{n}
	}
	r, err := reactor.New(rc)
	if err != nil {
		return fmt.Errorf("node: WebSocket port: %w", err)
	}
	n.ws = r
	return nil
}

// Run serves until ctx ends, then closes every connection with KICK SHUTDOWN and
// returns within the reactor's ShutdownTimeout.
// With a WebSocket port, both ports run until ctx ends or either fails.
func (n *Node) Run(ctx context.Context) error {
	if n.ws == nil {
		return n.r.Run(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wsErr := make(chan error, 1)
	go func() {
		err := n.ws.Run(ctx)
		cancel()
		wsErr <- err
	}()
	err := n.r.Run(ctx)
	cancel()
	return errors.Join(err, <-wsErr)
}

// Reactor returns the node's connection engine.
func (n *Node) Reactor() *reactor.Reactor { return n.r }

// WSAddr returns the WebSocket port's bound address, "" when the node has none.
func (n *Node) WSAddr() string {
	if n.ws == nil {
		return ""
	}
	return n.ws.Addr().String()
}

// Sessions returns the number of logged-in sessions.
func (n *Node) Sessions() int { return n.sessions.len() }

// Stats returns the reactors' counters, both ports' summed.
func (n *Node) Stats() reactor.Stats {
	s := n.r.Stats()
	if n.ws != nil {
		s.Add(n.ws.Stats())
	}
	return s
}

// EachSession calls fn for every logged-in session.
func (n *Node) EachSession(fn func(Session)) {
	n.sessions.each(func(s *session) { fn(Session{UID: s.uid, ID: s.id}) })
}

// overloaded reports whether the workers are so far behind that a new login would
// wait longer than a client does: more than MaxWaiting connections queued for them.
func (n *Node) overloaded() bool {
	q := n.r.Stats().WorkerQueue
	if n.ws != nil {
		q = max(q, n.ws.Stats().WorkerQueue) // each port has its own workers
	}
	return q > n.cfg.MaxWaiting
}

// echo is the --echo handler: every frame goes straight back, inline.
type echo struct{}

func (echo) OnOpen(*reactor.Conn) {}
func (echo) OnFrame(c *reactor.Conn, f []byte) reactor.Disposition {
	c.Write(f) //nolint:errcheck // a failed write closes the connection itself
	return reactor.Handled
}
func (echo) OnDeferred(*reactor.Conn, []byte)             {}
func (echo) OnClose(*reactor.Conn, reactor.Reason, error) {}

// OnOpen implements reactor.Handler. Nothing is allocated until LOGIN.
func (n *Node) OnOpen(*reactor.Conn) {}

// OnFrame implements reactor.Handler: PING and protocol errors are answered inline
// on the epoller; everything that reaches the backend is deferred to a worker.
func (n *Node) OnFrame(c *reactor.Conn, frame []byte) reactor.Disposition {
	return n.handle(c, frame, true)
}

// OnDeferred implements reactor.Handler.
func (n *Node) OnDeferred(c *reactor.Conn, frame []byte) { n.handle(c, frame, false) }

// OnClose implements reactor.Handler.
func (n *Node) OnClose(c *reactor.Conn, r reactor.Reason, _ error) {
	s := sessionOf(c)
	if s != nil && r == reactor.ReasonRate {
		n.penalise(s.uid)
	}
	if s != nil && n.sessions.remove(s) {
		n.cfg.Backend.Logout(Session{UID: s.uid, ID: s.id})
	}
}

// penalise refuses uid's LOGINs on this gateway for the least retry hint a
// RATE_EXCEEDED kick gives (see penaltyBox).
func (n *Node) penalise(uid uint64) {
	now := n.clock()
	n.penalty.add(uid, now+int64(policyRetryMin)*int64(time.Millisecond), now)
}

// clock is the node's monotonic clock, in ns since it started.
func (n *Node) clock() int64 { return int64(time.Since(n.start)) }

// handle is the one path every client frame takes, inline (on the epoller) or not
// (on a worker). Inline, it answers what is cheap and defers the rest.
func (n *Node) handle(c *reactor.Conn, frame []byte, inline bool) reactor.Disposition {
	f, err := proto.ParseFrame(frame)
	if err != nil {
		n.kickFor(c, err)
		return reactor.Handled
	}
	s := sessionOf(c)
	if s != nil && !f.Type.KnownIn(s.version) { // SEND_TRACED or PUSH_TRACED on a version 2 connection
		n.kick(c, proto.ReasonProtocol, proto.CodeUnknownType, 0, fmt.Sprintf("%v is not defined in protocol version %d", f.Type, s.version))
		return reactor.Handled
	}
	if !f.Type.ClientToServer() {
		n.kick(c, proto.ReasonProtocol, proto.CodeUnexpectedFrame, 0, f.Type.String()+" is a server-to-client frame")
		return reactor.Handled
	}
	n.m.framesIn[f.Type].Inc()
	switch {
	case f.Type == proto.TypeLogin && s != nil:
		n.kick(c, proto.ReasonProtocol, proto.CodeAlreadyLoggedIn, 0, "LOGIN on a logged-in connection")
		return reactor.Handled
	case f.Type != proto.TypeLogin && s == nil:
		n.kick(c, proto.ReasonProtocol, proto.CodeNotLoggedIn, 0, f.Type.String()+" before LOGIN")
		return reactor.Handled
	case s != nil && (f.Type == proto.TypePing || !inline || f.Type == proto.TypePushAck && n.acksAsync()) && sentBeforeLoginOK(c, s):
		n.kick(c, proto.ReasonProtocol, proto.CodeNotLoggedIn, 0, f.Type.String()+" sent before LOGIN_OK")
		return reactor.Handled
	case f.Type == proto.TypePing:
		n.ping(c, f.Body)
		return reactor.Handled
	case inline && f.Type == proto.TypePushAck && n.acksAsync():
		// Handed on without waiting (the backend says so): on the epoller, saving
		// a worker's wake-up per delivered message. The reactor calls OnFrame
		// only while none of the connection's frames wait for a worker, so this
		// keeps the stream's order.
		n.pushAck(context.Background(), c, s, f.Body)
		return reactor.Handled
	case inline && f.Type == proto.TypeLogin && n.overloaded():
		// Turn the login away now, with a spread retry hint, rather than queue it
		// behind thousands of others: it would be answered after its client gave
		// up, and the client's retry would add to the queue (a login storm that
		// feeds itself, measured on Redis-backed stores at 5k logins/s).
		n.m.logins["shed"].Inc()
		n.kick(c, proto.ReasonBusy, proto.CodeServerFull, jitterMS(1000, 5000), "too many logins waiting; retry later")
		return reactor.Handled
	case inline && f.Type == proto.TypeLogin:
		// The LOGIN is in: the login deadline is met, however long the workers
		// take to judge it (shedding bounds that). The pre-login limits stay
		// until its token is verified.
		c.Admit(n.open)
		return reactor.Defer
	case inline:
		return reactor.Defer
	}
	// A deadline (a context and its timer) only for the requests that wait on the
	// backend: a SEND answers through its callback, and a PUSH_ACK to a backend
	// that acknowledges without waiting needs none — both once per message.
	switch f.Type {
	case proto.TypeLogin:
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
		defer cancel()
		n.login(ctx, c, f.Body)
	case proto.TypeSend, proto.TypeSendTraced:
		n.send(c, s, f.Body, f.Type == proto.TypeSendTraced)
	case proto.TypePushAck:
		ctx := context.Background()
		if !n.acksAsync() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, n.cfg.RequestTimeout)
			defer cancel()
		}
		n.pushAck(ctx, c, s, f.Body)
	case proto.TypeSync:
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
		defer cancel()
		n.sync(ctx, c, s, f.Body)
	}
	return reactor.Handled
}

// acksAsync reports whether the backend's Ack returns without waiting
// (AsyncAcker).
func (n *Node) acksAsync() bool {
	aa, ok := n.cfg.Backend.(AsyncAcker)
	return ok && aa.AcksAsync()
}

// pushAck hands a PUSH_ACK's acknowledgement to the backend.
func (n *Node) pushAck(ctx context.Context, c *reactor.Conn, s *session, body []byte) {
	var m proto.PushAck
	if err := m.Decode(body); err != nil {
		n.kickFor(c, err)
		return
	}
	if err := n.cfg.Backend.Ack(ctx, s.uid, m.Seq, m.Epoch); err != nil {
		n.log.Warn("ack failed", "uid", s.uid, "seq", m.Seq, "err", err)
	}
}

func (n *Node) ping(c *reactor.Conn, body []byte) {
	var p proto.Ping
	if err := p.Decode(body); err != nil {
		n.kickFor(c, err)
		return
	}
	pong := proto.Pong{TS: p.TS}
	n.write(c, proto.TypePong, func(b []byte) []byte { return pong.Append(b) })
}

// loginLocks serialises the logins of one user on this gateway (by uid), so that
// the order in which the directory registers them is the order in which they take
// over here: the one registered last is the one left current.
const loginLocks = 256

func (n *Node) login(ctx context.Context, c *reactor.Conn, body []byte) {
	m, ok := n.admitLogin(c, body)
	if !ok {
		return
	}
	s := &session{uid: m.UID, id: n.nextID.Add(1), c: c, version: m.Version}
	lock := &n.loginMu[m.UID%loginLocks]
	lock.Lock()
	defer lock.Unlock()
	n.sessions.begin(s)
	w, err := n.cfg.Backend.Login(ctx, Session{UID: s.uid, ID: s.id})
	if err != nil {
		if errors.Is(err, ErrRegistered) {
			// The directory moved past the user's older session here: it goes too
			// and logs in again, or it would be live but never routed to.
			if old := n.sessions.retire(s); old != nil {
				n.kick(old.c, proto.ReasonBusy, proto.CodeBackendUnavailable, jitterMS(1000, 3000), "session directory unavailable")
			}
		} else {
			n.sessions.abandon(s)
		}
		n.m.logins["unavailable"].Inc()
		n.log.Warn("login: backend unavailable", "uid", m.UID, "err", err)
		n.kick(c, proto.ReasonBusy, proto.CodeBackendUnavailable, jitterMS(1000, 3000), "session directory unavailable")
		return
	}
	n.bindSession(c, s)
	old, ok := n.sessions.promote(s)
	if !ok {
		n.m.logins["replaced"].Inc()
		n.kick(c, proto.ReasonReplaced, proto.CodeSessionReplaced, 0, "logged in elsewhere")
		if old != nil { // see promote: the directory moved past it too
			n.kick(old.c, proto.ReasonReplaced, proto.CodeSessionReplaced, 0, "logged in elsewhere")
		}
		return
	}
	if old != nil {
		n.m.logins["replaced"].Inc()
		n.kick(old.c, proto.ReasonReplaced, proto.CodeSessionReplaced, 0, "logged in elsewhere")
	}
	n.m.logins["ok"].Inc()
	s.handled, s.readAtOK = 1, c.FramesRead() // see sentBeforeLoginOK
	ok2 := proto.LoginOK{
		Session: s.id, Epoch: w.Epoch, LastSeq: w.Head, Oldest: w.Oldest,
		HeartbeatMS:   uint32(n.cfg.Heartbeat / time.Millisecond),
		IdleTimeoutMS: uint32(n.cfg.Reactor.IdleTimeout / time.Millisecond),
		MaxFrame:      uint32(n.cfg.MaxFrame),
		MaxPayload:    uint32(proto.MaxPayload(n.cfg.MaxFrame)),
	}
	n.write(c, proto.TypeLoginOK, func(b []byte) []byte { return ok2.Append(b) })
}

// admitLogin judges a LOGIN before the session directory hears of it: decoded,
// a user, its token valid, the user not in the penalty box, the gateway taking
// logins. ok false: the connection was kicked with the reason. Authenticated, the
// connection gets the logged-in limits (frames may be max_frame long, the rates
// count from here).
func (n *Node) admitLogin(c *reactor.Conn, body []byte) (m proto.Login, ok bool) {
	if err := m.Decode(body); err != nil {
		n.m.logins["malformed"].Inc()
		n.kickFor(c, err)
		return m, false
	}
	if m.UID == 0 {
		n.m.logins["malformed"].Inc()
		n.kick(c, proto.ReasonProtocol, proto.CodeMalformed, 0, "uid 0 is not a user")
		return m, false
	}
	if err := n.cfg.Signer.Verify(m.Token, m.UID, time.Now()); err != nil {
		switch proto.CodeOf(err) {
		case proto.CodeTokenExpired:
			n.m.logins["expired"].Inc()
		case proto.CodeUIDMismatch:
			n.m.logins["uid_mismatch"].Inc()
		default:
			n.m.logins["bad_token"].Inc()
		}
		n.kickFor(c, err)
		return m, false
	}
	if wait := n.penalty.remaining(m.UID, n.clock()); wait > 0 {
		n.m.logins["penalized"].Inc()
		n.m.limitCloses[proto.CodeRateExceeded].Inc()
		n.kick(c, proto.ReasonPolicy, proto.CodeRateExceeded, uint32(wait/time.Millisecond)+jitterMS(0, 1000),
			"rate limits exceeded; retry later")
		return m, false
	}
	c.Admit(n.admitted)
	if n.draining.Load() {
		n.kick(c, proto.ReasonDrain, proto.CodeDraining, jitterMS(500, 2000), "gateway draining; reconnect elsewhere")
		return m, false
	}
	if n.isolated.Load() {
		n.kick(c, proto.ReasonDrain, proto.CodeIsolated, jitterMS(500, 2000), "gateway cut off from the cluster; reconnect elsewhere")
		return m, false
	}
	return m, true
}

// MaxUnansweredSends is how many SENDs one connection may have waiting for their
// answer; beyond it a SEND is refused with RATE_LIMITED (and not stored), which
// bounds what a connection holds in the gateway while the store is slow.
const MaxUnansweredSends = 256

// send handles a SEND, or a SEND_TRACED (traced), whose message then carries a
// trace stamped gateway_in now.
func (n *Node) send(c *reactor.Conn, s *session, body []byte, traced bool) {
	var m proto.Send
	var in int64
	if traced {
		in = time.Now().UnixNano()
		if err := (*proto.SendTraced)(&m).Decode(body); err != nil {
			n.kickFor(c, err)
			return
		}
	} else if err := m.Decode(body); err != nil {
		n.kickFor(c, err)
		return
	}
	var code proto.Code
	ok := n.sendRate.Allow(&s.gate, n.clock(), 1)
	switch {
	case !ok:
		code = proto.CodeRateLimited
		n.m.sends["rate_limited"].Inc()
		n.m.rateLimited[proto.TypeSend].Inc()
	case m.To == 0:
		code = proto.CodeBadRecipient
		n.m.sends["bad_recipient"].Inc()
	case len(m.Payload) > proto.MaxPayload(n.cfg.MaxFrame):
		code = proto.CodePayloadTooLarge
		n.m.sends["too_large"].Inc()
	case s.inflight.Add(1) > MaxUnansweredSends:
		s.inflight.Add(-1)
		code = proto.CodeRateLimited
		n.m.sends["rate_limited"].Inc()
	}
	if code != 0 {
		n.write(c, proto.TypeError, func(b []byte) []byte { return proto.AppendError(b, code, m.ClientMsgID, "") })
		return
	}
	cmid, to := m.ClientMsgID, m.To
	var trace *msg.Trace
	if traced {
		trace = &msg.Trace{GatewayIn: in}
	}
	n.cfg.Backend.Send(s.uid, &m, trace, c.Closed, func(msgID uint64, err error) {
		s.inflight.Add(-1)
		switch {
		case err == nil:
			n.m.sends["ok"].Inc()
			ack := proto.SendAck{ClientMsgID: cmid, MsgID: msgID}
			n.write(c, proto.TypeSendAck, func(b []byte) []byte { return ack.Append(b) })
		case errors.Is(err, msg.ErrNoRecipient):
			n.m.sends["bad_recipient"].Inc()
			n.write(c, proto.TypeError, func(b []byte) []byte { return proto.AppendError(b, proto.CodeBadRecipient, cmid, "") })
		case errors.Is(err, msg.ErrRecipientFull):
			n.m.sends["recipient_full"].Inc()
			n.write(c, proto.TypeError, func(b []byte) []byte { return proto.AppendError(b, proto.CodeRecipientFull, cmid, "") })
		case errors.Is(err, msg.ErrNotStored):
			n.m.sends["unavailable"].Inc() // the backend logs why, once per outage
			n.log.Debug("send: not stored", "from", s.uid, "to", to, "err", err)
			n.write(c, proto.TypeError, func(b []byte) []byte { return proto.AppendError(b, proto.CodeUnavailable, cmid, "") })
		default:
			// The outcome is unknown: an ERROR would say "not stored", which may be
			// false. Ending the connection says "unknown" (PROTOCOL.md §7): the
			// client resends with the same id after reconnecting.
			n.m.sends["unknown"].Inc()
			n.log.Warn("send: outcome unknown; ending the connection", "from", s.uid, "to", to, "err", err)
			n.kick(c, proto.ReasonBusy, proto.CodeBackendUnavailable, jitterMS(500, 2000), "message store unavailable")
		}
	})
}

// SYNC pacing: a reply holds at most syncLimit messages and syncBudget bytes of PUSH
// frames, and never more than half of the connection's room under its output hard
// cap — but always one message if any is retained — so that the server's own
// replay never gets a prompt reader kicked as slow; SYNC_END.up_to tells the
// client where to ask again. syncFlush is how many bytes go into one write.
const (
	syncBudget = 256 << 10
	syncFlush  = 64 << 10
)

func (n *Node) sync(ctx context.Context, c *reactor.Conn, s *session, body []byte) {
	var m proto.Sync
	if err := m.Decode(body); err != nil {
		n.kickFor(c, err)
		return
	}
	limit := n.cfg.SyncLimit
	if m.Limit > 0 && int(m.Limit) < limit {
		limit = int(m.Limit)
	}
	msgs, w, err := n.cfg.Backend.Sync(ctx, s.uid, m.AfterSeq, limit)
	if err == nil && m.AfterSeq != 0 && m.Epoch != w.Epoch {
		// The client counts in another incarnation: its after_seq names nothing
		// here. Replay this incarnation from its start.
		m.AfterSeq = 0
		msgs, w, err = n.cfg.Backend.Sync(ctx, s.uid, 0, limit)
	}
	if err != nil {
		n.log.Warn("sync: backend failed", "uid", s.uid, "err", err)
		n.write(c, proto.TypeError, func(b []byte) []byte { return proto.AppendError(b, proto.CodeUnavailable, 0, "") })
		return
	}
	budget := min(syncBudget, c.OutputRoom()/2)
	bp := n.scratch.Get().(*[]byte)
	b := (*bp)[:0]
	wsc := isWebSocket(c)
	upTo, sent, replayed := m.AfterSeq, 0, 0
	for i := range msgs {
		p := pushOf(&msgs[i])
		if replayed > 0 && sent+len(b)+p.Size() > budget {
			break
		}
		b = p.Append(appendWSHeader(b, wsc, p.Size()))
		upTo = p.Seq
		replayed++
		if len(b) >= syncFlush {
			if c.Write(b) != nil {
				break
			}
			sent += len(b)
			b = b[:0]
		}
	}
	end := proto.SyncEnd{UpTo: upTo, Head: w.Head, Oldest: w.Oldest, Epoch: w.Epoch}
	b = end.Append(appendWSHeader(b, wsc, end.Size()))
	c.Write(b) //nolint:errcheck // a failed write closes the connection itself
	*bp = b
	n.putScratch(bp)
	n.m.framesOut[proto.TypePush].Add(float64(replayed))
	n.m.framesOut[proto.TypeSyncEnd].Inc()
	n.m.replayed.Add(float64(replayed))
}

// Deliver implements Gateway.
func (n *Node) Deliver(m *msg.Message, conn uint64) bool {
	s, pending := n.sessions.target(m.To, conn)
	if s == nil {
		if pending {
			n.m.pushes["pending"].Inc() // its SYNC after LOGIN_OK fetches it
			return true
		}
		n.m.pushes["offline"].Inc()
		return false
	}
	if err := n.writePush(s, m); err != nil {
		n.m.pushes["dropped"].Inc() // the connection is going; the client's next login SYNCs
		return true
	}
	n.m.pushes["delivered"].Inc()
	return true
}

// Replace implements Gateway.
func (n *Node) Replace(uid, conn uint64) bool {
	s, found := n.sessions.replace(uid, conn)
	if s != nil {
		n.m.logins["replaced"].Inc()
		n.kick(s.c, proto.ReasonReplaced, proto.CodeSessionReplaced, 0, "logged in elsewhere")
	}
	return found
}

// Notice implements Gateway.
func (n *Node) Notice(uid, conn uint64, w msg.Window) bool {
	s, _ := n.sessions.target(uid, conn)
	if s == nil || conn == 0 {
		return false
	}
	end := proto.SyncEnd{Head: w.Head, Oldest: w.Oldest, Epoch: w.Epoch}
	return n.write(s.c, proto.TypeSyncEnd, func(b []byte) []byte { return end.Append(b) }) == nil
}

// writePush writes m to s's connection: as PUSH_TRACED, stamped gateway_out now,
// if m is traced, s logged in with proto.VersionTrace and the frame fits the
// maximum frame (it is 32 bytes longer than the PUSH); as PUSH otherwise (a
// version 2 client never sees a PUSH_TRACED).
func (n *Node) writePush(s *session, m *msg.Message) error {
	p := pushOf(m)
	if m.Trace != nil && s.version >= proto.VersionTrace {
		pt := proto.PushTraced{Push: p, Trace: proto.Trace(*m.Trace)}
		if pt.Size()-4 <= n.cfg.MaxFrame {
			pt.Trace.GatewayOut = time.Now().UnixNano()
			return n.write(s.c, proto.TypePushTraced, func(b []byte) []byte { return pt.Append(b) })
		}
	}
	return n.write(s.c, proto.TypePush, func(b []byte) []byte { return p.Append(b) })
}

func pushOf(m *msg.Message) proto.Push {
	return proto.Push{Seq: m.Seq, Epoch: m.Epoch, MsgID: m.ID, From: m.From, ClientTS: m.ClientTS, Payload: m.Payload}
}

// write encodes one frame into a pooled buffer and writes it — on the WebSocket
// port in a binary message of its own, whose header goes into the headroom left
// before the frame once its length is known. t counts the frame (0: not counted).
func (n *Node) write(c *reactor.Conn, t proto.Type, encode func([]byte) []byte) error {
	bp := n.scratch.Get().(*[]byte)
	var b, out []byte
	if isWebSocket(c) {
		var head [wsHeadroom]byte
		b = encode(append((*bp)[:0], head[:]...))
		var hdr [wsHeadroom]byte
		h := ws.AppendFrameHeader(hdr[:0], ws.OpBinary, len(b)-wsHeadroom)
		out = b[wsHeadroom-len(h):]
		copy(out, h)
	} else {
		b = encode((*bp)[:0])
		out = b
	}
	err := c.Write(out)
	*bp = b
	n.putScratch(bp)
	if err == nil && t != 0 {
		n.m.framesOut[t].Inc()
	}
	return err
}

// writeRaw encodes bytes into a pooled buffer and writes them as they are: the
// WebSocket port's own control frames.
func (n *Node) writeRaw(c *reactor.Conn, encode func([]byte) []byte) error {
	bp := n.scratch.Get().(*[]byte)
	b := encode((*bp)[:0])
	err := c.Write(b)
	*bp = b
	n.putScratch(bp)
	return err
}

// putScratch returns an encoding buffer to the pool unless a large frame grew it.
func (n *Node) putScratch(bp *[]byte) {
	if cap(*bp) <= 2*syncFlush {
		n.scratch.Put(bp)
	}
}

// kick sends KICK(reason, code) as the connection's last frame and closes it (on
// the WebSocket port, followed by the close frame wsCloseCode says).
func (n *Node) kick(c *reactor.Conn, r proto.Reason, code proto.Code, retryMS uint32, text string) {
	n.kickWS(c, r, code, retryMS, text, wsCloseCode(r, code))
}

// kickWS is kick with the WebSocket close status given.
func (n *Node) kickWS(c *reactor.Conn, r proto.Reason, code proto.Code, retryMS uint32, text string, wsClose uint16) {
	var uid uint64
	if s := sessionOf(c); s != nil {
		uid = s.uid
	}
	n.kickLogged(r, code, uid, text)
	n.m.kicks[r].Inc()
	n.m.framesOut[proto.TypeKick].Inc()
	if isWebSocket(c) {
		k := proto.Kick{Reason: r, Code: code, RetryAfterMS: retryMS, Message: []byte(text)}
		c.CloseWith(appendWSKick(nil, &k, wsClose))
		return
	}
	c.CloseWith(proto.AppendKick(nil, r, code, retryMS, text))
}

// refused is the reactor's Config.Refused: a frame over its connection's rates is
// not handled. A SEND is answered RATE_LIMITED (not stored: the client resends it
// later with the same id), a SYNC RATE_LIMITED with ref 0 (the client asks again
// later, as after UNAVAILABLE); anything else is dropped. A dropped PUSH_ACK does
// not count towards the kick: acknowledgements are cumulative (the next one covers
// it) and their rate is the pushes' — a recipient of a busy conversation, or of
// someone pushing at it on purpose, acks as fast as it is pushed to, and must not
// be kicked for it. It runs on the epoller, maybe while a worker handles an
// earlier frame of the connection, so it touches only the frame and the
// connection's output.
func (n *Node) refused(c *reactor.Conn, frame []byte) (counts bool) {
	f, err := proto.ParseFrame(frame)
	if err != nil || !f.Type.ClientToServer() {
		return true // handled frames would have been kicked; a refused one is dropped
	}
	if s := sessionOf(c); s != nil && !f.Type.KnownIn(s.version) {
		return true // undefined on this connection: as above
	}
	n.m.rateLimited[f.Type].Inc()
	switch f.Type {
	case proto.TypePushAck:
		return false
	case proto.TypeSync:
		n.write(c, proto.TypeError, func(b []byte) []byte { return proto.AppendError(b, proto.CodeRateLimited, 0, "") })
		return true
	case proto.TypeSend, proto.TypeSendTraced: // one layout
	default:
		return true
	}
	n.m.sends["rate_limited"].Inc()
	var m proto.Send
	if m.Decode(f.Body) != nil {
		return true
	}
	n.write(c, proto.TypeError, func(b []byte) []byte { return proto.AppendError(b, proto.CodeRateLimited, m.ClientMsgID, "") })
	return true
}

// kickFor kicks for a decode or token error, with the code it carries.
func (n *Node) kickFor(c *reactor.Conn, err error) {
	code := proto.CodeOf(err)
	if code == 0 {
		code = proto.CodeMalformed
	}
	n.kick(c, code.KickReason(), code, 0, err.Error())
}

// farewell gives the reactor the KICK for the closes it decides on its own.
func (n *Node) farewell(r reactor.Reason, err error) []byte {
	k, ok := n.farewellKick(r, err)
	if !ok {
		return nil
	}
	return k.Append(nil)
}

// farewellKick is the KICK for a close the reactor decides on its own (ok false:
// none), counted and logged.
func (n *Node) farewellKick(r reactor.Reason, err error) (k proto.Kick, ok bool) {
	var reason proto.Reason
	var code proto.Code
	var retry uint32
	text := ""
	switch r {
	case reactor.ReasonProtocol:
		reason, code = proto.ReasonProtocol, proto.CodeOf(err)
		switch {
		case errors.Is(err, reactor.ErrTruncatedFrame):
			code = proto.CodeTruncated
		case errors.Is(err, reactor.ErrFrameTooLarge):
			code = proto.CodeFrameTooLarge
			if err == reactor.ErrFrameTooLarge { // the reactor's own: the pre-login limit
				text = fmt.Sprintf("frame over %d bytes before login", n.cfg.PreLoginMaxFrame)
			}
		}
		if code == 0 {
			code = proto.CodeMalformed
		}
		if err != nil && text == "" {
			text = err.Error()
		}
	case reactor.ReasonUnadmitted:
		reason, code, text = proto.ReasonIdle, proto.CodeLoginTimeout, "no LOGIN within the login deadline"
	case reactor.ReasonRate:
		reason, code, retry = proto.ReasonPolicy, proto.CodeRateExceeded, jitterMS(policyRetryMin, policyRetryMax)
		text = "rate limits exceeded"
	case reactor.ReasonAddrLimit:
		reason, code, retry = proto.ReasonPolicy, proto.CodeTooManyConnections, jitterMS(policyRetryMin, policyRetryMax)
	case reactor.ReasonSlow:
		reason, code, retry = proto.ReasonSlow, proto.CodeSlowConsumer, jitterMS(500, 2000)
	case reactor.ReasonIdle:
		reason, code = proto.ReasonIdle, proto.CodeIdleTimeout
	case reactor.ReasonBusy:
		// Spread the retries of everyone turned away at once.
		reason, code, retry = proto.ReasonBusy, proto.CodeServerFull, jitterMS(1000, 5000)
	case reactor.ReasonShutdown:
		reason, code, retry = proto.ReasonShutdown, proto.CodeShuttingDown, jitterMS(200, 2000)
	default:
		return k, false
	}
	if r != reactor.ReasonShutdown { // a shutdown kicks everyone, and says so once
		n.kickLogged(reason, code, 0, text)
	}
	n.m.kicks[reason].Inc()
	if c, ok := n.m.limitCloses[code]; ok {
		c.Inc()
	}
	n.m.framesOut[proto.TypeKick].Inc()
	return proto.Kick{Reason: reason, Code: code, RetryAfterMS: retry, Message: []byte(text)}, true
}

// kickLogged logs a kick at info with its reason and code (and the user, when the
// connection had logged in), one a second at most: the line says how many kicks
// since the last one went unlogged (floodgate_gateway_kicks_total counts them all).
func (n *Node) kickLogged(r proto.Reason, code proto.Code, uid uint64, text string) {
	held, ok := n.kickLog.Allow(time.Now())
	if !ok {
		return
	}
	attrs := []any{"reason", r.String(), "code", code.String()}
	if uid != 0 {
		attrs = append(attrs, "uid", uid)
	}
	if text != "" {
		attrs = append(attrs, "text", text)
	}
	if held > 0 {
		attrs = append(attrs, "kicks_not_logged", held)
	}
	n.log.Info("kick", attrs...)
}

// jitterMS returns a uniformly random retry hint in [lo, hi) milliseconds.
func jitterMS(lo, hi uint32) uint32 { return lo + rand.Uint32N(hi-lo) }
