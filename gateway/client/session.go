package client

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
)

// Session tuning.
const (
	// ackEvery batches PUSH_ACKs: one goes out once contiguous has advanced by
	// ackEvery, and whenever the session has read everything that arrived (so a
	// client at rest has acknowledged all it holds, and a replay of 256
	// messages costs 8 acks, not 256).
	ackEvery = 32
	// maxUnanswered is the most SENDs the session leaves unanswered on one
	// connection; the server answers RATE_LIMITED above 256.
	maxUnanswered = 256
	// activeReset: a connection that stayed logged in this long resets the
	// reconnect backoff (PROTOCOL.md §10).
	activeReset = 30 * time.Second
)

// ErrSessionClosed is returned by Send once Run has returned (wrapped together
// with Run's error, if any).
var ErrSessionClosed = errors.New("client: session closed")

// SessionConfig configures a Session.
type SessionConfig struct {
	UID   uint64
	Token func() []byte // a valid token for UID (called at each login)
	// Ipconf is the ipconf base URL; the session asks it for gateways before each
	// connection. Or set Gateways for a fixed list.
	Ipconf   string
	Gateways []string
	// WebSocket connects to the gateways' WebSocket ports (PROTOCOL.md §2.1):
	// ipconf's ws addresses, in its order, skipping gateways without one (with
	// Gateways: they are WebSocket addresses).
	WebSocket bool
	// OnMessage receives each message once per (epoch, seq), in seq order within
	// an incarnation (see Window; a message of an incarnation older than the one
	// before the current is stale and delivered as it comes). It runs on the
	// session's reader goroutine, outside the session's lock: it may call Stats
	// and Contiguous, but must not block for long, nor wait for a Send (the
	// reader goroutine is what completes Sends).
	OnMessage func(p proto.Push)
	// OnConnect, if set, is told each gateway the session logs in to.
	OnConnect func(addr string)
	// GapWait is how long an out-of-order message waits for the ones before it
	// before the session asks for them with SYNC, and how long a SYNC that made
	// no progress holds the next one back; default 100ms.
	GapWait time.Duration
	// Backoff is the reconnect schedule; zero fields take ipconf's hints, and
	// without those the defaults of PROTOCOL.md §10 (DefaultBackoffBase, …).
	// SENDs refused with UNAVAILABLE or RATE_LIMITED are retried on it too.
	Backoff Backoff
	// PongTimeout is how long after a PING the session waits for any frame (the
	// PONG queues behind earlier frames) before it takes the gateway for dead,
	// closes the connection and reconnects; default DefaultPongTimeout. Whatever
	// it is, a connection on which nothing at all arrived for the idle timeout
	// LOGIN_OK announced is dead too (PROTOCOL.md §6): a gateway that vanished
	// without a FIN or a RST is otherwise only found by TCP, minutes later.
	PongTimeout time.Duration
	Logger      *slog.Logger
}

// DefaultPongTimeout is SessionConfig.PongTimeout's default.
const DefaultPongTimeout = 10 * time.Second

// ErrGatewaySilent ends a connection on which nothing arrived in time: no frame
// within PongTimeout of a PING, or for the announced idle timeout.
var ErrGatewaySilent = errors.New("client: the gateway went silent")

