package control

import (
	"fmt"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
)

// Kind is an alert's kind.
type Kind string

// Alert kinds. Each raised alert is later matched by an event of the same kind and
// gateway with Resolved set.
const (
	// KindGatewayDown: a live gateway's lease ended without a drain or a release
	// (it lapsed, the gateway vanished from the table, or it came back under a new
	// epoch between two observations, which also lost its sessions). Resolved when
	// the gateway is live again.
	KindGatewayDown Kind = "gateway_down"
	// KindOverSoftLimit: conns > SoftFraction × max_conns.
	KindOverSoftLimit Kind = "over_soft_limit"
	// KindCongestion: outbound_queued or worker_queue over its threshold.
	KindCongestion Kind = "congestion"
)

// kinds lists every Kind, for metrics.
func kinds() []Kind { return []Kind{KindGatewayDown, KindOverSoftLimit, KindCongestion} }

// Event is one alert raised or resolved.
type Event struct {
	Seq      uint64    `json:"seq"` // 1, 2, ... in order of occurrence
	Time     time.Time `json:"time"`
	Kind     Kind      `json:"kind"`
	Gateway  string    `json:"gateway"`
	Detail   string    `json:"detail"`
	Resolved bool      `json:"resolved"`
}

// tracked is what the Service remembers of one gateway between tables.
type tracked struct {
	g    state.Gateway // as last seen
	live bool          // g's lease was live when last seen
	// drainSet records a successful Drain through this Service for g's epoch, so a
	// gateway that exits before a table shows its draining flag is not "down".
	drainSet bool
	active   map[Kind]bool
}

// draining reports whether the gateway was leaving on purpose when last seen.
func (t *tracked) draining() bool { return t.g.Draining || t.drainSet }

// observe compares g, seen at now, with what t remembers, raises and resolves
// alerts through emit, and then remembers g.
//
// Telling a release from a lapse: Release ends a lease by setting its expiry to
// the release time, well before the expiry last seen while it was live (a lease
// is renewed long before it runs out, and renewals only move the expiry later).
// A lease that lapsed keeps its last renewal's expiry. So an expiry that moved
// back by more than ReleaseMargin was released; any other live → not-live
// transition of a gateway that was not draining is down. Missed observations or
// a margin too small can only turn a release into a false "down"; hiding a death
// would take the state host's clock running ReleaseMargin behind this one's.
func (c *Config) observe(t *tracked, g state.Gateway, now time.Time, emit func(Kind, string, bool)) {
	live := g.Live(now)
	leaving := t.draining() || g.Draining
	switch {
	case t.live && !live && leaving:
		// Expected: it was drained and has now gone.
	case t.live && !live && g.Expires.Before(t.g.Expires.Add(-c.ReleaseMargin)):
		// Released: a clean shutdown.
	case t.live && !live:
		emit(KindGatewayDown, fmt.Sprintf("lease of epoch %d expired at %s without release",
			g.Epoch, g.Expires.UTC().Format(time.RFC3339Nano)), false)
	case t.live && live && g.Epoch != t.g.Epoch && !leaving:
		emit(KindGatewayDown, fmt.Sprintf("lease re-acquired as epoch %d (was %d) between two observations: its sessions were lost",
			g.Epoch, t.g.Epoch), false)
		emit(KindGatewayDown, fmt.Sprintf("live again with epoch %d", g.Epoch), true)
	case !t.live && live:
		emit(KindGatewayDown, fmt.Sprintf("live again with epoch %d", g.Epoch), true)
	}
	if g.Epoch != t.g.Epoch {
		t.drainSet = false
	}
	t.g, t.live = g, live
	if !live {
		emit(KindOverSoftLimit, "gateway not live", true)
		emit(KindCongestion, "gateway not live", true)
		return
	}
	c.checkLoad(g, emit)
}

// vanish handles a gateway missing from the table: down unless it was draining.
func (c *Config) vanish(t *tracked, emit func(Kind, string, bool)) {
	if t.live && !t.draining() {
		emit(KindGatewayDown, "gone from the gateway table", false)
	}
	t.live = false
	emit(KindOverSoftLimit, "gone from the gateway table", true)
	emit(KindCongestion, "gone from the gateway table", true)
}

// checkLoad raises or resolves the load alerts of a live gateway. emit ignores a
// raise of an active alert and a resolve of an inactive one, so each condition
// only states when it holds and when it has cleared.
func (c *Config) checkLoad(g state.Gateway, emit func(Kind, string, bool)) {
	l := g.Load
	if l.MaxConns > 0 {
		limit := c.SoftFraction * float64(l.MaxConns)
		switch conns := float64(l.Conns); {
		case conns > limit:
			emit(KindOverSoftLimit, fmt.Sprintf("conns %d > %.2f × max_conns %d", l.Conns, c.SoftFraction, l.MaxConns), false)
		case conns <= c.ClearRatio*limit:
			emit(KindOverSoftLimit, fmt.Sprintf("conns %d back under %.0f", l.Conns, c.ClearRatio*limit), true)
		}
	}
	detail := fmt.Sprintf("outbound_queued %d B (limit %d), worker_queue %d (limit %d)",
		l.OutboundQueued, c.OutboundQueuedMax, l.WorkerQueue, c.WorkerQueueMax)
	switch {
	case l.OutboundQueued > c.OutboundQueuedMax || l.WorkerQueue > c.WorkerQueueMax:
		emit(KindCongestion, detail, false)
	case float64(l.OutboundQueued) <= c.ClearRatio*float64(c.OutboundQueuedMax) &&
		float64(l.WorkerQueue) <= c.ClearRatio*float64(c.WorkerQueueMax):
		emit(KindCongestion, detail, true)
	}
}
