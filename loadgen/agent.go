// Package loadgen is Floodgate's load generator: agents that each hold many
// thousands of simulated users on the epoll reactor (no goroutine per connection)
// and measure push latency the way a user feels it.
//
// # Measurement
//
// Traffic is an open model: message k of a phase has an intended send time fixed
// by the schedule, t0 + k/rate, stamped into its payload together with k, and a
// message's push latency is its receipt time minus that intended time — never the
// time it actually went out — so a generator or a server that falls behind is
// measured as late, not silently excused (coordinated omission, wrk2). Times are
// CLOCK_MONOTONIC, the same clock in every namespace of the machine.
//
// Each agent sends between its own users only, so it knows every message it expects
// and accounts for each one by its identity, (sender, client message id): delivered
// within the deadline, lost (the server acknowledged it, it never arrived in time:
// recorded at the deadline, not dropped from the histogram) or failed (not
// acknowledged by the deadline: the client gave up) — and, apart, what no correct
// system does: a message handed to the app twice (duplicates), one never sent
// (phantom), one at the wrong user (misdelivered). Senders retry like a real app,
// with the same client message id. Users receive through gateway/client's Window,
// the receive rule real clients use. Users still spread over every gateway through
// ipconf, so the system sees cross-gateway traffic.
//
// Latencies go into HdrHistograms per 1 s interval and per SLI tag, written as an
// HdrHistogram interval log (.hlog) that merges across agents and machines. The
// agent also measures itself: generator lag (actual − intended send) and a hiccup
// meter (how late the scheduler wakes; it wakes at least every 50 ms), so an
// overloaded generator can mark a run invalid.
//
// # Transports
//
// Users connect over TCP, or — a share of them fixed by their index
// (Plan.WebSocketShare) — over the gateway's WebSocket port, one frame of the
// client protocol per masked binary message (PROTOCOL.md §2.1). The WebSocket
// layer is a handler of its own in front of the same user code (websocket.go),
// so both transports are driven and measured alike.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/floodgate/floodgate/gateway/ws"
	"golang.org/x/sys/unix"
)

// Options configures an agent.
type Options struct {
	Plan    Plan
	Segment Segment
	Name    string // this agent's name in results; default "agent-<i>"
	// OutDir receives <name>.hlog and <name>.json (SuffixHlog, SuffixResult);
	// empty: no files.
	OutDir string
	// Start, if set, releases the traffic phases: the value is the shared start
	// time (so several agents' phases line up). If nil, traffic starts as soon as
	// every user has had its first connection attempt settle.
	Start <-chan time.Time
	// Progress receives a snapshot every second (may be nil).
	Progress func(Snapshot)
	Logger   *slog.Logger
}

// The files an agent's outputs are named by: <name> and a suffix. The agent
// writes the interval log and the result; `floodgate loadgen -out` adds the plan
// and the progress log, and `floodgate collect` reads all four.
const (
	SuffixHlog     = ".hlog"           // HdrHistogram interval log, a histogram per tag per interval
	SuffixResult   = ".json"           // Result
	SuffixPlan     = ".plan.json"      // the Plan run, its secret left out
	SuffixProgress = ".progress.jsonl" // a progress snapshot a line, each second
)

