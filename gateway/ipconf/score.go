package ipconf

import (
	"math"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
)

// smoothed is one gateway's load, smoothed by an exponentially weighted moving
// average with time constant Config.Window.
//
// The weight of each sample depends on the time since the previous one, not on
// how many tables arrived: folding the same report twice over dt1 and dt2 gives
// exactly what folding it once over dt1+dt2 would. So polling faster than gateways
// renew, or a watch that repeats the table every second, does not over-weight a
// report. A new epoch (the gateway restarted) starts the average over, and so
// does the first real report (one with max_conns) after the empty load a lease
// carries until its first renewal, so a busy gateway is not taken for empty while
// the average catches up.
type smoothed struct {
	epoch    uint64
	reported bool      // the average is from real reports
	at       time.Time // when the last sample was folded in, by the Service's clock
	util     float64   // conns / max_conns, 0..1
	accept   float64   // admissions per second
	cpu      float64   // cores
}

// fold adds g's load report, seen at now, to the average.
func (s *smoothed) fold(g *state.Gateway, now time.Time, window time.Duration) {
	util, accept, cpu := utilisation(g.Load), max(g.Load.AcceptRate, 0), max(g.Load.CPU, 0)
	reported := g.Load.MaxConns > 0
	if s.at.IsZero() || s.epoch != g.Epoch || (reported && !s.reported) {
		*s = smoothed{epoch: g.Epoch, reported: reported, at: now, util: util, accept: accept, cpu: cpu}
		return
	}
	alpha := 1 - math.Exp(-float64(now.Sub(s.at))/float64(window))
	s.util += alpha * (util - s.util)
	s.accept += alpha * (accept - s.accept)
	s.cpu += alpha * (cpu - s.cpu)
	s.at = now
}

// utilisation is conns / max_conns clamped to 0..1. A gateway that has not yet
// reported a limit (Acquire carries no load; the first renewal does) counts as
// empty: it has just started.
func utilisation(l state.Load) float64 {
	if l.MaxConns <= 0 {
		return 0
	}
	return min(max(float64(l.Conns)/float64(l.MaxConns), 0), 1)
}

// score rates a gateway for new connections, higher is better:
//
//	capacity × (1 − AcceptPenalty·storm) × (1 − CPUPenalty·cpu)
//
// where capacity = 1 − conns/max_conns, storm = min(1, accept_rate/AcceptRateFull)
// and cpu = min(1, cpu/CPUFull), all from the smoothed load. Capacity dominates: a
// full gateway scores 0 whatever else, and with the default penalties an idle
// but storm-hit, CPU-saturated gateway keeps 37.5% of its score.
func (c *Config) score(s *smoothed) float64 {
	capacity := 1 - s.util
	storm := min(s.accept/c.AcceptRateFull, 1)
	cpu := min(s.cpu/c.CPUFull, 1)
	return capacity * (1 - c.AcceptPenalty*storm) * (1 - c.CPUPenalty*cpu)
}
