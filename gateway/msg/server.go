package msg

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate/floodgate/gateway/link"
	"github.com/prometheus/client_golang/prometheus"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	Addr   string // link listen address (ip:port)
	Secret []byte // cluster secret; peers must prove they hold it
	Store  Store
	// Router is the router's link address. If set, the server sees every stored
	// message through to the router (see Server); if empty, messages are only
	// stored, and reach their recipients through SYNC.
	Router string
	// Name is this process's link identity towards the router; default "msg".
	Name string
	// Delivery tunes the delivery to the router.
	Delivery DeliveryConfig
	Logger   *slog.Logger // nil: slog.Default()
	// Registry receives the floodgate_msg_ metrics; nil: they are kept, not exported.
	Registry prometheus.Registerer
	// Workers serves calls side by side on this many goroutines, in order per
	// user (an append by its recipient; an ack, range or window by its user),
	// instead of one at a time per connection (0, the default). A store a round
	// trip away (Redis) needs it: one at a time, a gateway's appends are capped at
	// one per round trip, and a slow one (a WAIT for a replica) holds up the rest.
	Workers int
	// SweepInterval is how often the server has a store that sweeps (Sweeper: drops
	// expired messages, deletes empty inboxes) take its next steps; default
	// DefaultSweepInterval. Each tick runs at most maxSweepSteps steps.
	SweepInterval time.Duration
}

// DefaultSweepInterval is ServerConfig.SweepInterval's default: the memory store
// visits one of its 256 shards per step and Redis one of its 256 buckets (deleting
// up to 128 expired inboxes of it), so at up to maxSweepSteps steps a tick either
// goes through the whole store every 8 seconds or so.
const DefaultSweepInterval = 250 * time.Millisecond

// maxSweepSteps bounds the sweep steps of one tick, so that a backlog of expired
// inboxes is worked off in slices rather than in one long burst of store calls.
const maxSweepSteps = 8

// Server serves a Store over link, for Client: the methods are MethodAppend,
// MethodAck, MethodRange and MethodWindow. Like every link server it handles each
// connection's requests one at a time, in order (with ServerConfig.Workers: in
// order per user). An Append error whose text starts
// with ErrNotStored's says the message is certainly not stored (the store said so,
// or the server is shutting down and did not call it); one whose text starts with
// ErrRecipientFull's (which starts with ErrNotStored's, so that a client that
// knows only ErrNotStored still takes it as not stored) that the recipient's
// quota refused it.
//
// With a Router, the server owns the delivery of every message it stores until the
// router settles it (see RouteMethod and SettleMethod): an Append is answered only
// once the message is stored and tracked (a deduplicated Append tracks and routes
// the message again); the message is handed to the router at once, sent again with
// backoff while unsettled (DeliveryConfig), and all unsettled messages are sent
// again whenever the link to the router comes back up. A recipient's
// acknowledgement settles its messages too. On a store that outlives the process
// (PendingStore), a server starting up takes over the messages a previous one left
// unsettled.
type Server struct {
	link  *link.Server
	store Store
	log   *slog.Logger
	m     *serverMetrics
	// tr and router deliver stored messages; nil without ServerConfig.Router.
	tr     *tracker
	router *link.Client
	// failing is whether the latest store call failed, so that an outage is logged
	// once when it starts and once when it ends rather than per request.
	failing    atomic.Bool
	sweepEvery time.Duration
}

// NewServer binds cfg.Addr and starts connecting to cfg.Router; Serve then serves
// (and must run: it closes the router link when it returns).
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("msg: ServerConfig needs a Store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry() // counted, not exported
	}
	if cfg.Name == "" {
		cfg.Name = "msg"
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	s := &Server{store: cfg.Store, log: cfg.Logger, m: newServerMetrics(cfg.Registry, cfg.Store), sweepEvery: cfg.SweepInterval}
	ln, err := link.Listen(link.ServerConfig{Addr: cfg.Addr, Secret: cfg.Secret, Handler: s.handle, Logger: cfg.Logger,
		Registry: cfg.Registry, Service: "msg", Workers: cfg.Workers, Order: orderKey})
	if err != nil {
		return nil, fmt.Errorf("msg server: %w", err)
	}
	s.link = ln
	if cfg.Router != "" {
		s.tr = newTracker(cfg.Delivery, cfg.Store, nil, newDeliveryMetrics(cfg.Registry), cfg.Logger)
		// OnConnect runs before the link serves anything, so it must not wait on the
		// router: replayAll only marks messages due and wakes the resend loop.
		s.router = link.Dial(link.ClientConfig{Addr: cfg.Router, Secret: cfg.Secret, Name: cfg.Name,
			OnNotify:   s.tr.onNotify,
			OnConnect:  func(context.Context, *link.Client) { s.tr.replayAll() },
			MaxBackoff: s.tr.cfg.ReconnectMax, Logger: cfg.Logger.With("peer", "router")})
		s.tr.link = s.router
		registerDeliveryGauges(cfg.Registry, s.tr)
	}
	return s, nil
}

