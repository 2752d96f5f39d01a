package loadgen

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// A quick plan is the one-phase "pairs" plan its numbers tell, validated and
// with its defaults filled; a negative uid base draws a fresh range from the
// clock, one that a run a second later does not overlap.
func TestQuickPlanIsTheOnePhasePlanItsNumbersTell(t *testing.T) {
	now := time.Unix(1_700_000_123, 0)
	good := func() QuickPlan {
		return QuickPlan{Seed: 3, Gateways: []string{"127.0.0.1:1", "127.0.0.1:2"}, WSGateways: []string{"127.0.0.1:3", ""},
			WebSocketShare: 0.25, Secret: testSecret, Users: 500, UIDBase: 9000, ConnectRate: 800, Rate: 1200,
			Duration: 7 * time.Second, PayloadBytes: 100, Bind: []string{"127.0.0.2"}}
	}
	trace := DefaultTraceFraction
	want := Plan{Seed: 3, Gateways: []string{"127.0.0.1:1", "127.0.0.1:2"}, WSGateways: []string{"127.0.0.1:3", ""},
		WebSocketShare: 0.25, Secret: testSecret, Users: 500, UIDBase: 9000, ConnectRate: 800, Bind: []string{"127.0.0.2"},
		Traffic:  Traffic{Rate: 1200, Pattern: "pairs", PayloadBytes: 100, Trace: &trace},
		Deadline: Duration(10 * time.Second), Interval: Duration(time.Second),
		Phases: []Phase{{Name: QuickPhase, Duration: Duration(7 * time.Second)}}}
	got, err := good().Plan(now)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan\n%+v\nwant\n%+v", got, want)
	}

	for _, tc := range []struct {
		name    string
		mut     func(*QuickPlan)
		wantErr string
	}{
		{"no gateway, no ipconf", func(q *QuickPlan) { q.Gateways, q.WSGateways = nil, nil }, "ipconf or gateways"},
		{"short secret", func(q *QuickPlan) { q.Secret = "short" }, "secret"},
		{"no users", func(q *QuickPlan) { q.Users = 0 }, "users"},
		{"no duration", func(q *QuickPlan) { q.Duration = 0 }, "duration"},
		{"negative rate", func(q *QuickPlan) { q.Rate = -1 }, "rates"},
		{"tiny payload", func(q *QuickPlan) { q.PayloadBytes = MinPayload - 1 }, "payload_bytes"},
		{"one ws address for two gateways", func(q *QuickPlan) { q.WSGateways = q.WSGateways[:1] }, "ws_gateways"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := good()
			tc.mut(&q)
			if _, err := q.Plan(now); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one about %s", err, tc.wantErr)
			}
		})
	}

	t.Run("fresh uid range", func(t *testing.T) {
		q := good()
		q.UIDBase = -1
		a, err := q.Plan(now)
		if err != nil {
			t.Fatal(err)
		}
		b, err := q.Plan(now.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if a.UIDBase != FreshUIDBase(now) || a.UIDBase == 0 {
			t.Fatalf("uid base %d, want %d from the clock", a.UIDBase, FreshUIDBase(now))
		}
		if b.UIDBase < a.UIDBase+uint64(q.Users) {
			t.Fatalf("runs a second apart: uids from %d and from %d overlap for %d users", a.UIDBase, b.UIDBase, q.Users)
		}
	})
}

// Fresh uid bases a second apart are a billion uids apart, wrapping after 2³¹
// seconds, and never overflow a uint64 however late the clock.
func TestFreshUIDBaseStepsABillionASecond(t *testing.T) {
	for _, tc := range []struct {
		unix int64
		want uint64
	}{
		{0, 0},
		{1, 1_000_000_000},
		{1 << 31, 0},
		{1<<31 + 5, 5_000_000_000},
		{1<<31 - 1, (1<<31 - 1) * 1_000_000_000},
	} {
		if got := FreshUIDBase(time.Unix(tc.unix, 0)); got != tc.want {
			t.Errorf("at %d s: %d, want %d", tc.unix, got, tc.want)
		}
	}
}
