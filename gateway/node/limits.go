package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/floodgate/floodgate/gateway/reactor"
)

// Defaults of the client-port limits (PROTOCOL.md §13).
const (
	// DefaultPreLoginMaxFrame is the largest frame length accepted before a LOGIN
	// succeeds: a LOGIN with a 512-byte token fits with room to spare.
	DefaultPreLoginMaxFrame = 1 << 10
	// DefaultLoginTimeout is how long a connection may stay without logging in.
	DefaultLoginTimeout = 10 * time.Second
)

// Rates are the rate limits of a logged-in connection. A zero rate turns its limit
// off (benchmarks only: the defaults are on).
//
// The frame and byte buckets are the reactor's (reactor.Limits): they are charged
// on the epoller as frames arrive, before anything is copied for a worker, so a
// flood costs a comparison per frame. A frame over them is not handled: a SEND is
// answered ERROR RATE_LIMITED (not stored), anything else is dropped — harmless for
// PUSH_ACK, which is cumulative, and for PING, which the client repeats. More than
// MaxRefusals of those refusals (PUSH_ACKs not counted) within RefusalWindow end
// the connection with KICK POLICY/RATE_EXCEEDED, and the gateway refuses the
// user's LOGINs until the kick's retry hint (penaltyBox). The SEND bucket is the
// node's, per session (one per user on a gateway, so per sender), charged on the
// worker that handles the SEND; its refusals are answered RATE_LIMITED but never
// kick (see sendTAT).
//
// The defaults sit far above what a client following PROTOCOL.md does: a burst of
// 600 frames holds two full windows of 256 pipelined SENDs (a client flushing a
// queue refills its window before its first RATE_LIMITED can arrive), and a
// client that pauses its SENDs after a RATE_LIMITED, as §7.5 asks, is never
// kicked. The reference client sends a message every few seconds, a PUSH_ACK per
// 32 pushes and one SYNC per replayed batch of at most 256 messages.
type Rates struct {
	FramesPerSec float64 // complete frames per second per connection
	FrameBurst   int
	BytesPerSec  float64 // inbound bytes per second per connection
	ByteBurst    int     // must hold a max_frame frame
	SendsPerSec  float64 // SENDs per second per session
	// SendBurst is at least the 256 unanswered SENDs a client may pipeline
	// (PROTOCOL.md §13) by default, so that a client flushing its offline queue
	// when it reconnects is never refused.
	SendBurst int
	// MaxRefusals refused frames are tolerated within RefusalWindow; one more is
	// persistent abuse. 0: refusals never end the connection.
	MaxRefusals   int
	RefusalWindow time.Duration
	// RefusalBytes weighs a frame the reactor refuses by its size: one refusal per
	// RefusalBytes started (reactor.Limits.RefusalBytes), so a flood of large
	// frames is closed after about MaxRefusals × RefusalBytes refused bytes rather
	// than MaxRefusals frames. 0 (the default): one per frame. Off by default
	// because it would also kick a client that pipelines a window of large SENDs
	// past the byte burst before its first RATE_LIMITED reaches it; the penalty
	// box already stops a flooder from getting a fresh burst by reconnecting.
	RefusalBytes int
}

// DefaultRates returns the default rate limits.
func DefaultRates() Rates {
	return Rates{
		FramesPerSec: 200, FrameBurst: 600,
		BytesPerSec: 1 << 20, ByteBurst: 2 << 20,
		SendsPerSec: 50, SendBurst: 256,
		MaxRefusals: 100, RefusalWindow: 10 * time.Second,
	}
}

// lengthField is the size of a frame's length field, which the frame's length does
// not count (PROTOCOL.md §2): the reactor's frame sizes include it.
const lengthField = 4

// policyRetryMin and policyRetryMax are the range of the retry hint (ms) a RATE_EXCEEDED kick
// carries, and a TOO_MANY_CONNECTIONS one.
const (
	policyRetryMin = 10_000
	policyRetryMax = 20_000
)