// Addr returns the bound link address.
func (s *Server) Addr() string { return s.link.Addr() }

// Serve serves until ctx ends, then closes every connection and returns once their
// handlers, and the delivery to the router, have finished.
func (s *Server) Serve(ctx context.Context) error {
	s.log.Info("msg serving", "addr", s.Addr())
	dctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if sw, ok := s.store.(Sweeper); ok {
		wg.Go(func() { s.sweep(dctx, sw) })
	}
	if s.tr == nil {
		err := s.link.Serve(ctx)
		stop()
		wg.Wait()
		return err
	}
	wg.Go(func() { s.tr.run(dctx) })
	if s.tr.persist != nil {
		wg.Go(func() { s.tr.load(dctx) })
	}
	err := s.link.Serve(ctx)
	stop()
	wg.Wait()
	s.router.Close()
	return err
}

// sweep has sw take up to maxSweepSteps steps every sweepEvery until ctx ends.
func (s *Server) sweep(ctx context.Context, sw Sweeper) {
	tick := time.NewTicker(s.sweepEvery)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for range maxSweepSteps {
			more, err := sw.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				if !failing {
					s.log.Warn("msg store: sweeping expired inboxes failed", "err", err)
				}
				failing = true
				break
			}
			failing = false
			if !more {
				break
			}
		}
	}
}

// orderKey orders calls for ServerConfig.Workers by the user they concern: an
// append's recipient (so that one sender's messages to one recipient keep their
// order), the uid of an ack, range or window, a windows batch's first uid. A
// malformed body or a notification stays on the reader, which refuses it.
func orderKey(req *link.Request) (uint64, bool) {
	b := req.Body
	switch {
	case req.OneWay:
		return 0, false
	case req.Method == MethodAppend && len(b) >= 8+messageFixed:
		return binary.BigEndian.Uint64(b[8+32:]), true // after the client id: Seq, Epoch, ID, From, then To
	case req.Method != MethodAppend && len(b) >= 8:
		return binary.BigEndian.Uint64(b), true
	}
	return 0, false
}

func (s *Server) handle(ctx context.Context, req *link.Request) ([]byte, error) {
	if MethodName(req.Method) == "" {
		return nil, fmt.Errorf("msg: unknown method %d", req.Method)
	}
	if req.OneWay {
		// Every method answers; a notification would store or drop unseen.
		s.log.Debug("msg: one-way request ignored", "method", req.Method, "peer", req.Peer.Name())
		return nil, nil
	}
	start := time.Now()
	var resp []byte
	var err error
	switch req.Method {
	case MethodAppend:
		resp, err = s.append(ctx, req.Body)
	case MethodAck:
		resp, err = s.ack(ctx, req.Body)
	case MethodRange:
		resp, err = s.rangeMsgs(ctx, req.Body)
	case MethodWindow:
		resp, err = s.window(ctx, req.Body)
	case MethodWindows:
		resp, err = s.windows(ctx, req.Body)
	}
	s.m.observe(req.Method, time.Since(start), s.classify(ctx, req, err))
	return resp, err
}

// classify returns err's result label, logging the start and end of store failures.
func (s *Server) classify(ctx context.Context, req *link.Request, err error) int {
	switch {
	case errors.Is(err, errMalformed) || errors.Is(err, ErrNoRecipient) || errors.Is(err, ErrRecipientFull):
		return resultRejected
	case err != nil && ctx.Err() != nil:
		return resultFailed // cut short by shutdown, not a store failure
	case err != nil:
		if !s.failing.Swap(true) {
			s.log.Warn("msg store failing", "method", MethodName(req.Method), "peer", req.Peer.Name(), "err", err)
		}
		return resultFailed
	}
	if s.failing.Load() && s.failing.Swap(false) {
		s.log.Info("msg store recovered")
	}
	return resultOK
}

