package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
)

// SessionConfig configures a Session.
type SessionConfig struct {
	UID   uint64
	Token func() []byte // a valid token for UID (called at each login)
	// Ipconf is the ipconf base URL; the session asks it for gateways before each
	// connection. Or set Gateways for a fixed list.
	Ipconf   string
	Gateways []string
	// OnMessage receives each message exactly once, in seq order. It runs on the
	// session's reader goroutine and must not block for long.
	OnMessage func(p proto.Push)
	// OnConnect, if set, is told each gateway the session logs in to.
	OnConnect func(addr string)
	// GapWait is how long an out-of-order message waits for the ones before it
	// before the session asks for them with SYNC; default 100ms.
	GapWait time.Duration
	Logger  *slog.Logger
}

// Session is a user's connection that survives gateways: it reconnects (via ipconf,
// with full-jitter exponential backoff and the server's retry hints), SYNCs from its
// last contiguous seq after every login, and hands every message to OnMessage once,
// in order, whatever duplicates and reordering the network and the servers produce.
type Session struct {
	cfg SessionConfig
	log *slog.Logger
	hc  *http.Client

	mu        sync.Mutex
	conn      *Conn
	connected chan struct{} // closed while logged in
	nextCMID  uint64
	acks      map[uint64]chan sendResult
	// Delivery state: everything <= contiguous went to OnMessage.
	contiguous uint64
	epoch      uint64
	ahead      map[uint64]proto.Push // seqs above contiguous+1, waiting for the gap
	gapSince   time.Time
	syncing    bool
	stats      SessionStats
}

// SessionStats counts what a session saw.
type SessionStats struct {
	Delivered  uint64 // messages handed to OnMessage
	Duplicates uint64 // pushes for seqs already delivered
	OutOfOrder uint64 // pushes that arrived ahead of a gap
	Evicted    uint64 // seqs the server no longer had (window evictions): lost
	Logins     uint64
	Syncs      uint64
}

type sendResult struct {
	msgID uint64
	err   error
}

// ErrNotConnected is returned by Send while the session is between connections.
var ErrNotConnected = errors.New("client: session not connected")