// limits derives the reactor's limits and the node's SEND rate from cfg.
func (cfg *Config) limits() (open, admitted *reactor.Limits, sends reactor.Rate, err error) {
	if cfg.PreLoginMaxFrame <= 0 {
		cfg.PreLoginMaxFrame = DefaultPreLoginMaxFrame
	}
	if cfg.PreLoginMaxFrame > cfg.MaxFrame {
		cfg.PreLoginMaxFrame = cfg.MaxFrame
	}
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = DefaultLoginTimeout
	}
	if cfg.Rates == nil {
		r := DefaultRates()
		cfg.Rates = &r
	}
	r := cfg.Rates
	if r.BytesPerSec > 0 && r.ByteBurst < lengthField+cfg.MaxFrame {
		return nil, nil, reactor.Rate{}, fmt.Errorf("node: byte burst %d cannot hold a max_frame frame (%d bytes)",
			r.ByteBurst, lengthField+cfg.MaxFrame)
	}
	if r.MaxRefusals > 0 && r.RefusalWindow <= 0 {
		return nil, nil, reactor.Rate{}, fmt.Errorf("node: a refusal limit (%d) needs a refusal window", r.MaxRefusals)
	}
	open = &reactor.Limits{MaxFrame: lengthField + cfg.PreLoginMaxFrame}
	admitted = &reactor.Limits{
		Frames:      reactor.PerSecond(r.FramesPerSec, r.FrameBurst),
		Bytes:       reactor.PerSecond(r.BytesPerSec, r.ByteBurst),
		MaxRefusals: r.MaxRefusals, RefusalWindow: r.RefusalWindow, RefusalBytes: r.RefusalBytes,
	}
	return open, admitted, reactor.PerSecond(r.SendsPerSec, r.SendBurst), nil
}

// sendTAT is a session's SEND bucket (its theoretical arrival time, on the node's
// clock). The connection's callbacks never overlap, so it needs no
// synchronisation. Its refusals are answered RATE_LIMITED and do not count towards
// the kick: a client flushing a long queue refills its 256-SEND window as answers
// come, so a second window may arrive before its first RATE_LIMITED does; the
// frame and byte buckets, whose refusals do count, bound a flood.
type sendTAT = int64

// penaltyBoxMax bounds the users a gateway remembers as penalised: 16 bytes of map
// entry each, about 1 MiB at most.
const penaltyBoxMax = 1 << 16

// penaltyBox remembers the users this gateway kicked RATE_EXCEEDED until the
// earliest end of the retry hint they were given, and refuses their LOGINs until
// then (KICK POLICY/RATE_EXCEEDED again, before the session directory or the store
// hear of them). Without it the hint binds only clients that honour it: a flooder
// that reconnects at once gets a fresh burst with every connection — the SEND
// burst stored, the byte burst read — so the limits would bound a connection, not
// a user. A client that waits as told is never refused: the penalty ends at the
// hint's minimum. It is per gateway (a user who moves to another gateway gets
// that gateway's burst once) and bounded (when full of live penalties, new ones
// are not recorded: the box deters, the rate limits still bound every connection).
type penaltyBox struct {
	mu    sync.Mutex
	until map[uint64]int64 // uid → end of the penalty, on the node's clock
}

// add penalises uid until the given time (node clock, ns).
func (p *penaltyBox) add(uid uint64, until, now int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.until == nil {
		p.until = map[uint64]int64{}
	}
	if len(p.until) >= penaltyBoxMax {
		for u, t := range p.until {
			if t <= now {
				delete(p.until, u)
			}
		}
		if len(p.until) >= penaltyBoxMax {
			return
		}
	}
	p.until[uid] = max(p.until[uid], until)
}

// remaining returns how long uid's penalty still runs at now (0: none).
func (p *penaltyBox) remaining(uid uint64, now int64) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.until[uid]
	if !ok {
		return 0
	}
	if t <= now {
		delete(p.until, uid)
		return 0
	}
	return time.Duration(t - now)
}