// Session is a user's connection that survives gateways: it reconnects (via
// ipconf, with jittered exponential backoff and the server's retry hints), keeps
// one receive Window across its connections (so it SYNCs from where it was after
// every login, follows the store to a new incarnation, and hands every message
// to OnMessage once, in order), and makes Send reliable.
//
// Run returns, ending the session, when the token is refused (KICK AUTH) or
// another login for the same user replaced this one (KICK REPLACED: the user
// logged in elsewhere, and reconnecting would take the session back from it).
// Every other end of a connection — a gateway gone, KICK BUSY (the gateway
// cannot reach the session directory or the store: code 66), DRAIN, SLOW,
// SHUTDOWN, IDLE — is followed by a reconnect.
type Session struct {
	cfg   SessionConfig
	log   *slog.Logger
	hc    *http.Client
	start time.Time // the Window's clock counts from here

	mu         sync.Mutex
	conn       *Conn
	connected  chan struct{} // closed while logged in
	win        Window[proto.Push]
	deliver    func(seq uint64, p proto.Push)
	out        []proto.Push // delivered, not yet handed to OnMessage (reader goroutine only)
	maxPayload int          // the current connection's SEND payload limit
	hint       Backoff      // ipconf's last backoff hint
	nextID     uint64       // the last client_msg_id used
	order      uint64       // sends so far, to write them in the order they were made
	sends      map[uint64]*pendingSend
	queued     int // sends waiting to be written (now or after their retry time)
	inflight   int // sends written on the current connection and not answered
	// pausedUntil is the retry time of the last SEND refused RATE_LIMITED: no SEND
	// not yet written goes out before it, those made later included (§7.5).
	pausedUntil time.Time
	closed      error
	stats       SessionStats
}

// SessionStats counts what a session saw.
type SessionStats struct {
	Delivered  uint64 // messages handed to OnMessage
	Duplicates uint64 // pushes for messages already delivered
	OutOfOrder uint64 // pushes that arrived ahead of a gap
	Evicted    uint64 // seqs the server no longer had (window evictions): lost
	Stale      uint64 // delivered messages of an earlier incarnation than the current one
	Resets     uint64 // moves to a new store incarnation
	Logins     uint64
	Syncs      uint64
	Resent     uint64 // SENDs written again (after a reconnect, UNAVAILABLE or RATE_LIMITED)
	Silent     uint64 // connections given up because the gateway went silent
}

// pendingSend is one Send waiting for its SEND_ACK.
type pendingSend struct {
	id, to    uint64
	ts        int64
	payload   []byte
	order     uint64
	written   bool      // on the current connection, unanswered
	abandoned bool      // the caller gave up; forgotten once the connection cannot answer any more
	retryAt   time.Time // after UNAVAILABLE or RATE_LIMITED: not before
	refusals  int       // UNAVAILABLE or RATE_LIMITED answers so far
	writes    int
	result    chan sendResult // buffered: one result
}

type sendResult struct {
	msgID uint64
	err   error
}

// NewSession returns a session; Run drives it.
func NewSession(cfg SessionConfig) *Session {
	if cfg.PongTimeout <= 0 {
		cfg.PongTimeout = DefaultPongTimeout
	}
	if cfg.GapWait <= 0 {
		cfg.GapWait = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Session{
		cfg: cfg, log: cfg.Logger.With("uid", cfg.UID), hc: &http.Client{Timeout: 5 * time.Second}, start: time.Now(),
		connected: make(chan struct{}), sends: map[uint64]*pendingSend{},
		// Unique per session, and across restarts: a random start (the server
		// deduplicates (sender, to, client_msg_id) for minutes).
		nextID: rand.Uint64(),
	}
	s.deliver = s.deliverLocked
	return s
}

// Stats returns the counters.
func (s *Session) Stats() SessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Contiguous returns the highest seq of the current incarnation up to which
// every message was delivered (or skipped as evicted).
func (s *Session) Contiguous() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.win.Contiguous()
}

// Epoch returns the store incarnation the session is in, 0 before its first login.
func (s *Session) Epoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.win.Epoch()
}

