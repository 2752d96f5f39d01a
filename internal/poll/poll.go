// Package poll is the tests' one way to wait for an observable state: check a
// condition until it holds or a deadline passes, instead of sleeping for a guess.
package poll

import (
	"testing"
	"time"
)

// Interval is how often Until checks its condition.
const Interval = 10 * time.Millisecond

// Until checks cond every Interval until it returns true, and fails t if it has
// not within d. what names the awaited state in the failure ("ipconf advertises
// two gateways"); cond may return a detail of the last state seen, appended to
// the failure message.
func Until(t testing.TB, d time.Duration, what string, cond func() (ok bool, last string)) {
	t.Helper()
	if !Wait(d, func() bool { ok, _ := cond(); return ok }) {
		_, last := cond()
		if last != "" {
			t.Fatalf("%s: not within %v (last: %s)", what, d, last)
		} else {
			t.Fatalf("%s: not within %v", what, d)
		}
	}
}

// True is Until for a condition with nothing to report.
func True(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	Until(t, d, what, func() (bool, string) { return cond(), "" })
}

// Wait checks cond every Interval until it returns true (true) or d passes
// (false), for callers that handle the timeout themselves.
func Wait(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(Interval)
	}
}
