package main

import (
	"flag"
	"time"

	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/internal/units"
)

// limitFlags are the gateway's client-port limits (PROTOCOL.md §13). A rate of 0
// turns that limit off: for benchmarks only.
type limitFlags struct {
	preLoginMaxFrame units.Size
	loginTimeout     time.Duration
	rates            node.Rates
	byteRate         units.Size
	byteBurst        units.Size
	perAddr          int
}

func (l *limitFlags) register(fs *flag.FlagSet) {
	d := node.DefaultRates()
	l.preLoginMaxFrame = node.DefaultPreLoginMaxFrame
	l.byteRate, l.byteBurst = units.Size(d.BytesPerSec), units.Size(d.ByteBurst)
	fs.Var(&l.preLoginMaxFrame, "prelogin-max-frame", "largest frame accepted before LOGIN (bigger: KICK FRAME_TOO_LARGE at its header); at most -max-frame")
	fs.DurationVar(&l.loginTimeout, "login-timeout", node.DefaultLoginTimeout, "close a connection that sent no LOGIN this long after accept (KICK IDLE/LOGIN_TIMEOUT)")
	fs.Float64Var(&l.rates.FramesPerSec, "frame-rate", d.FramesPerSec, "frames per second per logged-in connection; over it SEND gets RATE_LIMITED, others are dropped (0: off)")
	fs.IntVar(&l.rates.FrameBurst, "frame-burst", d.FrameBurst, "frames a connection may send at once over -frame-rate")
	fs.Var(&l.byteRate, "byte-rate", "inbound bytes per second per logged-in connection (0: off)")
	fs.Var(&l.byteBurst, "byte-burst", "inbound bytes a connection may send at once over -byte-rate (must hold a -max-frame frame)")
	fs.Float64Var(&l.rates.SendsPerSec, "send-rate", d.SendsPerSec, "SENDs per second per session; over it ERROR RATE_LIMITED, not stored (0: off)")
	fs.IntVar(&l.rates.SendBurst, "send-burst", d.SendBurst, "SENDs a session may send at once over -send-rate")
	fs.IntVar(&l.rates.MaxRefusals, "rate-refusals", d.MaxRefusals, "rate-limited frames tolerated per -rate-window; one more: KICK POLICY/RATE_EXCEEDED (0: never)")
	fs.DurationVar(&l.rates.RefusalWindow, "rate-window", d.RefusalWindow, "window of -rate-refusals")
	fs.IntVar(&l.rates.RefusalBytes, "rate-refusal-bytes", d.RefusalBytes, "a refused frame counts one refusal per this many bytes started, so a flood of large frames is closed after about -rate-refusals × this many refused bytes (0: one per frame)")
	fs.IntVar(&l.perAddr, "max-conns-per-ip", 0, "connections per client IP address; over it KICK POLICY/TOO_MANY_CONNECTIONS (0: no cap; a load generator opens thousands from one address)")
}

// apply puts the limits into cfg (its Reactor included).
func (l *limitFlags) apply(cfg *node.Config) {
	r := l.rates
	r.BytesPerSec, r.ByteBurst = float64(l.byteRate), l.byteBurst.Int()
	cfg.Rates = &r
	cfg.PreLoginMaxFrame = l.preLoginMaxFrame.Int()
	cfg.LoginTimeout = l.loginTimeout
	cfg.Reactor.MaxConnsPerAddr = l.perAddr
}
