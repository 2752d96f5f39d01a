package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"github.com/floodgate/floodgate/internal/units"
)

// Duration is a plan's duration: units.Duration, written in JSON as "250ms",
// "5m" (a non-negative Go duration string).
type Duration = units.Duration

// Plan is what an agent does: who its users are, how they connect and behave, and
// the traffic phases. One plan describes a whole load; Segment carves it into slices
// so several agents (processes, machines) run parts of the same plan.
type Plan struct {
	Seed int64 `json:"seed"`
	// Ipconf is the ipconf base URL users discover gateways from; Gateways is a
	// fixed list used instead when Ipconf is empty.
	Ipconf   string   `json:"ipconf,omitempty"`
	Gateways []string `json:"gateways,omitempty"`
	// WSGateways are the WebSocket addresses of Gateways, index by index ("" for a
	// gateway without one); with Ipconf, ipconf's ws fields are used instead.
	WSGateways []string `json:"ws_gateways,omitempty"`
	// WebSocketShare is the fraction of users, 0..1, that connect to their
	// gateway's WebSocket port (PROTOCOL.md §2.1) instead of its TCP port: which
	// ones is fixed by the user's index in the plan (WebSocketUser), so reruns and
	// any split into segments pick the same users. A WebSocket user whose gateway
	// has no WebSocket port takes the next gateway of the list that has one.
	WebSocketShare float64 `json:"websocket_share,omitempty"`
	// Secret is the cluster secret: the agent mints its users' login tokens.
	Secret string `json:"secret"`
	// Users is the number of users in the whole plan; their uids are
	// UIDBase+1 … UIDBase+Users.
	Users   int    `json:"users"`
	UIDBase uint64 `json:"uid_base,omitempty"`
	// Bind lists local source addresses to spread this agent's connections over
	// (each gives its own ephemeral port range per destination); empty: the kernel's choice.
	Bind []string `json:"bind,omitempty"`
	// ConnectRate is connects per second for the whole plan (0: as fast as possible).
	ConnectRate float64 `json:"connect_rate"`
	// Heartbeat overrides the interval the server announces (0: the server's).
	Heartbeat Duration `json:"heartbeat,omitempty"`
	// PongTimeout is how long after a PING a user waits for any frame before it
	// takes its gateway for dead (gone silent: no FIN, no RST), closes the
	// connection and reconnects; 0: DefaultPongTimeout. A connection on which
	// nothing arrived for the idle timeout LOGIN_OK announced is dead too.
	PongTimeout Duration  `json:"pong_timeout,omitempty"`
	Traffic     Traffic   `json:"traffic"`
	Behaviour   Behaviour `json:"behaviour"`
	// Deadline is how long a message may take: one not delivered by then is
	// recorded at the deadline and counted lost (if the server acknowledged it) or
	// failed (if not). Default 10s.
	Deadline Duration `json:"deadline,omitempty"`
	// Interval is the histogram interval; default 1s.
	Interval Duration `json:"interval,omitempty"`
	Phases   []Phase  `json:"phases"`
	// Hostile are connections that abuse the client port, beside the users: they
	// start with the traffic, stop connecting at its end, and each must be closed
	// by the server within its class's bound (HostileClassNames).
	Hostile []HostileClass `json:"hostile,omitempty"`
}

// Traffic is the message load.
type Traffic struct {
	// Rate is messages per second for the whole plan: an open model, each message
	// has an intended send time whatever happened to the ones before it.
	Rate float64 `json:"rate"`
	// Pattern: "pairs" (uniform random sender and recipient), "zipf" (recipients
	// drawn from a Zipf law: hot users), or "groups" (each send goes to the other
	// members of the sender's group: fan-out).
	Pattern   string  `json:"pattern"`
	ZipfS     float64 `json:"zipf_s,omitempty"`     // Zipf exponent, > 1; default 1.1
	GroupSize int     `json:"group_size,omitempty"` // members per group, >= 2
	// PayloadBytes is the SEND payload size, at least 24 (the measurement header).
	PayloadBytes int `json:"payload_bytes"`
	// Trace is the fraction of messages sent as SEND_TRACED, whose PUSH_TRACED
	// splits their push latency into hops (TraceTags); which ones is fixed by the
	// seed. Unset: DefaultTraceFraction; 0: none, and the users log in with
	// protocol version 2 (a server without the trace frames serves them).
	Trace *float64 `json:"trace,omitempty"`
}

// DefaultTraceFraction is the fraction of messages traced when a plan does not say.
const DefaultTraceFraction = 0.01

