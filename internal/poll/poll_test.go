package poll

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestWaitReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	if !Wait(5*time.Second, func() bool { calls++; return calls == 3 }) {
		t.Fatal("Wait gave up on a condition that held on the third check")
	}
	if calls != 3 {
		t.Fatalf("checked %d times, want 3 (it stops at the first true)", calls)
	}
}

func TestWaitGivesUpAfterTheDeadline(t *testing.T) {
	start := time.Now()
	if Wait(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("Wait reported a condition that never held")
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Fatal("Wait gave up before its deadline")
	}
}

// fatalRecorder records Fatalf instead of failing the test it wraps.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper()                           {}
func (r *fatalRecorder) Fatalf(format string, args ...any) { r.msg = fmt.Sprintf(format, args...) }

func TestUntilFailsWithWhatAndTheLastState(t *testing.T) {
	r := &fatalRecorder{TB: t}
	Until(r, 20*time.Millisecond, "the answer arrives", func() (bool, string) { return false, "still 41" })
	if !strings.Contains(r.msg, "the answer arrives") || !strings.Contains(r.msg, "still 41") {
		t.Fatalf("failure message %q lacks what was awaited and the last state", r.msg)
	}
}