// Agent is one load-generating process's worth of users.
type Agent struct {
	opts   Options
	plan   Plan
	log    *slog.Logger
	signer *proto.Signer
	r      *reactor.Reactor
	// wr holds the WebSocket users' connections (websocket.go); nil when the
	// plan has none.
	wr    *reactor.Reactor
	epoch time.Time // agent clock zero
	mono0 int64     // CLOCK_MONOTONIC at epoch

	mu              sync.Mutex
	users           []*user
	senders         []int32 // online, non-idle users
	recipients      []int32 // non-idle users, in index order
	recvLimit       int     // recipients[:recvLimit] are within the users meant to be connected
	recvTarget      int     // users the plan means to be connected now (index bound)
	loginFrontier   int     // every user below this index has logged in at least once
	ledger          *ledger
	counts          Counts
	meters          *meters
	gwPush          *gatewayPush // push latency per gateway of the recipient and per phase
	pushPhase       int          // the phase gwPush's samples go to: the scheduler's current one
	rng             *rand.Rand
	zipf            *rand.Zipf
	wbuf, payload   []byte
	binds           []netip.Addr
	gateways        []string
	wsGateways      []string // the WebSocket address of each of gateways, "" for none
	wsbuf           []byte   // a WebSocket frame or handshake being written
	masks           ws.MaskSource
	wsUsers         int    // users that connect over WebSocket
	wsConns         uint64 // WebSocket connections whose handshake succeeded
	wsRefused       uint64 // WebSocket handshakes the server refused or answered wrongly
	backoffBase     int64
	backoffMax      int64
	heartbeat       int64
	pongTimeout     int64
	silentCloses    uint64
	slowRate        int64
	kicks           map[string]uint64
	errorCodes      map[string]uint64 // ERROR frames received, by code
	retries         retryHeap         // refused SENDs waiting for their next attempt
	recovery        recoveryLog       // the latest first delivery per 100 ms of intended time
	established     uint64
	reconnects      uint64
	disconnects     uint64
	connectFailures uint64
	protoErrors     uint64
	serverErrors    uint64
	active          int // users logged in now
	peakActive      int
	wakes           wakeHeap // the users' next visits (timers.go)
	// hostile are the abusive connections beside the users (nil: none); they
	// keep their own accounting, apart from the ledger.
	hostile *hostileFleet
	// trace picks the messages sent as SEND_TRACED; traceNegative counts the hops
	// recorded as 0 because they came out negative (see recordTrace).
	trace         traceSampler
	traceNegative uint64
}