// Behaviour is how users act besides sending.
type Behaviour struct {
	// SlowFraction of users read slowly: SlowBytesPerSec > 0 reads at that rate,
	// 0 stops reading altogether. Their push latency is tagged apart.
	SlowFraction    float64 `json:"slow_fraction,omitempty"`
	SlowBytesPerSec int     `json:"slow_bytes_per_sec,omitempty"`
	// ChurnPerSec disconnects that many random users per second (plan-wide); they
	// reconnect as clients do.
	ChurnPerSec float64 `json:"churn_per_sec,omitempty"`
	// IdleFraction of users only hold their connection: they neither send nor receive.
	IdleFraction float64 `json:"idle_fraction,omitempty"`
	// ReloginPerSec is how many times a second (plan-wide) an active user logs in
	// again on another gateway without closing its connection: the old one must be
	// kicked REPLACED.
	ReloginPerSec float64 `json:"relogin_per_sec,omitempty"`
}

// Phase is a stretch of the run with its own traffic settings. Rate, churn and the
// slow fraction apply to this phase only: unset, they are the plan's. Users steps:
// unset, it keeps the previous phase's count.
type Phase struct {
	Name     string   `json:"name"`
	Duration Duration `json:"duration"`
	// Users is how many of the plan's users are connected from this phase on (a
	// capacity run steps it up); unset: all of them (or the previous phase's count).
	Users        *int     `json:"users,omitempty"`
	Rate         *float64 `json:"rate,omitempty"`
	ChurnPerSec  *float64 `json:"churn_per_sec,omitempty"`
	SlowFraction *float64 `json:"slow_fraction,omitempty"`
	// ReloginPerSec overrides the plan's relogin rate for this phase.
	ReloginPerSec *float64 `json:"relogin_per_sec,omitempty"`
}

// LoadPlan reads a plan from a JSON file.
func LoadPlan(path string) (Plan, error) {
	p, err := ReadPlan(path)
	if err != nil {
		return Plan{}, err
	}
	return p, p.Validate()
}

// ReadPlan decodes a plan file strictly (unknown fields are errors) without
// validating it or filling its defaults: for a caller that completes the plan
// first (a secret from elsewhere) or compares plans as written.
func ReadPlan(path string) (Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Plan{}, err
	}
	var p Plan
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Plan{}, fmt.Errorf("plan %s: %w", path, err)
	}
	return p, nil
}

// MinPayload is the smallest payload: the measurement header (message number,
// intended send time, sender).
const MinPayload = 24

// Validate checks the plan and fills defaults. Every problem is reported, not
// just the first.
func (p *Plan) Validate() error {
	var bad problems
	p.validateTarget(&bad)
	p.validateTraffic(&bad)
	p.validateBehaviour(&bad)
	if p.Deadline == 0 {
		p.Deadline = Duration(10 * time.Second)
	}
	if p.Interval == 0 {
		p.Interval = Duration(time.Second)
	}
	if len(p.Phases) == 0 {
		bad.add("plan: at least one phase is required")
	}
	p.validateHostile(&bad)
	p.validatePhases(&bad)
	return errors.Join(bad...)
}

// problems collects a plan's validation errors.
type problems []error

// add records one problem.
func (ps *problems) add(format string, a ...any) { *ps = append(*ps, fmt.Errorf(format, a...)) }

// validateTarget checks what the users connect to and as whom.
func (p *Plan) validateTarget(bad *problems) {
	if p.Ipconf == "" && len(p.Gateways) == 0 {
		bad.add("plan: ipconf or gateways is required")
	}
	if len(p.Secret) < 16 {
		bad.add("plan: secret must be at least 16 bytes")
	}
	if p.Users <= 0 {
		bad.add("plan: users must be > 0")
	}
	if !(p.WebSocketShare >= 0 && p.WebSocketShare <= 1) {
		bad.add("plan: websocket_share must be a fraction in [0, 1], got %v", p.WebSocketShare)
	}
	if len(p.WSGateways) > 0 && len(p.WSGateways) != len(p.Gateways) {
		bad.add("plan: ws_gateways has %d entries for %d gateways: want one per gateway (\"\" for none)", len(p.WSGateways), len(p.Gateways))
	}
	if p.WebSocketShare > 0 && p.Ipconf == "" && !slices.ContainsFunc(p.WSGateways, func(a string) bool { return a != "" }) {
		bad.add("plan: websocket_share needs ipconf or a WebSocket address in ws_gateways")
	}
}

// validateTraffic checks the rates and the message load, and fills the
// pattern's, the payload's and the trace fraction's defaults.
func (p *Plan) validateTraffic(bad *problems) {
	if p.ConnectRate < 0 || p.Traffic.Rate < 0 {
		bad.add("plan: rates must be >= 0")
	}
	switch p.Traffic.Pattern {
	case "", "pairs":
		p.Traffic.Pattern = "pairs"
	case "zipf":
		if p.Traffic.ZipfS == 0 {
			p.Traffic.ZipfS = 1.1
		}
		if p.Traffic.ZipfS <= 1 {
			bad.add("plan: zipf_s must be > 1")
		}
	case "groups":
		if p.Traffic.GroupSize < 2 {
			bad.add("plan: group_size must be >= 2 for the groups pattern")
		}
	default:
		bad.add("plan: pattern %q: want pairs, zipf or groups", p.Traffic.Pattern)
	}
	if p.Traffic.PayloadBytes == 0 {
		p.Traffic.PayloadBytes = 64
	}
	if p.Traffic.PayloadBytes < MinPayload {
		bad.add("plan: payload_bytes must be >= %d", MinPayload)
	}
	if p.Traffic.Trace == nil {
		f := DefaultTraceFraction
		p.Traffic.Trace = &f
	}
	if f := *p.Traffic.Trace; !(f >= 0 && f <= 1) {
		bad.add("plan: trace must be a fraction in [0, 1], got %v", f)
	}
}

