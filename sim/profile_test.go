package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/scenario"
)

// A profile runs over the middle of its phase, whole seconds, never longer than
// the phase.
func TestProfileWindowIsTheMiddleOfThePhase(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		secs      time.Duration
		phase     time.Duration
		from, dur time.Duration // from the phase's start
	}{
		{"the default in a 20 s phase", 0, 20 * time.Second, 2500 * time.Millisecond, 15 * time.Second},
		{"5 s of a 20 s phase", 5 * time.Second, 20 * time.Second, 7500 * time.Millisecond, 5 * time.Second},
		{"longer than the phase", time.Minute, 8 * time.Second, 0, 8 * time.Second},
		{"a fraction of a second is dropped", 5 * time.Second, 4500 * time.Millisecond, 0, 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, d := Profile{Phase: "p", Seconds: tc.secs}.window(start, start.Add(tc.phase))
			if from.Sub(start) != tc.from || d != tc.dur {
				t.Fatalf("window from %v for %v, want from %v for %v", from.Sub(start), d, tc.from, tc.dur)
			}
		})
	}
}

// A profile must name a phase of the scenario.
func TestProfileNamesAPhase(t *testing.T) {
	t.Parallel()
	s, err := scenario.Parse("p.yaml", []byte("name: p\ntopology: {gateways: 1, agents: 1}\nclients: {count: 10}\nphases:\n  - {name: steady, duration: 5s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := (Profile{Phase: "steady"}).Check(s); err != nil {
		t.Fatal(err)
	}
	if err := (Profile{Phase: "stedy"}).Check(s); err == nil || !strings.Contains(err.Error(), `no phase "stedy" (it has [steady])`) {
		t.Fatalf("a missing phase: %v", err)
	}
}
