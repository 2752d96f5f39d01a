package reactor

import (
	"errors"
	"time"
)

// Errors behind the closes the reactor decides by a connection's Limits.
var (
	// ErrFrameTooLarge is the cause of a ReasonProtocol close when a frame's header
	// announces more than the connection's Limits.MaxFrame.
	ErrFrameTooLarge = errors.New("reactor: frame over the connection's size limit")
	// ErrRateExceeded is the cause of a ReasonRate close.
	ErrRateExceeded = errors.New("reactor: rate limits exceeded persistently")
)

// Rate is a token bucket, kept the way the generic cell rate algorithm keeps it: one
// int64 of state per bucket (the theoretical arrival time, TAT), no refill loop, no
// allocation. A unit costs Interval nanoseconds of credit; the bucket holds Burst
// units, so Burst units may pass at once and then one per Interval. The zero Rate
// admits everything.
type Rate struct {
	Interval int64 // nanoseconds per unit; <= 0: unlimited
	Burst    int64 // units that may pass at once
}

// PerSecond returns the Rate admitting n units per second with bursts of burst;
// n <= 0 gives the unlimited Rate. A rate over 10⁹ per second is unlimited too (the
// interval rounds to zero nanoseconds).
func PerSecond(n float64, burst int) Rate {
	if n <= 0 {
		return Rate{}
	}
	return Rate{Interval: int64(float64(time.Second) / n), Burst: int64(max(burst, 1))}
}

// On reports whether the rate limits anything.
func (r Rate) On() bool { return r.Interval > 0 }

// Allow charges cost units at now (nanoseconds on any monotonic clock) against the
// bucket whose state is *tat, and reports whether they fit; a refused charge leaves
// the bucket as it was. A cost over Burst never fits.
func (r Rate) Allow(tat *int64, now, cost int64) bool {
	if r.Interval <= 0 {
		return true
	}
	next := max(*tat, now) + cost*r.Interval
	if next-now > r.Burst*r.Interval {
		return false
	}
	*tat = next
	return true
}

// Limits are a connection's inbound limits. Config.OpenLimits applies from accept
// until the handler admits the connection (Conn.Admit), which installs the Limits
// for the rest of its life. A Limits is shared by many connections and must not
// change once in use; the per-connection state (a few words) lives in the Conn.
//
// The rate limits live here, on the epoller, rather than in a handler: frames are
// measured when they arrive, on the epoller's clock (no system call), before they
// are copied for a worker, so a flood is refused at the cost of a comparison and
// never fills the worker queue — and a worker that falls behind and then runs a
// backlog at once is not mistaken for a client that sent one.
type Limits struct {
	// MaxFrame is the largest frame accepted, in bytes as the Framer counts them
	// (header included); a header announcing more closes the connection with
	// ReasonProtocol and ErrFrameTooLarge before any of the frame is kept. 0: the
	// Framer's own limit only.
	MaxFrame int
	// Frames and Bytes limit the complete frames, and their bytes, handed to the
	// handler. A frame over either is refused: not handed over, but given to
	// Config.Refused. A Bytes burst must hold the largest frame, or it never passes.
	Frames, Bytes Rate
	// More than MaxRefusals refused frames within one RefusalWindow close the
	// connection with ReasonRate; the windows are consecutive spans of the
	// reactor's clock (RefusalWindow 0: one window, the connection's life).
	// MaxRefusals 0: refusals never close it.
	MaxRefusals   int
	RefusalWindow time.Duration
	// RefusalBytes weighs refusals by size: a refused frame counts one refusal per
	// RefusalBytes bytes or part of them (at least one). Without it a flood of
	// maximum-size frames would be read MaxRefusals times over before it closes —
	// megabytes per connection, again after every reconnect; with it the refused
	// volume is bounded too, by about MaxRefusals × RefusalBytes. 0: every refused
	// frame counts one.
	RefusalBytes int
}

// limitState is a connection's side of its Limits. Epoller-only.
type limitState struct {
	frames, bytes int64 // the buckets' TATs on the reactor clock
	refusals      int32 // refusals in window number window
	window        int32 // truncated: only equality matters
}

// admitFrame charges one complete frame of size bytes against c's rates at now;
// false if it is refused. Epoller-only.
func (c *Conn) admitFrame(lim *Limits, size int, now int64) bool {
	s := &c.lim
	if !lim.Frames.On() && !lim.Bytes.On() {
		return true
	}
	if tat := s.frames; lim.Frames.Allow(&s.frames, now, 1) {
		if lim.Bytes.Allow(&s.bytes, now, int64(size)) {
			return true
		}
		s.frames = tat // the frame does not pass: give its frame token back
	}
	return false
}

// refusal counts one refused frame of size bytes and reports whether the
// connection has now exceeded its refusals. Epoller-only.
func (c *Conn) refusal(lim *Limits, size int, now int64) bool {
	s := &c.lim
	if lim.MaxRefusals <= 0 {
		return false
	}
	w := int32(0)
	if lim.RefusalWindow > 0 {
		w = int32(now / int64(lim.RefusalWindow))
	}
	if w != s.window {
		s.window, s.refusals = w, 0
	}
	weight := int32(1)
	if lim.RefusalBytes > 0 {
		weight = int32(max(1, (size+lim.RefusalBytes-1)/lim.RefusalBytes))
	}
	s.refusals += weight
	return int(s.refusals) > lim.MaxRefusals
}
