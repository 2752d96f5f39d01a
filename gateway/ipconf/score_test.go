package ipconf

import (
	"math"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestScore(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		load state.Load
		want float64
	}{
		{"idle", state.Load{MaxConns: 1000}, 1},
		{"half full", state.Load{Conns: 500, MaxConns: 1000}, 0.5},
		{"full", state.Load{Conns: 1000, MaxConns: 1000}, 0},
		{"over the limit clamps to 0", state.Load{Conns: 1500, MaxConns: 1000}, 0},
		{"no limit reported yet counts as empty", state.Load{Conns: 7}, 1},
		{"full storm halves", state.Load{MaxConns: 1000, AcceptRate: 5000}, 0.5},
		{"half storm", state.Load{MaxConns: 1000, AcceptRate: 500}, 0.75},
		{"full CPU takes a quarter", state.Load{MaxConns: 1000, CPU: 8}, 0.75},
		{"everything at once", state.Load{Conns: 200, MaxConns: 1000, AcceptRate: 1000, CPU: 4}, 0.8 * 0.5 * 0.75},
		{"negative figures are ignored", state.Load{MaxConns: 1000, AcceptRate: -5, CPU: -1}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sm smoothed
			sm.fold(&state.Gateway{Epoch: 1, Load: tc.load}, epoch0, cfg.Window)
			if got := cfg.score(&sm); !near(got, tc.want, 1e-9) {
				t.Fatalf("score %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSmoothingIsInTimeNotSamples(t *testing.T) {
	const window = 5 * time.Second
	g := state.Gateway{Epoch: 1, Load: state.Load{Conns: 0, MaxConns: 1000}}
	var once, twice smoothed
	once.fold(&g, epoch0, window)
	twice.fold(&g, epoch0, window)

	// A report of 1000 conns held for one window moves the average by 1 - 1/e,
	// whether it is seen once at the end or also halfway through.
	g.Load.Conns = 1000
	twice.fold(&g, epoch0.Add(window/2), window)
	twice.fold(&g, epoch0.Add(window), window)
	once.fold(&g, epoch0.Add(window), window)
	want := 1 - math.Exp(-1)
	if !near(once.util, want, 1e-9) || !near(twice.util, want, 1e-9) {
		t.Fatalf("util %v (one sample) and %v (two), want %v", once.util, twice.util, want)
	}
	// A sample at the same instant changes nothing.
	g.Load.Conns = 0
	once.fold(&g, epoch0.Add(window), window)
	if !near(once.util, want, 1e-9) {
		t.Fatalf("a zero-interval sample moved the average to %v", once.util)
	}
	// A new epoch starts over.
	g.Epoch, g.Load.Conns = 2, 100
	once.fold(&g, epoch0.Add(2*window), window)
	if !near(once.util, 0.1, 1e-9) {
		t.Fatalf("util %v after a restart, want 0.1", once.util)
	}
}

func TestFirstRealReportStartsTheAverage(t *testing.T) {
	const window = 5 * time.Second
	// Acquired: no load reported yet, so it counts as empty.
	g := state.Gateway{Epoch: 1}
	var sm smoothed
	sm.fold(&g, epoch0, window)
	if sm.util != 0 {
		t.Fatalf("util %v before any report", sm.util)
	}
	// The first renewal reports it nearly full: believed at once, not averaged
	// with the empty placeholder.
	g.Load = state.Load{Conns: 950, MaxConns: 1000}
	sm.fold(&g, epoch0.Add(time.Second), window)
	if !near(sm.util, 0.95, 1e-9) {
		t.Fatalf("util %v after the first report, want 0.95", sm.util)
	}
	// Later reports are smoothed as usual.
	g.Load.Conns = 0
	sm.fold(&g, epoch0.Add(time.Second+window), window)
	if want := 0.95 * math.Exp(-1); !near(sm.util, want, 1e-9) {
		t.Fatalf("util %v, want %v", sm.util, want)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"negative K", Config{TopK: -1}, false},
		{"max below base", Config{Backoff: Backoff{Base: 2 * time.Second, Max: time.Second}}, false},
		{"jitter over 1", Config{Backoff: Backoff{Jitter: 1.5}}, false},
		{"penalty over 1", Config{AcceptPenalty: 2}, false},
		{"negative freeze", Config{FreezeFor: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
