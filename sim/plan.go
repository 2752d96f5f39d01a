package sim

import (
	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/scenario"
)

// planFor turns a scenario into the load plan its agents share.
func planFor(s *scenario.Scenario, ipconf, secret string) loadgen.Plan {
	p := loadgen.Plan{
		Seed:        s.Seed,
		Ipconf:      ipconf,
		Secret:      secret,
		Users:       int(s.Clients.Count),
		ConnectRate: float64(s.Clients.ConnectRate),
		// The gateways' WebSocket addresses come from ipconf's list (ws).
		WebSocketShare: float64(s.Clients.WebSocketShare),
		Heartbeat:      loadgen.Duration(s.Clients.Heartbeat),
		PongTimeout:    loadgen.Duration(s.Clients.PongTimeout),
		Traffic: loadgen.Traffic{
			Rate: float64(s.Traffic.Rate), Pattern: s.Traffic.Pattern, ZipfS: s.Traffic.ZipfS,
			GroupSize: s.Traffic.GroupSize, PayloadBytes: int(s.Traffic.Payload),
		},
		Behaviour: loadgen.Behaviour{
			SlowFraction: float64(s.Behaviours.Slow.Fraction), SlowBytesPerSec: int(s.Behaviours.Slow.Rate),
			ChurnPerSec: float64(s.Behaviours.Churn), IdleFraction: float64(s.Behaviours.Idle),
			ReloginPerSec: float64(s.Behaviours.Relogin),
		},
		Deadline: loadgen.Duration(s.Clients.Deadline),
	}
	if s.Traffic.Trace != nil {
		v := float64(*s.Traffic.Trace)
		p.Traffic.Trace = &v
	}
	for _, h := range s.Behaviours.Hostile.Specs() {
		p.Hostile = append(p.Hostile, loadgen.HostileClass{Class: h.Class, Conns: int(h.Conns), Bound: loadgen.Duration(h.Bound)})
	}
	for _, ph := range s.Phases {
		lp := loadgen.Phase{Name: ph.Name, Duration: loadgen.Duration(ph.Duration)}
		if ph.Clients != nil {
			v := int(*ph.Clients)
			lp.Users = &v
		}
		if ph.Rate != nil {
			v := float64(*ph.Rate)
			lp.Rate = &v
		}
		if ph.Churn != nil {
			v := float64(*ph.Churn)
			lp.ChurnPerSec = &v
		}
		if ph.Relogin != nil {
			v := float64(*ph.Relogin)
			lp.ReloginPerSec = &v
		}
		if ph.SlowFraction != nil {
			v := float64(*ph.SlowFraction)
			lp.SlowFraction = &v
		}
		p.Phases = append(p.Phases, lp)
	}
	return p
}
