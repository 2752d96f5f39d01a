package loadgen

import (
	"strings"
	"testing"
	"time"
)

// Validate fills what a plan leaves unset and keeps what it sets.
func TestPlanValidateFillsDefaults(t *testing.T) {
	trace := 0.0
	for _, tc := range []struct {
		name  string
		mut   func(*Plan)
		check func(p Plan) bool
	}{
		{"pattern pairs", func(*Plan) {}, func(p Plan) bool { return p.Traffic.Pattern == "pairs" }},
		{"payload 64 bytes", func(*Plan) {}, func(p Plan) bool { return p.Traffic.PayloadBytes == 64 }},
		{"payload kept", func(p *Plan) { p.Traffic.PayloadBytes = 200 }, func(p Plan) bool { return p.Traffic.PayloadBytes == 200 }},
		{"trace fraction", func(*Plan) {}, func(p Plan) bool { return p.Traffic.Trace != nil && *p.Traffic.Trace == DefaultTraceFraction }},
		{"no tracing kept", func(p *Plan) { p.Traffic.Trace = &trace }, func(p Plan) bool { return *p.Traffic.Trace == 0 }},
		{"zipf exponent", func(p *Plan) { p.Traffic.Pattern = "zipf" }, func(p Plan) bool { return p.Traffic.ZipfS == 1.1 }},
		{"zipf exponent kept", func(p *Plan) { p.Traffic.Pattern, p.Traffic.ZipfS = "zipf", 2 }, func(p Plan) bool { return p.Traffic.ZipfS == 2 }},
		{"deadline 10 s", func(*Plan) {}, func(p Plan) bool { return p.Deadline.D() == 10*time.Second }},
		{"deadline kept", func(p *Plan) { p.Deadline = Duration(time.Second) }, func(p Plan) bool { return p.Deadline.D() == time.Second }},
		{"interval 1 s", func(*Plan) {}, func(p Plan) bool { return p.Interval.D() == time.Second }},
	} {
		p := Plan{Gateways: []string{"127.0.0.1:1"}, Secret: testSecret, Users: 10, Phases: []Phase{{Name: "p", Duration: Duration(time.Second)}}}
		tc.mut(&p)
		if err := p.Validate(); err != nil || !tc.check(p) {
			t.Errorf("%s: %v; plan %+v", tc.name, err, p)
		}
	}
}

// Validate reports every problem of a plan, each naming its field (and its
// phase or hostile class), not just the first.
func TestPlanValidateReportsEveryProblem(t *testing.T) {
	neg, over := -1.0, 11
	p := Plan{
		Secret: "short", Users: 10, WebSocketShare: 2,
		Traffic:   Traffic{Rate: -5, Pattern: "zipf", ZipfS: 0.5, PayloadBytes: 4},
		Behaviour: Behaviour{SlowFraction: 0.7, IdleFraction: 0.7, ChurnPerSec: -1},
		Hostile:   []HostileClass{{Class: "nonsense", Bound: Duration(time.Second)}},
		Phases: []Phase{{Name: "empty"}, {Name: "crowded", Duration: Duration(time.Second), Users: &over},
			{Name: "negative", Duration: Duration(time.Second), Rate: &neg}},
	}
	err := p.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"ipconf or gateways", "secret", "websocket_share", "rates must be >= 0", "zipf_s", "payload_bytes",
		"slow and idle fractions", "churn, relogin and slow rates", `hostile 0: class "nonsense"`,
		`phase 0 ("empty"): duration`, `phase 1 ("crowded"): users must be within 0..10`, `phase 2 ("negative"): bad rate`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
}

// A phase's own settings are held to the plan's bounds.
func TestPlanValidateChecksEachPhase(t *testing.T) {
	neg, half, users := -0.5, 0.5, 4
	for _, tc := range []struct {
		name string
		ph   Phase
		ok   bool
	}{
		{"a step of users", Phase{Users: &users}, true},
		{"a slow half beside the idle third", Phase{SlowFraction: &half}, true},
		{"negative rate", Phase{Rate: &neg}, false},
		{"negative churn", Phase{ChurnPerSec: &neg}, false},
		{"negative relogin", Phase{ReloginPerSec: &neg}, false},
		{"negative slow fraction", Phase{SlowFraction: &neg}, false},
		{"slow and idle over 1", Phase{SlowFraction: f64(0.8)}, false},
	} {
		ph := tc.ph
		ph.Name, ph.Duration = "p", Duration(time.Second)
		p := Plan{Gateways: []string{"127.0.0.1:1"}, Secret: testSecret, Users: 10, Behaviour: Behaviour{IdleFraction: 0.3}, Phases: []Phase{ph}}
		if err := p.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
