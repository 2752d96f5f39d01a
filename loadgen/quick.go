package loadgen

import "time"

// QuickPlan is a one-phase plan told by a few numbers: what `floodgate loadgen`
// builds from its flags when it is given no plan file. Its users send to one
// another at Rate ("pairs") for Duration.
type QuickPlan struct {
	Seed int64
	// Ipconf is the ipconf base URL; Gateways a fixed list instead (Plan.Gateways),
	// WSGateways their WebSocket addresses (Plan.WSGateways).
	Ipconf         string
	Gateways       []string
	WSGateways     []string
	WebSocketShare float64
	Secret         string
	Users          int
	// UIDBase is the uid below the users' (Plan.UIDBase); negative: a fresh range
	// from the clock (FreshUIDBase).
	UIDBase      int64
	ConnectRate  float64
	Rate         float64
	Duration     time.Duration
	PayloadBytes int
	Bind         []string
}

// QuickPhase is the name of a quick plan's one phase.
const QuickPhase = "steady"

// Plan returns the validated plan q tells, a fresh uid range drawn at now if q
// asks for one.
func (q QuickPlan) Plan(now time.Time) (Plan, error) {
	base := uint64(q.UIDBase)
	if q.UIDBase < 0 {
		base = FreshUIDBase(now)
	}
	p := Plan{
		Seed: q.Seed, Ipconf: q.Ipconf, Gateways: q.Gateways, WSGateways: q.WSGateways, WebSocketShare: q.WebSocketShare,
		Secret: q.Secret, Users: q.Users, UIDBase: base, ConnectRate: q.ConnectRate, Bind: q.Bind,
		Traffic: Traffic{Rate: q.Rate, Pattern: "pairs", PayloadBytes: q.PayloadBytes},
		Phases:  []Phase{{Name: QuickPhase, Duration: Duration(q.Duration)}},
	}
	if err := p.Validate(); err != nil {
		return Plan{}, err // already says "plan: ..." and what is wrong
	}
	return p, nil
}

// FreshUIDBase is a uid base drawn from the clock: a billion uids per second of
// Unix time (modulo 2³¹ seconds), so two runs a second apart never share users
// and messages an earlier run left unacknowledged in the store never reach this
// run's users (they would count as phantom).
func FreshUIDBase(now time.Time) uint64 {
	return uint64(now.Unix()%(1<<31)) * 1_000_000_000
}