// New prepares an agent: its users, its reactor (client mode) and its output files.
func New(opts Options) (*Agent, error) {
	p := opts.Plan
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if opts.Segment.Count == 0 {
		opts.Segment = Segment{0, 1}
	}
	if opts.Name == "" {
		opts.Name = fmt.Sprintf("agent-%d", opts.Segment.Index)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	signer, err := proto.NewSigner([]byte(p.Secret))
	if err != nil {
		return nil, err
	}
	a := &Agent{
		opts: opts, plan: p, log: opts.Logger.With("agent", opts.Name), signer: signer,
		rng:   rand.New(rand.NewPCG(uint64(p.Seed), uint64(opts.Segment.Index)+1)),
		kicks: map[string]uint64{}, errorCodes: map[string]uint64{}, backoffBase: int64(500 * time.Millisecond), backoffMax: int64(10 * time.Second),
		heartbeat: int64(p.Heartbeat), pongTimeout: int64(p.PongTimeout), gateways: p.Gateways,
		wsGateways: wsList(p.Gateways, p.WSGateways), masks: ws.NewMaskSource(),
		gwPush: newGatewayPush(p.Phases),
		trace:  newTraceSampler(*p.Traffic.Trace, p.Seed, opts.Segment.Index),
	}
	for _, g := range p.Gateways {
		a.gwPush.learn(g, "")
	}
	if a.pongTimeout <= 0 {
		a.pongTimeout = int64(DefaultPongTimeout)
	}
	for _, b := range p.Bind {
		ip, err := netip.ParseAddr(b)
		if err != nil {
			return nil, fmt.Errorf("plan: bind %q: %w", b, err)
		}
		a.binds = append(a.binds, ip)
	}
	a.setupUsers()
	maxRate := p.Traffic.Rate
	for _, ph := range p.Phases {
		if ph.Rate != nil {
			maxRate = max(maxRate, *ph.Rate)
		}
	}
	a.ledger = newLedger(int(opts.Segment.share(&p, maxRate)*(p.Deadline.D().Seconds()+5)*2)+1024, newIDBase())
	a.payload = make([]byte, p.Traffic.PayloadBytes)

	a.r, err = reactor.New(reactor.Config{
		Handler: a, Framer: func(b []byte) (int, error) { return proto.FrameSize(b, 1<<24) },
		Epollers: 1, Workers: 1, WriteHardCap: 64 << 20, WriteHighWater: 32 << 20,
		Linger: 200 * time.Millisecond, ShutdownTimeout: 2 * time.Second, Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	if a.wsUsers > 0 {
		a.wr, err = reactor.New(reactor.Config{
			Handler: wsHandler{a}, Framer: func(b []byte) (int, error) { return ws.CutClientStream(b, wsMaxMessage) },
			Epollers: 1, Workers: 1, WriteHardCap: 64 << 20, WriteHighWater: 32 << 20,
			Linger: 200 * time.Millisecond, ShutdownTimeout: 2 * time.Second, Logger: a.log.With("transport", "websocket"),
		})
		if err != nil {
			return nil, err
		}
	}
	hostile := 0
	if len(p.Hostile) > 0 {
		a.hostile = newHostileFleet(&a.plan, opts.Segment, signer, a.dialHostile)
		hostile = a.hostile.conns()
	}
	if need := len(a.users) + hostile; need > a.r.MaxConns() {
		return nil, fmt.Errorf("agent %s: %d users and %d hostile connections but this process may hold %d connections (RLIMIT_NOFILE %d): use more segments",
			opts.Name, len(a.users), hostile, a.r.MaxConns(), a.r.FileLimit().Hard)
	}
	return a, nil
}

// setupUsers creates the segment's users and decides, deterministically from the
// seed, which are idle and which read slowly.
func (a *Agent) setupUsers() {
	first, n := a.opts.Segment.users(&a.plan)
	a.users = make([]*user, n)
	order := a.rng.Perm(n) // a seeded shuffle: behaviour does not follow uid order
	idle := int(math.Round(a.plan.Behaviour.IdleFraction * float64(n)))
	for i := range a.users {
		ws := a.plan.WebSocketUser(int(first-a.plan.UIDBase-1) + i)
		a.users[i] = &user{uid: first + uint64(i), idx: int32(i), senderPos: -1, gw: -1, ws: ws}
		if ws {
			a.wsUsers++
		}
	}
	for _, i := range order[:idle] {
		a.users[i].idle = true
	}
	for _, u := range a.users {
		if !u.idle {
			a.recipients = append(a.recipients, u.idx)
		}
	}
	a.setSlowFraction(a.plan.Behaviour.SlowFraction, 0)
	a.slowRate = int64(a.plan.Behaviour.SlowBytesPerSec)
	a.recvTarget = len(a.users)
	a.limitRecipients(len(a.users))
}

// followLogins lets messages go to the users the plan means to be connected and
// that have logged in: when a step of a stepped run adds users, the recipients grow
// with the new users' first logins rather than at the step's start, so a message is
// never measured waiting for its recipient's first connect — that is connect time,
// not push latency. Users dial in index order but need not log in in that order (a
// refused or BUSY-kicked one retries after later ones got in), so the bound is the
// login frontier, not the number of logins.
func (a *Agent) followLogins() {
	a.limitRecipients(min(a.recvTarget, a.loginFrontier))
}

// advanceLoginFrontier moves the login frontier past every user that has logged in
// at least once; amortised O(1) per login.
func (a *Agent) advanceLoginFrontier() {
	for a.loginFrontier < len(a.users) {
		u := a.users[a.loginFrontier]
		if u.state != uActive && u.lostAt == 0 {
			return
		}
		a.loginFrontier++
	}
}

// limitRecipients lets messages go only to users below index n: in a stepped run
// the others are not meant to be connected yet, and their messages would wait out
// the deadline for nothing.
func (a *Agent) limitRecipients(n int) {
	k := sort.Search(len(a.recipients), func(i int) bool { return int(a.recipients[i]) >= n })
	if k == a.recvLimit {
		return
	}
	a.recvLimit = k
	if a.plan.Traffic.Pattern == "zipf" && k > 1 {
		a.zipf = rand.NewZipf(a.rng, a.plan.Traffic.ZipfS, 1, uint64(k-1))
	}
}

// setSlowFraction marks the first fraction of non-idle users (in a seeded order)
// as slow readers, and unmarks the rest, at now.
func (a *Agent) setSlowFraction(f float64, now int64) {
	n := int(math.Round(f * float64(len(a.recipients))))
	for i, idx := range a.recipients {
		u := a.users[idx]
		was := u.slow
		u.slow = i < n
		if u.conn != nil && u.state == uActive && was != u.slow {
			if u.slow && a.slowRate == 0 {
				u.conn.PauseReading()
			} else if !u.slow {
				u.conn.ResumeReading()
			}
			a.touch(u, now) // a slow reader's budget is refilled on its timer
		}
	}
}

// now is the agent clock: nanoseconds since the agent's epoch, monotonic.
func (a *Agent) now() int64 { return int64(time.Since(a.epoch)) }

// monoNow converts an agent-clock time to CLOCK_MONOTONIC nanoseconds, the clock
// the payload carries.
func (a *Agent) toMono(t int64) int64 { return a.mono0 + t }

// Run connects the users, runs the phases, waits out the deadline for the last
// messages, and returns the result. It stops early if ctx ends (the result then
// covers what ran).
func (a *Agent) Run(ctx context.Context) (*Result, error) {
	var ts unix.Timespec
	a.epoch = time.Now()
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return nil, err
	}
	a.mono0 = ts.Nano()
	// Payload times are CLOCK_MONOTONIC; receipt times are computed on the same scale.
	var hlog io.Writer
	var hfile *os.File
	if a.opts.OutDir != "" {
		f, err := os.Create(filepath.Join(a.opts.OutDir, a.opts.Name+SuffixHlog))
		if err != nil {
			return nil, err
		}
		hfile, hlog = f, f
		defer f.Close()
	}
	m, err := newMeters(hlog, a.epoch, a.plan.Interval.D())
	if err != nil {
		return nil, err
	}
	a.meters = m
	defer m.close() // on every path; finish closes it first to report a write error

	rctx, stopReactor := context.WithCancel(context.Background())
	rdone := make(chan error, 1)
	go func() { rdone <- a.r.Run(rctx) }()
	defer func() { stopReactor(); <-rdone }()
	if a.wr != nil {
		wdone := make(chan error, 1)
		go func() { wdone <- a.wr.Run(rctx) }()
		defer func() { stopReactor(); <-wdone }()
	}
	if a.plan.Ipconf != "" {
		if err := a.discover(ctx); err != nil {
			return nil, err
		}
		go a.keepDiscovering(ctx)
	}

	res, err := a.schedule(ctx)
	if a.hostile != nil && res != nil {
		res.Hostile = a.hostile.finish()
	}
	if hfile != nil {
		hfile.Sync()
	}
	if err != nil {
		return res, err
	}
	if a.opts.OutDir != "" {
		if err := res.write(filepath.Join(a.opts.OutDir, a.opts.Name+SuffixResult)); err != nil {
			return res, err
		}
	}
	return res, nil
}

// discover refreshes the gateway list from ipconf.
func (a *Agent) discover(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	gl, err := client.Discover(cctx, nil, a.plan.Ipconf, a.users[0].uid)
	if err != nil {
		return fmt.Errorf("ipconf: %w", err)
	}
	addrs := make([]string, len(gl.Gateways))
	wsAddrs := make([]string, len(gl.Gateways))
	for i, g := range gl.Gateways {
		addrs[i], wsAddrs[i] = g.Addr, g.WS
	}
	a.mu.Lock()
	a.gateways, a.wsGateways = addrs, wsAddrs
	for _, g := range gl.Gateways {
		a.gwPush.learn(g.Addr, g.ID)
	}
	if gl.Backoff.BaseMS > 0 {
		a.backoffBase = int64(gl.Backoff.BaseMS) * int64(time.Millisecond)
	}
	if gl.Backoff.MaxMS > 0 {
		a.backoffMax = int64(gl.Backoff.MaxMS) * int64(time.Millisecond)
	}
	a.mu.Unlock()
	return nil
}

// keepDiscovering refreshes the list every second; on failure the last good list
// stays in use.
func (a *Agent) keepDiscovering(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.discover(ctx); err != nil && ctx.Err() == nil {
				a.log.Debug("ipconf refresh failed; keeping the last list", "err", err)
			}
		}
	}
}