// validateBehaviour checks the plan-wide behaviours.
func (p *Plan) validateBehaviour(bad *problems) {
	b := p.Behaviour
	if b.SlowFraction < 0 || b.SlowFraction > 1 || b.IdleFraction < 0 || b.IdleFraction > 1 || b.SlowFraction+b.IdleFraction > 1 {
		bad.add("plan: slow and idle fractions must be in [0, 1] and add up to at most 1")
	}
	if b.ChurnPerSec < 0 || b.SlowBytesPerSec < 0 || b.ReloginPerSec < 0 {
		bad.add("plan: churn, relogin and slow rates must be >= 0")
	}
}

// validateHostile checks the hostile classes: known, each once, with a bound.
func (p *Plan) validateHostile(bad *problems) {
	seen := map[string]bool{}
	for i, h := range p.Hostile {
		switch {
		case !slices.Contains(HostileClassNames(), h.Class):
			bad.add("plan: hostile %d: class %q: want one of %v", i, h.Class, HostileClassNames())
		case seen[h.Class]:
			bad.add("plan: hostile %d: class %q given twice", i, h.Class)
		}
		seen[h.Class] = true
		if h.Conns < 0 || h.Bound <= 0 {
			bad.add("plan: hostile %d (%s): conns must be >= 0 and bound > 0", i, h.Class)
		}
	}
}

// validatePhases checks each phase: a duration, and its overrides within the
// plan's bounds.
func (p *Plan) validatePhases(bad *problems) {
	idle := p.Behaviour.IdleFraction
	for i, ph := range p.Phases {
		if ph.Duration <= 0 {
			bad.add("plan: phase %d (%q): duration must be > 0", i, ph.Name)
		}
		if ph.Users != nil && (*ph.Users < 0 || *ph.Users > p.Users) {
			bad.add("plan: phase %d (%q): users must be within 0..%d", i, ph.Name, p.Users)
		}
		if (ph.Rate != nil && *ph.Rate < 0) || (ph.ChurnPerSec != nil && *ph.ChurnPerSec < 0) ||
			(ph.ReloginPerSec != nil && *ph.ReloginPerSec < 0) ||
			(ph.SlowFraction != nil && (*ph.SlowFraction < 0 || *ph.SlowFraction+idle > 1)) {
			bad.add("plan: phase %d (%q): bad rate, churn, relogin or slow fraction", i, ph.Name)
		}
	}
}

// Segment is slice Index of Count of a plan (0 <= Index < Count).
type Segment struct{ Index, Count int }

// ParseSegment parses "i/n".
func ParseSegment(s string) (Segment, error) {
	var seg Segment
	if _, err := fmt.Sscanf(s, "%d/%d", &seg.Index, &seg.Count); err != nil || seg.Count < 1 || seg.Index < 0 || seg.Index >= seg.Count {
		return Segment{}, fmt.Errorf("segment %q: want i/n with 0 <= i < n", s)
	}
	return seg, nil
}

// String formats the segment as "i/n".
func (s Segment) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// users returns the segment's uid range: (first, count).
func (s Segment) users(p *Plan) (uint64, int) {
	lo := p.Users * s.Index / s.Count
	hi := p.Users * (s.Index + 1) / s.Count
	return p.UIDBase + uint64(lo) + 1, hi - lo
}

// shareUsers is how many of the segment's users belong to the first `users` of
// the plan, users being spread evenly over the segments.
func (s Segment) shareUsers(p *Plan, users int) int {
	_, n := s.users(p)
	return int(math.Round(float64(users) * float64(n) / float64(p.Users)))
}

// share scales a plan-wide rate to the segment's share of the users.
func (s Segment) share(p *Plan, rate float64) float64 {
	_, n := s.users(p)
	return rate * float64(n) / float64(p.Users)
}

// WebSocketUser reports whether the user at index i of the plan (uid UIDBase+1+i)
// connects over WebSocket: the users are spread evenly, user i being one exactly
// when ⌊(i+1)·share⌋ > ⌊i·share⌋, so the first n users hold ⌊n·share⌋ of them
// whatever the segments.
func (p *Plan) WebSocketUser(i int) bool {
	s := p.WebSocketShare
	return s > 0 && math.Floor(float64(i+1)*s) > math.Floor(float64(i)*s)
}