// WaitConnected waits until the session is logged in.
func (s *Session) WaitConnected(ctx context.Context) error {
	s.mu.Lock()
	ch := s.connected
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Send sends a message to uid `to` and returns its msg_id once the server has
// stored it. It is reliable and idempotent: the SEND keeps one client_msg_id
// (unique to this session) for its whole life; it is written again with that id
// after every reconnect until it is answered, and again after backoff when the
// server answers UNAVAILABLE or RATE_LIMITED; the server stores it at most once
// however many times it arrives (within its deduplication window, 5 minutes).
// At most 256 SENDs are left unanswered on a connection; more wait their turn.
//
// It returns a *ServerError when the server refused the message for good
// (BAD_RECIPIENT, PAYLOAD_TOO_LARGE — the latter also without asking, when the
// payload is above the limit announced in LOGIN_OK): it was not stored. When
// ctx ends first it returns ctx's error, wrapped: the message may or may not
// have been stored, and it is not sent again. Once Run has returned it fails
// with ErrSessionClosed, with the same caveat for a SEND that was written.
//
// Send may be called before Run and between connections: the message waits for
// the next login.
func (s *Session) Send(ctx context.Context, to uint64, clientTS int64, payload []byte) (uint64, error) {
	s.mu.Lock()
	if s.closed != nil {
		err := s.closed
		s.mu.Unlock()
		return 0, err
	}
	s.nextID++
	if s.nextID == 0 { // 0 is "no request" in ERROR.ref
		s.nextID++
	}
	s.order++
	p := &pendingSend{id: s.nextID, to: to, ts: clientTS, payload: bytes.Clone(payload), order: s.order,
		retryAt: s.pausedUntil, result: make(chan sendResult, 1)}
	s.sends[p.id] = p
	s.queued++
	if c := s.conn; c != nil {
		if err := s.pumpLocked(c, time.Now()); err != nil {
			c.Close() // the reader notices and reconnects; the SEND is written again then
		}
	}
	s.mu.Unlock()

	select {
	case r := <-p.result:
		return r.msgID, r.err
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case r := <-p.result: // answered meanwhile
		return r.msgID, r.err
	default:
	}
	if s.sends[p.id] == p {
		if p.written {
			p.abandoned = true // its answer still counts against the connection's unanswered SENDs
		} else {
			delete(s.sends, p.id)
			s.queued--
		}
	}
	return 0, fmt.Errorf("client: send %d to %d (it may or may not have been stored): %w", p.id, to, ctx.Err())
}

// pumpLocked writes the sends that are due, oldest first, while the connection
// has room for unanswered ones.
func (s *Session) pumpLocked(c *Conn, now time.Time) error {
	if s.queued == 0 || s.inflight >= maxUnanswered {
		return nil
	}
	var due []*pendingSend
	for _, p := range s.sends {
		if !p.written && !p.abandoned && !now.Before(p.retryAt) {
			due = append(due, p)
		}
	}
	slices.SortFunc(due, func(a, b *pendingSend) int { return cmp.Compare(a.order, b.order) })
	for _, p := range due {
		if s.inflight >= maxUnanswered {
			break
		}
		if len(p.payload) > s.maxPayload {
			s.queued--
			s.finishLocked(p, 0, &ServerError{Code: proto.CodePayloadTooLarge, Ref: p.id,
				Message: fmt.Sprintf("payload of %d bytes above the server's limit of %d (checked by the client)", len(p.payload), s.maxPayload)})
			continue
		}
		if err := c.Send(p.id, p.to, p.ts, p.payload); err != nil {
			return err
		}
		if p.writes > 0 {
			s.stats.Resent++
		}
		p.writes++
		p.written = true
		s.queued--
		s.inflight++
	}
	return nil
}

// finishLocked ends a send with its answer.
func (s *Session) finishLocked(p *pendingSend, msgID uint64, err error) {
	delete(s.sends, p.id)
	if !p.abandoned {
		p.result <- sendResult{msgID: msgID, err: err}
	}
}

// answeredLocked takes the SEND_ACK or ERROR of send id (err nil: acked).
func (s *Session) answeredLocked(id, msgID uint64, err *ServerError, now time.Time) {
	p := s.sends[id]
	if p == nil || !p.written {
		return // a send whose caller gave up and was forgotten, or an answer we never asked for
	}
	p.written = false
	s.inflight--
	switch {
	case err == nil:
		s.finishLocked(p, msgID, nil)
	case !p.abandoned && (err.Code == proto.CodeUnavailable || err.Code == proto.CodeRateLimited):
		// Certainly not stored, and worth another try after backoff.
		p.retryAt = now.Add(s.backoffLocked().Delay(p.refusals, rand.Float64()))
		p.refusals++
		s.queued++
		if err.Code == proto.CodeRateLimited {
			// Slow down (PROTOCOL.md §7.5): no SEND not yet written — queued now
			// or made later — goes out before this one may, so a long queue is
			// paced by the server's rate instead of being refused window after
			// window.
			s.pausedUntil = p.retryAt
			for _, q := range s.sends {
				if !q.written && q.retryAt.Before(p.retryAt) {
					q.retryAt = p.retryAt
				}
			}
		}
	default:
		s.finishLocked(p, 0, err)
	}
}

// requeueLocked makes every unanswered send wait for the next connection,
// forgetting those whose callers gave up.
func (s *Session) requeueLocked() {
	for id, p := range s.sends {
		switch {
		case p.abandoned:
			delete(s.sends, id)
		case p.written:
			p.written = false
			s.queued++
		}
	}
	s.inflight = 0
}

// backoffLocked is the schedule in force: the configuration, then ipconf's
// hint, then the defaults.
func (s *Session) backoffLocked() Backoff {
	return s.cfg.Backoff.or(s.hint).or(Backoff{Base: DefaultBackoffBase, Max: DefaultBackoffMax, Jitter: DefaultBackoffJitter})
}

// Run connects and reconnects until ctx ends (then it returns nil), or until
// reconnecting cannot help: KICK AUTH (the token was refused) or KICK REPLACED
// (the user logged in elsewhere), returned as a *KickError. Call it once; when it
// returns, unanswered Sends fail with ErrSessionClosed.
func (s *Session) Run(ctx context.Context) error {
	err := s.run(ctx)
	s.mu.Lock()
	s.closed = ErrSessionClosed
	if err != nil {
		s.closed = fmt.Errorf("%w: %w", ErrSessionClosed, err)
	}
	for _, p := range s.sends {
		s.finishLocked(p, 0, s.closed)
	}
	s.queued, s.inflight = 0, 0
	s.mu.Unlock()
	return err
}

func (s *Session) run(ctx context.Context) error {
	attempt := 0
	for ctx.Err() == nil {
		active, err := s.connectAndServe(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var hint time.Duration
		drained := false
		if kick, ok := errors.AsType[*KickError](err); ok {
			if kick.Reason == proto.ReasonAuth || kick.Reason == proto.ReasonReplaced {
				return err
			}
			hint = time.Duration(kick.RetryAfterMS) * time.Millisecond
			drained = kick.Reason == proto.ReasonDrain
		}
		if de, ok := errors.AsType[*DiscoverError](err); ok {
			hint = de.RetryAfter
		}
		if active >= activeReset {
			attempt = 0
		}
		wait := hint // a drain is spread by the gateway already: no backoff (PROTOCOL.md §10)
		if !drained {
			s.mu.Lock()
			wait += s.backoffLocked().Delay(attempt, rand.Float64())
			s.mu.Unlock()
			attempt++
		}
		s.log.Debug("reconnecting", "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return nil
}

func (s *Session) addrs(ctx context.Context) ([]string, error) {
	if s.cfg.Ipconf == "" {
		return s.cfg.Gateways, nil
	}
	gl, err := Discover(ctx, s.hc, s.cfg.Ipconf, s.cfg.UID)
	if de, ok := errors.AsType[*DiscoverError](err); ok {
		gl = de.Hints
	}
	s.mu.Lock()
	s.hint = gl.Backoff.Backoff()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(gl.Gateways))
	for _, g := range gl.Gateways {
		switch {
		case !s.cfg.WebSocket:
			out = append(out, g.Addr)
		case g.WS != "":
			out = append(out, g.WS)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("ipconf lists no gateway with a WebSocket port")
	}
	return out, nil
}

// connectAndServe logs in through the first gateway that takes it and serves
// the connection until it ends; active is how long it stayed logged in.
func (s *Session) connectAndServe(ctx context.Context) (active time.Duration, err error) {
	addrs, err := s.addrs(ctx)
	if err != nil {
		return 0, err
	}
	var c *Conn
	var ok proto.LoginOK
	for _, a := range addrs {
		dial := Dial
		if s.cfg.WebSocket {
			dial = DialWebSocket
		}
		if c, err = dial(a, 2*time.Second); err != nil {
			continue
		}
		if ok, err = c.Login(s.cfg.UID, s.cfg.Token()); err != nil {
			c.Close()
			c = nil
			if _, kicked := errors.AsType[*KickError](err); kicked {
				return 0, err
			}
			continue
		}
		if s.cfg.OnConnect != nil {
			s.cfg.OnConnect(a)
		}
		break
	}
	if c == nil {
		return 0, fmt.Errorf("no gateway took the login: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	since := time.Now()

	s.mu.Lock()
	if s.win.Login(ok) {
		s.stats.Resets++
	}
	s.maxPayload = proto.MaxPayload(int(ok.MaxFrame))
	if ok.MaxPayload > 0 && int(ok.MaxPayload) < s.maxPayload {
		s.maxPayload = int(ok.MaxPayload)
	}
	s.conn = c
	s.stats.Logins++
	close(s.connected)
	err = s.tendLocked(c, time.Now(), true)
	s.mu.Unlock()
	if err == nil {
		err = s.readLoop(c, time.Duration(ok.HeartbeatMS)*time.Millisecond, time.Duration(ok.IdleTimeoutMS)*time.Millisecond)
	}

	s.mu.Lock()
	s.conn = nil
	s.connected = make(chan struct{})
	s.win.Disconnected()
	s.requeueLocked()
	s.mu.Unlock()
	c.Close()
	return time.Since(since), err
}

// tendLocked is what the session does after each frame and on its timer:
// acknowledge (every ackEvery, or everything once idle), SYNC when the window
// asks for it, and write the SENDs that are due.
func (s *Session) tendLocked(c *Conn, now time.Time, idle bool) error {
	every := uint64(ackEvery)
	if idle {
		every = 0
	}
	if a, ok := s.win.Ack(every); ok {
		if err := c.Ack(a.Seq, a.Epoch); err != nil {
			return err
		}
	}
	if s.win.NeedSync(int64(now.Sub(s.start)), int64(s.cfg.GapWait)) {
		m := s.win.Sync(0)
		s.stats.Syncs++
		if err := c.Sync(m.AfterSeq, m.Epoch, m.Limit); err != nil {
			return err
		}
	}
	return s.pumpLocked(c, now)
}

func (s *Session) readLoop(c *Conn, heartbeat, idle time.Duration) error {
	if heartbeat <= 0 {
		heartbeat = 30 * time.Second
	}
	done := make(chan struct{})
	defer close(done)
	// lastRead is when the last frame arrived (ns since s.start); silent is set
	// when the timer gave the connection up, so that the reader reports why.
	var lastRead atomic.Int64
	var silent atomic.Bool
	lastRead.Store(int64(time.Since(s.start)))
	// A timer goroutine, not read deadlines (which could tear a frame): every
	// GapWait (at most 100ms) it lets the window ask for a SYNC no frame would
	// trigger, writes the SENDs whose retry time came, sends the heartbeats (the
	// first one jittered so that a reconnect storm does not ping in step), and
	// gives the connection up when the gateway went silent.
	go func() {
		t := time.NewTicker(min(s.cfg.GapWait, 100*time.Millisecond))
		defer t.Stop()
		nextPing := time.Now().Add(time.Duration(rand.Int64N(int64(heartbeat))))
		var pingAt time.Time // the oldest PING no frame has arrived since; zero: none
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				read := s.start.Add(time.Duration(lastRead.Load()))
				if !pingAt.IsZero() && read.After(pingAt) {
					pingAt = time.Time{}
				}
				if (!pingAt.IsZero() && now.Sub(pingAt) > s.cfg.PongTimeout) || (idle > 0 && now.Sub(read) > idle) {
					silent.Store(true)
					c.Close() // the reader sees it and the session reconnects
					return
				}
				s.mu.Lock()
				if s.conn == c {
					err := s.tendLocked(c, now, true)
					if err == nil && now.After(nextPing) {
						err = c.Ping(now.UnixNano())
						nextPing = now.Add(heartbeat)
						if pingAt.IsZero() {
							pingAt = now
						}
					}
					if err != nil {
						c.Close() // the reader sees it and the session reconnects
					}
				}
				s.mu.Unlock()
			}
		}
	}()
	for {
		f, err := c.Next()
		if err != nil {
			if silent.Load() {
				s.mu.Lock()
				s.stats.Silent++
				s.mu.Unlock()
				return fmt.Errorf("%w (%w)", ErrGatewaySilent, err)
			}
			return err
		}
		lastRead.Store(int64(time.Since(s.start)))
		s.mu.Lock()
		err = s.handleLocked(f, time.Now())
		if err == nil {
			err = s.tendLocked(c, time.Now(), c.Buffered() == 0)
		}
		out := s.out
		s.mu.Unlock()
		// OnMessage outside the lock, still on this goroutine: in order.
		if s.cfg.OnMessage != nil {
			for _, p := range out {
				s.cfg.OnMessage(p)
			}
		}
		clear(out)
		s.out = out[:0]
		if err != nil {
			return err
		}
	}
}

// deliverLocked is the Window's deliver: one message for OnMessage.
func (s *Session) deliverLocked(_ uint64, p proto.Push) {
	s.stats.Delivered++
	if p.Epoch < s.win.Epoch() {
		s.stats.Stale++
	}
	s.out = append(s.out, p)
}

func (s *Session) handleLocked(f proto.Frame, now time.Time) error {
	switch f.Type {
	case proto.TypePush:
		var p proto.Push
		if err := p.Decode(f.Body); err != nil {
			return err
		}
		p.Payload = bytes.Clone(p.Payload) // it aliases the read buffer; the message is kept
		before := s.win.Epoch()
		switch s.win.Push(&p, p, int64(now.Sub(s.start)), s.deliver) {
		case Held:
			s.stats.OutOfOrder++
		case Duplicate:
			s.stats.Duplicates++
		}
		s.countReset(before)
	case proto.TypeSyncEnd:
		var e proto.SyncEnd
		if err := e.Decode(f.Body); err != nil {
			return err
		}
		before := s.win.Epoch()
		s.stats.Evicted += s.win.SyncEnd(&e, s.deliver)
		s.countReset(before)
	case proto.TypeSendAck:
		var a proto.SendAck
		if err := a.Decode(f.Body); err != nil {
			return err
		}
		s.answeredLocked(a.ClientMsgID, a.MsgID, nil, now)
	case proto.TypeError:
		err := AsError(f)
		se, ok := errors.AsType[*ServerError](err)
		switch {
		case !ok:
			return err
		case se.Ref == 0:
			// No SEND has id 0: a SYNC the server could not serve (UNAVAILABLE).
			// The window asks again after GapWait.
			s.log.Debug("sync refused", "err", se)
			s.win.SyncFailed()
		default:
			s.answeredLocked(se.Ref, 0, se, now)
		}
	case proto.TypeKick:
		return AsError(f)
	}
	return nil
}

func (s *Session) countReset(before uint64) {
	if before != 0 && s.win.Epoch() != before {
		s.stats.Resets++
	}
}