func (s *Server) append(ctx context.Context, body []byte) ([]byte, error) {
	m, err := decodeAppendRequest(body)
	if err != nil {
		return nil, err
	}
	if m.To == 0 {
		return nil, ErrNoRecipient
	}
	m.Seq, m.ID, m.Epoch = 0, 0, 0
	if err := ctx.Err(); err != nil { // shutting down: the store is not called
		return nil, fmt.Errorf("%w: %w", ErrNotStored, err)
	}
	if err := s.store.Append(ctx, &m); err != nil {
		switch {
		case errors.Is(err, ErrNoRecipient):
			return nil, ErrNoRecipient // its text is how Client recognises it
		case errors.Is(err, ErrRecipientFull):
			return nil, ErrRecipientFull // its text (a prefix of it) is how Client recognises it
		case errors.Is(err, ErrNotStored) && !strings.HasPrefix(err.Error(), ErrNotStored.Error()):
			return nil, fmt.Errorf("%w: %w", ErrNotStored, err) // the prefix is how Client recognises it
		}
		return nil, err
	}
	if m.Trace != nil { // decoded from this request: ours to stamp
		m.Trace.Stored = time.Now().UnixNano()
	}
	if s.tr != nil {
		s.tr.track(&m) // m.Payload aliases the request body: valid during the call only
	}
	return appendTriple(make([]byte, 0, appendReplyLen), m.Seq, m.ID, m.Epoch), nil
}

func (s *Server) ack(ctx context.Context, body []byte) ([]byte, error) {
	uid, seq, epoch, err := decodeTriple(body)
	if err != nil {
		return nil, err
	}
	if err := s.store.Ack(ctx, uid, seq, epoch); err != nil {
		return nil, err
	}
	if s.tr != nil {
		s.tr.ack(uid, seq, epoch)
	}
	return nil, nil
}

// rangeMsgs asks the store for at most MaxRangeReply messages and answers with as
// many as fit a link frame (see MethodRange).
func (s *Server) rangeMsgs(ctx context.Context, body []byte) ([]byte, error) {
	uid, after, limit, err := decodeRangeRequest(body)
	if err != nil {
		return nil, err
	}
	if limit == 0 || limit > MaxRangeReply {
		limit = MaxRangeReply
	}
	msgs, w, err := s.store.Range(ctx, uid, after, int(limit))
	if err != nil {
		return nil, err
	}
	resp, n := appendRangeReply(nil, w, msgs, link.MaxBody)
	if n == 0 && len(msgs) > 0 {
		return nil, fmt.Errorf("msg: uid %d seq %d: a message of %d bytes does not fit a link frame",
			uid, msgs[0].Seq, EncodedSize(&msgs[0]))
	}
	s.m.replayed.Add(float64(n))
	return resp, nil
}

func (s *Server) windows(ctx context.Context, body []byte) ([]byte, error) {
	if len(body) == 0 || len(body)%8 != 0 || len(body)/8 > MaxWindows {
		return nil, fmt.Errorf("%w: windows request of %d bytes", errMalformed, len(body))
	}
	uids := make([]uint64, len(body)/8)
	for i := range uids {
		uids[i] = binary.BigEndian.Uint64(body[8*i:])
	}
	var ws []Window
	if b, ok := s.store.(WindowsBatcher); ok {
		var err error
		if ws, err = b.Windows(ctx, uids); err != nil {
			return nil, err
		}
	} else {
		ws = make([]Window, len(uids))
		for i, uid := range uids {
			var err error
			if ws[i], err = s.store.Window(ctx, uid); err != nil {
				return nil, err
			}
		}
	}
	resp := make([]byte, 0, len(ws)*windowSize)
	for _, w := range ws {
		resp = appendWindow(resp, w)
	}
	return resp, nil
}

func (s *Server) window(ctx context.Context, body []byte) ([]byte, error) {
	uid, err := decodeUID(body)
	if err != nil {
		return nil, err
	}
	w, err := s.store.Window(ctx, uid)
	if err != nil {
		return nil, err
	}
	return appendWindow(make([]byte, 0, windowSize), w), nil
}