// topK is how many of ipconf's best gateways a client picks among at random.
//
// The pick is uniform among the first topK of a list fetched once a second for all
// of the agent's users. Drawing each dial by ipconf's weights instead (closer to
// independent clients each dialling the head of its own list) was tried in one
// crash-failover run: 4,082 connect failures against 1,010 and a crash-phase push
// p99 of 357 ms against 94 ms in the run before it. A later run with the uniform
// pick saw 1.07 s there too (the machine had slowed), so one run decides nothing;
// the uniform pick stays until a study with more runs.
const topK = 3

// dialHostile connects a hostile connection: slot s of class c goes to gateway
// (s+c) mod n of ipconf's list, so every class spreads over the whole fleet.
func (a *Agent) dialHostile(ctx context.Context, class, slot int) (net.Conn, error) {
	a.mu.Lock()
	gws := a.gateways
	var local netip.Addr
	if len(a.binds) > 0 {
		local = a.binds[slot%len(a.binds)]
	}
	a.mu.Unlock()
	if len(gws) == 0 {
		return nil, errors.New("no gateway known yet")
	}
	d := net.Dialer{}
	if local.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	return d.DialContext(ctx, "tcp", gws[(slot+class)%len(gws)])
}

// dial starts a connection attempt for u. Caller holds the lock.
func (a *Agent) dial(u *user, now int64) {
	if len(a.gateways) == 0 {
		u.retryAt = now + int64(time.Second)
		return
	}
	// Weighted-random choice among ipconf's top K is ipconf's own shuffle; pick one
	// of them, not the address that last refused this user.
	k := min(topK, len(a.gateways))
	i := a.rng.IntN(k)
	if u.avoid > 0 && int(u.avoid-1) == i && len(a.gateways) > 1 {
		i = (i + 1) % max(k, 2)
	}
	u.avoid = int16(i + 1)
	if u.ws {
		if i = a.wsIndex(i); i < 0 {
			u.tried, u.retryAt = true, now+int64(time.Second) // no gateway of the list has a WebSocket port yet
			return
		}
	}
	addr := a.gateways[i]
	var local netip.Addr
	if len(a.binds) > 0 {
		local = a.binds[int(u.idx)%len(a.binds)]
	}
	u.dialAt = now
	u.addr, u.gw = addr, int16(a.gwPush.of(addr))
	u.tried = true
	u.state = uConnecting
	c, err := a.dialUser(u, i, local)
	if err != nil {
		a.connectFailures++
		u.state = uOffline
		u.attempt++
		u.retryAt = now + min(a.backoffMax, a.backoffBase<<min(u.attempt, 16))
		if !errors.Is(err, reactor.ErrTooManyConns) {
			a.log.Debug("dial failed", "addr", addr, "err", err)
		}
		return
	}
	u.conn = c
}

// wsList is the WebSocket address list of a fixed gateway list: ws itself, or
// when it is empty, no WebSocket port anywhere.
func wsList(gateways, ws []string) []string {
	if len(ws) == len(gateways) {
		return ws
	}
	return make([]string, len(gateways))
}
