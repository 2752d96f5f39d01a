package control

import (
	"fmt"
	"math"
	"time"
)

// Action is a scaling recommendation.
type Action string

// Actions.
const (
	ActionNone     Action = "none"
	ActionScaleOut Action = "scale_out"
	ActionScaleIn  Action = "scale_in"
)

// Recommendation is the body of GET /v1/recommendation.
type Recommendation struct {
	Action Action `json:"action"`
	// Gateways is the serving fleet: live gateways that are not draining.
	Gateways int `json:"gateways"`
	// Target is the recommended fleet size (Gateways when Action is none).
	Target int `json:"target"`
	// Utilisation is the connections on every live gateway (a draining one's
	// clients will land on the others) over the serving fleet's max_conns.
	Utilisation float64 `json:"utilisation"`
	Reason      string  `json:"reason"`
}

// scaler holds the hysteresis state: the action utilisation has called for since
// when. A recommendation needs the same call for Config.Sustain, so a spike or a
// dip shorter than that recommends nothing; and the target aims at the middle of
// the watermark band, so acting on it does not push utilisation past the other
// watermark and call for the opposite action.
type scaler struct {
	pending Action
	since   time.Time
}

// recommend evaluates the fleet at now: serving gateways with capacity max_conns
// in total, holding conns connections.
func (c *Config) recommend(sc *scaler, now time.Time, serving int, conns, capacity int64) Recommendation {
	r := Recommendation{Action: ActionNone, Gateways: serving, Target: serving}
	if capacity > 0 {
		r.Utilisation = float64(conns) / float64(capacity)
	}
	if serving < c.MinGateways {
		sc.pending = ActionNone
		r.Action, r.Target = ActionScaleOut, c.MinGateways
		r.Reason = fmt.Sprintf("%d serving gateways, below the minimum of %d", serving, c.MinGateways)
		return r
	}
	if capacity <= 0 {
		sc.pending = ActionNone
		r.Reason = "no capacity reported yet"
		return r
	}
	u := r.Utilisation
	want := ActionNone
	switch {
	case u > c.HighWater:
		want = ActionScaleOut
	case u < c.LowWater && serving > c.MinGateways:
		want = ActionScaleIn
	}
	if want != sc.pending {
		sc.pending, sc.since = want, now
	}
	if want == ActionNone {
		r.Reason = fmt.Sprintf("utilisation %.2f within [%.2f, %.2f]", u, c.LowWater, c.HighWater)
		if u < c.LowWater {
			r.Reason = fmt.Sprintf("utilisation %.2f below %.2f, but the fleet is at its minimum of %d", u, c.LowWater, c.MinGateways)
		}
		return r
	}
	side, mark := "above the high", c.HighWater
	if want == ActionScaleIn {
		side, mark = "below the low", c.LowWater
	}
	held := now.Sub(sc.since)
	if held < c.Sustain {
		r.Reason = fmt.Sprintf("utilisation %.2f %s watermark %.2f for %v; recommending after %v",
			u, side, mark, held, c.Sustain)
		return r
	}
	// Aim at the middle of the band, assuming new gateways have the serving
	// fleet's average capacity.
	mid := (c.HighWater + c.LowWater) / 2
	ideal := int(math.Ceil(u * float64(serving) / mid))
	if want == ActionScaleOut {
		r.Target = max(ideal, serving+1)
	} else {
		r.Target = max(min(ideal, serving-1), c.MinGateways)
	}
	r.Action = want
	r.Reason = fmt.Sprintf("utilisation %.2f %s watermark %.2f for %v; %d gateways bring it near %.2f",
		u, side, mark, held, r.Target, u*float64(serving)/float64(r.Target))
	return r
}
