package sim

import "time"

// clock is the runner's time for what it schedules: the traffic's start, the
// faults' offsets and their heals. Runs use the real one; tests use a clock they
// advance, so fault timing is tested without waiting.
type clock interface {
	Now() time.Time
	// After sends the time once d has passed (at once when d ≤ 0).
	After(d time.Duration) <-chan time.Time
	// AfterFunc calls f once d has passed.
	AfterFunc(d time.Duration, f func())
}

// realClock is the system's clock.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (realClock) AfterFunc(d time.Duration, f func())    { time.AfterFunc(d, f) }