// NewSession returns a session; Run drives it.
func NewSession(cfg SessionConfig) *Session {
	if cfg.GapWait <= 0 {
		cfg.GapWait = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Session{
		cfg: cfg, log: cfg.Logger.With("uid", cfg.UID), hc: &http.Client{Timeout: 5 * time.Second},
		connected: make(chan struct{}), acks: map[uint64]chan sendResult{}, ahead: map[uint64]proto.Push{},
	}
}

// Stats returns the counters.
func (s *Session) Stats() SessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Contiguous returns the highest seq up to which every message was delivered.
func (s *Session) Contiguous() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.contiguous
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

// Send sends a message and waits for the server's SEND_ACK (the message is stored).
// Between connections it fails with ErrNotConnected; the caller may retry.
func (s *Session) Send(ctx context.Context, to uint64, clientTS int64, payload []byte) (uint64, error) {
	s.mu.Lock()
	c := s.conn
	if c == nil {
		s.mu.Unlock()
		return 0, ErrNotConnected
	}
	s.nextCMID++
	id := s.nextCMID
	ch := make(chan sendResult, 1)
	s.acks[id] = ch
	err := c.Send(id, to, clientTS, payload) // under mu: one writer at a time
	s.mu.Unlock()
	if err != nil {
		s.forgetAck(id)
		return 0, ErrNotConnected
	}
	select {
	case r := <-ch:
		return r.msgID, r.err
	case <-ctx.Done():
		s.forgetAck(id)
		return 0, ctx.Err()
	}
}

func (s *Session) forgetAck(id uint64) {
	s.mu.Lock()
	delete(s.acks, id)
	s.mu.Unlock()
}

// Run connects and reconnects until ctx ends. It returns early only when
// reconnecting cannot help (the token was refused, or another login replaced this one).
func (s *Session) Run(ctx context.Context) error {
	attempt := 0
	for ctx.Err() == nil {
		served, err := s.connectAndServe(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var hint time.Duration
		var kick *KickError
		drained := false
		if errors.As(err, &kick) {
			if kick.Reason == proto.ReasonAuth || kick.Reason == proto.ReasonReplaced {
				return err
			}
			hint = time.Duration(kick.RetryAfterMS) * time.Millisecond
			drained = kick.Reason == proto.ReasonDrain
		}
		if served {
			attempt = 0
		}
		wait := hint // a drain is spread by the gateway already: no backoff (PROTOCOL.md §10)
		if !drained {
			attempt++
			// Full jitter: uniform in [0, min(cap, base·2^attempt)), after the server's hint.
			wait += time.Duration(rand.Int64N(int64(min(2*time.Second, 50*time.Millisecond<<min(attempt, 6)))))
		}
		s.log.Debug("reconnecting", "err", err, "in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	return nil
}

func (s *Session) addrs(ctx context.Context) ([]string, error) {
	if s.cfg.Ipconf == "" {
		return s.cfg.Gateways, nil
	}
	gl, err := Discover(ctx, s.hc, s.cfg.Ipconf, s.cfg.UID)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(gl.Gateways))
	for i, g := range gl.Gateways {
		out[i] = g.Addr
	}
	return out, nil
}

// connectAndServe logs in through the first gateway that takes it and serves the
// connection until it ends; served says whether it got as far as logging in.
func (s *Session) connectAndServe(ctx context.Context) (served bool, err error) {
	addrs, err := s.addrs(ctx)
	if err != nil {
		return false, err
	}
	var c *Conn
	var ok proto.LoginOK
	for _, a := range addrs {
		if c, err = Dial(a, 2*time.Second); err != nil {
			continue
		}
		if ok, err = c.Login(s.cfg.UID, s.cfg.Token()); err != nil {
			c.Close()
			c = nil
			var kick *KickError
			if errors.As(err, &kick) {
				return false, err
			}
			continue
		}
		if s.cfg.OnConnect != nil {
			s.cfg.OnConnect(a)
		}
		break
	}
	if c == nil {
		return false, fmt.Errorf("no gateway took the login: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	s.mu.Lock()
	if s.epoch != 0 && ok.Epoch != s.epoch {
		// The server lost its sequence space: start over from 0.
		s.contiguous = 0
		clear(s.ahead)
	}
	s.epoch = ok.Epoch
	s.conn = c
	s.stats.Logins++
	close(s.connected)
	err = s.syncLocked()
	s.mu.Unlock()
	if err == nil {
		err = s.readLoop(c, time.Duration(ok.HeartbeatMS)*time.Millisecond)
	}

	s.mu.Lock()
	s.conn = nil
	s.connected = make(chan struct{})
	s.syncing = false
	for id, ch := range s.acks {
		ch <- sendResult{err: ErrNotConnected}
		delete(s.acks, id)
	}
	s.mu.Unlock()
	c.Close()
	return true, err
}

// syncLocked asks for everything after the last contiguous seq.
func (s *Session) syncLocked() error {
	if s.conn == nil {
		return nil // between connections: the next login SYNCs anyway
	}
	s.syncing = true
	s.stats.Syncs++
	return s.conn.Sync(s.contiguous, s.epoch, 0)
}

func (s *Session) readLoop(c *Conn, heartbeat time.Duration) error {
	if heartbeat <= 0 {
		heartbeat = 30 * time.Second
	}
	done := make(chan struct{})
	defer close(done)
	// A timer goroutine, not read deadlines (which could tear a frame): every GapWait
	// it checks for a gap no frame will close, and it sends the heartbeats, the first
	// one jittered so that a reconnect storm does not ping in step.
	go func() {
		t := time.NewTicker(s.cfg.GapWait)
		defer t.Stop()
		nextPing := time.Now().Add(time.Duration(rand.Int64N(int64(heartbeat))))
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				s.mu.Lock()
				if s.conn == c {
					s.checkGapLocked()
					if now.After(nextPing) {
						c.Ping(now.UnixNano())
						nextPing = now.Add(heartbeat)
					}
				}
				s.mu.Unlock()
			}
		}
	}()
	for {
		f, err := c.Next()
		if err != nil {
			return err
		}
		if err := s.handle(f); err != nil {
			return err
		}
	}
}

func (s *Session) handle(f proto.Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch f.Type {
	case proto.TypePush:
		var p proto.Push
		if err := p.Decode(f.Body); err != nil {
			return err
		}
		p.Payload = append([]byte(nil), p.Payload...)
		s.acceptLocked(p)
	case proto.TypeSyncEnd:
		var e proto.SyncEnd
		if err := e.Decode(f.Body); err != nil {
			return err
		}
		s.syncing = false
		if e.Oldest > s.contiguous+1 {
			// Evicted before we got them: gone. Skip past, and count it.
			s.stats.Evicted += e.Oldest - s.contiguous - 1
			s.contiguous = e.Oldest - 1
			s.drainAheadLocked()
		}
		if s.contiguous < e.Head {
			return s.syncLocked()
		}
	case proto.TypeSendAck:
		var a proto.SendAck
		if err := a.Decode(f.Body); err != nil {
			return err
		}
		if ch, ok := s.acks[a.ClientMsgID]; ok {
			ch <- sendResult{msgID: a.MsgID}
			delete(s.acks, a.ClientMsgID)
		}
	case proto.TypeError:
		err := AsError(f)
		var se *ServerError
		if errors.As(err, &se) {
			if ch, ok := s.acks[se.Ref]; ok {
				ch <- sendResult{err: err}
				delete(s.acks, se.Ref)
			}
		}
	case proto.TypeKick:
		return AsError(f)
	}
	s.checkGapLocked()
	return nil
}

// acceptLocked takes one pushed message: deliver it if it is next, keep it if it is
// ahead of a gap, drop it if it was delivered already.
func (s *Session) acceptLocked(p proto.Push) {
	switch {
	case p.Seq <= s.contiguous:
		s.stats.Duplicates++
		return
	case p.Seq > s.contiguous+1:
		if _, dup := s.ahead[p.Seq]; dup {
			s.stats.Duplicates++
			return
		}
		if len(s.ahead) == 0 {
			s.gapSince = time.Now()
		}
		s.stats.OutOfOrder++
		s.ahead[p.Seq] = p
		return
	}
	s.deliverLocked(p)
	s.drainAheadLocked()
}

func (s *Session) deliverLocked(p proto.Push) {
	s.contiguous = p.Seq
	s.stats.Delivered++
	if s.cfg.OnMessage != nil {
		s.cfg.OnMessage(p)
	}
	if s.conn != nil && (p.Seq%32 == 0 || len(s.ahead) == 0) {
		s.conn.Ack(s.contiguous, s.epoch) // cumulative; batched while a backlog drains
	}
}

func (s *Session) drainAheadLocked() {
	for {
		p, ok := s.ahead[s.contiguous+1]
		if !ok {
			break
		}
		delete(s.ahead, p.Seq)
		s.deliverLocked(p)
	}
	for seq := range s.ahead {
		if seq <= s.contiguous {
			delete(s.ahead, seq)
		}
	}
	if len(s.ahead) > 0 {
		s.gapSince = time.Now()
	}
}

// checkGapLocked asks for the missing seqs once a gap has lasted GapWait.
func (s *Session) checkGapLocked() {
	if len(s.ahead) == 0 || s.syncing || s.conn == nil || time.Since(s.gapSince) < s.cfg.GapWait {
		return
	}
	s.syncLocked()
}
